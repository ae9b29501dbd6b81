package server

// Browser journeys of the code flows, in headless Chromium (login/browsertest), each a
// whole journey a person makes: registration by phone from a product and by email
// without one, a registration of a phone that has an account, sign-in by a one-time
// code, a password reset, five wrong codes, and a resend asked for too soon. Codes are
// read from the IDP_OUTBOX file the server writes. The helpers of browser_test.go
// (the relying party, readShownPage, pageText, followLink, …) are shared.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/astral/idp/login/browsertest"
	"github.com/astral/idp/storage"
)

// TestBrowserRegistration: the registration journeys — by phone from a product, by
// email into the cabinet, and with a phone that already has an account.
func TestBrowserRegistration(t *testing.T) {
	bcRun(t, []bcJourney{
		{"by phone from a product", bcRegisterByPhone},
		{"by email into the cabinet", bcRegisterByEmail},
		{"a phone that has an account", bcRegisterExistingPhone},
	})
}

// TestBrowserCodes: the journeys of one-time codes besides registration — sign-in by
// code, password reset, five wrong codes, a resend asked for too soon.
func TestBrowserCodes(t *testing.T) {
	bcRun(t, []bcJourney{
		{"sign-in by code", bcSignInByCode},
		{"password reset", bcPasswordReset},
		{"five wrong codes", bcWrongCodeFiveTimes},
		{"resend too soon", bcResendTooSoon},
	})
}

// bcProduct is the product every journey that starts from a product uses.
type bcProduct struct {
	rp    *relyingParty
	start string // the product's "Войти" link
	cb    string // its callback, as a prefix
}

func bcNewProduct(t *testing.T, e *testEnv) bcProduct {
	rp := newRelyingParty(t, e)
	rp.addProduct(t, e, "browser-report", "Астрал.Отчет", "report")
	return bcProduct{rp: rp, start: rp.srv.URL + "/report/start", cb: rp.srv.URL + "/report/cb?"}
}

// bcOpen navigates the tab to u and returns what it shows.
func bcOpen(t *testing.T, ctx context.Context, u string) shownPage {
	t.Helper()
	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	return readShownPage(t, ctx)
}

// bcType types keys into the field with id, as a person does, key by key.
func bcType(t *testing.T, ctx context.Context, id, keys string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID(id), keys)); err != nil {
		t.Fatalf("type into #%s: %v", id, err)
	}
}

// bcPress clicks the button labelled text and waits for the page that answers; it
// returns the status of that page.
func bcPress(t *testing.T, ctx context.Context, text string) int64 {
	t.Helper()
	sel := chromedp.JSPath(fmt.Sprintf(`[...document.querySelectorAll("button")].find(b => b.textContent.trim() === %q)`, text))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
	if err != nil {
		t.Fatalf("press %q: %v", text, err)
	}
	return resp.Status
}

// bcWant checks the text of css on the page.
func bcWant(t *testing.T, ctx context.Context, what, css, want string) {
	t.Helper()
	if got := pageText(t, ctx, css); got != want {
		t.Errorf("%s: %s shows %q, want %q", what, css, got, want)
	}
}

// bcAt checks that the tab shows a page under prefix with heading h1.
func bcAt(t *testing.T, ctx context.Context, what, prefix, h1 string) shownPage {
	t.Helper()
	p := readShownPage(t, ctx)
	if !strings.HasPrefix(p.URL, prefix) {
		t.Fatalf("%s: the browser is at %s, want %s…\n%s", what, p.URL, prefix, p.Text)
	}
	if h1 != "" {
		if got := pageText(t, ctx, "h1"); got != h1 {
			t.Fatalf("%s: heading %q, want %q\n%s", what, got, h1, p.Text)
		}
	}
	return p
}

// bcVisible reports whether the element css is rendered (not hidden, not display:none).
func bcVisible(t *testing.T, ctx context.Context, css string) bool {
	t.Helper()
	v, err := browserLook(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
		`(() => { const el = document.querySelector(%q); return !!el && el.getClientRects().length > 0 })()`, css)))
	if err != nil {
		t.Fatalf("visibility of %s: %v", css, err)
	}
	return v
}

var bcCountdownRe = regexp.MustCompile(`^Отправить повторно через (\d+)$`)

// bcCountdown reads the visible countdown's seconds.
func bcCountdown(t *testing.T, ctx context.Context) int {
	t.Helper()
	if !bcVisible(t, ctx, ".countdown") {
		t.Fatal("the countdown «Отправить повторно через N» is not shown")
	}
	text := pageText(t, ctx, ".countdown")
	m := bcCountdownRe.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("the countdown reads %q, want «Отправить повторно через N»", text)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// bcWaitURL waits until the tab is at a URL with prefix (a refresh or a redirect).
func bcWaitURL(t *testing.T, ctx context.Context, prefix string, within time.Duration) shownPage {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, err := browserLook(ctx, chromedp.Evaluate[shownPage](
			`({url: location.href, title: document.title, text: document.body ? document.body.innerText.trim() : ""})`))
		if err == nil && strings.HasPrefix(p.URL, prefix) && p.Text != "" {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser did not reach %s… within %s (at %s, %v)", prefix, within, p.URL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bcShot saves a screenshot under IDP_TEST_SCREENSHOTS, when set.
func bcShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if dir := os.Getenv(envScreenshots); dir != "" {
		browsertest.Screenshot(t, ctx, filepath.Join(dir, name))
	}
}

// bcJourney is one whole journey of a person, in its own server and browser context.
type bcJourney struct {
	name string
	run  func(t *testing.T, e *testEnv, browser context.Context)
}

// bcRun runs each journey on each backend with a server of its own (a fresh database)
// and a headless Chromium of its own (so browsertest.Timeout bounds one journey, not a
// group); a journey opens its browser contexts with bcTab (its own cookies, as another
// person or device would have).
func bcRun(t *testing.T, journeys []bcJourney) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			for _, j := range journeys {
				t.Run(j.name, func(t *testing.T) {
					e := newTestEnv(t, backend) // skips PostgreSQL before a browser starts for nothing
					j.run(t, e, browsertest.New(t))
				})
			}
		})
	}
}

// bcTab opens a fresh browser context (no cookies) in browser, with a screenshot of
// it saved when the test fails.
func bcTab(t *testing.T, browser context.Context, who string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel) // after the screenshot below: cleanups run last-in first-out
	browserScreenshotOnFailure(t, ctx, who)
	return ctx
}

// bcProductSees is the line the product's callback shows for the account and amr.
func bcProductSees(userID, amr string) string { return "Вошли как " + userID + ", amr=" + amr }

// bcSignInForm fills the sign-in form the tab shows and presses "Войти".
func bcSignInForm(t *testing.T, ctx context.Context, phoneDigits, password string) {
	t.Helper()
	if phoneDigits != "" {
		bcType(t, ctx, "login", phoneDigits)
	}
	bcType(t, ctx, "password", password)
	clickSignIn(t, ctx)
}

// bcRegisterByPhone: a product sends the person to the login page;
// "Регистрация" → the phone typed into the +7 mask and a password → "Создать аккаунт" →
// "Подтвердите телефон" with the masked number and the countdown running (JS on) →
// "← Вернуться к началу регистрации" keeps the number → submitting again at once is
// refused in Russian (a minute between codes) → the person corrects the number → the
// code from the SMS → "Телефон подтвержден!" → "Перейти в Астрал.Отчет" → the product
// receives the new account with amr otp sms.
func bcRegisterByPhone(t *testing.T, e *testEnv, browser context.Context) {
	ctx := context.Background()
	product := bcNewProduct(t, e)
	tab := bcTab(t, browser, "person")

	bcOpen(t, tab, product.start)
	bcAt(t, tab, "the product's sign-in", e.issuer+"/login?", "Вход в Астрал.Отчет")
	bcWant(t, tab, "login page", ".actions-aside", "Нет аккаунта? Регистрация")
	followLink(t, tab, "Регистрация")
	p := bcAt(t, tab, "registration", e.issuer+"/register?", "Регистрация")
	if p.Title != "Регистрация" {
		t.Errorf("registration title %q", p.Title)
	}
	bcWant(t, tab, "registration", "label[for=login]", "Телефон *")
	bcWant(t, tab, "registration", "a.field-switch", "По email")
	bcWant(t, tab, "registration", "label[for=password]", "Пароль")
	bcWant(t, tab, "registration", "form button[type=submit]", "Создать аккаунт")
	bcWant(t, tab, "registration", ".actions-aside", "Уже создан? Войти")
	bcWant(t, tab, "registration", ".consent", codesConsentLine)
	for _, absent := range []string{"Сертификат", "госуслуги"} {
		if strings.Contains(p.Text, absent) {
			t.Errorf("the registration page shows %q before that sign-in method exists", absent)
		}
	}

	const password = "Ласточка-на-крыше-7"
	bcType(t, tab, "login", "9035551234")
	if v := fieldValue(t, tab, "#login"); v != "+7 (903) 555-12-34" {
		t.Fatalf("the phone field shows %q after typing 9035551234", v)
	}
	bcType(t, tab, "password", password)
	bcPress(t, tab, "Создать аккаунт")
	confirmURL := bcAt(t, tab, "after «Создать аккаунт»", e.issuer+"/register/confirm?flow=", "Подтвердите телефон").URL
	bcWant(t, tab, "confirmation", ".lead", "Код подтверждения отправлен на +7 (903) ***-**-34")
	bcWant(t, tab, "confirmation", "label[for=code]", "Код подтверждения")
	bcWant(t, tab, "confirmation", "form button[type=submit]", "Подтвердить")
	bcWant(t, tab, "confirmation", ".resend-title", "Не получили код?")
	bcWant(t, tab, "confirmation", ".back a", "← Вернуться к началу регистрации")
	n1 := bcCountdown(t, tab)
	if n1 > 60 || n1 < 40 {
		t.Errorf("the countdown starts at %d, want 60 or just under", n1)
	}
	if bcVisible(t, tab, "#resend") {
		t.Error("the resend button is shown while the countdown runs")
	}
	if _, err := e.store.UserByPhone(ctx, "+79035551234"); !storage.IsNotFound(err) {
		t.Fatalf("the account exists before the code is confirmed: %v", err)
	}
	bcShot(t, tab, "register-confirm-countdown.png")
	for deadline := time.Now().Add(3 * time.Second); bcCountdown(t, tab) >= n1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the countdown stays at %d", n1)
		}
	}

	// Back to the start: the number is kept, the password is not.
	followLink(t, tab, "← Вернуться к началу регистрации")
	bcAt(t, tab, "back to the start", e.issuer+"/register?", "Регистрация")
	if v := fieldValue(t, tab, "#login"); v != "+7 (903) 555-12-34" {
		t.Errorf("back at the start the phone field shows %q, want the number kept", v)
	}
	if v := fieldValue(t, tab, "#password"); v != "" {
		t.Errorf("back at the start the password field holds %q", v)
	}
	// Again at once: a code went to this number less than a minute ago.
	bcType(t, tab, "password", password)
	if st := bcPress(t, tab, "Создать аккаунт"); st != http.StatusTooManyRequests {
		t.Errorf("a second code at once: status %d, want 429", st)
	}
	bcAt(t, tab, "a second code at once", e.issuer+"/register?", "Регистрация")
	if msg := pageText(t, tab, "[role=alert]"); !codesWithinAMinute(msg) {
		t.Errorf("a second code at once: %q, want «Новый код можно запросить через N с»", msg)
	}
	if v := fieldValue(t, tab, "#login"); v != "+7 (903) 555-12-34" {
		t.Errorf("after the refusal the phone field shows %q", v)
	}
	if n := e.sent.count(t, "+79035551234"); n != 1 {
		t.Errorf("%d codes went to +79035551234, want 1", n)
	}

	// The person notices a typo in the number and corrects it.
	if _, err := browserLook(tab, chromedp.Evaluate[string](`document.getElementById("login").value = ""`)); err != nil {
		t.Fatal(err)
	}
	bcType(t, tab, "login", "9035551235")
	if v := fieldValue(t, tab, "#login"); v != "+7 (903) 555-12-35" {
		t.Fatalf("the corrected phone field shows %q", v)
	}
	bcType(t, tab, "password", password)
	bcPress(t, tab, "Создать аккаунт")
	if u := bcAt(t, tab, "the corrected number", e.issuer+"/register/confirm?flow=", "Подтвердите телефон").URL; u == confirmURL {
		t.Error("the corrected number continued the old flow")
	}
	bcWant(t, tab, "confirmation", ".lead", "Код подтверждения отправлен на +7 (903) ***-**-35")
	entries := e.sent.entries(t)
	sms := entries[len(entries)-1]
	if sms.Channel != "sms" || sms.To != "+79035551235" || sms.Text != "Код для регистрации в Астрал.Отчет: "+sms.Code+". Никому не сообщайте этот код." {
		t.Errorf("the SMS: %+v", sms)
	}
	bcType(t, tab, "code", sms.Code)
	bcPress(t, tab, "Подтвердить")
	p = bcAt(t, tab, "the code", e.issuer+"/register/confirm", "Телефон подтвержден!")
	bcWant(t, tab, "done", ".lead", "Теперь Вы можете перейти в Личный кабинет")
	if p.Title != "Телефон подтвержден!" {
		t.Errorf("done page title %q", p.Title)
	}
	bcShot(t, tab, "register-phone-confirmed.png")
	followLink(t, tab, "Перейти в Астрал.Отчет")
	p = readShownPage(t, tab)
	u, err := e.store.UserByPhone(ctx, "+79035551235")
	if err != nil || !u.PhoneVerified {
		t.Fatalf("the new account: %+v, %v", u, err)
	}
	if want := bcProductSees(u.ID, "otp sms"); !strings.HasPrefix(p.URL, product.cb) || p.Text != want {
		t.Fatalf("the product shows %q at %s, want %q", p.Text, p.URL, want)
	}
	if _, err := e.store.UserByPhone(ctx, "+79035551234"); !storage.IsNotFound(err) {
		t.Errorf("the mistyped number got an account: %v", err)
	}
}

// bcRegisterByEmail: without a product, "Регистрация" → "По email" → the
// email and a password → "Подтвердите email" → the emailed code → "Email подтвержден!"
// → the page moves on by itself to the cabinet, which shows the email.
func bcRegisterByEmail(t *testing.T, e *testEnv, browser context.Context) {
	tab := bcTab(t, browser, "person")

	bcOpen(t, tab, e.issuer+"/login")
	bcAt(t, tab, "sign-in", e.issuer+"/login", "Вход в Личный кабинет")
	followLink(t, tab, "Регистрация")
	bcAt(t, tab, "registration", e.issuer+"/register", "Регистрация")
	followLink(t, tab, "По email")
	bcAt(t, tab, "registration by email", e.issuer+"/register?", "Регистрация")
	bcWant(t, tab, "email mode", "label[for=login]", "Email *")
	bcWant(t, tab, "email mode", "a.field-switch", "По телефону")
	if typ := pageAttr(t, tab, "#login", "type"); typ != "email" {
		t.Errorf("email mode: the field is of type %q", typ)
	}
	bcType(t, tab, "login", "Nina.Petrova@Example.ru")
	bcType(t, tab, "password", "Синий-трамвай-на-углу-3")
	bcPress(t, tab, "Создать аккаунт")
	bcAt(t, tab, "after «Создать аккаунт»", e.issuer+"/register/confirm?flow=", "Подтвердите email")
	bcWant(t, tab, "confirmation", ".lead", "Код подтверждения отправлен на ni***@example.ru")
	if n := bcCountdown(t, tab); n > 60 || n < 40 {
		t.Errorf("the countdown starts at %d, want 60 or just under", n)
	}
	const email = "nina.petrova@example.ru"
	entries := e.sent.entries(t)
	mail := entries[len(entries)-1]
	if mail.Channel != "email" || mail.To != email {
		t.Fatalf("the code went %s to %s, want email to %s", mail.Channel, mail.To, email)
	}
	bcType(t, tab, "code", mail.Code)
	bcPress(t, tab, "Подтвердить")
	bcAt(t, tab, "the code", e.issuer+"/register/confirm", "Email подтвержден!")
	bcWant(t, tab, "done", ".status-actions a", "Перейти в Личный кабинет")
	// No click: the page goes on to the cabinet by itself after 3 seconds.
	if p := bcWaitURL(t, tab, e.issuer+"/account", 15*time.Second); !strings.Contains(p.Text, email) {
		t.Errorf("the cabinet does not show %s:\n%s", email, p.Text)
	}
}

// bcRegisterExistingPhone: registering the phone of an existing account looks
// like any registration up to the code; then "Аккаунт уже существует" with "Войти" and
// "Забыли пароль?". No second account, the account's password is unchanged, and
// "Войти" continues to the product with it.
func bcRegisterExistingPhone(t *testing.T, e *testEnv, browser context.Context) {
	ctx := context.Background()
	product := bcNewProduct(t, e)
	tab := bcTab(t, browser, "person")
	before, _ := e.store.UserByID(ctx, e.userID)

	bcOpen(t, tab, product.start)
	followLink(t, tab, "Регистрация")
	bcAt(t, tab, "registration", e.issuer+"/register?", "Регистрация")
	bcType(t, tab, "login", "9105940899")
	bcType(t, tab, "password", "Чужой-пароль-на-чужой-номер-1")
	bcPress(t, tab, "Создать аккаунт")
	bcAt(t, tab, "after «Создать аккаунт»", e.issuer+"/register/confirm?flow=", "Подтвердите телефон")
	bcWant(t, tab, "confirmation", ".lead", "Код подтверждения отправлен на +7 (910) ***-**-99")
	bcType(t, tab, "code", e.sent.lastCode(t, e.phone))
	if st := bcPress(t, tab, "Подтвердить"); st != http.StatusConflict {
		t.Errorf("the code of a taken phone: status %d, want 409", st)
	}
	bcAt(t, tab, "the code", e.issuer+"/register/confirm", "Аккаунт уже существует")
	bcWant(t, tab, "account exists", ".lead", "На этот номер телефона уже зарегистрирован аккаунт. Войдите в него или восстановите пароль.")
	bcWant(t, tab, "account exists", ".status-actions", "Войти Забыли пароль?")
	if href := pageAttr(t, tab, `.status-actions a.btn-secondary`, "href"); !strings.HasPrefix(href, "/reset?") || !strings.Contains(href, "authRequestID=") {
		t.Errorf("«Забыли пароль?» goes to %q, want the reset of the same request", href)
	}
	users, err := e.store.ListUsers(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, u := range users {
		if u.Phone != nil && *u.Phone == e.phone {
			n++
		}
	}
	if n != 1 || len(users) != 1 {
		t.Fatalf("%d accounts with %s (%d in all), want exactly one", n, e.phone, len(users))
	}
	if after, _ := e.store.UserByID(ctx, e.userID); after.PasswordHash != before.PasswordHash {
		t.Fatal("registering a taken phone changed the account's password")
	}
	if c, _ := e.store.UserConsents(ctx, e.userID); len(c) != 0 {
		t.Errorf("registering a taken phone recorded %d consents", len(c))
	}
	// "Войти": the product's sign-in, where the account's own password works.
	followLink(t, tab, "Войти")
	bcAt(t, tab, "«Войти»", e.issuer+"/login?", "Вход в Астрал.Отчет")
	bcSignInForm(t, tab, "9105940899", e.password)
	p := readShownPage(t, tab)
	if want := bcProductSees(e.userID, "pwd"); !strings.HasPrefix(p.URL, product.cb) || p.Text != want {
		t.Fatalf("the product shows %q at %s, want %q", p.Text, p.URL, want)
	}
}

// bcSignInByCode: from a product's sign-in, "У меня есть код" → the phone →
// "Получить код" → the SMS names the product → the code → the product receives the
// account with amr otp sms.
func bcSignInByCode(t *testing.T, e *testEnv, browser context.Context) {
	product := bcNewProduct(t, e)
	tab := bcTab(t, browser, "person")

	bcOpen(t, tab, product.start)
	bcAt(t, tab, "the product's sign-in", e.issuer+"/login?", "Вход в Астрал.Отчет")
	followLink(t, tab, "У меня есть код")
	bcAt(t, tab, "«У меня есть код»", e.issuer+"/login/code?", "Вход по коду")
	bcWant(t, tab, "sign-in by code", "label[for=login]", "Телефон *")
	bcWant(t, tab, "sign-in by code", "a.field-switch", "По email")
	bcType(t, tab, "login", "9105940899")
	bcPress(t, tab, "Получить код")
	bcAt(t, tab, "after «Получить код»", e.issuer+"/login/code/confirm?flow=", "Введите код")
	bcWant(t, tab, "confirmation", ".lead", "Код подтверждения отправлен на +7 (910) ***-**-99")
	bcCountdown(t, tab)
	entries := e.sent.entries(t)
	sms := entries[len(entries)-1]
	if sms.To != e.phone || sms.Text != "Код для входа в Астрал.Отчет: "+sms.Code+". Никому не сообщайте этот код." {
		t.Errorf("the SMS: %+v", sms)
	}
	bcType(t, tab, "code", sms.Code)
	bcPress(t, tab, "Войти")
	p := readShownPage(t, tab)
	if want := bcProductSees(e.userID, "otp sms"); !strings.HasPrefix(p.URL, product.cb) || p.Text != want {
		t.Fatalf("the product shows %q at %s, want %q", p.Text, p.URL, want)
	}
}

// bcPasswordReset: a second browser is signed in; from a product's sign-in,
// "Забыли пароль?" → the phone → the code → a common password is refused in Russian →
// a good one → "Пароль изменен" → "Войти": the old password is refused, the new one
// reaches the product; the second browser's session is gone.
func bcPasswordReset(t *testing.T, e *testEnv, browser context.Context) {
	product := bcNewProduct(t, e)
	tab := bcTab(t, browser, "person")
	laptop := bcTab(t, browser, "laptop")

	// The laptop was signed in before.
	bcOpen(t, laptop, e.issuer+"/login")
	bcSignInForm(t, laptop, "9105940899", e.password)
	bcAt(t, laptop, "the laptop signed in", e.issuer+"/account", "")

	bcOpen(t, tab, product.start)
	followLink(t, tab, "Забыли пароль?")
	bcAt(t, tab, "«Забыли пароль?»", e.issuer+"/reset?", "Восстановление пароля")
	bcType(t, tab, "login", "9105940899")
	bcPress(t, tab, "Получить код")
	bcAt(t, tab, "after «Получить код»", e.issuer+"/reset/confirm?flow=", "Введите код")
	bcWant(t, tab, "confirmation", ".lead", "Код подтверждения отправлен на +7 (910) ***-**-99")
	bcType(t, tab, "code", e.sent.lastCode(t, e.phone))
	bcPress(t, tab, "Продолжить")
	bcAt(t, tab, "the code", e.issuer+"/reset/confirm", "Новый пароль")
	if strings.Contains(readShownPage(t, tab).URL, "grant") {
		t.Error("the reset permission travels in the URL")
	}
	for _, common := range []string{"password1", "qwerty123"} {
		bcType(t, tab, "password", common)
		if st := bcPress(t, tab, "Сохранить пароль"); st != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", common, st)
		}
		bcAt(t, tab, "a common password", e.issuer+"/reset/password", "Новый пароль")
		bcWant(t, tab, "a common password", "#password-error", codesMsgPwCommon)
	}
	const fresh = "Ласточка-на-крыше-7"
	bcType(t, tab, "password", fresh)
	bcPress(t, tab, "Сохранить пароль")
	bcAt(t, tab, "a good password", e.issuer+"/reset/password", "Пароль изменен")
	bcWant(t, tab, "done", ".lead", "Все сеансы входа завершены. Войдите с новым паролем.")
	followLink(t, tab, "Войти")
	bcAt(t, tab, "«Войти»", e.issuer+"/login?", "Вход в Астрал.Отчет")
	bcSignInForm(t, tab, "9105940899", e.password)
	bcAt(t, tab, "the old password", e.issuer+"/login?", "Вход в Астрал.Отчет")
	bcWant(t, tab, "the old password", "[role=alert]", codesMsgWrongPw)
	bcSignInForm(t, tab, "", fresh)
	p := readShownPage(t, tab)
	if want := bcProductSees(e.userID, "pwd"); !strings.HasPrefix(p.URL, product.cb) || p.Text != want {
		t.Fatalf("the new password: the product shows %q at %s, want %q", p.Text, p.URL, want)
	}
	// The laptop's session ended with the reset.
	bcOpen(t, laptop, e.issuer+"/account")
	bcAt(t, laptop, "the laptop after the reset", e.issuer+"/login", "Вход в Личный кабинет")
}

// bcWrongCodeFiveTimes: five wrong codes count down the tries in Russian and
// kill the code; the right code then does not work either, and nobody is signed in.
func bcWrongCodeFiveTimes(t *testing.T, e *testEnv, browser context.Context) {
	tab := bcTab(t, browser, "person")

	bcOpen(t, tab, e.issuer+"/login")
	followLink(t, tab, "У меня есть код")
	bcType(t, tab, "login", "9105940899")
	bcPress(t, tab, "Получить код")
	bcAt(t, tab, "after «Получить код»", e.issuer+"/login/code/confirm?flow=", "Введите код")
	code := e.sent.lastCode(t, e.phone)
	wrong := codesWrong(code)
	for left := 4; left >= 0; left-- {
		bcType(t, tab, "code", wrong)
		if st := bcPress(t, tab, "Войти"); st != http.StatusBadRequest {
			t.Errorf("a wrong code: status %d, want 400", st)
		}
		want := codesWrongCodeMsg(left)
		if left == 0 {
			want = codesMsgDead
		}
		bcAt(t, tab, "a wrong code", e.issuer+"/login/code/confirm", "Введите код")
		bcWant(t, tab, "a wrong code", "#code-error", want)
		if got := pageAttr(t, tab, "#code", "aria-invalid"); got != "true" {
			t.Errorf("a wrong code: aria-invalid=%q", got)
		}
	}
	bcType(t, tab, "code", code)
	bcPress(t, tab, "Войти")
	bcAt(t, tab, "the right code, too late", e.issuer+"/login/code/confirm", "Введите код")
	bcWant(t, tab, "the right code, too late", "#code-error", codesMsgDead)
	bcOpen(t, tab, e.issuer+"/account")
	bcAt(t, tab, "the cabinet", e.issuer+"/login", "Вход в Личный кабинет")
}

// bcResendTooSoon: on the confirmation page the resend button waits for the
// countdown. Without JavaScript the button is there at once and pressing it is refused
// in Russian; so is submitting the hidden form with JavaScript on; no second code is
// sent and the first still works after the refusals... until the minute is over: then
// the countdown ends, the button appears, and a new code replaces the old one.
func bcResendTooSoon(t *testing.T, e *testEnv, browser context.Context) {
	tab := bcTab(t, browser, "person")
	const phone = "+79035551240"

	bcOpen(t, tab, e.issuer+"/register")
	bcType(t, tab, "login", "9035551240")
	bcType(t, tab, "password", "Ласточка-на-крыше-7")
	bcPress(t, tab, "Создать аккаунт")
	confirmURL := bcAt(t, tab, "after «Создать аккаунт»", e.issuer+"/register/confirm?flow=", "Подтвердите телефон").URL
	bcCountdown(t, tab)
	if bcVisible(t, tab, "#resend") {
		t.Fatal("the resend button is shown while the countdown runs")
	}

	// JavaScript on: the hidden form submitted anyway.
	resp, err := chromedp.RunResponse(tab, chromedp.Submit(chromedp.ID("resend")))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusTooManyRequests {
		t.Errorf("resend at once: status %d, want 429", resp.Status)
	}
	bcAt(t, tab, "resend at once", e.issuer+"/register/resend", "Подтвердите телефон")
	if msg := pageText(t, tab, "[role=status]"); !codesWithinAMinute(msg) {
		t.Errorf("resend at once: %q, want «Новый код можно запросить через N с»", msg)
	}
	bcCountdown(t, tab)

	// JavaScript off: no countdown, the button at once; pressing it is refused.
	if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	bcOpen(t, tab, confirmURL)
	if bcVisible(t, tab, ".countdown") || !bcVisible(t, tab, "#resend") {
		t.Fatal("without JavaScript: want no countdown and the resend button")
	}
	if st := bcPress(t, tab, "Отправить код повторно"); st != http.StatusTooManyRequests {
		t.Errorf("resend without JavaScript: status %d, want 429", st)
	}
	if msg := pageText(t, tab, "[role=status]"); !codesWithinAMinute(msg) {
		t.Errorf("resend without JavaScript: %q, want «Новый код можно запросить через N с»", msg)
	}
	if n := e.sent.count(t, phone); n != 1 {
		t.Fatalf("%d codes went to %s, want 1", n, phone)
	}
	first := e.sent.lastCode(t, phone)

	// JavaScript on, 58 seconds later: the countdown ends, the button appears and
	// brings a new code.
	if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
		t.Fatal(err)
	}
	restore := e.codesShift(58 * time.Second)
	defer restore()
	bcOpen(t, tab, confirmURL)
	// The countdown shows 2 or 1, unless a slow machine took those seconds to show the page.
	shown, err := browserLook(tab, chromedp.Evaluate[string](
		`(() => { const el = document.querySelector(".countdown"); return el && el.getClientRects().length ? el.textContent.trim() : "" })()`))
	if err != nil {
		t.Fatal(err)
	}
	if m := bcCountdownRe.FindStringSubmatch(shown); shown != "" && (m == nil || m[1] > "2" || len(m[1]) > 1) {
		t.Errorf("58 s later the countdown reads %q, want 2 or less", shown)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !bcVisible(t, tab, "#resend") {
		if time.Now().After(deadline) {
			t.Fatal("the resend button did not appear when the countdown ended")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if bcVisible(t, tab, ".countdown") {
		t.Error("the countdown is still shown next to the resend button")
	}
	if st := bcPress(t, tab, "Отправить код повторно"); st != http.StatusOK {
		t.Errorf("resend after the countdown: status %d", st)
	}
	bcWant(t, tab, "resend after the countdown", "[role=status]", codesMsgNewCode)
	if n := e.sent.count(t, phone); n != 2 {
		t.Fatalf("%d codes went to %s, want 2", n, phone)
	}
	second := e.sent.lastCode(t, phone)
	if second != first {
		bcType(t, tab, "code", first)
		bcPress(t, tab, "Подтвердить")
		bcWant(t, tab, "the old code", "#code-error", codesWrongCodeMsg(4))
	}
	bcType(t, tab, "code", second)
	bcPress(t, tab, "Подтвердить")
	bcAt(t, tab, "the new code", e.issuer+"/register/confirm", "Телефон подтвержден!")
}
