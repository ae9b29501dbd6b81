package login

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/page"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// Authorizer is the provider as the login app sees it.
type Authorizer interface {
	PendingRequest(ctx context.Context, id string) (*provider.PendingRequest, error)
	Complete(ctx context.Context, id string, a storage.Authentication) error
	CallbackURL(ctx context.Context, id string) string
	Fail(w http.ResponseWriter, r *http.Request, id string, e *oidc.Error)
	VerifyLogoutRedirect(uri, sig string) bool
}

// PasswordAuthenticator checks a contact and a password (login/password).
type PasswordAuthenticator interface {
	Authenticate(ctx context.Context, who contact.Contact, password, ip string) (*storage.User, error)
}

// Events records what happened to an account, for its sign-in history.
type Events interface {
	RecordEvent(ctx context.Context, e *storage.AuditEvent) error
}

// Metrics counts sign-ins.
type Metrics interface {
	SignIn(method, result string)
}

// Paths of the login app's pages.
const (
	PathLogin     = "/login"
	PathLogout    = "/logout"
	PathLoggedOut = "/logged-out"
	PathAccount   = "/account"
	// PathMethods is the cabinet's "Способы входа", where every linking ends.
	PathMethods = PathAccount + "/methods"
)

// Config is what the login app is built from.
type Config struct {
	Authorizer Authorizer
	Passwords  PasswordAuthenticator
	Sessions   *session.Manager
	Events     Events
	Metrics    Metrics
	Renderer   *web.Renderer
	Codes      Codes
	Accounts   Accounts
	Hasher     PasswordHasher
	// Parts add pages of their own (the cabinet, upstream sign-in, the certificate),
	// and the buttons of those that are Buttons, in this order.
	Parts  []Part
	Secure bool // https: Secure cookies
	// OnLogout is called after a session was ended, to deliver back-channel logouts soon.
	OnLogout func()
}

// App is the login app.
type App struct {
	authz     Authorizer
	passwords PasswordAuthenticator
	sessions  *session.Manager
	events    Events
	metrics   Metrics
	view      *page.Pages
	codes     Codes
	accounts  Accounts
	hasher    PasswordHasher
	parts     []Part
	secure    bool
	onLogout  func()
}

// New makes the login app.
func New(cfg Config) *App {
	return &App{
		authz: cfg.Authorizer, passwords: cfg.Passwords, sessions: cfg.Sessions, events: cfg.Events,
		metrics: cfg.Metrics, view: page.New(cfg.Renderer), secure: cfg.Secure, onLogout: cfg.OnLogout,
		codes: cfg.Codes, accounts: cfg.Accounts, hasher: cfg.Hasher, parts: cfg.Parts,
	}
}

// Register mounts the pages on e.
func (a *App) Register(e *echo.Echo) {
	csrf := middleware.CSRFWithConfig(middleware.CSRFConfig{
		TokenLookup:    "form:_csrf",
		ContextKey:     page.CSRFContextKey,
		CookieName:     "idp_csrf",
		CookiePath:     "/",
		CookieHTTPOnly: true,
		CookieSecure:   a.secure,
		CookieSameSite: http.SameSiteLaxMode,
		ErrorHandler: func(err error, c echo.Context) error {
			slog.WarnContext(c.Request().Context(), "CSRF check failed", "err", err)
			return a.errorPage(c, http.StatusForbidden, "Страница устарела",
				"Форма устарела или открыта с другого сайта. Обновите страницу и попробуйте снова.", "")
		},
	})
	g := e.Group("", csrf, noStore)
	g.GET(PathLogin, a.showLogin)
	g.POST(PathLogin, a.submitLogin)
	g.GET(PathLogout, a.showLogout)
	g.POST(PathLogout, a.submitLogout)
	g.GET(PathLoggedOut, a.showLoggedOut)
	g.GET(PathRegister, a.showRegister)
	g.POST(PathRegister, a.submitRegister)
	g.GET(PathRegister+"/confirm", a.showRegisterConfirm)
	g.POST(PathRegister+"/confirm", a.submitRegisterConfirm)
	g.POST(PathRegister+"/resend", a.submitRegisterResend)
	for _, cf := range []codeFlow{signInByCode, passwordReset} {
		g.GET(cf.base, a.showContactForm(cf))
		g.POST(cf.base, a.submitContactForm(cf))
		g.GET(cf.base+"/confirm", a.showCodeConfirm(cf))
		g.POST(cf.base+"/confirm", a.submitCodeConfirm(cf))
		g.POST(cf.base+"/resend", a.submitCodeResend(cf))
	}
	g.POST(PathReset+"/password", a.submitNewPassword)
	for _, p := range a.parts {
		p.Register(g, a)
	}
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusFound, PathAccount) })
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", web.Static())))
}

// noStore keeps pages with personal data and CSRF tokens out of caches.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return next(c)
	}
}

func csrfToken(c echo.Context) string { return page.CSRF(c) }

func (a *App) render(c echo.Context, status int, name string, data any) error {
	return a.view.Render(c, status, name, data)
}

func (a *App) errorPage(c echo.Context, status int, heading, message, back string) error {
	return a.view.Error(c, status, heading, message, back)
}

func (a *App) internalError(c echo.Context, what string, err error) error {
	return a.view.Internal(c, what, err)
}

// ErrorPage renders the Russian error page for echo's error handler (unknown pages,
// oversized requests).
func (a *App) ErrorPage(c echo.Context, status int) error {
	switch status {
	case http.StatusForbidden:
		// echo's CSRF middleware refuses a cross-site form post (Sec-Fetch-Site) here.
		return a.errorPage(c, status, "Страница устарела",
			"Форма устарела или открыта с другого сайта. Обновите страницу и попробуйте снова.", "")
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return a.errorPage(c, http.StatusNotFound, "Страница не найдена", "Проверьте адрес страницы.", PathAccount)
	case http.StatusRequestEntityTooLarge:
		return a.errorPage(c, status, "Слишком большой запрос", "Данные формы слишком велики.", "")
	case http.StatusTooManyRequests:
		return a.errorPage(c, status, "Слишком много запросов", "Подождите немного и попробуйте снова.", "")
	case http.StatusBadRequest:
		return a.errorPage(c, status, "Неверный запрос", "Запрос не удалось прочитать. Вернитесь назад и попробуйте снова.", "")
	}
	return a.errorPage(c, http.StatusInternalServerError, "Что-то пошло не так",
		"Не удалось выполнить действие. Попробуйте еще раз через минуту.", "")
}

func (a *App) kickLogout() {
	if a.onLogout != nil {
		a.onLogout()
	}
}
