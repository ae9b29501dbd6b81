package account

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login"
	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/page"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

// Paths of the cabinet's pages and forms.
const (
	Path         = login.PathAccount // Профиль
	PathPassword = Path + "/password"
	PathMethods  = login.PathMethods
	PathSessions = Path + "/sessions"
	PathHistory  = Path + "/history"
	PathServices = Path + "/services"

	pathProfile       = Path + "/profile"
	pathContact       = Path + "/contact"
	pathUnlink        = PathMethods + "/unlink"
	pathEndSession    = PathSessions + "/end"
	pathEndOthers     = PathSessions + "/end-others"
	pathRevoke        = PathServices + "/revoke"
	pathReauth        = Path + "/reauth"
	pathReauthCode    = pathReauth + "/code"
	pathReauthConfirm = pathReauth + "/confirm"
	pathReauthResend  = pathReauth + "/resend"
)

// Store is what the cabinet needs from storage.
type Store interface {
	UserByID(ctx context.Context, id string) (*storage.User, error)
	UserByPhone(ctx context.Context, phone string) (*storage.User, error)
	UserByEmail(ctx context.Context, email string) (*storage.User, error)
	UpdateUser(ctx context.Context, id string, fn func(u *storage.User) error) (*storage.User, error)

	UserSessions(ctx context.Context, userID string) ([]storage.Session, error)
	SessionClients(ctx context.Context, sessionID string) ([]string, error)
	EndSession(ctx context.Context, id string) (*storage.Session, error)
	EndUserSessions(ctx context.Context, userID, keep string) ([]storage.Session, error)
	EndOtherSessions(ctx context.Context, userID, keep string) ([]storage.Session, error)

	ListClients(ctx context.Context) ([]storage.Client, error)
	UserClients(ctx context.Context, userID string) ([]storage.UserClient, error)
	RevokeUserClientTokens(ctx context.Context, userID, clientID string) error

	UserIdentities(ctx context.Context, userID string) ([]storage.Identity, error)
	UserCertificates(ctx context.Context, userID string) ([]storage.Certificate, error)
	UnlinkIdentity(ctx context.Context, userID, identityID string) error

	UserEventsPage(ctx context.Context, userID string, offset, limit int) ([]storage.AuditEvent, int64, error)

	CreateCode(ctx context.Context, c *storage.OneTimeCode) error
	CodeByID(ctx context.Context, id string) (*storage.OneTimeCode, error)
	ConsumeCode(ctx context.Context, id, purpose string) (*storage.OneTimeCode, error)

	Hit(ctx context.Context, key string, window time.Duration) (int64, error)
	Count(ctx context.Context, key string, window time.Duration) (int64, error)
	ResetLimit(ctx context.Context, key string, window time.Duration) error

	Now() time.Time
}

// Hasher hashes new passwords and checks the current one (login/password).
type Hasher interface {
	Hash(password string) (string, error)
	Verify(password, encoded string) (bool, error)
}

// LinkOption is an upstream connector a person may link ("Привязать Telegram").
type LinkOption struct {
	ID    string // the connector's id: "telegram"
	Title string // its name on the pages: "Telegram"
	// URL starts linking; empty is the upstream sign-in's link start of ID.
	URL string
	// Many offers the option even when one identity of ID is linked: a person may
	// link several certificates, but one Telegram account.
	Many bool
}

// Limits bound what a signed-in person (or whoever holds their session) may try.
type Limits struct {
	Window           time.Duration
	PasswordFailures int64 // wrong current passwords in a window
	ContactChecks    int64 // new phones and emails tried in an hour
}

// DefaultLimits match the sign-in page's: plenty of typos, few guesses.
var DefaultLimits = Limits{Window: 15 * time.Minute, PasswordFailures: 10, ContactChecks: 10}

// Config is what the cabinet is built from.
type Config struct {
	Store  Store
	Codes  login.Codes
	Hasher Hasher
	// Links are the configured connectors a person may link; nil offers none.
	Links []LinkOption
	// ReauthAfter is how old a sign-in may be for a sensitive change; 10 minutes when zero.
	ReauthAfter time.Duration
	Limits      Limits // zero: DefaultLimits
	// Location is the time zone of the pages; Moscow time when nil.
	Location *time.Location
}

// Part is the cabinet, a part of the login app.
type Part struct {
	store       Store
	codes       login.Codes
	hasher      Hasher
	links       []LinkOption
	reauthAfter time.Duration
	limits      Limits
	loc         *time.Location
	host        login.Host
}

var _ login.Part = (*Part)(nil)

// New makes the cabinet.
func New(cfg Config) *Part {
	p := &Part{store: cfg.Store, codes: cfg.Codes, hasher: cfg.Hasher, links: cfg.Links,
		reauthAfter: cfg.ReauthAfter, limits: cfg.Limits, loc: cfg.Location}
	if p.reauthAfter <= 0 {
		p.reauthAfter = 10 * time.Minute
	}
	if p.limits == (Limits{}) {
		p.limits = DefaultLimits
	}
	if p.loc == nil {
		p.loc = moscow()
	}
	return p
}

// moscow is Europe/Moscow, or its fixed UTC+3 (no DST since 2014) where the system
// has no time zone database.
func moscow() *time.Location {
	if loc, err := time.LoadLocation("Europe/Moscow"); err == nil {
		return loc
	}
	return time.FixedZone("MSK", 3*60*60)
}

// Register implements login.Part: the routes, on the login app's CSRF-protected group.
func (p *Part) Register(g *echo.Group, host login.Host) {
	p.host = host
	g.GET(Path, p.signedIn(p.showProfile))
	g.POST(pathProfile, p.signedIn(p.submitProfile))
	g.POST(pathContact, p.signedIn(p.submitContact))
	g.GET(pathContact+"/confirm", p.signedIn(p.showContactConfirm))
	g.POST(pathContact+"/confirm", p.signedIn(p.submitContactConfirm))
	g.POST(pathContact+"/resend", p.signedIn(p.submitContactResend))
	g.GET(PathPassword, p.signedIn(p.showPassword))
	g.POST(PathPassword, p.signedIn(p.submitPassword))
	g.GET(PathMethods, p.signedIn(p.showMethods))
	g.POST(pathUnlink, p.signedIn(p.submitUnlink))
	g.GET(PathSessions, p.signedIn(p.showSessions))
	g.POST(pathEndSession, p.signedIn(p.submitEndSession))
	g.POST(pathEndOthers, p.signedIn(p.submitEndOthers))
	g.GET(PathHistory, p.signedIn(p.showHistory))
	g.GET(PathServices, p.signedIn(p.showServices))
	g.POST(pathRevoke, p.signedIn(p.submitRevoke))
	g.POST(pathReauth, p.signedIn(p.submitReauth))
	g.POST(pathReauthCode, p.signedIn(p.submitReauthCode))
	g.GET(pathReauthConfirm, p.signedIn(p.showReauthConfirm))
	g.POST(pathReauthConfirm, p.signedIn(p.submitReauthConfirm))
	g.POST(pathReauthResend, p.signedIn(p.submitReauthResend))
}

// visit is one request of a signed-in person.
type visit struct {
	sess *storage.Session
	user *storage.User
}

// signedIn loads the session; without one the browser goes to the sign-in page, which
// comes back to the cabinet.
func (p *Part) signedIn(h func(c echo.Context, v *visit) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		sess, user, err := p.host.Sessions().Current(c.Request().Context(), c.Request())
		if err != nil {
			return p.internal(c, "load session", err)
		}
		if sess == nil {
			status := http.StatusFound
			if c.Request().Method != http.MethodGet {
				status = http.StatusSeeOther
			}
			return c.Redirect(status, login.PathLogin)
		}
		return h(c, &visit{sess: sess, user: user})
	}
}

func (p *Part) pages() *page.Pages { return p.host.Pages() }

func (p *Part) render(c echo.Context, status int, name string, data any) error {
	return p.pages().Render(c, status, name, data)
}

func (p *Part) internal(c echo.Context, what string, err error) error {
	return p.pages().Internal(c, what, err)
}

func (p *Part) now() time.Time { return p.store.Now() }

// fresh reports whether the session's sign-in is recent enough for a sensitive change.
func (p *Part) fresh(v *visit) bool {
	return p.now().Sub(v.sess.AuthTime) <= p.reauthAfter
}

// section names the cabinet's pages, in the navigation's order.
type section struct {
	path, icon, text string
}

var sections = []section{
	{Path, "user", "Профиль"},
	{PathPassword, "lock", "Пароль"},
	{PathMethods, "login", "Способы входа"},
	{PathSessions, "devices", "Активные сеансы"},
	{PathHistory, "history", "История входов"},
	{PathServices, "apps", "Мои сервисы"},
}

// Outcomes of a change, shown after its redirect (?done=…): the key names one of
// these fixed sentences, so a link cannot put words on the page. login/upstream may
// end a link at /account/methods?done=linked.
var notices = map[string]string{
	"profile":  "Данные сохранены",
	"phone":    "Телефон изменен и подтвержден",
	"email":    "Email изменен и подтвержден",
	"password": "Пароль изменен. Другие сеансы входа завершены",
	"set":      "Пароль задан. Другие сеансы входа завершены",
	"linked":   "Способ входа привязан",
	"unlinked": "Способ входа отвязан",
	"ended":    "Сеанс завершен",
	"others":   "Все другие сеансы завершены",
	"revoked":  "Доступ сервиса отозван",
}

// cabinet is the frame of a cabinet page: path is the section's page.
func (p *Part) cabinet(c echo.Context, v *visit, path, lead string) web.Cabinet {
	cab := web.Cabinet{
		Layout:       web.Layout{CSRFToken: page.CSRF(c)},
		Lead:         lead,
		LogoutAction: login.PathLogout,
		Notice:       notices[c.QueryParam("done")],
	}
	for _, s := range sections {
		cab.Nav = append(cab.Nav, web.NavItem{Icon: s.icon, Text: s.text, URL: s.path, Current: s.path == path})
		if s.path == path {
			cab.Heading = s.text
			cab.Title = s.text + " — Личный кабинет"
		}
	}
	cab.UserName, cab.UserContact = displayName(v.user)
	return cab
}

// displayName is how the cabinet names the person: the full name with the phone or
// email under it, or the phone or email alone.
func displayName(u *storage.User) (name, sub string) {
	var parts []string
	for _, s := range []string{u.FamilyName, u.GivenName, u.MiddleName} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	reach := ""
	switch {
	case u.Phone != nil:
		reach = contact.FormatPhone(*u.Phone)
	case u.Email != nil:
		reach = *u.Email
	}
	if len(parts) == 0 {
		if reach == "" {
			return "Ваш аккаунт", ""
		}
		return reach, ""
	}
	return strings.Join(parts, " "), reach
}

// done redirects to a page after a change, with the sentence that reports it.
func done(c echo.Context, path, key string) error {
	return c.Redirect(http.StatusSeeOther, path+"?done="+key)
}

// record appends an audit event through the login app.
func (p *Part) record(c echo.Context, e *storage.AuditEvent) { p.host.Record(c, e) }

// formatTime writes an instant as the pages show it: 22.11.2026 14:05, Moscow time.
func (p *Part) formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(p.loc).Format("02.01.2006 15:04")
}

// formatDate writes the day of an instant: 22.11.2026, Moscow time.
func (p *Part) formatDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(p.loc).Format("02.01.2006")
}
