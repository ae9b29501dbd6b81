package password

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/storage"
)

var fast = Params{Memory: 1024, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	h := NewHasher(fast)
	enc, err := h.Hash("пароль-123")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("encoding %q", enc)
	}
	enc2, _ := h.Hash("пароль-123")
	if enc == enc2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	tests := []struct {
		name, pw, enc string
		ok            bool
		err           error
	}{
		{"right", "пароль-123", enc, true, nil},
		{"wrong", "пароль-124", enc, false, nil},
		{"empty", "", enc, false, nil},
		{"garbage hash", "x", "$bcrypt$…", false, ErrMalformedHash},
		{"bad params", "x", "$argon2id$v=19$m=x$AAAA$AAAA", false, ErrMalformedHash},
		{"bad version", "x", "$argon2id$v=16$m=1024,t=1,p=1$AAAA$AAAA", false, ErrMalformedHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(tt.pw, tt.enc)
			if ok != tt.ok || err != tt.err {
				t.Fatalf("Verify = %v, %v; want %v, %v", ok, err, tt.ok, tt.err)
			}
		})
	}
}

func TestDefaultParamsAreOWASP(t *testing.T) {
	if DefaultParams.Memory != 19*1024 || DefaultParams.Time != 2 || DefaultParams.Threads != 1 {
		t.Fatalf("DefaultParams = %+v", DefaultParams)
	}
}

func newAuth(t *testing.T, limits Limits) (*Authenticator, *storage.Store, *Hasher) {
	t.Helper()
	s, err := storage.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "pw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	h := NewHasher(fast)
	return NewAuthenticator(s, s, h, limits), s, h
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	a, s, h := newAuth(t, DefaultLimits)
	phone, email := "+79105940899", "mashin@astral.ru"
	hash, _ := h.Hash("верный пароль")
	if err := s.CreateUser(ctx, &storage.User{Phone: &phone, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	blockedEmail := "blocked@astral.ru"
	blocked := &storage.User{Email: &blockedEmail, PasswordHash: hash}
	if err := s.CreateUser(ctx, blocked); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetUserBlocked(ctx, blocked.ID, true); err != nil {
		t.Fatal(err)
	}
	noPassword := "nopw@astral.ru"
	if err := s.CreateUser(ctx, &storage.User{Email: &noPassword}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		who  contact.Contact
		pw   string
		err  error
	}{
		{"right", contact.Contact{Kind: contact.Phone, Value: phone}, "верный пароль", nil},
		{"wrong password", contact.Contact{Kind: contact.Phone, Value: phone}, "неверный", ErrInvalidCredentials},
		{"unknown account", contact.Contact{Kind: contact.Email, Value: email}, "верный пароль", ErrInvalidCredentials},
		{"account without password", contact.Contact{Kind: contact.Email, Value: noPassword}, "x", ErrInvalidCredentials},
		{"blocked, right password", contact.Contact{Kind: contact.Email, Value: blockedEmail}, "верный пароль", ErrBlocked},
		{"blocked, wrong password", contact.Contact{Kind: contact.Email, Value: blockedEmail}, "x", ErrInvalidCredentials},
		{"too long", contact.Contact{Kind: contact.Phone, Value: phone}, strings.Repeat("x", MaxLength+1), ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := a.Authenticate(ctx, tt.who, tt.pw, "10.0.0.1")
			if err != tt.err {
				t.Fatalf("Authenticate = %v, want %v", err, tt.err)
			}
			if err == nil && (u == nil || *u.Phone != phone) {
				t.Fatalf("user %+v", u)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	a, s, h := newAuth(t, Limits{Window: time.Minute, FailuresPerID: 3, AttemptsPerIP: 5})
	// A fixed clock early in a window: a window boundary mid-test would reset counts.
	base := time.Date(2026, 11, 22, 12, 0, 5, 0, time.UTC)
	s.SetClock(func() time.Time { return base })
	phone := "+79105940899"
	hash, _ := h.Hash("верный пароль")
	if err := s.CreateUser(ctx, &storage.User{Phone: &phone, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	who := contact.Contact{Kind: contact.Phone, Value: phone}
	for i := 0; i < 3; i++ {
		if _, err := a.Authenticate(ctx, who, "wrong", "10.0.0.1"); err != ErrInvalidCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// The account is locked for this window even with the right password, from any IP.
	if _, err := a.Authenticate(ctx, who, "верный пароль", "10.0.0.2"); err != ErrTooManyAttempts {
		t.Fatalf("after 3 failures: %v", err)
	}
	// A new window starts fresh.
	s.SetClock(func() time.Time { return base.Add(2 * time.Minute) })
	if _, err := a.Authenticate(ctx, who, "верный пароль", "10.0.0.2"); err != nil {
		t.Fatalf("next window: %v", err)
	}
	// Per-IP limit: the sixth attempt from one address is refused whatever it tries.
	s.SetClock(func() time.Time { return base.Add(4 * time.Minute) })
	other := contact.Contact{Kind: contact.Email, Value: "x@astral.ru"}
	for i := 0; i < 5; i++ {
		_, _ = a.Authenticate(ctx, other, "x", "10.0.0.9")
	}
	if _, err := a.Authenticate(ctx, who, "верный пароль", "10.0.0.9"); err != ErrTooManyAttempts {
		t.Fatalf("IP limit: %v", err)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name, pw string
		logins   []string
		want     error
	}{
		{"good", "Ласточка-на-крыше-7", nil, nil},
		{"empty", "", nil, ErrEmptyNew},
		{"short", "abc1234", nil, ErrTooShort},
		{"short cyrillic counts runes", "пароль1", nil, ErrTooShort},
		{"long", strings.Repeat("x", MaxLength+1), nil, ErrTooLong},
		{"common", "password", nil, ErrTooCommon},
		{"common any case", "PassWord", nil, ErrTooCommon},
		{"common digits", "12345678", nil, ErrTooCommon},
		{"common russian", "йцукенгш", nil, ErrTooCommon},
		{"phone e164", "+79105940899", []string{"+79105940899"}, ErrSameAsLogin},
		{"phone with 8", "89105940899", []string{"+79105940899"}, ErrSameAsLogin},
		{"phone national", "9105940899", []string{"+79105940899"}, ErrSameAsLogin},
		{"email", "Mashin@Astral.ru", []string{"mashin@astral.ru"}, ErrSameAsLogin},
		{"email local part", "mashin.vasily", []string{"mashin.vasily@astral.ru"}, ErrSameAsLogin},
		{"contains phone but more", "моя-9105940899-x", []string{"+79105940899"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Check(tt.pw, tt.logins...); got != tt.want {
				t.Fatalf("Check(%q) = %v, want %v", tt.pw, got, tt.want)
			}
		})
	}
	if len(common) < 19000 { // 20,000 lines, fewer once lower-cased
		t.Fatalf("common list has %d passwords", len(common))
	}
}
