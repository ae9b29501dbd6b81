package web

import (
	"bytes"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

const consent = "Нажимая кнопку «Войти», я соглашаюсь с условиями Пользовательского соглашения и выражаю согласие на обработку персональных данных в соответствии с Политикой обработки персональных данных"

const csrf = "csrf-token-123"

func newRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := NewRenderer()
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	return r
}

func fullLogin() LoginData {
	return LoginData{
		Layout:      Layout{Title: "Вход в Астрал.Отчет", CSRFToken: csrf},
		ClientName:  "Астрал.Отчет",
		Action:      "/login/password?authRequestID=abc123",
		Mode:        "phone",
		SwitchURL:   "/login?authRequestID=abc123&mode=email",
		Login:       "+7 (910) 594-08-99",
		RegisterURL: "/register?authRequestID=abc123",
		CodeURL:     "/login/code?authRequestID=abc123",
		ForgotURL:   "/password/forgot?authRequestID=abc123",
		Upstreams: []UpstreamLink{
			{"Сертификат", "/login/certificate?authRequestID=abc123"},
			{"госуслуги", "/login/upstream/esia?authRequestID=abc123"},
			{"Telegram", "/login/upstream/telegram?authRequestID=abc123"},
		},
	}
}

type pageCase struct {
	name    string
	page    string
	data    any
	want    []string // in the page's visible text (whitespace collapsed)
	notWant []string // not in the visible text
	raw     []string // in the raw HTML
	notRaw  []string // not in the raw HTML
	check   func(t *testing.T, doc *html.Node)
}

func pageCases() []pageCase {
	emailMode := fullLogin()
	emailMode.Mode = "email"
	emailMode.Login = "ivan@example.ru"
	emailMode.SwitchURL = "/login?authRequestID=abc123&mode=phone"

	minimal := LoginData{Layout: Layout{CSRFToken: csrf}, Action: "/login/password?authRequestID=x", Mode: "phone"}

	withErrors := fullLogin()
	withErrors.Error = "Неверный логин или пароль."
	withErrors.FieldErrors = map[string]string{
		"login":    "Введите номер телефона полностью.",
		"password": "Введите пароль.",
	}

	xss := fullLogin()
	xss.ClientName = `<script>alert("c")</script>`
	xss.Login = `"><img src=x onerror=alert(1)>`
	xss.Error = `<b onclick="alert(2)">Ошибка</b>`
	xss.FieldErrors = map[string]string{"login": `<i>bad</i>`}
	xss.Upstreams = []UpstreamLink{{`<u>x</u>`, "javascript:alert(3)"}}
	xss.Action = "javascript:alert(4)"
	xss.Title = `</title><script>alert(5)</script>`

	return []pageCase{
		{
			name: "login phone mode",
			page: "login",
			data: fullLogin(),
			want: []string{"Вход в Астрал.Отчет", "Телефон *", "По email", "Пароль", "Войти",
				"Нет аккаунта? Регистрация", consent, "или авторизуйтесь через",
				"Сертификат", "госуслуги", "Telegram", "У меня есть код", "Забыли пароль?"},
			notWant: []string{"Email *", "По телефону", "Пользовательского соглашения»"},
			raw:     []string{`<title>Вход в Астрал.Отчет</title>`, `action="/login/password?authRequestID=abc123"`},
			check: func(t *testing.T, doc *html.Node) {
				in := byID(doc, "login")
				wantAttrs(t, in, map[string]string{"type": "tel", "name": "login", "autocomplete": "tel",
					"placeholder": "+7 (___) ___-__-__", "data-mask": "ru-phone", "value": "+7 (910) 594-08-99"})
				wantAttrs(t, byID(doc, "password"), map[string]string{"type": "password", "name": "password", "autocomplete": "current-password"})
				wantHidden(t, doc, "mode", "phone")
				wantLink(t, doc, "По email", "/login?authRequestID=abc123&mode=email")
				wantLink(t, doc, "Регистрация", "/register?authRequestID=abc123")
				wantLink(t, doc, "У меня есть код", "/login/code?authRequestID=abc123")
				wantLink(t, doc, "Забыли пароль?", "/password/forgot?authRequestID=abc123")
				wantLink(t, doc, "Сертификат", "/login/certificate?authRequestID=abc123")
				wantLink(t, doc, "госуслуги", "/login/upstream/esia?authRequestID=abc123")
				wantLink(t, doc, "Telegram", "/login/upstream/telegram?authRequestID=abc123")
				if b := find(doc, func(n *html.Node) bool { return isEl(n, "button") && attr(n, "type") == "submit" }); b == nil || textOf(b) != "Войти" {
					t.Errorf("no submit button «Войти»")
				}
				// The consent line comes after the button, the upstreams after the consent line.
				text := textOf(doc)
				if !(strings.Index(text, "Войти") < strings.Index(text, consent) &&
					strings.Index(text, consent) < strings.Index(text, "или авторизуйтесь через") &&
					strings.Index(text, "или авторизуйтесь через") < strings.Index(text, "У меня есть код")) {
					t.Errorf("blocks out of order: %s", text)
				}
				// The consent line names documents as plain text: no links in it.
				p := find(doc, func(n *html.Node) bool { return isEl(n, "p") && attr(n, "class") == "consent" })
				if p == nil || find(p, func(n *html.Node) bool { return isEl(n, "a") }) != nil {
					t.Errorf("consent line missing or contains links")
				}
				if find(doc, func(n *html.Node) bool { return attr(n, "role") == "alert" }) != nil {
					t.Errorf("alert rendered without Error")
				}
			},
		},
		{
			name:    "login email mode",
			page:    "login",
			data:    emailMode,
			want:    []string{"Вход в Астрал.Отчет", "Email *", "По телефону", "Пароль", "Войти", consent},
			notWant: []string{"Телефон *", "По email"},
			check: func(t *testing.T, doc *html.Node) {
				wantAttrs(t, byID(doc, "login"), map[string]string{"type": "email", "name": "login", "autocomplete": "email", "value": "ivan@example.ru"})
				if attr(byID(doc, "login"), "data-mask") != "" {
					t.Errorf("email field has a phone mask")
				}
				wantHidden(t, doc, "mode", "email")
				wantLink(t, doc, "По телефону", "/login?authRequestID=abc123&mode=phone")
			},
		},
		{
			name: "login minimal: optional parts absent",
			page: "login",
			data: minimal,
			want: []string{"Вход в Личный кабинет", "Телефон *", "Пароль", "Войти", consent},
			notWant: []string{"Регистрация", "Нет аккаунта", "У меня есть код", "Забыли пароль?",
				"или авторизуйтесь через", "По email", "По телефону"},
			raw:    []string{"<title>Личный кабинет — Астрал</title>"},
			notRaw: []string{`role="alert"`, "aria-describedby", "upstream-list", "card-links"},
			check: func(t *testing.T, doc *html.Node) {
				if n := len(findAll(doc, func(n *html.Node) bool { return isEl(n, "a") })); n != 0 {
					t.Errorf("%d links rendered with no URLs set", n)
				}
			},
		},
		{
			name: "login unknown mode falls back to phone",
			page: "login",
			data: LoginData{Layout: Layout{CSRFToken: csrf}, Action: "/login", Mode: "fax"},
			want: []string{"Телефон *"},
			check: func(t *testing.T, doc *html.Node) {
				wantHidden(t, doc, "mode", "phone")
			},
		},
		{
			name: "login with errors",
			page: "login",
			data: withErrors,
			want: []string{"Неверный логин или пароль.", "Введите номер телефона полностью.", "Введите пароль."},
			check: func(t *testing.T, doc *html.Node) {
				alert := find(doc, func(n *html.Node) bool { return attr(n, "role") == "alert" })
				if alert == nil || textOf(alert) != "Неверный логин или пароль." {
					t.Errorf("role=alert with the error missing")
				}
				form := find(doc, func(n *html.Node) bool { return isEl(n, "form") })
				if alert != nil && form != nil && !before(doc, alert, form) {
					t.Errorf("alert is not above the form")
				}
				for _, f := range []struct{ id, msg string }{
					{"login", "Введите номер телефона полностью."},
					{"password", "Введите пароль."},
				} {
					in := byID(doc, f.id)
					wantAttrs(t, in, map[string]string{"aria-invalid": "true", "aria-describedby": f.id + "-error"})
					e := byID(doc, f.id+"-error")
					if e == nil || textOf(e) != f.msg {
						t.Errorf("%s: error %q not rendered under the field", f.id, f.msg)
					}
					if in != nil && e != nil && in.Parent != nil && !contains(in.Parent.Parent, e) && !contains(in.Parent, e) {
						t.Errorf("%s: error is not next to its field", f.id)
					}
				}
			},
		},
		{
			name: "login escapes untrusted text",
			page: "login",
			data: xss,
			want: []string{`Вход в <script>alert("c")</script>`, `<b onclick="alert(2)">Ошибка</b>`, `<i>bad</i>`, `<u>x</u>`},
			notRaw: []string{`<script>alert`, `<img src=x`, `<b onclick`, `<i>bad`, `<u>x`,
				`javascript:alert`, `</title><script>`},
			raw: []string{`&lt;script&gt;alert(&#34;c&#34;)&lt;/script&gt;`, `value="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"`, "#ZgotmplZ"},
			check: func(t *testing.T, doc *html.Node) {
				if n := len(findAll(doc, func(n *html.Node) bool { return isEl(n, "img") })); n != 0 {
					t.Errorf("injected <img> became an element")
				}
				if b := find(doc, func(n *html.Node) bool { return isEl(n, "b") || isEl(n, "i") || isEl(n, "u") }); b != nil {
					t.Errorf("injected <%s> became an element", b.Data)
				}
			},
		},
		{
			name: "error page",
			page: "error",
			data: ErrorData{Layout: Layout{Title: "Ошибка"}, Heading: "Ссылка устарела", Message: "Начните вход заново.", BackURL: "/login?authRequestID=1", BackText: "Вернуться ко входу"},
			want: []string{"Ссылка устарела", "Начните вход заново.", "Вернуться ко входу"},
			raw:  []string{"<title>Ошибка</title>"},
			check: func(t *testing.T, doc *html.Node) {
				wantLink(t, doc, "Вернуться ко входу", "/login?authRequestID=1")
			},
			notRaw: []string{"<form"},
		},
		{
			name:    "error page without back link",
			page:    "error",
			data:    ErrorData{Heading: "Страница не найдена", Message: "Проверьте адрес."},
			want:    []string{"Страница не найдена", "Проверьте адрес."},
			notWant: []string{"Вернуться"},
			check: func(t *testing.T, doc *html.Node) {
				if n := len(findAll(doc, func(n *html.Node) bool { return isEl(n, "a") })); n != 0 {
					t.Errorf("%d links without BackURL", n)
				}
			},
		},
		{
			name:   "error page escapes",
			page:   "error",
			data:   ErrorData{Heading: "<h2>x</h2>", Message: "<script>alert(1)</script>", BackURL: "javascript:alert(1)"},
			want:   []string{"<h2>x</h2>", "<script>alert(1)</script>"},
			notRaw: []string{"<h2>x", "<script>alert", "javascript:"},
		},
		{
			name: "registration, phone mode",
			page: "register",
			data: RegisterData{Layout: Layout{Title: "Регистрация", CSRFToken: csrf},
				ContactFields: ContactFields{Mode: "phone", SwitchURL: "/register?mode=email", Login: "+7 (910) 594-08-99"},
				Action:        "/register", LoginURL: "/login", FieldErrors: map[string]string{"password": "Пароль должен быть не короче 8 символов"}},
			want: []string{"Регистрация", "Телефон *", "По email", "Пароль", "Создать аккаунт", "Уже создан? Войти",
				"Нажимая кнопку «Создать аккаунт», Вы соглашаетесь с условиями «Лицензионного соглашения» и даете согласие на обработку персональных данных",
				"Пароль должен быть не короче 8 символов"},
			notWant: []string{"или зарегистрируйтесь через"},
			raw:     []string{`autocomplete="new-password"`, `data-mask="ru-phone"`},
		},
		{
			name: "registration, email mode",
			page: "register",
			data: RegisterData{Layout: Layout{CSRFToken: csrf}, ContactFields: ContactFields{Mode: "email", SwitchURL: "/register?mode=phone"}, Action: "/register"},
			want: []string{"Email *", "По телефону"},
		},
		{
			name: "code confirmation with countdown",
			page: "confirm",
			data: ConfirmData{Layout: Layout{CSRFToken: csrf}, Heading: "Подтвердите телефон", Destination: "+7 (910) ***-**-99",
				Action: "/register/confirm", Flow: "f1", ResendAction: "/register/resend", ResendIn: 42,
				BackURL: "/register?flow=f1", BackText: "Вернуться к началу регистрации", Error: "Неверный код. Осталось попыток: 4"},
			want: []string{"← Вернуться к началу регистрации", "Подтвердите телефон", "Код подтверждения отправлен на +7 (910) ***-**-99",
				"Код подтверждения", "Подтвердить", "Не получили код?", "Неверный код. Осталось попыток: 4", "Отправить код повторно"},
			raw: []string{`data-countdown="42"`, `autocomplete="one-time-code"`, `name="flow" value="f1"`},
		},
		{
			name:   "code confirmation, resend allowed",
			page:   "confirm",
			data:   ConfirmData{Layout: Layout{CSRFToken: csrf}, Heading: "Подтвердите email", Destination: "ma***@astral.ru", Action: "/a", ResendAction: "/b", Notice: "Новый код отправлен"},
			want:   []string{"Подтвердите email", "Новый код отправлен", "Отправить код повторно"},
			notRaw: []string{"data-countdown"},
		},
		{
			name: "ask for a contact",
			page: "contact",
			data: ContactData{Layout: Layout{CSRFToken: csrf}, ContactFields: ContactFields{Mode: "phone", SwitchURL: "/reset?mode=email"},
				Heading: "Восстановление пароля", Action: "/reset", Button: "Получить код", BackURL: "/login", BackText: "Войти с паролем"},
			want: []string{"Восстановление пароля", "Телефон *", "По email", "Получить код", "Войти с паролем"},
		},
		{
			name: "new password",
			page: "newpassword",
			data: NewPasswordData{Layout: Layout{CSRFToken: csrf}, Action: "/reset/password", Grant: "g1",
				FieldErrors: map[string]string{"password": "Этот пароль слишком распространен. Придумайте другой"}},
			want: []string{"Новый пароль", "Пароль", "Сохранить пароль", "Этот пароль слишком распространен. Придумайте другой"},
			raw:  []string{`name="grant" value="g1"`},
		},
		{
			name: "notice with a refresh",
			page: "notice",
			data: NoticeData{Layout: Layout{Title: "Телефон подтвержден!", CSRFToken: csrf, Refresh: "3;url=/login?authRequestID=x&mode=phone"},
				Heading: "Телефон подтвержден!", Message: "Теперь Вы можете перейти в Личный кабинет", Success: true,
				Links: []Link{{Text: "Перейти в Астрал.Отчет", URL: "/login?authRequestID=x", Primary: true}}},
			want: []string{"Телефон подтвержден!", "Теперь Вы можете перейти в Личный кабинет", "Перейти в Астрал.Отчет"},
			raw:  []string{`<meta http-equiv="refresh" content="3;url=/login?authRequestID=x&amp;mode=phone">`},
		},
	}
}

func TestPages(t *testing.T) {
	r := newRenderer(t)
	r.now = func() time.Time { return time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC) }
	for _, tc := range pageCases() {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.Render(&buf, tc.page, tc.data); err != nil {
				t.Fatalf("Render: %v", err)
			}
			raw := buf.String()
			doc, err := html.Parse(strings.NewReader(raw))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			text := textOf(doc)
			for _, s := range tc.want {
				if !strings.Contains(text, s) {
					t.Errorf("text %q missing; page text:\n%s", s, text)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(text, s) {
					t.Errorf("text %q present, want absent", s)
				}
			}
			for _, s := range tc.raw {
				if !strings.Contains(raw, s) {
					t.Errorf("raw HTML %q missing", s)
				}
			}
			for _, s := range tc.notRaw {
				if strings.Contains(raw, s) {
					t.Errorf("raw HTML %q present, want absent", s)
				}
			}
			checkCommon(t, raw, doc)
			if tc.check != nil {
				tc.check(t, doc)
			}
		})
	}
}

// checkCommon holds the rules every page follows.
func checkCommon(t *testing.T, raw string, doc *html.Node) {
	t.Helper()
	root := find(doc, func(n *html.Node) bool { return isEl(n, "html") })
	if root == nil || attr(root, "lang") != "ru" {
		t.Errorf(`<html lang="ru"> missing`)
	}
	if find(doc, func(n *html.Node) bool {
		return isEl(n, "meta") && attr(n, "name") == "viewport" && strings.Contains(attr(n, "content"), "width=device-width")
	}) == nil {
		t.Errorf("meta viewport missing")
	}
	if !strings.Contains(textOf(doc), "АО «Калуга Астрал», 2031") {
		t.Errorf("footer «АО «Калуга Астрал», 2031» missing")
	}
	if logo := find(doc, func(n *html.Node) bool { return attr(n, "class") == "logo" }); logo == nil || !strings.Contains(textOf(logo), "АСТРАЛ") {
		t.Errorf("logo missing")
	}

	// CSP: no inline script, no inline style, assets only from /static/.
	if regexp.MustCompile(`(?i)<style[\s>]`).MatchString(raw) {
		t.Errorf("<style> element present")
	}
	for _, n := range findAll(doc, func(n *html.Node) bool { return n.Type == html.ElementNode }) {
		for _, a := range n.Attr {
			if a.Key == "style" {
				t.Errorf("<%s style=%q> present", n.Data, a.Val)
			}
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s %s=…> inline event handler present", n.Data, a.Key)
			}
		}
		switch n.Data {
		case "style":
			t.Errorf("<style> element present")
		case "script":
			if n.FirstChild != nil && strings.TrimSpace(textOf(n)) != "" {
				t.Errorf("inline <script> content: %q", textOf(n))
			}
			if !strings.HasPrefix(attr(n, "src"), "/static/") {
				t.Errorf("script src %q not under /static/", attr(n, "src"))
			}
		case "link":
			if !strings.HasPrefix(attr(n, "href"), "/static/") {
				t.Errorf("link href %q not under /static/", attr(n, "href"))
			}
		case "img":
			if !strings.HasPrefix(attr(n, "src"), "/static/") {
				t.Errorf("img src %q not under /static/", attr(n, "src"))
			}
		case "a":
			if h := attr(n, "href"); h == "" || h == "#" {
				t.Errorf("dead link %q (href %q)", textOf(n), h)
			}
		case "button":
			if closest(n, "form") == nil {
				t.Errorf("button %q outside a form", textOf(n))
			}
		}
	}

	// Every visible input has a <label for> matching its id.
	labels := map[string]bool{}
	for _, l := range findAll(doc, func(n *html.Node) bool { return isEl(n, "label") }) {
		labels[attr(l, "for")] = true
	}
	ids := map[string]int{}
	for _, n := range findAll(doc, func(n *html.Node) bool { return attr(n, "id") != "" }) {
		ids[attr(n, "id")]++
	}
	for id, c := range ids {
		if c > 1 {
			t.Errorf("id %q used %d times", id, c)
		}
	}
	for _, in := range findAll(doc, func(n *html.Node) bool { return isEl(n, "input") || isEl(n, "select") || isEl(n, "textarea") }) {
		if attr(in, "type") == "hidden" {
			continue
		}
		id := attr(in, "id")
		if id == "" || !labels[id] {
			t.Errorf("input name=%q id=%q has no <label for>", attr(in, "name"), id)
		}
		for _, d := range strings.Fields(attr(in, "aria-describedby")) {
			if byID(doc, d) != nil {
				continue
			}
			t.Errorf("aria-describedby %q points nowhere", d)
		}
	}

	// Every form posts and carries the CSRF token.
	for _, f := range findAll(doc, func(n *html.Node) bool { return isEl(n, "form") }) {
		if strings.ToLower(attr(f, "method")) != "post" {
			t.Errorf("form method %q, want post", attr(f, "method"))
		}
		tok := find(f, func(n *html.Node) bool {
			return isEl(n, "input") && attr(n, "type") == "hidden" && attr(n, "name") == "_csrf"
		})
		if tok == nil || attr(tok, "value") != csrf {
			t.Errorf("form %q without the _csrf hidden field", attr(f, "action"))
		}
	}
}

func TestRenderErrors(t *testing.T) {
	r := newRenderer(t)
	tests := []struct {
		name string
		page string
		data any
	}{
		{"unknown page", "nope", LoginData{}},
		{"layout is not a page", "layout", LoginData{}},
		{"wrong data type", "login", struct{ X int }{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.Render(&buf, tc.page, tc.data); err == nil {
				t.Fatalf("Render(%q) succeeded, want error", tc.page)
			}
			if buf.Len() != 0 {
				t.Errorf("partial output written on error: %d bytes", buf.Len())
			}
		})
	}
}

func TestPagesList(t *testing.T) {
	got := strings.Join(newRenderer(t).Pages(), ",")
	if got != "account,account-history,account-methods,account-password,account-services,account-sessions,certificate,certificate-register,confirm,contact,error,login,logout,newpassword,notice,reauth,register" {
		t.Errorf("Pages() = %s", got)
	}
}

func TestStatic(t *testing.T) {
	h := Static()
	tests := []struct {
		name, method, path string
		header             map[string]string
		status             int
		ctype              string
		body               string // substring of the body
	}{
		{"css", "GET", "/static/app.css", nil, 200, "text/css; charset=utf-8", ".btn-primary"},
		{"js", "GET", "/static/app.js", nil, 200, "text/javascript; charset=utf-8", "ru-phone"},
		{"svg", "GET", "/static/favicon.svg", nil, 200, "image/svg+xml", "<svg"},
		{"versioned url", "GET", "/static/app.css?v=whatever", nil, 200, "text/css; charset=utf-8", ""},
		{"prefix already stripped", "GET", "/app.js", nil, 200, "text/javascript; charset=utf-8", ""},
		{"head", "HEAD", "/static/app.css", nil, 200, "text/css; charset=utf-8", ""},
		{"unknown file", "GET", "/static/nope.css", nil, 404, "", ""},
		{"directory", "GET", "/static/", nil, 404, "", ""},
		{"traversal", "GET", "/static/../web.go", nil, 404, "", ""},
		{"template not served", "GET", "/static/templates/login.html", nil, 404, "", ""},
		{"post", "POST", "/static/app.css", nil, 405, "", ""},
		{"not modified", "GET", "/static/app.css", map[string]string{"If-None-Match": assets["app.css"].etag}, 304, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != tc.ctype {
				t.Errorf("Content-Type %q, want %q", ct, tc.ctype)
			}
			if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=31536000") {
				t.Errorf("Cache-Control %q", cc)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("nosniff missing")
			}
			if !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("body lacks %q", tc.body)
			}
		})
	}
}

// Every asset a page references is served by Static.
func TestPageAssetsServed(t *testing.T) {
	r := newRenderer(t)
	var buf bytes.Buffer
	if err := r.Render(&buf, "login", fullLogin()); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	urls := 0
	for _, n := range findAll(doc, func(n *html.Node) bool { return isEl(n, "script") || isEl(n, "link") }) {
		u := attr(n, "src") + attr(n, "href")
		if !regexp.MustCompile(`^/static/[a-z0-9.-]+\?v=[0-9a-f]{12}$`).MatchString(u) {
			t.Errorf("asset URL %q is not versioned under /static/", u)
		}
		rec := httptest.NewRecorder()
		Static().ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		if rec.Code != 200 {
			t.Errorf("GET %s: %d", u, rec.Code)
		}
		urls++
	}
	if urls < 3 {
		t.Errorf("only %d assets referenced, want css, js and icon", urls)
	}
}

// The script keeps to the CSP and the promised behaviour hooks.
func TestAppJS(t *testing.T) {
	js := string(assets["app.js"].body)
	for _, s := range []string{`input[type="tel"][data-mask="ru-phone"]`, "Показать пароль", "Скрыть пароль",
		"data-countdown", "Отправить повторно через {n}", "+7 ("} {
		if !strings.Contains(js, s) {
			t.Errorf("app.js lacks %q", s)
		}
	}
	for _, s := range []string{"eval(", "new Function", ".style.", "innerHTML", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(js, "http://www.w3.org/2000/svg", ""), s) {
			t.Errorf("app.js uses %q", s)
		}
	}
	css := string(assets["app.css"].body)
	for _, s := range []string{"@import", "url(http", "url(https", "@font-face"} {
		if strings.Contains(css, s) {
			t.Errorf("app.css uses %q (no external resources or fonts)", s)
		}
	}
}

// ---- HTML helpers ----

func isEl(n *html.Node, tag string) bool { return n.Type == html.ElementNode && n.Data == tag }

func attr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func findAll(n *html.Node, pred func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if pred(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func find(n *html.Node, pred func(*html.Node) bool) *html.Node {
	if all := findAll(n, pred); len(all) > 0 {
		return all[0]
	}
	return nil
}

func byID(doc *html.Node, id string) *html.Node {
	return find(doc, func(n *html.Node) bool { return n.Type == html.ElementNode && attr(n, "id") == id })
}

func contains(parent, child *html.Node) bool {
	for n := child; n != nil; n = n.Parent {
		if n == parent {
			return true
		}
	}
	return false
}

func closest(n *html.Node, tag string) *html.Node {
	for p := n.Parent; p != nil; p = p.Parent {
		if isEl(p, tag) {
			return p
		}
	}
	return nil
}

// before reports whether a comes before b in document order.
func before(doc, a, b *html.Node) bool {
	all := findAll(doc, func(n *html.Node) bool { return n == a || n == b })
	return len(all) == 2 && all[0] == a
}

var spaces = regexp.MustCompile(`\s+`)

// textOf is the visible text of n with whitespace collapsed (script, style
// and head content excluded unless n is itself one of those).
func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node, bool)
	walk = func(m *html.Node, top bool) {
		if !top && m.Type == html.ElementNode && (m.Data == "script" || m.Data == "style" || m.Data == "head") {
			return
		}
		if m.Type == html.TextNode {
			b.WriteString(m.Data)
		}
		if m.Type == html.ElementNode && !top {
			b.WriteString(" ")
		}
		for c := m.FirstChild; c != nil; c = c.NextSibling {
			walk(c, false)
		}
	}
	walk(n, true)
	s := strings.TrimSpace(spaces.ReplaceAllString(b.String(), " "))
	return s
}

func wantAttrs(t *testing.T, n *html.Node, want map[string]string) {
	t.Helper()
	if n == nil {
		t.Errorf("element missing (want %v)", want)
		return
	}
	for k, v := range want {
		if got := attr(n, k); got != v {
			t.Errorf("<%s id=%q> %s=%q, want %q", n.Data, attr(n, "id"), k, got, v)
		}
	}
}

func wantHidden(t *testing.T, doc *html.Node, name, value string) {
	t.Helper()
	n := find(doc, func(n *html.Node) bool {
		return isEl(n, "input") && attr(n, "type") == "hidden" && attr(n, "name") == name
	})
	if n == nil || attr(n, "value") != value {
		t.Errorf("hidden input %s=%q missing", name, value)
	}
}

func wantLink(t *testing.T, doc *html.Node, text, href string) {
	t.Helper()
	for _, a := range findAll(doc, func(n *html.Node) bool { return isEl(n, "a") }) {
		if textOf(a) == text {
			if attr(a, "href") != href {
				t.Errorf("link %q href=%q, want %q", text, attr(a, "href"), href)
			}
			return
		}
	}
	t.Errorf("link %q missing", text)
}

func TestLogoutPage(t *testing.T) {
	r := newRenderer(t)
	var buf bytes.Buffer
	err := r.Render(&buf, "logout", LogoutData{
		Layout: Layout{Title: "Выход", CSRFToken: "tok"}, Action: "/logout",
		RedirectURI: "https://online.astral.ru/?a=<b>", Sig: "s1",
	})
	if err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"Выйти из Личного кабинета?", `name="_csrf" value="tok"`,
		`name="post_logout_redirect_uri" value="https://online.astral.ru/?a=&lt;b&gt;"`, `name="sig" value="s1"`, ">Выйти</button>"} {
		if !strings.Contains(page, want) {
			t.Errorf("logout page lacks %q", want)
		}
	}
}
