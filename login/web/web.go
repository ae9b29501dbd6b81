package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Layout is embedded in every page's data.
type Layout struct {
	Title     string // <title>, e.g. "Вход в Астрал.Отчет"
	CSRFToken string // hidden input "_csrf" on every form
	Refresh   string // optional meta refresh, "3;url=/path": a page that moves on by itself
}

// LoginData is the sign-in page.
type LoginData struct {
	Layout
	ClientName  string            // "Астрал.Отчет"; empty → heading "Вход в Личный кабинет"
	Action      string            // form POST URL (includes ?authRequestID=…)
	Mode        string            // "phone" or "email"; anything else renders as "phone"
	SwitchURL   string            // link of "По email" (phone mode) / "По телефону" (email mode); shown only when set
	Login       string            // value to prefill (phone as typed or email)
	Error       string            // a Russian sentence shown above the form with role="alert"
	FieldErrors map[string]string // "login", "password" → Russian sentence shown under that field
	RegisterURL string            // "Нет аккаунта? Регистрация" shown only when set
	CodeURL     string            // "У меня есть код" shown only when set
	ForgotURL   string            // "Забыли пароль?" shown only when set
	Upstreams   []UpstreamLink    // "или авторизуйтесь через" block shown only when non-empty
	Link        string            // hidden field "link": a pending upstream link to make after the sign-in
	LinkTitle   string            // what it links ("Telegram"): a notice above the form when set
}

// UpstreamLink is one button of the "или авторизуйтесь через" block, e.g.
// {"Сертификат", "/login/certificate?…"}, {"госуслуги", …}, {"Telegram", …}.
// Known names ("Сертификат", "госуслуги", "Telegram", "Email / Тел") get an icon.
type UpstreamLink struct{ Name, URL string }

// ErrorData is a Russian error page (4xx/5xx): heading, one sentence,
// optional link back (shown only when BackURL is set; BackText defaults to
// "Вернуться").
type ErrorData struct {
	Layout
	Heading  string
	Message  string
	BackURL  string
	BackText string
}

// Renderer renders the pages from the embedded templates, parsed once at start.
// It is safe for concurrent use.
type Renderer struct {
	pages map[string]*template.Template
	now   func() time.Time
}

// NewRenderer parses every page template with the shared layout.
func NewRenderer() (*Renderer, error) {
	r := &Renderer{pages: map[string]*template.Template{}, now: time.Now}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	var shared, pages []string
	for _, f := range files {
		base := path.Base(f)
		if base == "layout.html" || strings.HasPrefix(base, "_") {
			shared = append(shared, f)
		} else {
			pages = append(pages, f)
		}
	}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		t, err := template.New(name).Funcs(r.funcs(name)).ParseFS(templateFS, append(append([]string{}, shared...), p)...)
		if err != nil {
			return nil, fmt.Errorf("web: parse page %q: %w", name, err)
		}
		if t.Lookup("layout") == nil || t.Lookup("content") == nil {
			return nil, fmt.Errorf("web: page %q: missing \"layout\" or \"content\" template", name)
		}
		r.pages[name] = t
	}
	return r, nil
}

// Pages lists the names of the pages the Renderer knows, sorted.
func (r *Renderer) Pages() []string {
	names := make([]string, 0, len(r.pages))
	for n := range r.pages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Render writes page name ("login", "error", "account") with data; the caller
// sets the status code before. The page is rendered into a buffer first, so on
// error nothing is written to w.
func (r *Renderer) Render(w io.Writer, name string, data any) error {
	t, ok := r.pages[name]
	if !ok {
		return fmt.Errorf("web: unknown page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("web: render %q: %w", name, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

func (r *Renderer) funcs(page string) template.FuncMap {
	return template.FuncMap{
		"page":    func() string { return page },
		"year":    func() int { return r.now().Year() },
		"asset":   assetURL,
		"iconFor": upstreamIcon,
		"contactField": func(f ContactFields, err string) contactField {
			return contactField{Fields: f, Error: err}
		},
		"upstreams": func(title string, links []UpstreamLink) upstreams {
			return upstreams{Title: title, Links: links}
		},
	}
}

// upstreams is what the shared "upstreams" template gets: the other ways in under
// their heading ("или авторизуйтесь через"), shown only when there are any.
type upstreams struct {
	Title string
	Links []UpstreamLink
}

// contactField is what the shared "contact-field" template gets.
type contactField struct {
	Fields ContactFields
	Error  string
}

// upstreamIcon maps a known upstream name to the id of its icon in the
// "icon" template ("" when there is none).
func upstreamIcon(name string) string {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "сертификат", "электронная подпись":
		return "key"
	case "госуслуги", "гос услуги", "gosuslugi", "esia":
		return "gov"
	case "telegram", "телеграм":
		return "plane"
	case "email / тел", "email", "телефон", "email / телефон":
		return "mail"
	}
	return ""
}

// ---- static assets ----

type asset struct {
	body  []byte
	ctype string
	etag  string
	hash  string
}

var assets = loadAssets()

var contentTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
}

func loadAssets() map[string]*asset {
	m := map[string]*asset{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			ctype = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:])[:12]
		m[strings.TrimPrefix(p, "static/")] = &asset{body: body, ctype: ctype, etag: `"` + h + `"`, hash: h}
		return nil
	})
	if err != nil {
		panic("web: embedded static assets: " + err.Error())
	}
	return m
}

// assetURL is the template function "asset": the absolute URL of a static
// file with its content hash, e.g. /static/app.css?v=1a2b3c4d5e6f.
func assetURL(name string) (string, error) {
	a, ok := assets[name]
	if !ok {
		return "", fmt.Errorf("web: unknown static asset %q", name)
	}
	return "/static/" + name + "?v=" + a.hash, nil
}

// Static serves the embedded /static/ assets (css, js, svg) with long cache
// headers. Mount it at /static/ without stripping the prefix
// (mux.Handle("/static/", web.Static()) or echo's e.GET("/static/*",
// echo.WrapHandler(web.Static()))); a request path without the prefix is
// accepted too. Unknown files and directories are 404; methods other than
// GET and HEAD are 405.
func Static() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		name = strings.TrimPrefix(name, "static/")
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}

// LogoutData is the page that confirms a logout a product started without an
// id_token_hint.
type LogoutData struct {
	Layout
	Action      string // POST form URL
	RedirectURI string // the product's verified post-logout page, or empty
	Sig         string // its signature, posted back with it
}

// ContactFields is the phone-or-email field shared by the forms that ask for one.
type ContactFields struct {
	Mode      string // "phone" or "email"
	SwitchURL string // "По email" / "По телефону": the same page in the other mode
	Login     string // the value typed
}

// RegisterData is the registration page.
type RegisterData struct {
	Layout
	ContactFields
	Action      string
	Error       string
	FieldErrors map[string]string // "login", "password"
	LoginURL    string            // "Уже создан? Войти"
	Upstreams   []UpstreamLink    // "или зарегистрируйтесь через" block shown only when non-empty
}

// ContactData asks for a phone or email: "У меня есть код", "Забыли пароль?".
type ContactData struct {
	Layout
	ContactFields
	Heading     string
	Lead        string
	Action      string
	Button      string
	Error       string
	FieldErrors map[string]string // "login"
	BackURL     string
	BackText    string
}

// ConfirmData is the page that asks for the code sent to a phone or email.
type ConfirmData struct {
	Layout
	Heading      string // "Подтвердите телефон" / "Подтвердите email" / "Введите код"
	Destination  string // masked: "+7 (910) ***-**-99"
	Action       string // POST the code
	Flow         string // hidden field
	ResendAction string // POST for a new code
	ResendIn     int    // seconds until a new code may be sent
	Button       string // "Подтвердить"
	Error        string // next to the code field
	Notice       string // e.g. "Новый код отправлен"
	BackURL      string // "← Вернуться к началу регистрации"
	BackText     string
}

// NewPasswordData asks for a new password after a reset code.
type NewPasswordData struct {
	Layout
	Action      string
	Grant       string // hidden field: the reset permission
	Error       string
	FieldErrors map[string]string // "password"
}

// Link is one link or button of a notice.
type Link struct {
	Text    string
	URL     string
	Primary bool
}

// NoticeData is a page that reports an outcome ("Телефон подтвержден!") with links on.
type NoticeData struct {
	Layout
	Heading string
	Message string
	Success bool // a check mark instead of a warning sign
	Links   []Link
}
