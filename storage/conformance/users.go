package conformance

import (
	"errors"
	"testing"

	"github.com/astral/idp/storage"
)

func userTests() []test {
	return []test{
		{"create and load", testUserCreateLoad},
		{"absent is not found", testUserAbsent},
		{"unique phone, email and id", testUserUnique},
		{"update", testUserUpdate},
		{"list in pages", testUserList},
		{"block and unblock", testUserBlock},
		{"race create with one phone", testUserRaceCreate},
	}
}

func testUserCreateLoad(t *testing.T, e *env) {
	u := &storage.User{
		Phone: ptr("+79105940899"), Email: ptr("ivan@example.ru"), PhoneVerified: true,
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA",
		FamilyName:   "Петров", GivenName: "Иван", MiddleName: "Сергеевич",
	}
	must(t, e.s.CreateUser(e.ctx, u))
	if u.ID == "" {
		t.Fatal("CreateUser left the id empty; want a new one")
	}
	loads := []struct {
		name string
		load func() (*storage.User, error)
	}{
		{"by id", func() (*storage.User, error) { return e.s.UserByID(e.ctx, u.ID) }},
		{"by phone", func() (*storage.User, error) { return e.s.UserByPhone(e.ctx, "+79105940899") }},
		{"by email", func() (*storage.User, error) { return e.s.UserByEmail(e.ctx, "ivan@example.ru") }},
	}
	for _, l := range loads {
		t.Run(l.name, func(t *testing.T) {
			got, err := l.load()
			must(t, err)
			if got.ID != u.ID || *got.Phone != *u.Phone || *got.Email != *u.Email ||
				got.PasswordHash != u.PasswordHash || got.FamilyName != "Петров" ||
				got.GivenName != "Иван" || got.MiddleName != "Сергеевич" ||
				!got.PhoneVerified || got.EmailVerified || got.Blocked {
				t.Errorf("loaded %+v; want %+v", got, u)
			}
		})
	}
	emailOnly := &storage.User{Email: ptr("only@example.ru")}
	must(t, e.s.CreateUser(e.ctx, emailOnly))
	got, err := e.s.UserByID(e.ctx, emailOnly.ID)
	must(t, err)
	if got.Phone != nil {
		t.Errorf("account without a phone loaded with phone %q; want nil", *got.Phone)
	}
}

func testUserAbsent(t *testing.T, e *env) {
	e.user(t) // a row that must not match
	calls := []struct {
		name string
		call func() error
	}{
		{"by id", func() error { _, err := e.s.UserByID(e.ctx, "absent"); return err }},
		{"by phone", func() error { _, err := e.s.UserByPhone(e.ctx, "+79990000000"); return err }},
		{"by email", func() error { _, err := e.s.UserByEmail(e.ctx, "absent@example.ru"); return err }},
		{"update", func() error {
			_, err := e.s.UpdateUser(e.ctx, "absent", func(*storage.User) error { return nil })
			return err
		}},
		{"block", func() error { _, err := e.s.SetUserBlocked(e.ctx, "absent", true); return err }},
		{"unblock", func() error { _, err := e.s.SetUserBlocked(e.ctx, "absent", false); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) { wantNotFound(t, c.call(), c.name) })
	}
}

func testUserUnique(t *testing.T, e *env) {
	first := &storage.User{Phone: ptr("+79105940899"), Email: ptr("ivan@example.ru")}
	must(t, e.s.CreateUser(e.ctx, first))
	cases := []struct {
		name     string
		user     storage.User
		conflict bool
	}{
		{"same phone", storage.User{Phone: ptr("+79105940899")}, true},
		{"same email", storage.User{Email: ptr("ivan@example.ru")}, true},
		{"same id", storage.User{ID: first.ID, Phone: ptr("+79105940800")}, true},
		{"other phone", storage.User{Phone: ptr("+79105940801")}, false},
		{"no phone, other email", storage.User{Email: ptr("maria@example.ru")}, false},
		{"no phone, another email", storage.User{Email: ptr("olga@example.ru")}, false},
		{"neither", storage.User{GivenName: "Без контактов"}, false},
		{"neither again", storage.User{GivenName: "Тоже без контактов"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := e.s.CreateUser(e.ctx, &c.user)
			if c.conflict {
				wantConflict(t, err, "CreateUser")
			} else {
				must(t, err)
			}
		})
	}
}

func testUserUpdate(t *testing.T, e *env) {
	u := e.user(t)
	other := e.user(t)

	got, err := e.s.UpdateUser(e.ctx, u.ID, func(u *storage.User) error {
		u.GivenName = "Мария"
		u.Email = ptr("maria@example.ru")
		u.EmailVerified = true
		return nil
	})
	must(t, err)
	if got.GivenName != "Мария" || got.ID != u.ID {
		t.Errorf("UpdateUser returned %+v; want the edited account", got)
	}
	reload, err := e.s.UserByEmail(e.ctx, "maria@example.ru")
	must(t, err)
	if reload.ID != u.ID || reload.GivenName != "Мария" || !reload.EmailVerified || *reload.Phone != *u.Phone {
		t.Errorf("after update loaded %+v", reload)
	}

	boom := errors.New("boom")
	_, err = e.s.UpdateUser(e.ctx, u.ID, func(u *storage.User) error {
		u.GivenName = "Не сохранится"
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("UpdateUser with a failing edit: got %v; want the edit's error", err)
	}
	_, err = e.s.UpdateUser(e.ctx, u.ID, func(u *storage.User) error {
		u.Phone = other.Phone
		return nil
	})
	wantConflict(t, err, "UpdateUser to another account's phone")
	reload, err = e.s.UserByID(e.ctx, u.ID)
	must(t, err)
	if reload.GivenName != "Мария" || *reload.Phone == *other.Phone {
		t.Errorf("a failed update changed the account: %+v", reload)
	}
}

func testUserList(t *testing.T, e *env) {
	want := map[string]bool{}
	for range 5 {
		want[e.user(t).ID] = true
	}
	seen := map[string]bool{}
	for _, page := range []struct{ offset, limit, n int }{{0, 2, 2}, {2, 2, 2}, {4, 2, 1}, {6, 2, 0}} {
		users, err := e.s.ListUsers(e.ctx, page.offset, page.limit)
		must(t, err)
		if len(users) != page.n {
			t.Errorf("ListUsers(%d, %d) returned %d accounts; want %d", page.offset, page.limit, len(users), page.n)
		}
		for _, u := range users {
			if seen[u.ID] || !want[u.ID] {
				t.Errorf("ListUsers(%d, %d) returned %s again or unexpectedly", page.offset, page.limit, u.ID)
			}
			seen[u.ID] = true
		}
	}
	if len(seen) != len(want) {
		t.Errorf("pages covered %d accounts; want %d", len(seen), len(want))
	}
}

func testUserBlock(t *testing.T, e *env) {
	u := e.user(t)
	for _, blocked := range []bool{true, true, false, false, true} {
		_, err := e.s.SetUserBlocked(e.ctx, u.ID, blocked)
		must(t, err)
		got, err := e.s.UserByID(e.ctx, u.ID)
		must(t, err)
		if got.Blocked != blocked {
			t.Errorf("after SetUserBlocked(%v) the account has Blocked=%v", blocked, got.Blocked)
		}
	}
}

func testUserRaceCreate(t *testing.T, e *env) {
	ids := make([]string, racers)
	errs := race(racers, func(i int) error {
		u := &storage.User{Phone: ptr("+79105940899"), GivenName: "Гонщик"}
		err := e.s.CreateUser(e.ctx, u)
		ids[i] = u.ID
		return err
	})
	winner := oneWinner(t, errs, storage.IsConflict, "a conflict")
	got, err := e.s.UserByPhone(e.ctx, "+79105940899")
	must(t, err)
	if got.ID != ids[winner] {
		t.Errorf("the phone belongs to %s; want the winner %s", got.ID, ids[winner])
	}
	users, err := e.s.ListUsers(e.ctx, 0, 100)
	must(t, err)
	if len(users) != 1 {
		t.Errorf("%d accounts exist; want 1", len(users))
	}
}
