package server

// Browser journeys of the account cabinet (login/account) in headless Chromium: change
// the name; change the email with a code (with JavaScript off); change the password,
// after which the old one is refused and another browser's session is gone; see two
// sessions and end the other one, whose product hears of it on the back channel. And
// every page of the cabinet at 1280 and 375 pixels wide: labels, no sideways scroll,
// screenshots into IDP_TEST_SCREENSHOTS when it is set.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/astral/idp/login/browsertest"
	"github.com/astral/idp/storage"
)

// baSignIn signs the tab in at /login with the harness account's phone and pw and
// checks that it lands in the cabinet.
func baSignIn(t *testing.T, ctx context.Context, e *testEnv, pw string) {
	t.Helper()
	baOpen(t, ctx, e.issuer+"/login")
	baType(t, ctx, "login", "9105940899")
	baType(t, ctx, "password", pw)
	baPress(t, ctx, "Войти")
	if p := readShownPage(t, ctx); p.URL != e.issuer+"/account" {
		t.Fatalf("after signing in the browser is at %s, want the cabinet\n%s", p.URL, p.Text)
	}
}

// baOpen navigates the tab to u and returns what it shows.
func baOpen(t *testing.T, ctx context.Context, u string) shownPage {
	t.Helper()
	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	return readShownPage(t, ctx)
}

// baType types keys into the field with id, key by key.
func baType(t *testing.T, ctx context.Context, id, keys string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID(id), keys)); err != nil {
		t.Fatalf("type into #%s: %v", id, err)
	}
}

// baReplace empties the field with id and types keys.
func baReplace(t *testing.T, ctx context.Context, id, keys string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Clear(chromedp.ID(id)), chromedp.SendKeys(chromedp.ID(id), keys)); err != nil {
		t.Fatalf("replace #%s: %v", id, err)
	}
}

// baPress clicks the first button labelled text inside scope (a CSS selector; "" is
// the page) and waits for the page that answers; it returns its status.
func baPress(t *testing.T, ctx context.Context, text string) int64 {
	t.Helper()
	return baPressIn(t, ctx, "body", text)
}

func baPressIn(t *testing.T, ctx context.Context, scope, text string) int64 {
	t.Helper()
	sel := chromedp.JSPath(fmt.Sprintf(
		`[...document.querySelector(%q).querySelectorAll("button")].find(b => b.textContent.trim() === %q)`, scope, text))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
	if err != nil {
		t.Fatalf("press %q in %s: %v", text, scope, err)
	}
	return resp.Status
}

// baClick clicks an element that does not load a page (a <summary>).
func baClick(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	if _, err := browserLook(ctx, chromedp.Click(chromedp.CSS(css))); err != nil {
		t.Fatalf("click %s: %v", css, err)
	}
}

// baTexts lists the trimmed texts of every element css.
func baTexts(t *testing.T, ctx context.Context, css string) []string {
	t.Helper()
	v, err := browserLook(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
		`[...document.querySelectorAll(%q)].map(el => el.innerText.replace(/\s+/g, " ").trim())`, css)))
	if err != nil {
		t.Fatalf("texts of %s: %v", css, err)
	}
	return v
}

// baWantNotice checks the sentence that reports a change.
func baWantNotice(t *testing.T, ctx context.Context, what, want string) {
	t.Helper()
	if got := pageText(t, ctx, "[role=status]"); got != want {
		t.Errorf("%s: notice %q, want %q", what, got, want)
	}
}

// baSignedIn reports whether the tab's browser still has a session: /account shows
// the cabinet rather than sending it to /login.
func baSignedIn(t *testing.T, ctx context.Context, e *testEnv) bool {
	t.Helper()
	p := baOpen(t, ctx, e.issuer+"/account")
	switch {
	case p.URL == e.issuer+"/account":
		return true
	case strings.HasPrefix(p.URL, e.issuer+"/login"):
		return false
	}
	t.Fatalf("/account led to %s", p.URL)
	return false
}

// baShot saves the tab at 1280 and at 375 pixels wide into IDP_TEST_SCREENSHOTS, when set.
func baShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv(envScreenshots)
	if dir == "" {
		return
	}
	for _, width := range []int64{1280, 375} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 800)); err != nil {
			t.Fatal(err)
		}
		browsertest.Screenshot(t, ctx, filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width)))
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserAccountProfile: the name is changed in the cabinet; a name with digits
// gets a sentence next to its field.
func TestBrowserAccountProfile(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			alice := browsertest.New(t)
			browserScreenshotOnFailure(t, alice, "alice")
			baSignIn(t, alice, e, e.password)
			if got := pageText(t, alice, "h1"); got != "Профиль" {
				t.Errorf("the cabinet opens on %q, want «Профиль»", got)
			}
			if got := pageText(t, alice, ".cabinet-name"); got != "Иванов Иван" {
				t.Errorf("the cabinet names the person %q, want «Иванов Иван»", got)
			}
			if got := pageText(t, alice, `.cabinet-nav a[aria-current="page"]`); got != "Профиль" {
				t.Errorf("the current section in the navigation is %q", got)
			}
			if v := fieldValue(t, alice, "#family_name"); v != "Иванов" {
				t.Errorf("Фамилия shows %q, want the account's «Иванов»", v)
			}

			baReplace(t, alice, "family_name", "Петров2")
			if status := baPress(t, alice, "Сохранить"); status != http.StatusBadRequest {
				t.Errorf("a name with a digit: status %d, want 400", status)
			}
			if got := pageText(t, alice, "#family_name-error"); got != "Используйте буквы, пробел, дефис или апостроф" {
				t.Errorf("a name with a digit: field error %q", got)
			}
			if got := pageAttr(t, alice, "#family_name", "aria-describedby"); got != "family_name-error" {
				t.Errorf("the field with the error is described by %q", got)
			}
			baShot(t, alice, "account-profile-name-error")

			baReplace(t, alice, "family_name", "Петрова-Водкина")
			baReplace(t, alice, "given_name", "Анна")
			baType(t, alice, "middle_name", "Сергеевна")
			baPress(t, alice, "Сохранить")
			baWantNotice(t, alice, "saved name", "Данные сохранены")
			if got := pageText(t, alice, ".cabinet-name"); got != "Петрова-Водкина Анна Сергеевна" {
				t.Errorf("after saving the cabinet names the person %q", got)
			}
			u, err := e.store.UserByID(context.Background(), e.userID)
			if err != nil || u.FamilyName != "Петрова-Водкина" || u.GivenName != "Анна" || u.MiddleName != "Сергеевна" {
				t.Fatalf("the account after saving: %+v, %v", u, err)
			}
			events, _ := e.store.UserEvents(context.Background(), e.userID, 0, 10)
			if len(events) == 0 || events[0].Kind != "profile_changed" {
				t.Errorf("no profile_changed event: %+v", events)
			}
		})
	}
}

// TestBrowserAccountEmail: an email is added with the code sent to it, with
// JavaScript off (the change form is a <details>, which needs none).
func TestBrowserAccountEmail(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			const email = "ivanov@example.ru"
			alice := browsertest.New(t)
			browserScreenshotOnFailure(t, alice, "alice")
			baSignIn(t, alice, e, e.password)
			if _, err := chromedp.Call(alice, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
				t.Fatal(err)
			}
			baOpen(t, alice, e.issuer+"/account")
			rows := baTexts(t, alice, ".contact .row-body")
			if len(rows) != 2 || rows[0] != "Телефон +7 (910) 594-08-99" || rows[1] != "Email Не указан" {
				t.Errorf("contacts %q", rows)
			}
			baClick(t, alice, ".contact:nth-child(2) summary")
			baShot(t, alice, "account-profile-email-form")
			baType(t, alice, "new-email", email)
			baPressIn(t, alice, ".contact:nth-child(2)", "Получить код")
			baShot(t, alice, "account-confirm-email")
			if got := pageText(t, alice, "h1"); got != "Подтвердите email" {
				t.Fatalf("after asking for a code: heading %q, want «Подтвердите email»", got)
			}
			if got := pageText(t, alice, ".lead"); got != "Код подтверждения отправлен на iv***@example.ru" {
				t.Errorf("the code page says %q", got)
			}
			if u, _ := e.store.UserByID(context.Background(), e.userID); u.Email != nil {
				t.Fatalf("the email changed before the code: %v", *u.Email)
			}
			baType(t, alice, "code", e.sent.lastCode(t, email))
			baPress(t, alice, "Подтвердить")
			p := readShownPage(t, alice)
			if p.URL != e.issuer+"/account?done=email" {
				t.Fatalf("after the code the browser is at %s\n%s", p.URL, p.Text)
			}
			baWantNotice(t, alice, "confirmed email", "Email изменен и подтвержден")
			rows = baTexts(t, alice, ".contact")
			if len(rows) != 2 || !strings.HasPrefix(rows[1], "Email "+email+" Подтвержден") {
				t.Errorf("contacts after the change %q", rows)
			}
			u, err := e.store.UserByID(context.Background(), e.userID)
			if err != nil || u.Email == nil || *u.Email != email || !u.EmailVerified {
				t.Fatalf("the account after the change: %+v, %v", u, err)
			}
		})
	}
}

// TestBrowserAccountPassword: after a change of the password the old one is refused,
// the new one works, and another browser's session is gone; this one stays.
func TestBrowserAccountPassword(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			const newPassword = "Ласточка-на-крыше-7"
			alice := browsertest.New(t)
			browserScreenshotOnFailure(t, alice, "alice")
			bob := browsertest.NewContext(t, alice)
			browserScreenshotOnFailure(t, bob, "bob")
			baSignIn(t, bob, e, e.password)
			baSignIn(t, alice, e, e.password)

			baOpen(t, alice, e.issuer+"/account/password")
			baType(t, alice, "current-password", "not my password")
			baType(t, alice, "new-password", newPassword)
			if status := baPress(t, alice, "Изменить пароль"); status != http.StatusUnauthorized {
				t.Errorf("a wrong current password: status %d, want 401", status)
			}
			if got := pageText(t, alice, "#current-password-error"); got != "Неверный пароль" {
				t.Errorf("a wrong current password: field error %q", got)
			}
			baType(t, alice, "current-password", e.password)
			baType(t, alice, "new-password", newPassword)
			baPress(t, alice, "Изменить пароль")
			baWantNotice(t, alice, "changed password", "Пароль изменен. Другие сеансы входа завершены")

			if baSignedIn(t, bob, e) {
				t.Error("the other browser is still signed in after the password change")
			}
			if !baSignedIn(t, alice, e) {
				t.Error("the browser that changed the password was signed out")
			}
			// The old password is refused, the new one lets in.
			baOpen(t, bob, e.issuer+"/login")
			baType(t, bob, "login", "9105940899")
			baType(t, bob, "password", e.password)
			baPress(t, bob, "Войти")
			if got := pageText(t, bob, "[role=alert]"); got != "Неверный номер телефона, email или пароль" {
				t.Errorf("the old password: alert %q", got)
			}
			baSignIn(t, bob, e, newPassword)
		})
	}
}

// TestBrowserAccountSessions: two sessions are listed — this one marked, the other
// with its browser and its product; ending the other one signs it out and its product
// receives a back-channel logout.
func TestBrowserAccountSessions(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			alice := browsertest.New(t)
			browserScreenshotOnFailure(t, alice, "alice")
			bob := browsertest.NewContext(t, alice)
			browserScreenshotOnFailure(t, bob, "bob")

			// Bob signs in to report (its callback is no real server: only the
			// session matters here).
			q, _ := codeAuthQuery("report", reportCB, "openid")
			baOpen(t, bob, e.authURL(q))
			baType(t, bob, "login", "9105940899")
			baType(t, bob, "password", e.password)
			_ = chromedp.Do(bob, chromedp.Click(chromedp.CSS("form button[type=submit]")))
			var bobSession string
			waitUntil(t, "bob's session with report", func() bool {
				list, _ := e.store.UserSessions(context.Background(), e.userID)
				for _, s := range list {
					if ids, _ := e.store.SessionClients(context.Background(), s.ID); len(ids) == 1 && ids[0] == "report" {
						bobSession = s.ID
						return true
					}
				}
				return false
			})

			baSignIn(t, alice, e, e.password)
			baOpen(t, alice, e.issuer+"/account/sessions")
			baShot(t, alice, "account-sessions")
			rows := baTexts(t, alice, ".session")
			if len(rows) != 2 {
				t.Fatalf("%d sessions listed, want 2: %q", len(rows), rows)
			}
			if !strings.Contains(rows[0], "Этот сеанс") || strings.Contains(rows[1], "Этот сеанс") {
				t.Errorf("«Этот сеанс» marks %q", rows)
			}
			for _, want := range []string{"Headless Chrome", "Linux", "IP-адрес 127.0.0.1", "Сервисы Астрал.Отчет"} {
				if !strings.Contains(rows[1], want) {
					t.Errorf("the other session %q does not show %q", rows[1], want)
				}
			}
			if strings.Contains(rows[0], "Завершить") {
				t.Error("this session has an «Завершить» button")
			}
			baPressIn(t, alice, ".session:nth-child(2)", "Завершить")
			baWantNotice(t, alice, "ended session", "Сеанс завершен")
			if rows := baTexts(t, alice, ".session"); len(rows) != 1 {
				t.Errorf("after ending the other one: %d sessions listed", len(rows))
			}

			_, claims := e.verifyJWT(e.logoutToken())
			if claims["sid"] != bobSession || claims["sub"] != e.userID || !audContains(claims["aud"], "report") {
				t.Errorf("back-channel logout claims %v, want sid %s of report", claims, bobSession)
			}
			if baSignedIn(t, bob, e) {
				t.Error("the ended session still opens the cabinet")
			}
			if !baSignedIn(t, alice, e) {
				t.Error("this session ended too")
			}
		})
	}
}

// TestBrowserAccountPages opens every section at 1280 and 375 pixels wide: each has
// its heading, marks itself in the navigation, labels every field, and fits the
// width without scrolling sideways.
func TestBrowserAccountPages(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	ctx := context.Background()
	// Something to show: a linked identity, a product with tokens, a history.
	if err := e.store.LinkIdentity(ctx, &storage.Identity{UserID: e.userID, Connector: "telegram", Subject: "42",
		DisplayName: "@ivanov"}); err != nil {
		t.Fatal(err)
	}
	e.signedInReport()
	for i := range 25 {
		if err := e.store.RecordEvent(ctx, &storage.AuditEvent{UserID: e.userID, Kind: "signin_failed", Method: "pwd",
			ClientID: "signature", IP: fmt.Sprintf("203.0.113.%d", i), Detail: "invalid +7***99",
			CreatedAt: time.Now().Add(-time.Duration(i+1) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	alice := browsertest.New(t)
	browserScreenshotOnFailure(t, alice, "alice")
	baSignIn(t, alice, e, e.password)
	pages := []struct{ path, name, h1 string }{
		{"/account", "account-profile", "Профиль"},
		{"/account/password", "account-password", "Пароль"},
		{"/account/methods", "account-methods", "Способы входа"},
		{"/account/sessions", "account-sessions-one", "Активные сеансы"},
		{"/account/history", "account-history", "История входов"},
		{"/account/history?page=2", "account-history-2", "История входов"},
		{"/account/services", "account-services", "Мои сервисы"},
	}
	for _, pg := range pages {
		baOpen(t, alice, e.issuer+pg.path)
		if got := pageText(t, alice, "h1"); got != pg.h1 {
			t.Errorf("%s: heading %q, want %q", pg.path, got, pg.h1)
		}
		if got := pageText(t, alice, `.cabinet-nav a[aria-current="page"]`); got != pg.h1 {
			t.Errorf("%s: the navigation marks %q", pg.path, got)
		}
		unlabelled, err := browserLook(alice, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
				.filter(el => !el.id || !document.querySelector('label[for="' + el.id + '"]')).map(el => el.name)`))
		if err != nil || len(unlabelled) > 0 {
			t.Errorf("%s: fields without a label: %q (%v)", pg.path, unlabelled, err)
		}
		for _, width := range []int64{1280, 375} {
			if err := chromedp.Do(alice, chromedp.EmulateViewport(width, 800)); err != nil {
				t.Fatal(err)
			}
			over, err := browserLook(alice, chromedp.Evaluate[int64](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
			if err != nil || over > 0 {
				t.Errorf("%s at %d px: %d px wider than the window (%v)", pg.path, width, over, err)
			}
		}
		if err := chromedp.Do(alice, chromedp.EmulateViewport(1280, 900)); err != nil {
			t.Fatal(err)
		}
		baShot(t, alice, pg.name)
	}

	// A sensitive change after an old sign-in: the password first, then the change.
	e.shiftClock(11 * time.Minute)
	baOpen(t, alice, e.issuer+"/account/methods")
	baPressIn(t, alice, ".rows", "Отвязать")
	if got := pageText(t, alice, "h1"); got != "Подтвердите, что это Вы" {
		t.Fatalf("unlink after 11 minutes: heading %q, want the re-authentication page", got)
	}
	baShot(t, alice, "account-reauth")
	baType(t, alice, "password", e.password)
	baPress(t, alice, "Продолжить")
	if p := readShownPage(t, alice); p.URL != e.issuer+"/account/methods?done=unlinked" {
		t.Fatalf("after the password the browser is at %s\n%s", p.URL, p.Text)
	}
	baWantNotice(t, alice, "unlinked", "Способ входа отвязан")
	baShot(t, alice, "account-methods-unlinked")
}
