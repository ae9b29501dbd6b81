package server

// Handler tests of the account cabinet (login/account), on SQLite and PostgreSQL:
// every refusal — a post without its CSRF token, a sensitive change after an old
// sign-in (re-authentication), unlinking the last way in, a phone or email that
// another account holds, a wrong current password, a weak new password — and the
// changes themselves: name, phone and email by code, password (other sessions end,
// their products are told), sessions, history, products.

import (
	"context"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/login/session"
	"github.com/astral/idp/storage"
)

// The sentences of the cabinet, word for word.
const (
	acctMsgReauth      = "Подтвердите, что это Вы"
	acctMsgTakenPhone  = "Этот номер телефона уже используется в другом аккаунте. Укажите другой номер"
	acctMsgTakenEmail  = "Этот email уже используется в другом аккаунте. Укажите другой адрес"
	acctMsgSamePhone   = "Это Ваш текущий номер телефона"
	acctMsgLastMethod  = "Это единственный способ входа в аккаунт. Чтобы отвязать его, сначала задайте пароль или подтвердите телефон или email"
	acctMsgWrongPw     = "Неверный пароль"
	acctMsgEnterCur    = "Введите текущий пароль"
	acctMsgTooMany     = "Слишком много попыток. Попробуйте через 15 минут"
	acctMsgCSRF        = "Форма устарела или открыта с другого сайта. Обновите страницу и попробуйте снова."
	acctNewPassword    = "Ласточка-на-крыше-7"
	acctOtherPhone     = "+79035552402"
	acctOtherPhoneText = "+7 903 555-24-02"
)

// acctPage is one answer as the server sent it.
type acctPage struct {
	status int
	loc    string
	body   string
}

// text is the visible text of the page's main part.
func (p acctPage) text() string { return codesLikeText(p.body) }

// acctClient is a browser in the handler tests: cookies, the CSRF token of its pages,
// and no redirect followed.
type acctClient struct {
	e    *testEnv
	c    *http.Client
	csrf string
}

var acctCSRFRe = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)

// acctBrowser is a fresh browser with a CSRF token and no session.
func (e *testEnv) acctBrowser(t *testing.T) *acctClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &acctClient{e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	p := b.get(t, "/login")
	m := acctCSRFRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("GET /login: %d, no CSRF token", p.status)
	}
	b.csrf = m[1]
	return b
}

// acctSignIn is a browser signed in with phone and pw.
func (e *testEnv) acctSignIn(t *testing.T, phone, pw string) *acctClient {
	t.Helper()
	b := e.acctBrowser(t)
	p := b.post(t, "/login", url.Values{"mode": {"phone"}, "login": {phone}, "password": {pw}})
	if p.status != http.StatusSeeOther || p.loc != "/account" {
		t.Fatalf("sign in as %s: %d %q %.300s", phone, p.status, p.loc, p.text())
	}
	return b
}

func (b *acctClient) do(t *testing.T, method, path string, form url.Values) acctPage {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, b.e.issuer+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return acctPage{status: resp.StatusCode, loc: resp.Header.Get("Location"), body: readAll(t, resp)}
}

func (b *acctClient) get(t *testing.T, path string) acctPage {
	t.Helper()
	return b.do(t, http.MethodGet, path, nil)
}

// post submits form with the browser's CSRF token.
func (b *acctClient) post(t *testing.T, path string, form url.Values) acctPage {
	t.Helper()
	f := url.Values{"_csrf": {b.csrf}}
	for k, v := range form {
		f[k] = v
	}
	return b.do(t, http.MethodPost, path, f)
}

// signedIn reports whether the browser still has a session.
func (b *acctClient) signedIn(t *testing.T) bool {
	t.Helper()
	p := b.get(t, "/account")
	switch {
	case p.status == http.StatusOK:
		return true
	case p.status == http.StatusFound && p.loc == "/login":
		return false
	}
	t.Fatalf("GET /account: %d %q", p.status, p.loc)
	return false
}

var (
	acctTagRe   = regexp.MustCompile(`<[^>]*>`)
	acctSpaceRe = regexp.MustCompile(`\s+`)
	acctH1Re    = regexp.MustCompile(`(?s)<h1 class="card-title">(.*?)</h1>`)
	acctMainRe  = regexp.MustCompile(`(?s)<main[^>]*>(.*)</main>`)
)

func codesLikeText(s string) string {
	if m := acctMainRe.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	return strings.TrimSpace(acctSpaceRe.ReplaceAllString(html.UnescapeString(acctTagRe.ReplaceAllString(s, " ")), " "))
}

func acctHeading(body string) string {
	m := acctH1Re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return codesLikeText(m[1])
}

// acctFieldError is the sentence under the field with id.
func acctFieldError(body, id string) string {
	m := regexp.MustCompile(`(?s)<p class="field-error" id="` + regexp.QuoteMeta(id) + `-error"[^>]*>(.*?)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return codesLikeText(m[1])
}

// acctNotice is the sentence that reports a change.
func acctNotice(body string) string {
	m := regexp.MustCompile(`(?s)<div class="alert alert-success" role="status">(.*?)</div>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return codesLikeText(m[1])
}

// acctHidden is the value of the hidden field name.
func acctHidden(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no hidden field %q in %.600s", name, codesLikeText(body))
	}
	return html.UnescapeString(m[1])
}

// acctUser reloads the harness account.
func (e *testEnv) acctUser(t *testing.T) *storage.User {
	t.Helper()
	u, err := e.store.UserByID(context.Background(), e.userID)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// acctEvents lists the kinds of the account's latest events, newest first.
func (e *testEnv) acctEvents(t *testing.T, userID string) []string {
	t.Helper()
	events, err := e.store.UserEvents(context.Background(), userID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range events {
		kinds = append(kinds, ev.Kind)
	}
	return kinds
}

func acctHas(kinds []string, kind string) bool {
	for _, k := range kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// acctFollowCode follows a redirect to a confirmation page and returns its flow id.
func acctFlowOf(t *testing.T, p acctPage, base string) string {
	t.Helper()
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.loc, base+"/confirm?flow=") {
		t.Fatalf("want 303 to %s/confirm, got %d %q: %.600s", base, p.status, p.loc, p.text())
	}
	u, _ := url.Parse(p.loc)
	return u.Query().Get("flow")
}

// TestAccountPages: without a session every page sends the browser to /login; with
// one each page answers with its heading; "/" leads to the cabinet.
func TestAccountPages(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			pages := map[string]string{
				"/account": "Профиль", "/account/password": "Пароль", "/account/methods": "Способы входа",
				"/account/sessions": "Активные сеансы", "/account/history": "История входов", "/account/services": "Мои сервисы",
			}
			anon := e.acctBrowser(t)
			for path := range pages {
				if p := anon.get(t, path); p.status != http.StatusFound || p.loc != "/login" {
					t.Errorf("GET %s without a session: %d %q, want 302 /login", path, p.status, p.loc)
				}
			}
			for _, path := range []string{"/account/profile", "/account/password", "/account/sessions/end-others"} {
				if p := anon.post(t, path, url.Values{"family_name": {"X"}}); p.status != http.StatusSeeOther || p.loc != "/login" {
					t.Errorf("POST %s without a session: %d %q, want 303 /login", path, p.status, p.loc)
				}
			}
			if p := anon.get(t, "/"); p.status != http.StatusFound || p.loc != "/account" {
				t.Errorf("GET /: %d %q, want 302 /account", p.status, p.loc)
			}
			b := e.acctSignIn(t, e.phone, e.password)
			for path, h1 := range pages {
				p := b.get(t, path)
				if p.status != http.StatusOK || acctHeading(p.body) != h1 {
					t.Errorf("GET %s: %d %q, want 200 %q", path, p.status, acctHeading(p.body), h1)
				}
				if !strings.Contains(p.body, `<title>`+h1+` — Личный кабинет</title>`) {
					t.Errorf("GET %s: no title «%s — Личный кабинет»", path, h1)
				}
				if !strings.Contains(p.text(), "Иванов Иван +7 (910) 594-08-99") {
					t.Errorf("GET %s does not name the person: %.300s", path, p.text())
				}
			}
			// A notice is one of the fixed sentences: a link cannot put words on the page.
			if p := b.get(t, "/account?done=<script>"); acctNotice(p.body) != "" || strings.Contains(p.body, "<script>") {
				t.Errorf("an unknown done= shows %q", acctNotice(p.body))
			}
		})
	}
}

// TestAccountCSRF: every form of the cabinet refuses a post without the page's CSRF
// token with the Russian 403 page, and changes nothing.
func TestAccountCSRF(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			b := e.acctSignIn(t, e.phone, e.password)
			sessions, _ := e.store.UserSessions(context.Background(), e.userID)
			forms := map[string]url.Values{
				"/account/profile":             {"family_name": {"Взломов"}},
				"/account/contact":             {"mode": {"email"}, "login": {"evil@example.ru"}},
				"/account/contact/confirm":     {"flow": {"x"}, "code": {"123456"}},
				"/account/contact/resend":      {"flow": {"x"}},
				"/account/password":            {"current_password": {e.password}, "new_password": {acctNewPassword}},
				"/account/methods/unlink":      {"identity": {"x"}},
				"/account/sessions/end":        {"session": {sessions[0].ID}},
				"/account/sessions/end-others": {},
				"/account/services/revoke":     {"client": {"report"}},
				"/account/reauth":              {"pending": {"x"}, "password": {e.password}},
				"/account/reauth/code":         {"pending": {"x"}, "channel": {"phone"}},
				"/account/reauth/confirm":      {"flow": {"x"}, "code": {"123456"}},
				"/account/reauth/resend":       {"flow": {"x"}},
			}
			for path, form := range forms {
				for what, token := range map[string]string{"no token": "", "a wrong token": "not-the-token"} {
					f := url.Values{}
					for k, v := range form {
						f[k] = v
					}
					if token != "" {
						f.Set("_csrf", token)
					}
					p := b.do(t, http.MethodPost, path, f)
					if p.status != http.StatusForbidden || !strings.Contains(p.text(), acctMsgCSRF) {
						t.Errorf("POST %s with %s: %d %.200s, want 403 «%s»", path, what, p.status, p.text(), acctMsgCSRF)
					}
				}
			}
			u := e.acctUser(t)
			if u.FamilyName != "Иванов" || u.Email != nil || !b.signedIn(t) {
				t.Errorf("a refused post changed the account: %+v", u)
			}
			if n := len(e.sent.entries(t)); n != 0 {
				t.Errorf("%d messages sent by refused posts", n)
			}
		})
	}
}

// TestAccountProfile: the name is saved and recorded; a bad one is refused next to
// its field.
func TestAccountProfile(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			b := e.acctSignIn(t, e.phone, e.password)
			p := b.post(t, "/account/profile", url.Values{"family_name": {"  Салтыков-Щедрин "}, "given_name": {"Михаил"},
				"middle_name": {"Евграфович"}})
			if p.status != http.StatusSeeOther || p.loc != "/account?done=profile" {
				t.Fatalf("save name: %d %q", p.status, p.loc)
			}
			if n := acctNotice(b.get(t, p.loc).body); n != "Данные сохранены" {
				t.Errorf("notice %q", n)
			}
			u := e.acctUser(t)
			if u.FamilyName != "Салтыков-Щедрин" || u.GivenName != "Михаил" || u.MiddleName != "Евграфович" {
				t.Errorf("saved %q %q %q", u.FamilyName, u.GivenName, u.MiddleName)
			}
			if k := e.acctEvents(t, e.userID); len(k) == 0 || k[0] != "profile_changed" {
				t.Errorf("events %v", k)
			}
			cases := []struct {
				field, value, msg string
			}{
				{"given_name", "Иван2", "Используйте буквы, пробел, дефис или апостроф"},
				{"family_name", "<b>", "Используйте буквы, пробел, дефис или апостроф"},
				{"middle_name", strings.Repeat("я", 101), "Не длиннее 100 символов"},
			}
			for _, c := range cases {
				p := b.post(t, "/account/profile", url.Values{c.field: {c.value}})
				if p.status != http.StatusBadRequest || acctFieldError(p.body, c.field) != c.msg {
					t.Errorf("%s=%q: %d %q, want 400 %q", c.field, c.value, p.status, acctFieldError(p.body, c.field), c.msg)
				}
			}
			if u := e.acctUser(t); u.GivenName != "Михаил" {
				t.Errorf("a refused name was saved: %q", u.GivenName)
			}
		})
	}
}

// TestAccountContact: a new phone or email changes only when its code is confirmed;
// one that another account holds is refused at once, without a code.
func TestAccountContact(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			other := e.addUser(acctOtherPhone, "другой пароль 123", func(u *storage.User) {
				u.Email, u.EmailVerified = ptrTo("taken@example.ru"), true
			})
			b := e.acctSignIn(t, e.phone, e.password)
			refusals := []struct {
				what, mode, login string
				status            int
				msg               string
			}{
				{"another account's phone", "phone", acctOtherPhoneText, http.StatusConflict, acctMsgTakenPhone},
				{"another account's email", "email", "Taken@Example.ru", http.StatusConflict, acctMsgTakenEmail},
				{"the account's own phone", "phone", "8 (910) 594-08-99", http.StatusBadRequest, acctMsgSamePhone},
				{"not a phone", "phone", "12345", http.StatusBadRequest, "Введите номер мобильного телефона в формате +7 (900) 000-00-00"},
				{"not an email", "email", "ivan@", http.StatusBadRequest, "Введите email в формате name@example.ru"},
			}
			for _, r := range refusals {
				p := b.post(t, "/account/contact", url.Values{"mode": {r.mode}, "login": {r.login}})
				if p.status != r.status || acctFieldError(p.body, "new-"+r.mode) != r.msg {
					t.Errorf("%s: %d %q, want %d %q", r.what, p.status, acctFieldError(p.body, "new-"+r.mode), r.status, r.msg)
				}
				if !strings.Contains(p.body, `<details class="row-more" open>`) {
					t.Errorf("%s: the form with the error is folded", r.what)
				}
			}
			if n := len(e.sent.entries(t)); n != 0 {
				t.Errorf("%d codes sent for refused contacts", n)
			}
			if u, _ := e.store.UserByID(context.Background(), other.ID); *u.Phone != acctOtherPhone {
				t.Error("the other account changed")
			}

			// A new phone: the code goes to it; a wrong code changes nothing.
			const newPhone = "+79161234567"
			flow := acctFlowOf(t, b.post(t, "/account/contact", url.Values{"mode": {"phone"}, "login": {"+7 916 123-45-67"}}), "/account/contact")
			page := b.get(t, "/account/contact/confirm?flow="+flow)
			if page.status != http.StatusOK || acctHeading(page.body) != "Подтвердите телефон" ||
				!strings.Contains(page.text(), "Код подтверждения отправлен на +7 (916) ***-**-67") {
				t.Errorf("confirmation page: %d %q %.300s", page.status, acctHeading(page.body), page.text())
			}
			if msgs := e.sent.entries(t); len(msgs) != 1 || msgs[0].To != newPhone ||
				!strings.HasPrefix(msgs[0].Text, "Код для подтверждения в Личном кабинете Астрал: ") {
				t.Errorf("messages %+v", msgs)
			}
			if p := b.post(t, "/account/contact/confirm", url.Values{"flow": {flow}, "code": {"000000"}}); p.status != http.StatusBadRequest ||
				!strings.HasPrefix(acctFieldError(p.body, "code"), "Неверный код") {
				t.Errorf("a wrong code: %d %q", p.status, acctFieldError(p.body, "code"))
			}
			if u := e.acctUser(t); *u.Phone != e.phone {
				t.Fatal("the phone changed before its code")
			}
			// Another account's browser cannot use this flow.
			stranger := e.acctSignIn(t, acctOtherPhone, "другой пароль 123")
			if p := stranger.post(t, "/account/contact/confirm", url.Values{"flow": {flow}, "code": {e.sent.lastCode(t, newPhone)}}); p.status != http.StatusGone {
				t.Errorf("another account confirms the flow: %d", p.status)
			}
			p := b.post(t, "/account/contact/confirm", url.Values{"flow": {flow}, "code": {e.sent.lastCode(t, newPhone)}})
			if p.status != http.StatusSeeOther || p.loc != "/account?done=phone" {
				t.Fatalf("the right code: %d %q %.300s", p.status, p.loc, p.text())
			}
			if u := e.acctUser(t); *u.Phone != newPhone || !u.PhoneVerified {
				t.Errorf("after the code: phone %v verified %v", *u.Phone, u.PhoneVerified)
			}
			if k := e.acctEvents(t, e.userID); k[0] != "phone_changed" {
				t.Errorf("events %v", k)
			}
			if p := b.post(t, "/account/contact/confirm", url.Values{"flow": {flow}, "code": {e.sent.lastCode(t, newPhone)}}); p.status != http.StatusGone {
				t.Errorf("the code used again: %d", p.status)
			}
			// The new phone signs in; the old one no longer does.
			e.acctSignIn(t, newPhone, e.password)
			old := e.acctBrowser(t)
			if p := old.post(t, "/login", url.Values{"mode": {"phone"}, "login": {e.phone}, "password": {e.password}}); p.status != http.StatusUnauthorized {
				t.Errorf("the old phone signs in: %d", p.status)
			}

			// An email, and one taken by another account between the code and its use.
			flow = acctFlowOf(t, b.post(t, "/account/contact", url.Values{"mode": {"email"}, "login": {"race@example.ru"}}), "/account/contact")
			if _, err := e.store.UpdateUser(context.Background(), other.ID, func(u *storage.User) error {
				u.Email = ptrTo("race@example.ru")
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			p = b.post(t, "/account/contact/confirm", url.Values{"flow": {flow}, "code": {e.sent.lastCode(t, "race@example.ru")}})
			if p.status != http.StatusConflict || acctFieldError(p.body, "new-email") != acctMsgTakenEmail {
				t.Errorf("an email taken meanwhile: %d %q", p.status, acctFieldError(p.body, "new-email"))
			}
			if u := e.acctUser(t); u.Email != nil {
				t.Errorf("the account got a taken email: %v", *u.Email)
			}
		})
	}
}

func ptrTo(s string) *string { return &s }

// TestAccountReauth: a sensitive change after an old sign-in waits for the password
// (or, without one, a code) and then goes on; the waiting change is bound to its
// session and used once.
func TestAccountReauth(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			b := e.acctSignIn(t, e.phone, e.password)
			e.shiftClock(11 * time.Minute)

			// A new email: the reauthentication page, no code yet.
			p := b.post(t, "/account/contact", url.Values{"mode": {"email"}, "login": {"new@example.ru"}})
			if p.status != http.StatusOK || acctHeading(p.body) != acctMsgReauth ||
				!strings.Contains(p.text(), "Чтобы изменить email, введите пароль.") {
				t.Fatalf("a stale session asks for a new email: %d %q %.300s", p.status, acctHeading(p.body), p.text())
			}
			if n := len(e.sent.entries(t)); n != 0 {
				t.Errorf("%d codes sent before re-authentication", n)
			}
			pending := acctHidden(t, p.body, "pending")
			p = b.post(t, "/account/reauth", url.Values{"pending": {pending}, "password": {"wrong password"}})
			if p.status != http.StatusUnauthorized || acctFieldError(p.body, "password") != acctMsgWrongPw {
				t.Errorf("a wrong password: %d %q", p.status, acctFieldError(p.body, "password"))
			}
			if k := e.acctEvents(t, e.userID); k[0] != "reauth_failed" {
				t.Errorf("events %v", k)
			}
			// Another browser of the same account cannot use the waiting change.
			other := e.acctSignIn(t, e.phone, e.password)
			if p := other.post(t, "/account/reauth", url.Values{"pending": {pending}, "password": {e.password}}); p.status != http.StatusGone {
				t.Errorf("another session used the waiting change: %d", p.status)
			}
			p = b.post(t, "/account/reauth", url.Values{"pending": {pending}, "password": {e.password}})
			flow := acctFlowOf(t, p, "/account/contact")
			if e.sent.lastCode(t, "new@example.ru") == "" || flow == "" {
				t.Fatal("no code after re-authentication")
			}
			if k := e.acctEvents(t, e.userID); !acctHas(k, "reauth") {
				t.Errorf("events %v", k)
			}
			if p := b.post(t, "/account/reauth", url.Values{"pending": {pending}, "password": {e.password}}); p.status != http.StatusGone {
				t.Errorf("the waiting change used twice: %d", p.status)
			}
			// The session is fresh now: the next change goes through at once.
			if p := b.post(t, "/account/contact", url.Values{"mode": {"email"}, "login": {"newer@example.ru"}}); p.status != http.StatusSeeOther {
				t.Errorf("after re-authentication a change asks again: %d %q", p.status, acctHeading(p.body))
			}

			// An account without a password proves itself with a code, and sets one.
			const phone2 = "+79051112233"
			e.addUser(phone2, "unused password 1", func(u *storage.User) { u.PasswordHash = "" })
			b2 := e.acctBrowser(t)
			flow = acctFlowOf(t, b2.post(t, "/login/code", url.Values{"mode": {"phone"}, "login": {phone2}}), "/login/code")
			if p := b2.post(t, "/login/code/confirm", url.Values{"flow": {flow}, "code": {e.sent.lastCode(t, phone2)}}); p.status != http.StatusSeeOther {
				t.Fatalf("sign in by code: %d", p.status)
			}
			e.shiftClock(22 * time.Minute)
			p = b2.post(t, "/account/password", url.Values{"new_password": {acctNewPassword}})
			if p.status != http.StatusOK || acctHeading(p.body) != acctMsgReauth || !strings.Contains(p.text(), "Войти по коду") ||
				strings.Contains(p.body, `name="password"`) {
				t.Fatalf("setting a password in a stale session: %d %q %.300s", p.status, acctHeading(p.body), p.text())
			}
			pending = acctHidden(t, p.body, "pending")
			if strings.Contains(p.body, acctNewPassword) {
				t.Error("the new password is on the page")
			}
			// The code path is for accounts without a password only.
			if p := b.post(t, "/account/reauth/code", url.Values{"pending": {pending}, "channel": {"phone"}}); p.status != http.StatusGone {
				t.Errorf("another account's waiting change by code: %d", p.status)
			}
			flow = acctFlowOf(t, b2.post(t, "/account/reauth/code", url.Values{"pending": {pending}, "channel": {"phone"}}), "/account/reauth")
			if p := b2.get(t, "/account/reauth/confirm?flow="+flow); p.status != http.StatusOK || acctHeading(p.body) != "Введите код" {
				t.Errorf("re-authentication code page: %d %q", p.status, acctHeading(p.body))
			}
			p = b2.post(t, "/account/reauth/confirm", url.Values{"flow": {flow}, "code": {e.sent.lastCode(t, phone2)}})
			if p.status != http.StatusSeeOther || p.loc != "/account/password?done=set" {
				t.Fatalf("after the code: %d %q %.300s", p.status, p.loc, p.text())
			}
			e.acctSignIn(t, phone2, acctNewPassword)

			// Unlinking in a stale session asks too.
			id := &storage.Identity{UserID: e.userID, Connector: "telegram", Subject: "42", DisplayName: "@ivanov"}
			if err := e.store.LinkIdentity(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			e.shiftClock(44 * time.Minute)
			p = b.post(t, "/account/methods/unlink", url.Values{"identity": {id.ID}})
			if p.status != http.StatusOK || acctHeading(p.body) != acctMsgReauth || !strings.Contains(p.text(), "Чтобы отвязать способ входа") {
				t.Errorf("unlink in a stale session: %d %q", p.status, acctHeading(p.body))
			}
			if ids, _ := e.store.UserIdentities(context.Background(), e.userID); len(ids) != 1 {
				t.Error("unlinked without re-authentication")
			}
			p = b.post(t, "/account/reauth", url.Values{"pending": {acctHidden(t, p.body, "pending")}, "password": {e.password}})
			if p.status != http.StatusSeeOther || p.loc != "/account/methods?done=unlinked" {
				t.Errorf("unlink after re-authentication: %d %q", p.status, p.loc)
			}
		})
	}
}

// TestAccountUnlink: an identity is unlinked; the last way in is not.
func TestAccountUnlink(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			id := &storage.Identity{UserID: e.userID, Connector: "telegram", Subject: "42", DisplayName: "@ivanov"}
			if err := e.store.LinkIdentity(ctx, id); err != nil {
				t.Fatal(err)
			}
			b := e.acctSignIn(t, e.phone, e.password)
			page := b.get(t, "/account/methods")
			for _, want := range []string{"Пароль Вход по номеру телефона или email и паролю Задан", "Телефон +7 (910) 594-08-99 Код из SMS",
				"Telegram @ivanov Привязан"} {
				if !strings.Contains(page.text(), want) {
					t.Errorf("methods page lacks %q: %.500s", want, page.text())
				}
			}
			if p := b.post(t, "/account/methods/unlink", url.Values{"identity": {"someone-elses"}}); p.status != http.StatusSeeOther || p.loc != "/account/methods" {
				t.Errorf("an unknown identity: %d %q", p.status, p.loc)
			}
			p := b.post(t, "/account/methods/unlink", url.Values{"identity": {id.ID}})
			if p.status != http.StatusSeeOther || p.loc != "/account/methods?done=unlinked" {
				t.Fatalf("unlink: %d %q", p.status, p.loc)
			}
			if ids, _ := e.store.UserIdentities(ctx, e.userID); len(ids) != 0 {
				t.Error("still linked")
			}
			if k := e.acctEvents(t, e.userID); k[0] != "identity_unlinked" {
				t.Errorf("events %v", k)
			}

			// An account whose only way in is its identity: no password, an unverified
			// phone. It signs in through the identity (here: a session made for it).
			lone := e.addUser("+79057778899", "unused password 1", func(u *storage.User) {
				u.PasswordHash, u.PhoneVerified = "", false
			})
			only := &storage.Identity{UserID: lone.ID, Connector: "telegram", Subject: "77", DisplayName: "@lone"}
			if err := e.store.LinkIdentity(ctx, only); err != nil {
				t.Fatal(err)
			}
			lb := e.acctBrowser(t)
			e.acctSession(t, lb, lone.ID)
			p = lb.post(t, "/account/methods/unlink", url.Values{"identity": {only.ID}})
			if p.status != http.StatusConflict || !strings.Contains(p.text(), acctMsgLastMethod) {
				t.Errorf("the last way in: %d %.400s", p.status, p.text())
			}
			if ids, _ := e.store.UserIdentities(ctx, lone.ID); len(ids) != 1 {
				t.Error("the last way in was unlinked")
			}
		})
	}
}

// acctSession puts a fresh session of userID into browser b (a sign-in through an
// upstream identity, as login/upstream would make it).
func (e *testEnv) acctSession(t *testing.T, b *acctClient, userID string) {
	t.Helper()
	raw := storage.NewSecret()
	now := e.store.Now()
	s := &storage.Session{UserID: userID, AuthTime: now, AMR: storage.StringList{"fed"}, IDP: "telegram",
		ExpiresAt: now.Add(time.Hour)}
	if err := e.store.CreateSession(context.Background(), s, raw); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(e.issuer)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: session.CookieName, Value: raw, Path: "/"}})
}

// TestAccountPassword: a change needs the right current password and a good new one;
// it ends every other session and revokes their tokens (their products are told),
// keeps this one, and the old password stops working.
func TestAccountPassword(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			other := e.signedInReport() // another browser, signed in to report with a refresh token
			b := e.acctSignIn(t, e.phone, e.password)
			refusals := []struct {
				what           string
				current, fresh string
				status         int
				field, msg     string
			}{
				{"no current password", "", acctNewPassword, http.StatusBadRequest, "current_password", acctMsgEnterCur},
				{"a wrong current password", "wrong password", acctNewPassword, http.StatusUnauthorized, "current_password", acctMsgWrongPw},
				{"a short new one", e.password, "корот7", http.StatusBadRequest, "new_password", "Пароль должен быть не короче 8 символов"},
				{"a common new one", e.password, "qwerty123", http.StatusBadRequest, "new_password", "Этот пароль слишком распространен. Придумайте другой"},
				{"the phone as the new one", e.password, "89105940899", http.StatusBadRequest, "new_password", "Пароль не должен совпадать с номером телефона или email"},
				{"the same as the current one", e.password, e.password, http.StatusBadRequest, "new_password", "Новый пароль совпадает с текущим. Придумайте другой"},
				{"no new one", e.password, "", http.StatusBadRequest, "new_password", "Придумайте пароль"},
			}
			for _, r := range refusals {
				p := b.post(t, "/account/password", url.Values{"current_password": {r.current}, "new_password": {r.fresh}})
				id := strings.ReplaceAll(r.field, "_", "-")
				if p.status != r.status || acctFieldError(p.body, id) != r.msg {
					t.Errorf("%s: %d %q, want %d %q", r.what, p.status, acctFieldError(p.body, id), r.status, r.msg)
				}
			}
			if k := e.acctEvents(t, e.userID); !acctHas(k, "password_change_failed") {
				t.Errorf("no failed change recorded: %v", k)
			}
			e.wantSessionAlive(other)

			p := b.post(t, "/account/password", url.Values{"current_password": {e.password}, "new_password": {acctNewPassword}})
			if p.status != http.StatusSeeOther || p.loc != "/account/password?done=password" {
				t.Fatalf("change: %d %q %.300s", p.status, p.loc, p.text())
			}
			e.checkLogoutToken(e.logoutToken(), other)
			e.wantSessionGone(other)
			if !b.signedIn(t) {
				t.Error("the browser that changed the password was signed out")
			}
			fresh := e.acctBrowser(t)
			if p := fresh.post(t, "/login", url.Values{"mode": {"phone"}, "login": {e.phone}, "password": {e.password}}); p.status != http.StatusUnauthorized {
				t.Errorf("the old password: %d", p.status)
			}
			e.acctSignIn(t, e.phone, acctNewPassword)
			if k := e.acctEvents(t, e.userID); !acctHas(k, "password_changed") {
				t.Errorf("events %v", k)
			}

			// Wrong current passwords are limited.
			for i := 0; i < 10; i++ {
				b.post(t, "/account/password", url.Values{"current_password": {"wrong"}, "new_password": {"Другой-пароль-42"}})
			}
			p = b.post(t, "/account/password", url.Values{"current_password": {acctNewPassword}, "new_password": {"Другой-пароль-42"}})
			if p.status != http.StatusTooManyRequests || acctFieldError(p.body, "current-password") != acctMsgTooMany {
				t.Errorf("after 10 wrong passwords: %d %q", p.status, acctFieldError(p.body, "current-password"))
			}
		})
	}
}

// TestAccountSessions: the other sessions are listed and ended — one, or all at once;
// their tokens die and their products are told; another account's session cannot be
// ended from here; ending this one signs out.
func TestAccountSessions(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			one := e.signedInReport()
			two := e.signedInReport()
			b := e.acctSignIn(t, e.phone, e.password)
			page := b.get(t, "/account/sessions")
			if n := strings.Count(page.body, `class="row session`); n != 3 {
				t.Errorf("%d sessions listed, want 3", n)
			}
			if strings.Count(page.text(), "Этот сеанс") != 1 || strings.Count(page.text(), "Сервисы Астрал.Отчет") != 2 {
				t.Errorf("sessions page: %.800s", page.text())
			}
			stranger := e.addUser(acctOtherPhone, "другой пароль 123", nil)
			sb := e.acctSignIn(t, acctOtherPhone, "другой пароль 123")
			theirs, _ := e.store.UserSessions(context.Background(), stranger.ID)
			if p := b.post(t, "/account/sessions/end", url.Values{"session": {theirs[0].ID}}); p.status != http.StatusSeeOther || p.loc != "/account/sessions" {
				t.Errorf("ending another account's session: %d %q", p.status, p.loc)
			}
			if !sb.signedIn(t) {
				t.Fatal("another account's session was ended")
			}

			p := b.post(t, "/account/sessions/end", url.Values{"session": {one.sid()}})
			if p.status != http.StatusSeeOther || p.loc != "/account/sessions?done=ended" {
				t.Fatalf("end one: %d %q", p.status, p.loc)
			}
			e.checkLogoutToken(e.logoutToken(), one)
			e.wantSessionGone(one)
			e.wantSessionAlive(two)

			p = b.post(t, "/account/sessions/end-others", nil)
			if p.status != http.StatusSeeOther || p.loc != "/account/sessions?done=others" {
				t.Fatalf("end others: %d %q", p.status, p.loc)
			}
			e.checkLogoutToken(e.logoutToken(), two)
			e.wantSessionGone(two)
			if !b.signedIn(t) {
				t.Fatal("ending the others ended this one")
			}
			k := e.acctEvents(t, e.userID)
			if !acctHas(k, "session_ended") || !acctHas(k, "sessions_ended") {
				t.Errorf("events %v", k)
			}
			mine, _ := e.store.UserSessions(context.Background(), e.userID)
			if len(mine) != 1 {
				t.Fatalf("%d sessions left, want 1", len(mine))
			}
			p = b.post(t, "/account/sessions/end", url.Values{"session": {mine[0].ID}})
			if p.status != http.StatusSeeOther || p.loc != "/logged-out" || b.signedIn(t) {
				t.Errorf("ending this session: %d %q", p.status, p.loc)
			}
		})
	}
}

// TestAccountHistory: sign-ins and failed attempts against the account (also a wrong
// password typed on the sign-in page, which now names the account) are listed,
// newest first, in Moscow time, 20 a page.
func TestAccountHistory(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			stranger := e.acctBrowser(t)
			if p := stranger.post(t, "/login", url.Values{"mode": {"phone"}, "login": {"8 910 594-08-99"}, "password": {"guess"}}); p.status != http.StatusUnauthorized {
				t.Fatalf("a wrong password: %d", p.status)
			}
			events, _ := e.store.UserEvents(ctx, e.userID, 0, 10)
			if len(events) != 1 || events[0].Kind != "signin_failed" || events[0].Method != "pwd" || !strings.HasPrefix(events[0].Detail, "invalid ") {
				t.Fatalf("the failed attempt is not the account's: %+v", events)
			}
			// An unknown phone's failure belongs to no account.
			stranger.post(t, "/login", url.Values{"mode": {"phone"}, "login": {"+79990001122"}, "password": {"guess"}})

			at := time.Date(2025, time.November, 22, 11, 5, 0, 0, time.UTC) // 14:05 in Moscow
			for i := range 22 {
				if err := e.store.RecordEvent(ctx, &storage.AuditEvent{UserID: e.userID, Kind: "signin", Method: "otp", Detail: "sms",
					ClientID: "report", IP: "198.51.100.7", CreatedAt: at.Add(-time.Duration(i) * time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			b := e.acctSignIn(t, e.phone, e.password)
			p := b.get(t, "/account/history")
			rows := regexp.MustCompile(`(?s)<tr[^>]*>\s*<td.*?</tr>`).FindAllString(p.body, -1)
			if len(rows) != 20 {
				t.Fatalf("first page: %d rows, want 20", len(rows))
			}
			msk := time.FixedZone("MSK", 3*3600)
			if got, want := codesLikeText(rows[0]), " Вход Пароль Личный кабинет 127.0.0.1 Успешно"; !strings.HasSuffix(got, want) ||
				!strings.HasPrefix(got, time.Now().In(msk).Format("02.01.2006")) {
				t.Errorf("newest row %q, want today's sign-in", got)
			}
			if got := codesLikeText(rows[1]); !strings.Contains(got, "Неудачная попытка входа Пароль Личный кабинет 127.0.0.1 Неверный пароль") {
				t.Errorf("the failed attempt %q", got)
			}
			if got := codesLikeText(rows[2]); got != "22.11.2025 14:05 Вход Код из SMS Астрал.Отчет 198.51.100.7 Успешно" {
				t.Errorf("an event at 11:05 UTC %q, want Moscow time 14:05", got)
			}
			if !strings.Contains(p.text(), "Страница 1 из 2") || !strings.Contains(p.body, `href="/account/history?page=2" rel="next">Ранее →</a>`) ||
				strings.Contains(p.text(), "Позже") {
				t.Errorf("pager of the first page: %.200s", p.text()[strings.Index(p.text(), "Страница"):])
			}
			p = b.get(t, "/account/history?page=2")
			rows = regexp.MustCompile(`(?s)<tr[^>]*>\s*<td.*?</tr>`).FindAllString(p.body, -1)
			if len(rows) != 4 || !strings.Contains(p.body, `href="/account/history" rel="prev">← Позже</a>`) || strings.Contains(p.text(), "Ранее") {
				t.Errorf("second page: %d rows, %.200s", len(rows), p.text())
			}
			if p := b.get(t, "/account/history?page=99"); !strings.Contains(p.text(), "Страница 2 из 2") {
				t.Errorf("a page past the end is not the last one")
			}
		})
	}
}

// TestAccountServices: the products the account used, and revoking one's access.
func TestAccountServices(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			// report gets a home page, as clients.yaml's home_url gives it.
			clients, err := e.store.ListClients(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := range clients {
				if clients[i].ID == "report" {
					clients[i].HomeURL = "https://online.astral.ru/"
				}
			}
			if err := e.store.SyncFileClients(ctx, clients); err != nil {
				t.Fatal(err)
			}
			s := e.signedInReport()
			b := e.acctSignIn(t, e.phone, e.password)
			p := b.get(t, "/account/services")
			if !strings.Contains(p.body, `<a href="https://online.astral.ru/" rel="noopener">Астрал.Отчет</a>`) ||
				!strings.Contains(p.text(), "Отозвать доступ") {
				t.Fatalf("services page: %.600s", p.text())
			}
			if p := b.post(t, "/account/services/revoke", url.Values{"client": {"signature"}}); p.status != http.StatusSeeOther || p.loc != "/account/services" {
				t.Errorf("revoke a product never used: %d %q", p.status, p.loc)
			}
			p = b.post(t, "/account/services/revoke", url.Values{"client": {"report"}})
			if p.status != http.StatusSeeOther || p.loc != "/account/services?done=revoked" {
				t.Fatalf("revoke: %d %q", p.status, p.loc)
			}
			wantOAuthError(t, e.refresh(viaBasic("report"), s.tokens.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
			if e.active(viaBasic("report"), s.tokens.str("access_token")) {
				t.Error("the access token is active after revoking")
			}
			p = b.get(t, p.loc)
			if acctNotice(p.body) != "Доступ сервиса отозван" || strings.Contains(p.text(), "Отозвать доступ") ||
				!strings.Contains(p.text(), "Нет активного доступа") {
				t.Errorf("after revoking: %.600s", p.text())
			}
			if k := e.acctEvents(t, e.userID); k[0] != "access_revoked" {
				t.Errorf("events %v", k)
			}
		})
	}
}
