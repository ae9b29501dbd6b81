package server

// Handler and limit tests of the four code flows: registration by phone and by email
// (/register), sign-in by a one-time code (/login/code), password reset (/reset and
// /reset/password). Every error path a person can reach, the limits of DESIGN.md
// "Security defaults" (10 minutes, 5 tries, 60 s between codes, 5 codes an hour per
// phone/email, 30 an hour per IP), and what a reset ends. Each test runs on SQLite and
// PostgreSQL (skipped unless IDP_TEST_POSTGRES_URL is set).

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/astral/idp/storage"
)

// The Russian sentences the pages must show, word for word.
const (
	codesMsgBadPhone   = "Введите номер мобильного телефона в формате +7 (900) 000-00-00"
	codesMsgBadEmail   = "Введите email в формате name@example.ru"
	codesMsgEmpty      = "Введите номер телефона или email"
	codesMsgPwEmpty    = "Придумайте пароль"
	codesMsgPwShort    = "Пароль должен быть не короче 8 символов"
	codesMsgPwLong     = "Пароль должен быть не длиннее 256 символов"
	codesMsgPwLogin    = "Пароль не должен совпадать с номером телефона или email"
	codesMsgPwCommon   = "Этот пароль слишком распространен. Придумайте другой"
	codesMsgTooMany    = "Слишком много кодов за час. Попробуйте позже"
	codesMsgDead       = "Код больше не действует: слишком много неверных попыток. Запросите новый код"
	codesMsgEmptyCode  = "Введите код подтверждения"
	codesMsgNotSent    = "Не удалось отправить код. Попробуйте еще раз через минуту"
	codesMsgWrongPw    = "Неверный номер телефона, email или пароль"
	codesMsgGone       = "Срок действия кода истек или он уже использован. Начните заново."
	codesMsgCSRF       = "Форма устарела или открыта с другого сайта. Обновите страницу и попробуйте снова."
	codesMsgStale      = "Вернитесь в приложение и начните вход заново."
	codesMsgNewCode    = "Новый код отправлен"
	codesMsgBlocked    = "Учетная запись заблокирована"
	codesConsentLine   = "Нажимая кнопку «Создать аккаунт», Вы соглашаетесь с условиями «Лицензионного соглашения» и даете согласие на обработку персональных данных"
	codesNewPassword   = "Ласточка-на-крыше-7"
	codesOtherPassword = "Синий-трамвай-на-углу-3"
)

// codesWrongCodeMsg is the answer to a mistyped code with left tries to go.
func codesWrongCodeMsg(left int) string {
	return fmt.Sprintf("Неверный код. Осталось попыток: %d", left)
}

var codesTooSoonRe = regexp.MustCompile(`^Новый код можно запросить через (\d+) с$`)

// codesWithinAMinute reports whether msg is the too-soon sentence with 1…60 seconds.
func codesWithinAMinute(msg string) bool {
	m := codesTooSoonRe.FindStringSubmatch(msg)
	if m == nil {
		return false
	}
	n, err := strconv.Atoi(m[1])
	return err == nil && n >= 1 && n <= 60
}

// codesPage is one answer of the server as sent: redirects are not followed.
type codesPage struct {
	status int
	loc    string
	body   string
}

// codesBrowser is one person's browser in the handler tests: its own cookies and the
// CSRF token of its pages. It never follows a redirect, so each answer is checked as
// the server sent it.
type codesBrowser struct {
	e    *testEnv
	c    *http.Client
	csrf string
}

func (e *testEnv) codesBrowser(t *testing.T) *codesBrowser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &codesBrowser{e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	p := b.get(t, "/register")
	m := csrfRe.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		t.Fatalf("GET /register: %d, no CSRF token: %.300s", p.status, p.body)
	}
	b.csrf = m[1]
	return b
}

func (b *codesBrowser) abs(path string) string {
	if strings.HasPrefix(path, "http") {
		return path
	}
	return b.e.issuer + path
}

// do sends one request; it is safe on any goroutine.
func (b *codesBrowser) do(method, path string, form url.Values, header http.Header) (codesPage, error) {
	req, err := http.NewRequest(method, b.abs(path), strings.NewReader(form.Encode()))
	if err != nil {
		return codesPage{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		return codesPage{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return codesPage{}, err
	}
	return codesPage{status: resp.StatusCode, loc: resp.Header.Get("Location"), body: string(body)}, nil
}

func (b *codesBrowser) get(t *testing.T, path string) codesPage {
	t.Helper()
	p, err := b.do(http.MethodGet, path, nil, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return p
}

// post submits form to path with the browser's CSRF token.
func (b *codesBrowser) post(t *testing.T, path string, form url.Values) codesPage {
	t.Helper()
	p, err := b.postErr(path, form)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return p
}

func (b *codesBrowser) postErr(path string, form url.Values) (codesPage, error) {
	f := url.Values{"_csrf": {b.csrf}}
	for k, v := range form {
		f[k] = v
	}
	return b.do(http.MethodPost, path, f, nil)
}

// startFlow submits a contact form (base /register, /login/code or /reset) and returns
// the flow id of the confirmation page it leads to.
func (b *codesBrowser) startFlow(t *testing.T, base string, form url.Values) string {
	t.Helper()
	p := b.post(t, base, form)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.loc, strings.SplitN(base, "?", 2)[0]+"/confirm?flow=") {
		t.Fatalf("POST %s %v: %d → %q, want 303 to the confirmation page\n%.600s", base, form, p.status, p.loc, codesText(p.body))
	}
	u, _ := url.Parse(p.loc)
	return u.Query().Get("flow")
}

func (b *codesBrowser) register(t *testing.T, mode, login, pw string) string {
	t.Helper()
	return b.startFlow(t, "/register", url.Values{"mode": {mode}, "login": {login}, "password": {pw}})
}

func (b *codesBrowser) confirm(t *testing.T, base, flow, code string) codesPage {
	t.Helper()
	return b.post(t, base+"/confirm", url.Values{"flow": {flow}, "code": {code}})
}

// grant runs a reset for phone up to the new-password form and returns its grant.
func (b *codesBrowser) grant(t *testing.T, phone, login string) string {
	t.Helper()
	flow := b.startFlow(t, "/reset", url.Values{"mode": {"phone"}, "login": {login}})
	p := b.confirm(t, "/reset", flow, b.e.sent.lastCode(t, phone))
	if p.status != http.StatusOK || codesHeading(p.body) != "Новый пароль" {
		t.Fatalf("reset code: %d %q, want the new-password form", p.status, codesHeading(p.body))
	}
	return codesFind(t, `name="grant" value="([^"]*)"`, p.body)
}

// signedIn reports whether the browser has a session (/account answers instead of
// sending it to /login).
func (b *codesBrowser) signedIn(t *testing.T) bool {
	t.Helper()
	p := b.get(t, "/account")
	switch {
	case p.status == http.StatusOK:
		return true
	case p.status == http.StatusFound && strings.HasPrefix(p.loc, "/login"):
		return false
	}
	t.Fatalf("GET /account: %d %q", p.status, p.loc)
	return false
}

// passwordWorks signs in with login and pw in a fresh browser.
func (e *testEnv) codesPasswordWorks(t *testing.T, login, pw string) bool {
	t.Helper()
	b := e.codesBrowser(t)
	p := b.post(t, "/login", url.Values{"mode": {"phone"}, "login": {login}, "password": {pw}})
	switch {
	case p.status == http.StatusSeeOther && p.loc == "/account":
		return true
	case p.status == http.StatusUnauthorized && codesAlert(p.body) == codesMsgWrongPw:
		return false
	}
	t.Fatalf("sign in as %s: %d %q %q", login, p.status, p.loc, codesText(p.body))
	return false
}

// The parts of a page the tests read.
var (
	codesH1Re       = regexp.MustCompile(`(?s)<h1 class="card-title">(.*?)</h1>`)
	codesAlertRe    = regexp.MustCompile(`(?s)<div class="alert alert-error" role="alert">(.*?)</div>`)
	codesNoticeRe   = regexp.MustCompile(`(?s)<div class="alert alert-info" role="status">(.*?)</div>`)
	codesLeadRe     = regexp.MustCompile(`(?s)<p class="lead">(.*?)</p>`)
	codesTagRe      = regexp.MustCompile(`<[^>]*>`)
	codesSpaceRe    = regexp.MustCompile(`\s+`)
	codesBodyRe     = regexp.MustCompile(`(?s)<main[^>]*>(.*)</main>`)
	codesFlowIDRe   = regexp.MustCompile(`[0-9a-f]{32}`)
	codesCSRFRe     = regexp.MustCompile(`name="_csrf" value="[^"]*"`)
	codesMaskedRe   = regexp.MustCompile(`\+7 \(\d{3}\) \*\*\*-\*\*-\d{2}`)
	codesSecondsRe  = regexp.MustCompile(`(data-countdown="|через )\d+`)
	codesLinkRe     = regexp.MustCompile(`<a class="btn [^"]*" href="([^"]*)">([^<]*)</a>`)
	codesFieldValRe = regexp.MustCompile(`id="login" name="login"[^>]* value="([^"]*)"`)
)

func codesText(s string) string {
	return strings.TrimSpace(codesSpaceRe.ReplaceAllString(html.UnescapeString(codesTagRe.ReplaceAllString(s, " ")), " "))
}

func codesFirst(re *regexp.Regexp, body string) string {
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return codesText(m[1])
}

func codesHeading(body string) string { return codesFirst(codesH1Re, body) }
func codesAlert(body string) string   { return codesFirst(codesAlertRe, body) }
func codesNotice(body string) string  { return codesFirst(codesNoticeRe, body) }
func codesLead(body string) string    { return codesFirst(codesLeadRe, body) }

// codesFieldError is the sentence under field id ("login", "password", "code").
func codesFieldError(body, id string) string {
	return codesFirst(regexp.MustCompile(`(?s)<p class="field-error" id="`+id+`-error">(.*?)</p>`), body)
}

func codesFind(t *testing.T, pattern, s string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%s not found in: %.800s", pattern, codesText(s))
	}
	return html.UnescapeString(m[1])
}

// codesLinks are the buttons of a notice page: text → href.
func codesLinks(body string) map[string]string {
	out := map[string]string{}
	for _, m := range codesLinkRe.FindAllStringSubmatch(body, -1) {
		out[html.UnescapeString(m[2])] = html.UnescapeString(m[1])
	}
	return out
}

// wantGone checks the "Код устарел" page.
func codesWantGone(t *testing.T, what string, p codesPage, restart string) {
	t.Helper()
	if p.status != http.StatusGone || codesHeading(p.body) != "Код устарел" || codesLead(p.body) != codesMsgGone {
		t.Errorf("%s: %d %q %q, want 410 «Код устарел»", what, p.status, codesHeading(p.body), codesLead(p.body))
		return
	}
	if got := codesLinks(p.body)["Начать заново"]; got != restart {
		t.Errorf("%s: «Начать заново» goes to %q, want %q", what, got, restart)
	}
}

// codesClock pins the store's clock (it still ticks) to instants of a fresh hour
// window, so that hourly counters start at zero and no window boundary falls inside
// a test by chance.
type codesClock struct {
	e    *testEnv
	base time.Time // the start of an hour no request has counted in yet
}

func (e *testEnv) codesClock(t *testing.T) *codesClock {
	t.Cleanup(func() { e.store.SetClock(time.Now) })
	return &codesClock{e: e, base: time.Now().UTC().Truncate(time.Hour).Add(time.Hour)}
}

// at sets the clock to base+d, ticking from now on.
func (c *codesClock) at(d time.Duration) {
	t0, start := c.base.Add(d), time.Now()
	c.e.store.SetClock(func() time.Time { return t0.Add(time.Since(start)) })
}

// codesShift moves the clock d ahead of the real time until the returned func restores it.
func (e *testEnv) codesShift(d time.Duration) (restore func()) {
	e.store.SetClock(func() time.Time { return time.Now().Add(d) })
	return func() { e.store.SetClock(time.Now) }
}

// TestCodesCSRF: every form of the four flows refuses a post without the page's CSRF
// token (absent, wrong, no cookie, or a cross-site post) with the Russian 403 page, and
// nothing is sent or created.
func TestCodesCSRF(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			// A real flow and grant, so that the forms would work with the token.
			b := e.codesBrowser(t)
			regFlow := b.register(t, "phone", "+7 903 555-20-01", codesNewPassword)
			codeFlow := b.startFlow(t, "/login/code", url.Values{"mode": {"phone"}, "login": {e.phone}})
			grant := b.grant(t, e.phone, e.phone)
			sentBefore := len(e.sent.entries(t))
			posts := []struct {
				path string
				form url.Values
			}{
				{"/register", url.Values{"mode": {"phone"}, "login": {"+7 903 555-20-02"}, "password": {codesNewPassword}}},
				{"/register/confirm", url.Values{"flow": {regFlow}, "code": {e.sent.lastCode(t, "+79035552001")}}},
				{"/register/resend", url.Values{"flow": {regFlow}}},
				{"/login/code", url.Values{"mode": {"phone"}, "login": {e.phone}}},
				{"/login/code/confirm", url.Values{"flow": {codeFlow}, "code": {"000000"}}},
				{"/login/code/resend", url.Values{"flow": {codeFlow}}},
				{"/reset", url.Values{"mode": {"phone"}, "login": {e.phone}}},
				{"/reset/confirm", url.Values{"flow": {codeFlow}, "code": {"000000"}}},
				{"/reset/resend", url.Values{"flow": {codeFlow}}},
				{"/reset/password", url.Values{"grant": {grant}, "password": {codesOtherPassword}}},
			}
			fresh := e.codesBrowser(t)
			fresh.c.Jar, _ = cookiejar.New(nil) // no CSRF cookie at all
			for _, p := range posts {
				cases := []struct {
					name   string
					b      *codesBrowser
					token  []string
					header http.Header
				}{
					{"no token", b, nil, nil},
					{"wrong token", b, []string{"x" + b.csrf[1:]}, nil},
					{"empty token", b, []string{""}, nil},
					{"no cookie", fresh, []string{b.csrf}, nil},
					{"cross-site", b, nil, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}},
					{"same-site", b, nil, http.Header{"Sec-Fetch-Site": {"same-site"}}},
				}
				for _, c := range cases {
					form := url.Values{}
					for k, v := range p.form {
						form[k] = v
					}
					if c.token != nil {
						form["_csrf"] = c.token
					}
					got, err := c.b.do(http.MethodPost, p.path, form, c.header)
					if err != nil {
						t.Fatal(err)
					}
					if got.status != http.StatusForbidden || codesHeading(got.body) != "Страница устарела" || codesLead(got.body) != codesMsgCSRF {
						t.Errorf("POST %s, %s: %d %q, want 403 «Страница устарела»", p.path, c.name, got.status, codesText(got.body))
					}
				}
			}
			if n := len(e.sent.entries(t)); n != sentBefore {
				t.Errorf("posts without a CSRF token sent %d messages", n-sentBefore)
			}
			if _, err := e.store.UserByPhone(context.Background(), "+79035552001"); !storage.IsNotFound(err) {
				t.Errorf("a registration was confirmed without a CSRF token: %v", err)
			}
			if !e.codesPasswordWorks(t, e.phone, e.password) {
				t.Error("a reset without a CSRF token changed the password")
			}
			// The same forms with the token work (the refusals above were for the token).
			if p := b.confirm(t, "/register", regFlow, e.sent.lastCode(t, "+79035552001")); p.status != http.StatusOK || codesHeading(p.body) != "Телефон подтвержден!" {
				t.Errorf("confirm with the token: %d %q", p.status, codesHeading(p.body))
			}
		})
	}
}

// TestCodesFormErrors: a bad phone or email on each of the three contact forms, and a
// weak, common, too long or same-as-login password on registration and on the new
// password form, get 400 with the exact Russian sentence under the field, the typed
// login kept, the password never echoed, and nothing sent.
func TestCodesFormErrors(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			b := e.codesBrowser(t)
			before := len(e.sent.entries(t))
			contacts := []struct {
				mode, login, want string
			}{
				{"phone", "12345", codesMsgBadPhone},
				{"phone", "+7 (910) 594", codesMsgBadPhone},
				{"phone", "+1 202 555 0100", codesMsgBadPhone},
				{"phone", "+7 495 123-45-67", codesMsgBadPhone}, // a landline gets no SMS
				{"phone", "9105940899x", codesMsgBadPhone},
				{"phone", "", codesMsgEmpty},
				{"phone", "   ", codesMsgEmpty},
				{"email", "ivan@", codesMsgBadEmail},
				{"email", "ivan example.ru", codesMsgBadEmail},
				{"email", "ivan@localhost", codesMsgBadEmail},
				{"email", "Иван <ivan@example.ru>", codesMsgBadEmail},
				{"email", "", codesMsgEmpty},
				{"", strings.Repeat("9", 400), codesMsgBadPhone}, // no mode: phone
			}
			for _, base := range []string{"/register", "/login/code", "/reset"} {
				for _, c := range contacts {
					form := url.Values{"mode": {c.mode}, "login": {c.login}, "password": {codesNewPassword}}
					p := b.post(t, base, form)
					if p.status != http.StatusBadRequest || codesFieldError(p.body, "login") != c.want {
						t.Errorf("POST %s %s %q: %d, field error %q, want 400 %q", base, c.mode, c.login, p.status, codesFieldError(p.body, "login"), c.want)
						continue
					}
					if !strings.Contains(p.body, `aria-invalid="true" aria-describedby="login-error"`) {
						t.Errorf("POST %s %q: the field is not marked invalid", base, c.login)
					}
					if kept := codesFirst(codesFieldValRe, p.body); len(c.login) < 320 && kept != strings.TrimSpace(c.login) && kept != c.login {
						t.Errorf("POST %s %q: the field shows %q, want what was typed", base, c.login, kept)
					}
					if strings.Contains(p.body, codesNewPassword) {
						t.Errorf("POST %s: the password came back in the page", base)
					}
				}
			}

			passwords := []struct {
				name, mode, login, pw, want string
			}{
				{"empty", "phone", "+7 903 555-21-01", "", codesMsgPwEmpty},
				{"short", "phone", "+7 903 555-21-01", "Ab3$xyz", codesMsgPwShort},
				{"short (runes)", "phone", "+7 903 555-21-01", "Пароль7", codesMsgPwShort},
				{"long", "phone", "+7 903 555-21-01", strings.Repeat("Длинный-", 40), codesMsgPwLong},
				{"common", "phone", "+7 903 555-21-01", "password1", codesMsgPwCommon},
				{"common", "phone", "+7 903 555-21-01", "qwerty123", codesMsgPwCommon},
				{"common, capitalised", "phone", "+7 903 555-21-01", "Password1", codesMsgPwCommon},
				{"the phone", "phone", "+7 903 555-21-01", "89035552101", codesMsgPwLogin},
				{"the phone, E.164", "phone", "8 (903) 555-21-01", "+79035552101", codesMsgPwLogin},
				{"the phone, national", "phone", "+79035552101", "9035552101", codesMsgPwLogin},
				{"the email", "email", "Ivan.Petrov@example.ru", "ivan.petrov@example.ru", codesMsgPwLogin},
				{"the email's name", "email", "ivan.petrov@example.ru", "Ivan.Petrov", codesMsgPwLogin},
			}
			for _, c := range passwords {
				p := b.post(t, "/register", url.Values{"mode": {c.mode}, "login": {c.login}, "password": {c.pw}})
				if p.status != http.StatusBadRequest || codesFieldError(p.body, "password") != c.want {
					t.Errorf("register, password %s: %d, field error %q, want 400 %q", c.name, p.status, codesFieldError(p.body, "password"), c.want)
				}
				if codesFieldError(p.body, "login") != "" {
					t.Errorf("register, password %s: a login error %q for a good login", c.name, codesFieldError(p.body, "login"))
				}
				if kept := codesFirst(codesFieldValRe, p.body); kept != c.login {
					t.Errorf("register, password %s: the login field shows %q, want %q kept", c.name, kept, c.login)
				}
				if c.pw != "" && strings.Contains(p.body, html.EscapeString(c.pw)) && !strings.Contains(c.login, c.pw) {
					t.Errorf("register, password %s: the password came back in the page", c.name)
				}
			}
			// Both fields wrong: both sentences at once.
			p := b.post(t, "/register", url.Values{"mode": {"phone"}, "login": {"123"}, "password": {"qwerty123"}})
			if p.status != http.StatusBadRequest || codesFieldError(p.body, "login") != codesMsgBadPhone || codesFieldError(p.body, "password") != codesMsgPwCommon {
				t.Errorf("register, both wrong: %d %q / %q", p.status, codesFieldError(p.body, "login"), codesFieldError(p.body, "password"))
			}
			if n := len(e.sent.entries(t)); n != before {
				t.Errorf("rejected forms sent %d messages", n-before)
			}
			if _, err := e.store.UserByPhone(context.Background(), "+79035552101"); !storage.IsNotFound(err) {
				t.Errorf("a rejected registration created an account: %v", err)
			}

			// The new password of a reset follows the same rules; a refusal keeps the grant.
			grant := b.grant(t, e.phone, "8 910 594-08-99")
			for _, c := range []struct{ name, pw, want string }{
				{"empty", "", codesMsgPwEmpty},
				{"short", "Ab3$xyz", codesMsgPwShort},
				{"common", "password1", codesMsgPwCommon},
				{"common", "qwerty123", codesMsgPwCommon},
				{"the phone", "9105940899", codesMsgPwLogin},
				{"the phone, with 8", "89105940899", codesMsgPwLogin},
			} {
				p := b.post(t, "/reset/password", url.Values{"grant": {grant}, "password": {c.pw}})
				if p.status != http.StatusBadRequest || codesFieldError(p.body, "password") != c.want || codesHeading(p.body) != "Новый пароль" {
					t.Errorf("new password %s: %d %q, field error %q, want 400 %q", c.name, p.status, codesHeading(p.body), codesFieldError(p.body, "password"), c.want)
				}
				if got := codesFind(t, `name="grant" value="([^"]*)"`, p.body); got != grant {
					t.Errorf("new password %s: the form lost its grant", c.name)
				}
			}
			if !e.codesPasswordWorks(t, e.phone, e.password) {
				t.Fatal("a refused new password changed the password")
			}
			if p := b.post(t, "/reset/password", url.Values{"grant": {grant}, "password": {codesNewPassword}}); p.status != http.StatusOK || codesHeading(p.body) != "Пароль изменен" {
				t.Fatalf("a good new password after refusals: %d %q", p.status, codesHeading(p.body))
			}
			if !e.codesPasswordWorks(t, e.phone, codesNewPassword) {
				t.Error("the new password does not sign in")
			}
		})
	}
}

// TestCodesFlowGone: an unknown, malformed, expired (11 minutes) or used flow, a flow
// of another purpose and an unknown or spent reset grant all get the "Код устарел"
// page (410) with a link to start again, and nothing is sent.
func TestCodesFlowGone(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			b := e.codesBrowser(t)
			const newPhone = "+79035552201"
			flows := map[string]string{
				"/register":   b.register(t, "phone", newPhone, codesNewPassword),
				"/login/code": b.startFlow(t, "/login/code", url.Values{"mode": {"phone"}, "login": {e.phone}}),
			}
			codes := map[string]string{"/register": e.sent.lastCode(t, newPhone), "/login/code": e.sent.lastCode(t, e.phone)}
			grant := b.grant(t, e.phone, e.phone) // consumes a /reset flow; a fresh one below
			flows["/reset"] = b.startFlow(t, "/reset", url.Values{"mode": {"email"}, "login": {"nobody@example.ru"}})
			sent := len(e.sent.entries(t))

			bases := []string{"/register", "/login/code", "/reset"}
			for _, base := range bases {
				for _, id := range []string{"", "0123456789abcdef0123456789abcdef", strings.Repeat("a", 65), "../../etc", "'; drop table users; --"} {
					codesWantGone(t, "GET "+base+"/confirm?flow="+id, b.get(t, base+"/confirm?flow="+url.QueryEscape(id)), base)
					codesWantGone(t, "POST "+base+"/confirm flow="+id, b.confirm(t, base, id, "123456"), base)
					codesWantGone(t, "POST "+base+"/resend flow="+id, b.post(t, base+"/resend", url.Values{"flow": {id}}), base)
				}
				// A flow of another purpose is unknown here, and is not spent by trying.
				for _, other := range bases {
					if other == base {
						continue
					}
					codesWantGone(t, "GET "+base+"/confirm with a "+other+" flow", b.get(t, base+"/confirm?flow="+flows[other]), base)
					codesWantGone(t, "POST "+base+"/confirm with a "+other+" flow", b.confirm(t, base, flows[other], codes[other]), base)
					codesWantGone(t, "POST "+base+"/resend with a "+other+" flow", b.post(t, base+"/resend", url.Values{"flow": {flows[other]}}), base)
				}
				// The reset grant is no code flow: no confirming, no resending it.
				codesWantGone(t, "GET "+base+"/confirm with a reset grant", b.get(t, base+"/confirm?flow="+grant), base)
				codesWantGone(t, "POST "+base+"/confirm with a reset grant", b.confirm(t, base, grant, "123456"), base)
				codesWantGone(t, "POST "+base+"/resend with a reset grant", b.post(t, base+"/resend", url.Values{"flow": {grant}}), base)
			}
			for _, g := range []string{"", "0123456789abcdef0123456789abcdef", strings.Repeat("b", 65), flows["/login/code"]} {
				codesWantGone(t, "POST /reset/password grant="+g, b.post(t, "/reset/password", url.Values{"grant": {g}, "password": {codesOtherPassword}}), "/reset")
			}
			if n := len(e.sent.entries(t)); n != sent {
				t.Errorf("gone flows sent %d messages", n-sent)
			}
			if !e.codesPasswordWorks(t, e.phone, e.password) {
				t.Fatal("a code flow id used as a reset grant changed the password")
			}

			// Eleven minutes later every flow and the grant have expired.
			restore := e.codesShift(11 * time.Minute)
			for _, base := range bases {
				codesWantGone(t, "GET "+base+"/confirm, expired", b.get(t, base+"/confirm?flow="+flows[base]), base)
				codesWantGone(t, "POST "+base+"/confirm, expired", b.confirm(t, base, flows[base], codes[base]), base)
				codesWantGone(t, "POST "+base+"/resend, expired", b.post(t, base+"/resend", url.Values{"flow": {flows[base]}}), base)
			}
			codesWantGone(t, "POST /reset/password, expired grant", b.post(t, "/reset/password", url.Values{"grant": {grant}, "password": {codesOtherPassword}}), "/reset")
			if _, err := e.store.UserByPhone(ctx, newPhone); !storage.IsNotFound(err) {
				t.Errorf("an expired registration created an account: %v", err)
			}
			if b.signedIn(t) {
				t.Error("an expired sign-in code signed the browser in")
			}
			restore()
			if n := len(e.sent.entries(t)); n != sent {
				t.Errorf("expired flows sent %d messages", n-sent)
			}

			// Back in time the flows live again: none was spent by the attempts above.
			if p := b.confirm(t, "/register", flows["/register"], codes["/register"]); p.status != http.StatusOK || codesHeading(p.body) != "Телефон подтвержден!" {
				t.Errorf("the registration after the attempts: %d %q", p.status, codesHeading(p.body))
			}
			// A used flow is gone: confirming it again, and its back link, lead nowhere.
			codesWantGone(t, "POST /register/confirm, used", b.confirm(t, "/register", flows["/register"], codes["/register"]), "/register")
			codesWantGone(t, "GET /register/confirm, used", b.get(t, "/register/confirm?flow="+flows["/register"]), "/register")
			if p := b.get(t, "/register?flow="+flows["/register"]); p.status != http.StatusOK || strings.Contains(p.body, "555-22-01") || strings.Contains(p.body, "5552201") {
				t.Errorf("the registration form of a used flow: %d, shows the phone: %v", p.status, strings.Contains(p.body, "5552201"))
			}

			// An authorization request that is gone.
			p := b.get(t, "/register?authRequestID=0123456789abcdef0123456789abcdef")
			if p.status != http.StatusBadRequest || codesHeading(p.body) != "Ссылка для входа устарела" || codesLead(p.body) != codesMsgStale {
				t.Errorf("registration for an unknown authorization request: %d %q", p.status, codesHeading(p.body))
			}
		})
	}
}

// TestCodesWrongCode: an empty code is no try; a malformed, short or wrong code is;
// the fifth wrong try kills the code (the right one then fails too); a resend after
// 60 s brings a new code with five new tries, and the old code is dead.
func TestCodesWrongCode(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			b := e.codesBrowser(t)
			const phone = "+79035552301"
			flow := b.register(t, "phone", "8 903 555-23-01", codesNewPassword)
			code := e.sent.lastCode(t, phone)
			wrong := codesWrong(code)
			steps := []struct{ typed, want string }{
				{"", codesMsgEmptyCode},
				{"   ", codesMsgEmptyCode},
				{"12a456", codesWrongCodeMsg(4)},
				{wrong[:5], codesWrongCodeMsg(3)},
				{wrong, codesWrongCodeMsg(2)},
				{wrong + "1", codesWrongCodeMsg(1)},
				{wrong, codesMsgDead},
				{code, codesMsgDead},
				{wrong, codesMsgDead},
			}
			for i, s := range steps {
				p := b.confirm(t, "/register", flow, s.typed)
				if p.status != http.StatusBadRequest || codesFieldError(p.body, "code") != s.want {
					t.Fatalf("try %d (%q): %d, field error %q, want 400 %q", i+1, s.typed, p.status, codesFieldError(p.body, "code"), s.want)
				}
				if codesHeading(p.body) != "Подтвердите телефон" || !strings.Contains(codesLead(p.body), "+7 (903) ***-**-01") {
					t.Errorf("try %d: %q %q, want the confirmation page again", i+1, codesHeading(p.body), codesLead(p.body))
				}
			}
			if _, err := e.store.UserByPhone(ctx, phone); !storage.IsNotFound(err) {
				t.Fatalf("a dead code created an account: %v", err)
			}
			// "Запросите новый код": after a minute the resend gives a new code.
			restore := e.codesShift(61 * time.Second)
			defer restore()
			p := b.post(t, "/register/resend", url.Values{"flow": {flow}})
			if p.status != http.StatusOK || codesNotice(p.body) != codesMsgNewCode {
				t.Fatalf("resend after a minute: %d %q", p.status, codesNotice(p.body))
			}
			if n := e.sent.count(t, phone); n != 2 {
				t.Fatalf("%d messages to %s, want 2", n, phone)
			}
			fresh := e.sent.lastCode(t, phone)
			if fresh != code {
				if p := b.confirm(t, "/register", flow, code); codesFieldError(p.body, "code") != codesWrongCodeMsg(4) {
					t.Errorf("the old code after a resend: %q, want %q", codesFieldError(p.body, "code"), codesWrongCodeMsg(4))
				}
			}
			p = b.confirm(t, "/register", flow, fresh[:3]+" "+fresh[3:])
			if p.status != http.StatusOK || codesHeading(p.body) != "Телефон подтвержден!" {
				t.Fatalf("the new code, typed as «123 456»: %d %q %q", p.status, codesHeading(p.body), codesFieldError(p.body, "code"))
			}

			// Sign-in by code: the same counting, and no session from a dead code.
			s := e.codesBrowser(t)
			flow = s.startFlow(t, "/login/code", url.Values{"mode": {"phone"}, "login": {"9105940899"}})
			code = e.sent.lastCode(t, e.phone)
			for i := 4; i >= 0; i-- {
				want := codesWrongCodeMsg(i)
				if i == 0 {
					want = codesMsgDead
				}
				if p := s.confirm(t, "/login/code", flow, codesWrong(code)); p.status != http.StatusBadRequest || codesFieldError(p.body, "code") != want {
					t.Fatalf("sign-in, wrong code: %d %q, want %q", p.status, codesFieldError(p.body, "code"), want)
				}
			}
			if p := s.confirm(t, "/login/code", flow, code); codesFieldError(p.body, "code") != codesMsgDead {
				t.Errorf("sign-in, the right code after five wrong: %d %q", p.status, codesFieldError(p.body, "code"))
			}
			if s.signedIn(t) {
				t.Error("a dead code signed the browser in")
			}
		})
	}
}

// codesWrong is a six-digit code that is not code.
func codesWrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

// TestCodesNoAccountLooksTheSame: "У меня есть код" and "Забыли пароль?" for a phone or
// email without an account, or of a blocked account, answer exactly like for a live
// account (status, page, wrong-code answer, resend), and nothing is sent to it. A code
// sent before the account was blocked neither signs in nor resets.
func TestCodesNoAccountLooksTheSame(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			clock := e.codesClock(t)
			blockedPhone := "+79035552402"
			u := &storage.User{Phone: &blockedPhone, PhoneVerified: true, PasswordHash: "x"}
			if err := e.store.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.SetUserBlocked(ctx, u.ID, true); err != nil {
				t.Fatal(err)
			}
			knownEmail := "known@example.ru"
			if err := e.store.CreateUser(ctx, &storage.User{Email: &knownEmail, EmailVerified: true, PasswordHash: "x"}); err != nil {
				t.Fatal(err)
			}
			normalize := func(body string) string {
				body = codesFirst(codesBodyRe, body)
				body = codesCSRFRe.ReplaceAllString(body, "CSRF")
				body = codesFlowIDRe.ReplaceAllString(body, "FLOW")
				body = codesMaskedRe.ReplaceAllString(body, "DEST")
				body = regexp.MustCompile(`[a-z]{2}\*\*\*@example\.ru`).ReplaceAllString(body, "DEST")
				return codesSecondsRe.ReplaceAllString(body, "${1}N")
			}
			// One contact's journey: the form, the confirmation page, a wrong code, and
			// a resend a minute later.
			type answers struct{ start, page, wrong, resend codesPage }
			journey := func(base, mode, login string, at time.Duration) answers {
				var a answers
				b := e.codesBrowser(t)
				clock.at(at)
				a.start = b.post(t, base, url.Values{"mode": {mode}, "login": {login}})
				u, _ := url.Parse(a.start.loc)
				flow := u.Query().Get("flow")
				a.page = b.get(t, a.start.loc)
				a.wrong = b.confirm(t, base, flow, "000000")
				clock.at(at + 61*time.Second)
				a.resend = b.post(t, base+"/resend", url.Values{"flow": {flow}})
				return a
			}
			round := time.Duration(0)
			for _, base := range []string{"/login/code", "/reset"} {
				for _, c := range []struct{ what, mode, login, to, known string }{
					{"an unknown phone", "phone", "+7 903 555-24-01", "+79035552401", "+7 910 594-08-99"},
					{"a blocked account", "phone", "+7 903 555-24-02", blockedPhone, "+7 910 594-08-99"},
					{"an unknown email", "email", "nobody@example.ru", "nobody@example.ru", knownEmail},
				} {
					// Each round in an hour of its own: the limits start afresh.
					round += time.Hour
					known := journey(base, c.mode, c.known, round)
					silent := journey(base, c.mode, c.login, round)
					if known.start.status != http.StatusSeeOther || silent.start.status != known.start.status {
						t.Errorf("%s, %s: the form answered %d, for an account %d", base, c.what, silent.start.status, known.start.status)
					}
					for _, pair := range []struct {
						step   string
						kn, sl codesPage
					}{{"confirmation page", known.page, silent.page}, {"wrong code", known.wrong, silent.wrong}, {"resend", known.resend, silent.resend}} {
						if pair.kn.status != pair.sl.status || normalize(pair.kn.body) != normalize(pair.sl.body) {
							t.Errorf("%s, %s: the %s differs from an account's:\n%d %s\n%d %s", base, c.what, pair.step,
								pair.sl.status, codesText(normalize(pair.sl.body)), pair.kn.status, codesText(normalize(pair.kn.body)))
						}
					}
					if codesHeading(silent.page.body) != "Введите код" {
						t.Errorf("%s, %s: the confirmation page is %q", base, c.what, codesHeading(silent.page.body))
					}
					if want := codesWrongCodeMsg(4); codesFieldError(silent.wrong.body, "code") != want {
						t.Errorf("%s, %s: a wrong code says %q, want %q", base, c.what, codesFieldError(silent.wrong.body, "code"), want)
					}
					if known.resend.status != http.StatusOK || codesNotice(silent.resend.body) != codesMsgNewCode {
						t.Errorf("%s, %s: resend %d %q", base, c.what, silent.resend.status, codesNotice(silent.resend.body))
					}
					if n := e.sent.count(t, c.to); n != 0 {
						t.Errorf("%s, %s: %d messages were sent to %s", base, c.what, n, c.to)
					}
				}
			}
			if n := e.sent.count(t, e.phone) + e.sent.count(t, knownEmail); n != 12 {
				t.Errorf("%d messages to the live accounts, want 12 (a code and a resend in each round)", n)
			}

			// A code sent while the account was live, used after it was blocked.
			live := "+79035552403"
			v := &storage.User{Phone: &live, PhoneVerified: true, PasswordHash: "x"}
			if err := e.store.CreateUser(ctx, v); err != nil {
				t.Fatal(err)
			}
			for _, base := range []string{"/login/code", "/reset"} {
				round += time.Hour
				clock.at(round)
				b := e.codesBrowser(t)
				flow := b.startFlow(t, base, url.Values{"mode": {"phone"}, "login": {live}})
				code := e.sent.lastCode(t, live)
				if _, err := e.store.SetUserBlocked(ctx, v.ID, true); err != nil {
					t.Fatal(err)
				}
				p := b.confirm(t, base, flow, code)
				if p.status != http.StatusForbidden || codesHeading(p.body) != codesMsgBlocked {
					t.Errorf("%s: the code of a blocked account: %d %q, want 403 %q", base, p.status, codesHeading(p.body), codesMsgBlocked)
				}
				if strings.Contains(p.body, `name="grant"`) || b.signedIn(t) {
					t.Errorf("%s: a blocked account got a session or a reset grant", base)
				}
				if _, err := e.store.SetUserBlocked(ctx, v.ID, false); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestCodesLimits: a new code no sooner than 60 s after the last one to that phone (a
// resend or a new flow, with the Russian message); at most 5 codes an hour to one
// phone, whatever they were for; at most 30 code requests an hour from one IP, counted
// for contacts without an account too. Refused requests send nothing.
func TestCodesLimits(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			clock := e.codesClock(t)
			b := e.codesBrowser(t)

			// 60 s between codes: a resend at once, and a second registration at once.
			clock.at(time.Minute)
			const phone = "+79035552501"
			flow := b.register(t, "phone", phone, codesNewPassword)
			p := b.post(t, "/register/resend", url.Values{"flow": {flow}})
			if p.status != http.StatusTooManyRequests || !codesWithinAMinute(codesNotice(p.body)) {
				t.Errorf("resend at once: %d %q, want 429 «Новый код можно запросить через N с»", p.status, codesNotice(p.body))
			}
			if codesHeading(p.body) != "Подтвердите телефон" || !strings.Contains(p.body, `data-countdown="`) {
				t.Errorf("resend at once: %q, want the confirmation page with its countdown", codesHeading(p.body))
			}
			p = b.post(t, "/register", url.Values{"mode": {"phone"}, "login": {phone}, "password": {codesNewPassword}})
			if p.status != http.StatusTooManyRequests || !codesWithinAMinute(codesAlert(p.body)) || codesFirst(codesFieldValRe, p.body) != phone {
				t.Errorf("a second registration at once: %d %q, want 429 «Новый код можно запросить через N с» with the phone kept", p.status, codesAlert(p.body))
			}
			if n := e.sent.count(t, phone); n != 1 {
				t.Errorf("%d codes went to %s within a minute, want 1", n, phone)
			}
			clock.at(time.Minute + 59*time.Second)
			if p := b.post(t, "/register/resend", url.Values{"flow": {flow}}); p.status != http.StatusTooManyRequests {
				t.Errorf("resend after 59 s: %d %q", p.status, codesNotice(p.body))
			}
			clock.at(2*time.Minute + time.Second)
			if p := b.post(t, "/register/resend", url.Values{"flow": {flow}}); p.status != http.StatusOK || codesNotice(p.body) != codesMsgNewCode {
				t.Errorf("resend after 61 s: %d %q", p.status, codesNotice(p.body))
			}

			// Five codes an hour to one phone, counted across flows and resends.
			steps := []struct {
				base string
				at   time.Duration
			}{
				{"/login/code", 10 * time.Minute}, {"resend", 12 * time.Minute}, {"/reset", 13 * time.Minute},
				{"/register", 14 * time.Minute}, {"resend", 15 * time.Minute},
			}
			var last string
			for i, s := range steps {
				clock.at(s.at)
				if s.base == "resend" {
					if p := b.post(t, "/login/code/resend", url.Values{"flow": {last}}); p.status != http.StatusOK {
						t.Fatalf("code %d (resend): %d %q", i+1, p.status, codesNotice(p.body))
					}
					continue
				}
				form := url.Values{"mode": {"phone"}, "login": {e.phone}, "password": {codesNewPassword}}
				id := b.startFlow(t, s.base, form)
				if s.base == "/login/code" {
					last = id
				}
			}
			if n := e.sent.count(t, e.phone); n != 5 {
				t.Fatalf("%d codes to %s, want 5", n, e.phone)
			}
			clock.at(20 * time.Minute)
			for _, base := range []string{"/login/code", "/reset", "/register"} {
				p := b.post(t, base, url.Values{"mode": {"phone"}, "login": {"8 910 594 08 99"}, "password": {codesNewPassword}})
				if p.status != http.StatusTooManyRequests || codesAlert(p.body) != codesMsgTooMany {
					t.Errorf("%s, the 6th code in an hour: %d %q, want 429 %q", base, p.status, codesAlert(p.body), codesMsgTooMany)
				}
			}
			clock.at(22 * time.Minute)
			if p := b.post(t, "/login/code/resend", url.Values{"flow": {last}}); p.status != http.StatusTooManyRequests || codesNotice(p.body) != codesMsgTooMany {
				t.Errorf("resend, the 6th code in an hour: %d %q, want 429 %q", p.status, codesNotice(p.body), codesMsgTooMany)
			}
			if n := e.sent.count(t, e.phone); n != 5 {
				t.Errorf("%d codes to %s in an hour, want 5", n, e.phone)
			}
			// The next hour: codes again.
			clock.at(time.Hour + 2*time.Minute)
			b.startFlow(t, "/login/code", url.Values{"mode": {"phone"}, "login": {e.phone}})
			if n := e.sent.count(t, e.phone); n != 6 {
				t.Errorf("the next hour: %d codes to %s, want 6", n, e.phone)
			}

			// Thirty code requests an hour from one IP, to thirty contacts: the
			// unknown ones (nothing sent) count like the others.
			clock.at(2*time.Hour + time.Minute)
			for i := range 30 {
				base := "/login/code"
				if i%3 == 0 {
					base = "/register"
				}
				b.startFlow(t, base, url.Values{"mode": {"phone"}, "login": {fmt.Sprintf("+7903556%04d", i)}, "password": {codesNewPassword}})
			}
			for _, c := range []struct{ base, login, to string }{
				{"/register", "+7 903 556-10-00", "+79035561000"},
				{"/login/code", e.phone, e.phone},
				{"/reset", "+7 903 556-10-01", "+79035561001"},
			} {
				before := e.sent.count(t, c.to)
				p := b.post(t, c.base, url.Values{"mode": {"phone"}, "login": {c.login}, "password": {codesNewPassword}})
				if p.status != http.StatusTooManyRequests || codesAlert(p.body) != codesMsgTooMany {
					t.Errorf("%s from the same IP after 30 codes: %d %q, want 429 %q", c.base, p.status, codesAlert(p.body), codesMsgTooMany)
				}
				if n := e.sent.count(t, c.to); n != before {
					t.Errorf("%s: the refused request sent a code to %s", c.base, c.to)
				}
			}
			clock.at(3*time.Hour + time.Minute)
			b.register(t, "phone", "+7 903 556-10-00", codesNewPassword)
		})
	}
}

// TestCodesConcurrentRegistration: eight browsers register the same new phone, each
// confirms its own code at the same moment: exactly one account results (with its
// browser's password and two consents), the seven others are told the account
// exists.
func TestCodesConcurrentRegistration(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			clock := e.codesClock(t)
			const phone, n = "+79035552601", 8
			// A code a minute (the 60 s rule), five an hour (so the eight flows span two
			// hour windows), all alive (10 minutes) when they are confirmed.
			type attempt struct {
				b          *codesBrowser
				flow, code string
				password   string
			}
			attempts := make([]attempt, n)
			for i := range attempts {
				clock.at(-4*time.Minute + time.Duration(i)*61*time.Second)
				a := attempt{b: e.codesBrowser(t), password: fmt.Sprintf("%s-%d", codesNewPassword, i)}
				a.flow = a.b.register(t, "phone", "+7 (903) 555-26-01", a.password)
				a.code = e.sent.lastCode(t, phone)
				attempts[i] = a
			}
			clock.at(3*time.Minute + 20*time.Second)
			results := make([]codesPage, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range attempts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[i], errs[i] = attempts[i].b.postErr("/register/confirm", url.Values{"flow": {attempts[i].flow}, "code": {attempts[i].code}})
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, r := range results {
				if errs[i] != nil {
					t.Fatalf("browser %d: %v", i, errs[i])
				}
				switch {
				case r.status == http.StatusOK && codesHeading(r.body) == "Телефон подтвержден!":
					if winner >= 0 {
						t.Errorf("browsers %d and %d both registered %s", winner, i, phone)
					}
					winner = i
				case r.status == http.StatusConflict && codesHeading(r.body) == "Аккаунт уже существует":
					links := codesLinks(r.body)
					if links["Войти"] != "/login?mode=phone" || links["Забыли пароль?"] != "/reset?mode=phone" {
						t.Errorf("browser %d: the links of «Аккаунт уже существует»: %v", i, links)
					}
				default:
					t.Errorf("browser %d: %d %q %q", i, r.status, codesHeading(r.body), codesText(r.body))
				}
			}
			if winner < 0 {
				t.Fatal("no browser registered the phone")
			}
			users, err := e.store.ListUsers(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			var found []storage.User
			for _, u := range users {
				if u.Phone != nil && *u.Phone == phone {
					found = append(found, u)
				}
			}
			if len(found) != 1 {
				t.Fatalf("%d accounts with %s, want 1", len(found), phone)
			}
			consents, err := e.store.UserConsents(ctx, found[0].ID)
			if err != nil || len(consents) != 2 {
				t.Errorf("consents of the account: %d, %v; want 2", len(consents), err)
			}
			clock.at(3*time.Minute + 30*time.Second)
			for i, a := range attempts {
				if got := a.b.signedIn(t); got != (i == winner) {
					t.Errorf("browser %d signed in: %v (winner %d)", i, got, winner)
				}
			}
			if !e.codesPasswordWorks(t, phone, attempts[winner].password) {
				t.Error("the account does not have the winning browser's password")
			}
		})
	}
}

// TestCodesResetGrantOnce: the permission a verified reset code gives sets one
// password, once: a second use, in sequence or in parallel, gets "Код устарел".
func TestCodesResetGrantOnce(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			b := e.codesBrowser(t)
			grant := b.grant(t, e.phone, e.phone)
			p := b.post(t, "/reset/password", url.Values{"grant": {grant}, "password": {codesNewPassword}})
			if p.status != http.StatusOK || codesHeading(p.body) != "Пароль изменен" {
				t.Fatalf("first use: %d %q", p.status, codesHeading(p.body))
			}
			if got := codesLinks(p.body)["Войти"]; got != "/login?mode=phone" {
				t.Errorf("«Войти» after the reset goes to %q", got)
			}
			codesWantGone(t, "second use", b.post(t, "/reset/password", url.Values{"grant": {grant}, "password": {codesOtherPassword}}), "/reset")
			codesWantGone(t, "second use, another browser", e.codesBrowser(t).post(t, "/reset/password", url.Values{"grant": {grant}, "password": {codesOtherPassword}}), "/reset")
			if !e.codesPasswordWorks(t, e.phone, codesNewPassword) || e.codesPasswordWorks(t, e.phone, codesOtherPassword) {
				t.Fatal("the second use of a grant changed the password")
			}

			// Five posts of one grant at the same moment: one wins.
			restore := e.codesShift(2 * time.Minute) // past the minute between codes
			defer restore()
			grant = b.grant(t, e.phone, e.phone)
			const n = 5
			results := make([]codesPage, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[i], errs[i] = b.postErr("/reset/password", url.Values{"grant": {grant}, "password": {fmt.Sprintf("%s-%d", codesOtherPassword, i)}})
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, r := range results {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				switch {
				case r.status == http.StatusOK && codesHeading(r.body) == "Пароль изменен":
					if winner >= 0 {
						t.Errorf("posts %d and %d both used the grant", winner, i)
					}
					winner = i
				case r.status == http.StatusGone:
				default:
					t.Errorf("post %d: %d %q", i, r.status, codesHeading(r.body))
				}
			}
			if winner < 0 {
				t.Fatal("no post used the grant")
			}
			if !e.codesPasswordWorks(t, e.phone, fmt.Sprintf("%s-%d", codesOtherPassword, winner)) {
				t.Error("the password is not the winning post's")
			}
		})
	}
}

// TestCodesResetEndsSessions: a password reset ends every session of the account (in
// every browser) and every refresh and access token its products hold; the products
// hear of it on the back channel; the new password signs in, the old one does not.
func TestCodesResetEndsSessions(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			op, err := oidc.NewProvider(ctx, e.issuer)
			if err != nil {
				t.Fatal(err)
			}
			rp := rpConfig(e, op, "report", "http://127.0.0.1:9/report/cb")
			verifier := oauth2.GenerateVerifier()
			laptop := e.browser()
			cb := e.signIn(laptop, rp.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)), e.phone, e.password)
			tok, err := rp.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token")
			}
			// The refresh token works before the reset (and rotates).
			tok, err = rp.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatalf("refresh before the reset: %v", err)
			}
			phone := e.codesBrowser(t)
			if p := phone.post(t, "/login", url.Values{"mode": {"phone"}, "login": {e.phone}, "password": {e.password}}); p.status != http.StatusSeeOther {
				t.Fatalf("sign in on the phone: %d", p.status)
			}
			if !phone.signedIn(t) {
				t.Fatal("the phone's browser has no session")
			}
			sessions, _ := e.store.UserSessions(ctx, e.userID)
			if len(sessions) != 2 {
				t.Fatalf("%d sessions before the reset, want 2", len(sessions))
			}

			// Someone resets the password in a third browser.
			other := e.codesBrowser(t)
			grant := other.grant(t, e.phone, "+7 (910) 594-08-99")
			if p := other.post(t, "/reset/password", url.Values{"grant": {grant}, "password": {codesNewPassword}}); p.status != http.StatusOK || codesHeading(p.body) != "Пароль изменен" ||
				codesLead(p.body) != "Все сеансы входа завершены. Войдите с новым паролем." {
				t.Fatalf("reset: %d %q %q", p.status, codesHeading(p.body), codesLead(p.body))
			}
			if other.signedIn(t) {
				t.Error("the reset signed its browser in")
			}
			if phone.signedIn(t) {
				t.Error("the phone's session survived the reset")
			}
			if live, _ := e.store.UserSessions(ctx, e.userID); len(live) != 0 {
				t.Errorf("%d sessions after the reset, want 0", len(live))
			}
			if _, err := rp.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
				t.Error("the refresh token works after the reset")
			} else if re := (*oauth2.RetrieveError)(nil); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Errorf("refresh after the reset: %v, want invalid_grant", err)
			}
			if _, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
				t.Error("the access token works at userinfo after the reset")
			}
			select {
			case form := <-e.logouts:
				if form.Get("logout_token") == "" {
					t.Errorf("back-channel logout without a token: %v", form)
				}
			case <-time.After(10 * time.Second):
				t.Error("the product heard nothing of the reset on the back channel")
			}
			// The laptop's browser gets the form again; the old password fails there.
			resp, err := laptop.Get(rp.AuthCodeURL("st-2", oauth2.S256ChallengeOption(verifier)))
			if err != nil {
				t.Fatal(err)
			}
			if body := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="password"`) {
				t.Fatalf("the laptop after the reset: %d %s, want the sign-in form", resp.StatusCode, resp.Request.URL)
			}
			if e.codesPasswordWorks(t, e.phone, e.password) {
				t.Error("the old password signs in after the reset")
			}
			cb = e.signIn(laptop, rp.AuthCodeURL("st-3", oauth2.S256ChallengeOption(verifier)), e.phone, codesNewPassword)
			if _, err := rp.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
				t.Fatalf("sign in with the new password: %v", err)
			}
		})
	}
}

// TestCodesRegistration: what a registration records and answers beyond the happy
// path — the consent line on the page and the two accepted documents (versions, time,
// IP, browser) with the account; email registration with a mixed-case address; the
// email and phone that already have an account (after the code, not before); the
// message texts naming the product; a failed delivery.
func TestCodesRegistration(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			b := e.codesBrowser(t)
			p := b.get(t, "/register")
			if !strings.Contains(codesText(p.body), codesConsentLine) {
				t.Errorf("the registration page lacks the consent line %q", codesConsentLine)
			}
			for _, absent := range []string{"Сертификат", "госуслуги", "или зарегистрируйтесь через"} {
				if strings.Contains(p.body, absent) {
					t.Errorf("the registration page shows %q before its sign-in method exists", absent)
				}
			}

			// Email, typed with capitals: the code goes to the lower-case address.
			before := time.Now().Add(-time.Second)
			flow := b.register(t, "email", "  Nina.Petrova@Example.RU ", codesNewPassword)
			const email = "nina.petrova@example.ru"
			p = b.get(t, "/register/confirm?flow="+flow)
			if codesHeading(p.body) != "Подтвердите email" || codesLead(p.body) != "Код подтверждения отправлен на ni***@example.ru" {
				t.Errorf("email confirmation page: %q %q", codesHeading(p.body), codesLead(p.body))
			}
			entries := e.sent.entries(t)
			last := entries[len(entries)-1]
			if last.Channel != "email" || last.To != email || last.Text != "Код для регистрации в Личном кабинете Астрал: "+last.Code+". Никому не сообщайте этот код." {
				t.Errorf("the email: %+v", last)
			}
			p = b.confirm(t, "/register", flow, last.Code)
			after := time.Now().Add(time.Second)
			if p.status != http.StatusOK || codesHeading(p.body) != "Email подтвержден!" || codesLinks(p.body)["Перейти в Личный кабинет"] != "/account" {
				t.Fatalf("email confirmed: %d %q %v", p.status, codesHeading(p.body), codesLinks(p.body))
			}
			if !strings.Contains(p.body, `<meta http-equiv="refresh" content="3;url=/account">`) {
				t.Error("the done page does not move on to the cabinet by itself")
			}
			u, err := e.store.UserByEmail(ctx, email)
			if err != nil || !u.EmailVerified || u.Phone != nil {
				t.Fatalf("the email account: %+v, %v", u, err)
			}
			consents, err := e.store.UserConsents(ctx, u.ID)
			if err != nil || len(consents) != 2 {
				t.Fatalf("consents: %+v, %v; want 2", consents, err)
			}
			docs := map[string]string{}
			for _, c := range consents {
				docs[c.Document] = c.Version
				if c.AcceptedAt.Before(before) || c.AcceptedAt.After(after) {
					t.Errorf("consent %s accepted at %s, want between %s and %s", c.Document, c.AcceptedAt, before, after)
				}
				if c.IP != "127.0.0.1" || !strings.HasPrefix(c.UserAgent, "Go-http-client") {
					t.Errorf("consent %s: IP %q, browser %q", c.Document, c.IP, c.UserAgent)
				}
			}
			if docs["license-agreement"] != "2021-01" || docs["personal-data-consent"] != "2021-01" {
				t.Errorf("accepted documents %v", docs)
			}
			if p := b.get(t, "/account"); p.status != http.StatusOK || !strings.Contains(p.body, email) {
				t.Errorf("the cabinet after registering: %d, shows the email: %v", p.status, strings.Contains(p.body, email))
			}

			// The same email again, from another browser: the same pages up to the code,
			// then «Аккаунт уже существует» and no second account, no consents.
			dup := e.codesBrowser(t)
			restore := e.codesShift(61 * time.Second)
			flow = dup.register(t, "email", "NINA.PETROVA@example.ru", codesOtherPassword)
			p = dup.get(t, "/register/confirm?flow="+flow)
			if p.status != http.StatusOK || codesHeading(p.body) != "Подтвердите email" {
				t.Errorf("duplicate email, before the code: %d %q", p.status, codesHeading(p.body))
			}
			p = dup.confirm(t, "/register", flow, e.sent.lastCode(t, email))
			restore()
			if p.status != http.StatusConflict || codesHeading(p.body) != "Аккаунт уже существует" ||
				codesLead(p.body) != "На этот email уже зарегистрирован аккаунт. Войдите в него или восстановите пароль." {
				t.Errorf("duplicate email: %d %q %q", p.status, codesHeading(p.body), codesLead(p.body))
			}
			if links := codesLinks(p.body); links["Войти"] != "/login?mode=email" || links["Забыли пароль?"] != "/reset?mode=email" {
				t.Errorf("duplicate email links: %v", links)
			}
			if dup.signedIn(t) {
				t.Error("a duplicate registration signed the browser in")
			}
			if again, _ := e.store.UserByEmail(ctx, email); again.ID != u.ID || again.PasswordHash != u.PasswordHash {
				t.Error("a duplicate registration changed the account")
			}

			// The harness account's phone, from a product: the SMS names the product.
			op, err := oidc.NewProvider(ctx, e.issuer)
			if err != nil {
				t.Fatal(err)
			}
			rp := rpConfig(e, op, "report", "http://127.0.0.1:9/report/cb")
			web := e.browser()
			resp, err := web.Get(rp.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			authReq := resp.Request.URL.Query().Get("authRequestID")
			pb := e.codesBrowser(t)
			flow = pb.startFlow(t, "/register?authRequestID="+url.QueryEscape(authReq), url.Values{"mode": {"phone"}, "login": {"+7 910 594-08-99"}, "password": {codesOtherPassword}})
			entries = e.sent.entries(t)
			if last := entries[len(entries)-1]; last.To != e.phone || last.Text != "Код для регистрации в Астрал.Отчет: "+last.Code+". Никому не сообщайте этот код." {
				t.Errorf("the SMS: %+v", last)
			}
			p = pb.confirm(t, "/register", flow, e.sent.lastCode(t, e.phone))
			if p.status != http.StatusConflict || codesHeading(p.body) != "Аккаунт уже существует" ||
				codesLead(p.body) != "На этот номер телефона уже зарегистрирован аккаунт. Войдите в него или восстановите пароль." {
				t.Errorf("duplicate phone: %d %q %q", p.status, codesHeading(p.body), codesLead(p.body))
			}
			q := url.Values{"authRequestID": {authReq}, "mode": {"phone"}}.Encode()
			if links := codesLinks(p.body); links["Войти"] != "/login?"+q || links["Забыли пароль?"] != "/reset?"+q {
				t.Errorf("duplicate phone links (from a product): %v", links)
			}
			if c, _ := e.store.UserConsents(ctx, e.userID); len(c) != 0 {
				t.Errorf("a duplicate registration recorded %d consents on the account", len(c))
			}
			if !e.codesPasswordWorks(t, e.phone, e.password) || e.codesPasswordWorks(t, e.phone, codesOtherPassword) {
				t.Error("a duplicate registration changed the account's password")
			}

			// A code that cannot be delivered: the Russian sentence, no account.
			if err := os.Remove(e.sent.path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(e.sent.path, 0o700); err != nil {
				t.Fatal(err)
			}
			p = e.codesBrowser(t).post(t, "/register", url.Values{"mode": {"phone"}, "login": {"+79035552701"}, "password": {codesNewPassword}})
			if p.status != http.StatusServiceUnavailable || codesAlert(p.body) != codesMsgNotSent || codesFirst(codesFieldValRe, p.body) != "+79035552701" {
				t.Errorf("a failed delivery: %d %q, want 503 %q with the phone kept", p.status, codesAlert(p.body), codesMsgNotSent)
			}
			if _, err := e.store.UserByPhone(ctx, "+79035552701"); !storage.IsNotFound(err) {
				t.Errorf("a failed delivery created an account: %v", err)
			}
		})
	}
}
