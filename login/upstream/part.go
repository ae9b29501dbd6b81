package upstream

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login"
	"github.com/astral/idp/login/binding"
	"github.com/astral/idp/login/page"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// Store is what upstream sign-in needs from storage.
type Store interface {
	CreateCode(ctx context.Context, c *storage.OneTimeCode) error
	CodeByID(ctx context.Context, id string) (*storage.OneTimeCode, error)
	ConsumeCode(ctx context.Context, id, purpose string) (*storage.OneTimeCode, error)
	IdentityBySubject(ctx context.Context, connector, subject string) (*storage.Identity, error)
	LinkIdentity(ctx context.Context, id *storage.Identity) error
	RefreshIdentity(ctx context.Context, id, displayName, claims string) error
	UserByID(ctx context.Context, id string) (*storage.User, error)
	UserByPhone(ctx context.Context, phone string) (*storage.User, error)
	UserByEmail(ctx context.Context, email string) (*storage.User, error)
	CreateUserWithIdentity(ctx context.Context, u *storage.User, consents []storage.Consent, id *storage.Identity) error
	Hit(ctx context.Context, key string, window time.Duration) (int64, error)
	Now() time.Time
}

// Paths and names of upstream sign-in.
const (
	// PathPrefix is where the routes live: {PathPrefix}/{id}/start, /callback.
	PathPrefix = "/upstream"
	// CookieName binds an upstream attempt (and a pending link) to the browser.
	CookieName = "idp_upstream"
	// Purposes of the storage.OneTimeCode rows.
	PurposeState       = "upstream"
	PurposePendingLink = "pending-link"
	// Modes of start.
	ModeSignIn   = "signin"
	ModeLink     = "link"
	ModeRegister = "register" // only for a connector that is a Registrar
)

// DefaultTTL is how long an upstream attempt, and a pending link, stays usable.
const DefaultTTL = 10 * time.Minute

// DefaultStartLimit is how many upstream sign-ins one IP address may start in
// StartWindow: every start writes a row.
const (
	DefaultStartLimit = 60
	StartWindow       = 10 * time.Minute
)

// Config is what the part is built from.
type Config struct {
	// Connectors are the configured upstreams, in the order of their buttons.
	Connectors []Connector
	Store      Store
	// BaseURL is the issuer: callbacks are {BaseURL}/upstream/{id}/callback.
	BaseURL string
	Secure  bool          // https: the binding cookie is Secure
	TTL     time.Duration // 0 is DefaultTTL
	// StartLimit is the starts one IP address may make in StartWindow; 0 is
	// DefaultStartLimit.
	StartLimit int
}

// Part is upstream sign-in and linking, a part of the login app.
type Part struct {
	connectors []Connector
	byID       map[string]Connector
	store      Store
	base       string
	secure     bool
	ttl        time.Duration
	limit      int
	host       login.Host
}

var (
	_ login.Part         = (*Part)(nil)
	_ login.PendingLinks = (*Part)(nil)
	_ login.Buttons      = (*Part)(nil)
)

// New makes the part. Connector ids must be unique.
func New(cfg Config) (*Part, error) {
	p := &Part{byID: map[string]Connector{}, store: cfg.Store, base: cfg.BaseURL, secure: cfg.Secure, ttl: cfg.TTL}
	if p.ttl <= 0 {
		p.ttl = DefaultTTL
	}
	if p.limit = cfg.StartLimit; p.limit <= 0 {
		p.limit = DefaultStartLimit
	}
	for _, c := range cfg.Connectors {
		id := c.ID()
		if id == "" || len(id) > 32 || url.PathEscape(id) != id {
			return nil, fmt.Errorf("upstream connector id %q: want a short name of letters and digits", id)
		}
		if _, dup := p.byID[id]; dup {
			return nil, fmt.Errorf("upstream connector %q configured twice", id)
		}
		p.byID[id] = c
		p.connectors = append(p.connectors, c)
	}
	return p, nil
}

// Register implements login.Part.
func (p *Part) Register(g *echo.Group, host login.Host) {
	p.host = host
	g.GET(PathPrefix+"/:id/start", p.start)
	g.GET(PathPrefix+"/:id/callback", p.callback)
}

// Connectors lists the configured upstreams, for the cabinet's link buttons.
func (p *Part) Connectors() []Connector { return append([]Connector(nil), p.connectors...) }

// Connector returns the configured upstream id, or nil.
func (p *Part) Connector(id string) Connector { return p.byID[id] }

// LinkURL is where a signed-in person links an identity of connector id.
func LinkURL(id string) string {
	return PathPrefix + "/" + url.PathEscape(id) + "/start?" + url.Values{"mode": {ModeLink}}.Encode()
}

// SignInURL is where sign-in through connector id starts, for authRequestID (may be empty).
func SignInURL(id, authRequestID string) string {
	q := url.Values{"mode": {ModeSignIn}}
	if authRequestID != "" {
		q.Set("authRequestID", authRequestID)
	}
	return PathPrefix + "/" + url.PathEscape(id) + "/start?" + q.Encode()
}

// SignInButtons implements login.Buttons: one per configured upstream.
func (p *Part) SignInButtons(authRequestID string) []web.UpstreamLink {
	if len(p.connectors) == 0 {
		return nil
	}
	out := make([]web.UpstreamLink, 0, len(p.connectors))
	for _, c := range p.connectors {
		out = append(out, web.UpstreamLink{Name: c.Title(), URL: SignInURL(c.ID(), authRequestID)})
	}
	return out
}

// RegisterButtons implements login.Buttons: one per configured upstream that can
// open an account (a Registrar).
func (p *Part) RegisterButtons(authRequestID string) []web.UpstreamLink {
	var out []web.UpstreamLink
	for _, c := range p.connectors {
		if _, ok := c.(Registrar); ok {
			out = append(out, web.UpstreamLink{Name: c.Title(), URL: RegisterURL(c.ID(), authRequestID)})
		}
	}
	return out
}

// attempt is what start remembers for the callback: the payload of the state's row.
type attempt struct {
	Connector     string `json:"connector"`
	Mode          string `json:"mode"`
	Nonce         string `json:"nonce"`
	Verifier      string `json:"verifier"`
	AuthRequestID string `json:"auth_request_id,omitempty"`
	UserID        string `json:"user_id,omitempty"` // link: the account of the session
	Binding       string `json:"binding"`           // hash of the browser's binding cookie
}

// pendingLink is a verified identity that waits for a sign-in to be linked.
type pendingLink struct {
	Connector   string         `json:"connector"`
	Subject     string         `json:"subject"`
	DisplayName string         `json:"display_name,omitempty"`
	Claims      map[string]any `json:"claims,omitempty"`
	Binding     string         `json:"binding"`
}

func (p *Part) callbackURL(id string) string {
	return p.base + PathPrefix + "/" + url.PathEscape(id) + "/callback"
}

// start: GET /upstream/:id/start?mode=signin|link&authRequestID=…
func (p *Part) start(c echo.Context) error {
	ctx := c.Request().Context()
	conn := p.byID[c.Param("id")]
	if conn == nil {
		return p.pages().Error(c, http.StatusNotFound, "Страница не найдена", "Проверьте адрес страницы.", login.PathAccount)
	}
	mode := c.QueryParam("mode")
	if mode == "" {
		mode = ModeSignIn
	}
	a := attempt{Connector: conn.ID(), Mode: mode}
	switch mode {
	case ModeSignIn, ModeRegister:
		if _, ok := conn.(Registrar); mode == ModeRegister && !ok {
			p.refused(c, conn, "registration through a connector that cannot register", nil)
			return p.pages().Error(c, http.StatusBadRequest, "Неверная ссылка",
				"Регистрация через "+conn.Title()+" недоступна. Зарегистрируйтесь по телефону или email.", login.PathRegister)
		}
		a.AuthRequestID = c.QueryParam("authRequestID")
		if a.AuthRequestID != "" && (len(a.AuthRequestID) > 64 || p.host.PendingRequest(ctx, a.AuthRequestID) == nil) {
			p.refused(c, conn, "stale authorization request", nil)
			return p.pages().Error(c, http.StatusBadRequest, "Ссылка для входа устарела",
				"Вернитесь в приложение и начните вход заново.", login.PathAccount)
		}
	case ModeLink:
		sess, u, err := p.host.Sessions().Current(ctx, c.Request())
		if err != nil {
			return p.pages().Internal(c, "load session", err)
		}
		if sess == nil {
			return c.Redirect(http.StatusFound, login.PathLogin)
		}
		a.UserID = u.ID
	default:
		p.refused(c, conn, "unknown mode "+fmt.Sprintf("%.20q", mode), nil)
		return p.pages().Error(c, http.StatusBadRequest, "Неверная ссылка", "Вернитесь назад и попробуйте снова.", login.PathLogin)
	}
	if n, err := p.store.Hit(ctx, "upstream:start:ip:"+c.RealIP(), StartWindow); err != nil {
		return p.pages().Internal(c, "count upstream starts", err)
	} else if n > int64(p.limit) {
		p.refused(c, conn, "too many starts from this address", nil)
		return p.pages().Error(c, http.StatusTooManyRequests, "Слишком много попыток",
			"Подождите несколько минут и попробуйте снова.", p.backURL(a))
	}
	// The state is a random UUID (version 4): ESIA accepts no other form, and it is
	// as unguessable (122 random bits) as any other connector needs.
	state, nonce := NewUUID(), storage.NewSecret()
	a.Nonce, a.Verifier = nonce, newVerifier()
	dest, err := conn.LoginURL(Start{State: state, Nonce: nonce, Verifier: a.Verifier, RedirectURI: p.callbackURL(conn.ID())})
	if err != nil {
		p.refused(c, conn, "cannot start", err)
		return p.pages().Error(c, http.StatusServiceUnavailable, conn.Title()+" недоступен",
			"Не удалось связаться с "+conn.Title()+". Попробуйте позже или войдите другим способом.", p.backURL(a))
	}
	binding := p.binding().Bind(c)
	a.Binding = storage.HashSecret(binding)
	payload, _ := json.Marshal(a) // strings only: always marshals
	now := p.store.Now()
	err = p.store.CreateCode(ctx, &storage.OneTimeCode{
		ID: state, Purpose: PurposeState, AuthRequestID: a.AuthRequestID, UserID: a.UserID,
		Payload: string(payload), CreatedAt: now, ExpiresAt: now.Add(p.ttl),
	})
	if err != nil {
		return p.pages().Internal(c, "create upstream state", err)
	}
	return c.Redirect(http.StatusFound, dest)
}

// callback: GET /upstream/:id/callback?state=…&code=…
func (p *Part) callback(c echo.Context) error {
	ctx := c.Request().Context()
	conn := p.byID[c.Param("id")]
	if conn == nil {
		return p.pages().Error(c, http.StatusNotFound, "Страница не найдена", "Проверьте адрес страницы.", login.PathAccount)
	}
	failed := "Вход через " + conn.Title() + " не удался"
	state := c.QueryParam("state")
	if state == "" || len(state) > 64 {
		p.refused(c, conn, "no state", nil)
		return p.pages().Error(c, http.StatusBadRequest, failed, "Ссылка неполная или устарела. Начните вход заново.", login.PathLogin)
	}
	// Used up first: whatever follows, this state never works again.
	row, err := p.store.ConsumeCode(ctx, state, PurposeState)
	if storage.IsNotFound(err) {
		p.refused(c, conn, "unknown, expired or used state", nil)
		return p.pages().Error(c, http.StatusBadRequest, failed,
			"Ссылка устарела или уже использована. Начните вход заново.", login.PathLogin)
	}
	if err != nil {
		return p.pages().Internal(c, "consume upstream state", err)
	}
	var a attempt
	if err := json.Unmarshal([]byte(row.Payload), &a); err != nil || a.Connector != conn.ID() {
		p.refused(c, conn, "state of another connector", err)
		return p.pages().Error(c, http.StatusBadRequest, failed, "Ссылка неверна. Начните вход заново.", login.PathLogin)
	}
	back := p.backURL(a)
	if !p.binding().Bound(c, a.Binding) {
		p.refused(c, conn, "browser binding cookie missing or wrong", nil)
		return p.pages().Error(c, http.StatusBadRequest, failed,
			"Вход начат в другом браузере или вкладка открыта слишком давно. Начните вход заново в этом браузере.", back)
	}
	if e := c.QueryParam("error"); e != "" {
		p.refused(c, conn, fmt.Sprintf("upstream answered error %.64q: %.200q", e, c.QueryParam("error_description")), nil)
		if e == "access_denied" {
			return p.pages().Error(c, http.StatusBadRequest, "Вход через "+conn.Title()+" отменен",
				"Вход не подтвержден в "+conn.Title()+". Попробуйте снова или войдите другим способом.", back)
		}
		return p.pages().Error(c, http.StatusBadRequest, failed,
			conn.Title()+" не подтвердил вход. Попробуйте снова или войдите другим способом.", back)
	}
	id, err := conn.HandleCallback(ctx, Start{State: state, Nonce: a.Nonce, Verifier: a.Verifier, RedirectURI: p.callbackURL(conn.ID())}, c.Request())
	if errors.Is(err, ErrUnavailable) {
		p.refused(c, conn, "upstream unavailable", err)
		return p.pages().Error(c, http.StatusBadGateway, conn.Title()+" недоступен",
			"Не удалось связаться с "+conn.Title()+". Попробуйте позже или войдите другим способом.", back)
	}
	if err == nil && (id.Subject == "" || len(id.Subject) > 255) {
		err = fmt.Errorf("subject of %d bytes", len(id.Subject))
	}
	if err != nil {
		p.refused(c, conn, "answer not verified", err)
		return p.pages().Error(c, http.StatusBadRequest, failed,
			conn.Title()+" не подтвердил вход. Попробуйте снова или войдите другим способом.", back)
	}
	id.Connector = conn.ID()
	switch a.Mode {
	case ModeLink:
		return p.link(c, conn, a, id)
	case ModeRegister:
		return p.register(c, conn, a, id)
	}
	return p.signIn(c, conn, a, id)
}

// signIn ends a sign-in through an upstream identity.
func (p *Part) signIn(c echo.Context, conn Connector, a attempt, id Identity) error {
	linked, err := p.store.IdentityBySubject(c.Request().Context(), conn.ID(), id.Subject)
	if storage.IsNotFound(err) {
		return p.offerLink(c, conn, a, id)
	}
	if err != nil {
		return p.pages().Internal(c, "load identity", err)
	}
	return p.signInLinked(c, conn, a, id, linked)
}

// signInLinked signs in the account of linked, the stored identity of id.
func (p *Part) signInLinked(c echo.Context, conn Connector, a attempt, id Identity, linked *storage.Identity) error {
	ctx := c.Request().Context()
	u, err := p.store.UserByID(ctx, linked.UserID)
	if err != nil {
		return p.pages().Internal(c, "load account of identity", err)
	}
	if u.Blocked {
		p.refused(c, conn, "account "+u.ID+" is blocked", nil)
		p.record(c, &storage.AuditEvent{UserID: u.ID, Kind: "signin_failed", Method: "fed", ClientID: p.clientOf(ctx, a.AuthRequestID),
			Detail: "blocked " + conn.ID()})
		return p.pages().Error(c, http.StatusForbidden, "Учетная запись заблокирована", "Обратитесь в службу поддержки.", "")
	}
	// Fresh data on every sign-in: a product reading the verified claims gets what the
	// upstream says today, not what it said when the identity was linked.
	claims, err := encodeClaims(id.Claims)
	if err != nil {
		return p.pages().Internal(c, "encode claims", err)
	}
	if err := p.store.RefreshIdentity(ctx, linked.ID, id.DisplayName, claims); err != nil {
		return p.pages().Internal(c, "refresh identity", err)
	}
	return p.host.FinishSignIn(c, u, session.Proof{AMR: []string{"fed"}, ACR: provider.ACR, IDP: conn.ID()}, a.AuthRequestID, "")
}

// offerLink explains that the identity is linked to no account and keeps it, for the
// person to sign in another way and link it in the same step — or, through a
// connector that can open accounts, to register with it.
func (p *Part) offerLink(c echo.Context, conn Connector, a attempt, id Identity) error {
	flowID, err := p.keepPending(c, conn, a, id)
	if err != nil {
		return p.pages().Internal(c, "create pending link", err)
	}
	slog.InfoContext(c.Request().Context(), "upstream identity not linked: offered to link after sign-in", "connector", conn.ID())
	t := conn.Title()
	links := []web.Link{
		{Text: "Войти и привязать " + t, URL: pendingLoginURL(flowID, a.AuthRequestID), Primary: true},
		{Text: "Войти без привязки", URL: plainLoginURL(a.AuthRequestID)},
	}
	if _, ok := conn.(Registrar); ok {
		links = append(links, web.Link{Text: "Зарегистрироваться через " + t, URL: RegisterURL(conn.ID(), a.AuthRequestID)})
	}
	return p.pages().Render(c, http.StatusOK, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Аккаунт " + t + " не привязан", CSRFToken: page.CSRF(c)},
		Heading: "Этот аккаунт " + t + " не привязан к Личному кабинету",
		Message: "Войдите другим способом — по паролю или по коду, — и мы сразу привяжем этот аккаунт " + t +
			": в следующий раз можно будет входить через " + t + ".",
		Links: links,
	})
}

// keepPending keeps a verified identity in a "pending-link" row bound to this browser
// and returns the row's id, for the sign-in page to link it to the account that signs in.
func (p *Part) keepPending(c echo.Context, conn Connector, a attempt, id Identity) (string, error) {
	binding := p.binding().Bind(c) // the attempt's cookie, renewed: the pending link lives as long
	payload, err := json.Marshal(pendingLink{Connector: conn.ID(), Subject: id.Subject, DisplayName: id.DisplayName,
		Claims: id.Claims, Binding: storage.HashSecret(binding)})
	if err != nil {
		return "", fmt.Errorf("encode pending link: %w", err)
	}
	now := p.store.Now()
	flow := &storage.OneTimeCode{ID: storage.NewSecret(), Purpose: PurposePendingLink, AuthRequestID: a.AuthRequestID,
		Payload: string(payload), CreatedAt: now, ExpiresAt: now.Add(p.ttl)}
	if err := p.store.CreateCode(c.Request().Context(), flow); err != nil {
		return "", err
	}
	return flow.ID, nil
}

// pendingLoginURL is the sign-in page that links pending link flowID after the sign-in.
func pendingLoginURL(flowID, authRequestID string) string {
	q := url.Values{"link": {flowID}}
	if authRequestID != "" {
		q.Set("authRequestID", authRequestID)
	}
	return login.PathLogin + "?" + q.Encode()
}

// plainLoginURL is the sign-in page for authRequestID (may be empty).
func plainLoginURL(authRequestID string) string {
	if authRequestID == "" {
		return login.PathLogin
	}
	return login.PathLogin + "?" + url.Values{"authRequestID": {authRequestID}}.Encode()
}

// link links the identity to the account of the live session that started it.
func (p *Part) link(c echo.Context, conn Connector, a attempt, id Identity) error {
	ctx := c.Request().Context()
	sess, u, err := p.host.Sessions().Current(ctx, c.Request())
	if err != nil {
		return p.pages().Internal(c, "load session", err)
	}
	if sess == nil || u.ID != a.UserID {
		p.refused(c, conn, "link without the session that started it", nil)
		return p.pages().Error(c, http.StatusUnauthorized, "Войдите в Личный кабинет",
			"Сеанс завершен. Войдите в Личный кабинет и привяжите "+conn.Title()+" снова.", login.PathLogin)
	}
	err = p.linkIdentity(c, conn, u, id)
	if errors.Is(err, errLinkedElsewhere) {
		p.refused(c, conn, "identity linked to another account", nil)
		return p.pages().Error(c, http.StatusConflict, "Аккаунт "+conn.Title()+" уже привязан", linkedElsewhere(conn), login.PathMethods)
	}
	if err != nil {
		return p.pages().Internal(c, "link identity", err)
	}
	return c.Redirect(http.StatusSeeOther, login.PathMethods)
}

var errLinkedElsewhere = errors.New("identity linked to another account")

func linkedElsewhere(conn Connector) string {
	return "Этот аккаунт " + conn.Title() + " уже привязан к другому Личному кабинету. Войдите в тот кабинет и отвяжите его там."
}

// linkIdentity links id to u and records it; an identity u holds already is fine, one
// of another account is errLinkedElsewhere.
func (p *Part) linkIdentity(c echo.Context, conn Connector, u *storage.User, id Identity) error {
	ctx := c.Request().Context()
	claims, err := encodeClaims(id.Claims)
	if err != nil {
		return err
	}
	err = p.store.LinkIdentity(ctx, &storage.Identity{UserID: u.ID, Connector: conn.ID(), Subject: id.Subject,
		DisplayName: id.DisplayName, Claims: claims})
	if storage.IsConflict(err) {
		have, lerr := p.store.IdentityBySubject(ctx, conn.ID(), id.Subject)
		if lerr != nil {
			return lerr
		}
		if have.UserID != u.ID {
			return errLinkedElsewhere
		}
		return nil // linked to this account already
	}
	if err != nil {
		return err
	}
	p.record(c, &storage.AuditEvent{UserID: u.ID, Kind: "identity_linked", Method: "fed", Detail: conn.ID()})
	return nil
}

// PendingLink implements login.PendingLinks.
func (p *Part) PendingLink(c echo.Context, flowID string) (string, bool) {
	flow, err := p.store.CodeByID(c.Request().Context(), flowID)
	if err != nil || flow.Purpose != PurposePendingLink {
		return "", false
	}
	var pl pendingLink
	if json.Unmarshal([]byte(flow.Payload), &pl) != nil || !p.binding().Bound(c, pl.Binding) {
		return "", false
	}
	conn := p.byID[pl.Connector]
	if conn == nil {
		return "", false
	}
	return "аккаунт " + conn.Title(), true
}

// LinkPending implements login.PendingLinks.
func (p *Part) LinkPending(c echo.Context, flowID string, u *storage.User) error {
	flow, err := p.store.ConsumeCode(c.Request().Context(), flowID, PurposePendingLink)
	if err != nil {
		return err
	}
	var pl pendingLink
	if err := json.Unmarshal([]byte(flow.Payload), &pl); err != nil {
		return fmt.Errorf("pending link payload: %w", err)
	}
	if !p.binding().Bound(c, pl.Binding) {
		return errors.New("pending link of another browser")
	}
	conn := p.byID[pl.Connector]
	if conn == nil {
		return fmt.Errorf("pending link of connector %q, which is not configured", pl.Connector)
	}
	return p.linkIdentity(c, conn, u, Identity{Connector: pl.Connector, Subject: pl.Subject, DisplayName: pl.DisplayName, Claims: pl.Claims})
}

// newVerifier is a PKCE code verifier: 32 random bytes, 43 characters (RFC 7636 §4.1).
func newVerifier() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// backURL is where a refused attempt sends the person back to.
func (p *Part) backURL(a attempt) string {
	if a.Mode == ModeLink {
		return login.PathMethods
	}
	if a.AuthRequestID != "" {
		return login.PathLogin + "?" + url.Values{"authRequestID": {a.AuthRequestID}}.Encode()
	}
	return login.PathLogin
}

func (p *Part) pages() *page.Pages { return p.host.Pages() }

func (p *Part) clientOf(ctx context.Context, authRequestID string) string {
	if req := p.host.PendingRequest(ctx, authRequestID); req != nil {
		return req.ClientID
	}
	return ""
}

// refused logs why an upstream attempt was refused; the person sees a page.
func (p *Part) refused(c echo.Context, conn Connector, reason string, err error) {
	args := []any{"connector", conn.ID(), "reason", reason, "ip", c.RealIP()}
	if err != nil {
		args = append(args, "err", err)
	}
	slog.WarnContext(c.Request().Context(), "upstream sign-in refused", args...)
}

// record appends an audit event through the login app.
func (p *Part) record(c echo.Context, e *storage.AuditEvent) { p.host.Record(c, e) }

// binding is the cookie that ties attempts and pending links to the browser.
func (p *Part) binding() binding.Cookie {
	return binding.Cookie{Name: CookieName, Secure: p.secure, TTL: p.ttl}
}
