package certificate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login"
	"github.com/astral/idp/login/binding"
	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/login/page"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// Store is what certificate sign-in needs from storage.
type Store interface {
	CreateCode(ctx context.Context, c *storage.OneTimeCode) error
	CodeByID(ctx context.Context, id string) (*storage.OneTimeCode, error)
	ConsumeCode(ctx context.Context, id, purpose string) (*storage.OneTimeCode, error)
	LinkCertificate(ctx context.Context, id *storage.Identity, cert *storage.Certificate) error
	CreateUserWithCertificate(ctx context.Context, u *storage.User, consents []storage.Consent, id *storage.Identity, cert *storage.Certificate) error
	CertificateByThumbprint(ctx context.Context, thumbprint string) (*storage.Certificate, error)
	CertificatesBySNILS(ctx context.Context, snils string) ([]storage.Certificate, error)
	TouchIdentity(ctx context.Context, id string) error
	UserByID(ctx context.Context, id string) (*storage.User, error)
	Hit(ctx context.Context, key string, window time.Duration) (int64, error)
	Now() time.Time
}

// Verifier checks a signer's certificate chain to the trusted roots, with
// revocation (*gost.Verifier).
type Verifier interface {
	Verify(ctx context.Context, leaf *gost.Certificate, intermediates []*gost.Certificate) ([]*gost.Certificate, error)
}

// Codes sends and checks confirmation codes (*otp.Service).
type Codes interface {
	Start(ctx context.Context, r otp.Request) (*storage.OneTimeCode, error)
	Resend(ctx context.Context, flowID, clientName, ip string, silent bool) (*storage.OneTimeCode, error)
	Flow(ctx context.Context, flowID string) (*storage.OneTimeCode, error)
	Verify(ctx context.Context, flowID, code string) (*storage.OneTimeCode, error)
	Policy() otp.Policy
}

// Paths, names and purposes.
const (
	// Path is the certificate page; the other routes live under it.
	Path = "/certificate"
	// CookieName binds a challenge (and a pending link or registration) to the browser.
	CookieName = "idp_certificate"
	// Purposes of the storage.OneTimeCode rows.
	PurposeChallenge   = "certificate-challenge"
	PurposePendingLink = "certificate-pending-link"
	PurposeRegister    = "certificate-register"
	// Modes of the page.
	ModeSignIn   = "signin"
	ModeLink     = "link"
	ModeRegister = "register"
	// Title names the way in: the buttons, the cabinet.
	Title = "Сертификат"
)

// Defaults of Config.
const (
	DefaultChallengeTTL = 5 * time.Minute
	// DefaultFlowTTL is how long a verified certificate waits for a sign-in (pending
	// link) or for the contact of a registration.
	DefaultFlowTTL = 15 * time.Minute
	// DefaultPageLimit and DefaultVerifyLimit bound, per IP address and LimitWindow,
	// the challenges made (each writes a row) and the signatures checked (each costs
	// a chain verification and maybe a CRL fetch).
	DefaultPageLimit   = 120
	DefaultVerifyLimit = 30
	LimitWindow        = 10 * time.Minute
)

// Sizes of what the page posts.
const (
	maxSignature = 48 << 10 // base64 or PEM of a CMS with a chain of a few certificates
	maxDescribe  = 32       // certificates the agent may list at once
	maxDERText   = 16 << 10 // base64 of one certificate
)

// Config is what the part is built from.
type Config struct {
	Store    Store
	Verifier Verifier
	Codes    Codes
	// Issuer is named in every challenge, so a signature made for another site is
	// useless here.
	Issuer string
	// AgentURL is the signing agent the page's script talks to (IDP_CERT_AGENT_URL).
	AgentURL string
	Secure   bool // https: the binding cookie is Secure
	// ProxyHeader carries a client certificate verified by a TLS-terminating proxy
	// (IDP_CERT_PROXY_HEADER); it is read only from ProxyFrom (IDP_CERT_PROXY_FROM).
	ProxyHeader string
	ProxyFrom   []netip.Prefix
	// Zero values are the defaults.
	ChallengeTTL time.Duration
	FlowTTL      time.Duration
	PageLimit    int
	VerifyLimit  int
}

// Part is certificate sign-in, linking and registration.
type Part struct {
	cfg  Config
	host login.Host
}

var (
	_ login.Part         = (*Part)(nil)
	_ login.Buttons      = (*Part)(nil)
	_ login.PendingLinks = (*Part)(nil)
)

// New makes the part.
func New(cfg Config) (*Part, error) {
	if cfg.Store == nil || cfg.Verifier == nil || cfg.Codes == nil {
		return nil, errors.New("certificate sign-in: store, verifier and codes are required")
	}
	if cfg.Issuer == "" || cfg.AgentURL == "" {
		return nil, errors.New("certificate sign-in: issuer and agent URL are required")
	}
	cfg.AgentURL = strings.TrimSuffix(cfg.AgentURL, "/")
	if cfg.ProxyHeader != "" && len(cfg.ProxyFrom) == 0 {
		return nil, errors.New("certificate sign-in: a proxy header needs the proxies' addresses")
	}
	if cfg.ChallengeTTL <= 0 {
		cfg.ChallengeTTL = DefaultChallengeTTL
	}
	if cfg.FlowTTL <= 0 {
		cfg.FlowTTL = DefaultFlowTTL
	}
	if cfg.PageLimit <= 0 {
		cfg.PageLimit = DefaultPageLimit
	}
	if cfg.VerifyLimit <= 0 {
		cfg.VerifyLimit = DefaultVerifyLimit
	}
	return &Part{cfg: cfg}, nil
}

// Register implements login.Part.
func (p *Part) Register(g *echo.Group, host login.Host) {
	p.host = host
	g.GET(Path, p.show)
	g.POST(Path, p.submit)
	g.POST(Path+"/describe", p.describe)
	g.GET(Path+"/register", p.showRegister)
	g.POST(Path+"/register", p.submitRegister)
	g.GET(Path+"/register/confirm", p.showRegisterConfirm)
	g.POST(Path+"/register/confirm", p.submitRegisterConfirm)
	g.POST(Path+"/register/resend", p.submitRegisterResend)
	g.GET(Path+"/proxy", p.proxy)
}

// PageURL is the certificate page in mode for authRequestID (may be empty).
func PageURL(mode, authRequestID string) string {
	q := url.Values{}
	if mode != ModeSignIn {
		q.Set("mode", mode)
	}
	if authRequestID != "" {
		q.Set("authRequestID", authRequestID)
	}
	if len(q) == 0 {
		return Path
	}
	return Path + "?" + q.Encode()
}

// LinkURL is where the cabinet's "Привязать Сертификат" leads.
const LinkURL = Path + "?mode=" + ModeLink

// SignInButtons implements login.Buttons.
func (p *Part) SignInButtons(authRequestID string) []web.UpstreamLink {
	return []web.UpstreamLink{{Name: Title, URL: PageURL(ModeSignIn, authRequestID)}}
}

// RegisterButtons implements login.Buttons.
func (p *Part) RegisterButtons(authRequestID string) []web.UpstreamLink {
	return []web.UpstreamLink{{Name: Title, URL: PageURL(ModeRegister, authRequestID)}}
}

// challenge is what the page's row remembers: its payload.
type challenge struct {
	Mode          string `json:"mode"`
	Text          string `json:"text"` // the exact bytes to sign
	Binding       string `json:"binding"`
	AuthRequestID string `json:"auth_request_id,omitempty"`
	UserID        string `json:"user_id,omitempty"` // link: the account of the session
}

// show: GET /certificate?mode=…&authRequestID=…
func (p *Part) show(c echo.Context) error {
	return p.start(c, c.QueryParam("mode"), c.QueryParam("authRequestID"), http.StatusOK, "")
}

// start checks a mode and authorization request and renders the page with a fresh
// challenge, and with errText (why the previous attempt failed) when set.
func (p *Part) start(c echo.Context, mode, authRequestID string, status int, errText string) error {
	ctx := c.Request().Context()
	ch := challenge{Mode: mode, AuthRequestID: authRequestID}
	if ch.Mode == "" {
		ch.Mode = ModeSignIn
	}
	var req *provider.PendingRequest
	switch ch.Mode {
	case ModeSignIn, ModeRegister:
		if ch.AuthRequestID != "" {
			if len(ch.AuthRequestID) <= 64 {
				req = p.host.PendingRequest(ctx, ch.AuthRequestID)
			}
			if req == nil {
				p.refused(c, ch.Mode, "stale authorization request", nil)
				return p.pages().Error(c, http.StatusBadRequest, "Ссылка для входа устарела",
					"Вернитесь в приложение и начните вход заново.", login.PathAccount)
			}
		}
	case ModeLink:
		sess, u, err := p.host.Sessions().Current(ctx, c.Request())
		if err != nil {
			return p.pages().Internal(c, "load session", err)
		}
		if sess == nil {
			return c.Redirect(http.StatusFound, login.PathLogin)
		}
		ch.UserID, ch.AuthRequestID = u.ID, ""
	default:
		p.refused(c, "", fmt.Sprintf("unknown mode %.20q", ch.Mode), nil)
		return p.pages().Error(c, http.StatusBadRequest, "Неверная ссылка", "Вернитесь назад и попробуйте снова.", login.PathLogin)
	}
	return p.page(c, ch, req, status, errText)
}

// page makes a fresh challenge for ch's mode and renders the page, with errText (a
// refusal of the previous attempt) when set. req is ch's live authorization request
// (nil when none), passed in because the caller loaded it already: the sign-in
// heading names its product.
func (p *Part) page(c echo.Context, ch challenge, req *provider.PendingRequest, status int, errText string) error {
	ctx := c.Request().Context()
	if n, err := p.cfg.Store.Hit(ctx, "certificate:page:ip:"+c.RealIP(), LimitWindow); err != nil {
		return p.pages().Internal(c, "count certificate challenges", err)
	} else if n > int64(p.cfg.PageLimit) {
		p.refused(c, ch.Mode, "too many challenges from this address", nil)
		return p.pages().Error(c, http.StatusTooManyRequests, "Слишком много попыток",
			"Подождите несколько минут и попробуйте снова.", "")
	}
	now := p.cfg.Store.Now()
	ch.Binding = storage.HashSecret(p.binding().Bind(c))
	ch.Text = fmt.Sprintf("%s certificate sign-in %s %s", p.cfg.Issuer, storage.NewSecret(), now.Format(time.RFC3339))
	payload, _ := json.Marshal(ch) // strings only: always marshals
	row := &storage.OneTimeCode{ID: storage.NewSecret(), Purpose: PurposeChallenge, AuthRequestID: ch.AuthRequestID,
		UserID: ch.UserID, Payload: string(payload), CreatedAt: now, ExpiresAt: now.Add(p.cfg.ChallengeTTL)}
	if err := p.cfg.Store.CreateCode(ctx, row); err != nil {
		return p.pages().Internal(c, "create certificate challenge", err)
	}
	data := web.CertificateData{
		Layout:    web.Layout{CSRFToken: page.CSRF(c)},
		Action:    Path,
		Challenge: ch.Text,
		Mode:      ch.Mode, AuthRequestID: ch.AuthRequestID,
		ChallengeID: row.ID, ChallengeB64: base64.StdEncoding.EncodeToString([]byte(ch.Text)),
		AgentURL: p.cfg.AgentURL, DescribeURL: Path + "/describe", RefreshURL: PageURL(ch.Mode, ch.AuthRequestID),
		Error: errText,
	}
	if errText != "" && c.Request().Method == http.MethodPost && c.FormValue("via") == "agent" {
		// The refusal is of a certificate picked from the agent's list: say it there.
		data.Via = "agent"
	}
	switch ch.Mode {
	case ModeLink:
		data.Heading = "Привязка сертификата"
		data.Lead = "Подпишите запрос сертификатом, которым хотите входить в Личный кабинет."
		data.BackURL, data.BackText = login.PathMethods, "Способы входа"
	case ModeRegister:
		data.Heading = "Регистрация"
		data.Lead = "Подпишите запрос сертификатом: аккаунт будет создан по данным его владельца."
		data.UpstreamsTitle = "или зарегистрируйтесь через"
		data.Upstreams = p.otherWays(withRequest(login.PathRegister, ch.AuthRequestID), p.host.RegisterButtons(ch.AuthRequestID))
	default:
		data.Heading = "Вход в Личный кабинет"
		if req != nil && req.ClientName != "" {
			data.Heading = "Вход в " + req.ClientName
		}
		data.UpstreamsTitle = "или авторизуйтесь через"
		data.Upstreams = p.otherWays(withRequest(login.PathLogin, ch.AuthRequestID), p.host.SignInButtons(ch.AuthRequestID))
	}
	data.Title = data.Heading
	return p.pages().Render(c, status, "certificate", data)
}

// otherWays are the page's "или … через" buttons, as the seeds show them: "Email / Тел"
// back to the password form, then every other part's (госуслуги, Telegram) but ours.
func (p *Part) otherWays(form string, buttons []web.UpstreamLink) []web.UpstreamLink {
	out := []web.UpstreamLink{{Name: "Email / Тел", URL: form}}
	for _, b := range buttons {
		if b.Name != Title {
			out = append(out, b)
		}
	}
	return out
}

// submit: POST /certificate with challenge=…&signature=…
func (p *Part) submit(c echo.Context) error {
	ctx := c.Request().Context()
	if n, err := p.cfg.Store.Hit(ctx, "certificate:verify:ip:"+c.RealIP(), LimitWindow); err != nil {
		return p.pages().Internal(c, "count certificate attempts", err)
	} else if n > int64(p.cfg.VerifyLimit) {
		p.refused(c, "", "too many signatures from this address", nil)
		return p.pages().Error(c, http.StatusTooManyRequests, "Слишком много попыток",
			"Подождите несколько минут и попробуйте снова.", "")
	}
	// The form's mode and request only choose the page to show again when its
	// challenge is gone; start checks them as it does for a link.
	mode, authRequestID := c.FormValue("mode"), c.FormValue("authRequestID")
	id := c.FormValue("challenge")
	if id == "" || len(id) > 64 {
		p.refused(c, mode, "no challenge in the form", nil)
		return p.start(c, mode, authRequestID, http.StatusBadRequest, "Запрос на подпись не найден. Подпишите новый запрос.")
	}
	// Used up first: whatever follows, this challenge is never accepted again.
	row, err := p.cfg.Store.ConsumeCode(ctx, id, PurposeChallenge)
	if storage.IsNotFound(err) {
		p.refused(c, mode, "unknown, expired or used challenge", nil)
		return p.start(c, mode, authRequestID, http.StatusBadRequest,
			"Запрос на подпись устарел или уже использован. Подпишите новый запрос.")
	}
	if err != nil {
		return p.pages().Internal(c, "consume certificate challenge", err)
	}
	var ch challenge
	if err := json.Unmarshal([]byte(row.Payload), &ch); err != nil {
		return p.pages().Internal(c, "decode certificate challenge", err)
	}
	// A refused attempt gets a fresh challenge: the one consumed above never counts again.
	again := func(errText string) error {
		retry := challenge{Mode: ch.Mode, AuthRequestID: ch.AuthRequestID, UserID: ch.UserID}
		return p.page(c, retry, p.host.PendingRequest(ctx, ch.AuthRequestID), http.StatusBadRequest, errText)
	}
	if !p.binding().Bound(c, ch.Binding) {
		p.refused(c, ch.Mode, "browser binding cookie missing or wrong", nil)
		return again("Запрос на подпись получен в другом браузере. Подпишите новый запрос в этом браузере.")
	}
	sig := c.FormValue("signature")
	if strings.TrimSpace(sig) == "" {
		return again("Вставьте подпись или выберите сертификат.")
	}
	if len(sig) > maxSignature {
		p.refused(c, ch.Mode, fmt.Sprintf("signature of %d bytes", len(sig)), nil)
		return again(gost.Explain(gost.ErrTooLarge))
	}
	cert, err := p.verifySignature(ctx, sig, []byte(ch.Text))
	if err != nil {
		p.refused(c, ch.Mode, "signature not accepted", err)
		return again(gost.Explain(err))
	}
	switch ch.Mode {
	case ModeLink:
		return p.link(c, ch, cert)
	case ModeRegister:
		return p.startRegistration(c, ch.AuthRequestID, cert)
	default:
		return p.signIn(c, ch.AuthRequestID, cert)
	}
}

// verifySignature checks a pasted or agent-made detached CMS over content and the
// signer's chain, and returns the signer's certificate.
func (p *Part) verifySignature(ctx context.Context, sig string, content []byte) (*gost.Certificate, error) {
	der, err := gost.ParseSignature([]byte(sig))
	if err != nil {
		return nil, fmt.Errorf("parse signature: %w", err)
	}
	sd, err := gost.VerifyDetached(der, content)
	if err != nil {
		return nil, fmt.Errorf("verify signature: %w", err)
	}
	if sd.Signer == nil {
		return nil, fmt.Errorf("verify signature: no signer certificate: %w", gost.ErrMalformed)
	}
	if _, err := p.cfg.Verifier.Verify(ctx, sd.Signer, sd.Certificates); err != nil {
		return nil, fmt.Errorf("verify chain of %s: %w", sd.Signer.Thumbprint, err)
	}
	return sd.Signer, nil
}

// signIn ends a sign-in with a verified certificate.
func (p *Part) signIn(c echo.Context, authRequestID string, cert *gost.Certificate) error {
	ctx := c.Request().Context()
	linked, err := p.cfg.Store.CertificateByThumbprint(ctx, thumbprint(cert))
	if storage.IsNotFound(err) {
		return p.notLinked(c, authRequestID, cert)
	}
	if err != nil {
		return p.pages().Internal(c, "load certificate", err)
	}
	u, err := p.cfg.Store.UserByID(ctx, linked.UserID)
	if err != nil {
		return p.pages().Internal(c, "load account of certificate", err)
	}
	if u.Blocked {
		p.refused(c, ModeSignIn, "account "+u.ID+" is blocked", nil)
		p.record(c, &storage.AuditEvent{UserID: u.ID, Kind: "signin_failed", Method: "swk", Detail: "blocked"})
		return p.pages().Error(c, http.StatusForbidden, "Учетная запись заблокирована", "Обратитесь в службу поддержки.", "")
	}
	if err := p.cfg.Store.TouchIdentity(ctx, linked.IdentityID); err != nil {
		return p.pages().Internal(c, "touch certificate identity", err)
	}
	slog.InfoContext(ctx, "certificate sign-in", "user", u.ID, "thumbprint", linked.Thumbprint)
	return p.host.FinishSignIn(c, u, session.Proof{AMR: []string{"swk"}, ACR: provider.ACR}, authRequestID, "")
}

// pendingLink is a verified certificate that waits for a sign-in to be linked, or
// for the contact of a registration.
type pendingLink struct {
	DER     string `json:"der"` // base64
	Binding string `json:"binding"`
}

// keep stores a verified certificate in a row of purpose, bound to this browser.
func (p *Part) keep(c echo.Context, purpose, authRequestID string, cert *gost.Certificate) (*storage.OneTimeCode, error) {
	payload, _ := json.Marshal(pendingLink{DER: base64.StdEncoding.EncodeToString(cert.Raw), Binding: storage.HashSecret(p.binding().Bind(c))})
	now := p.cfg.Store.Now()
	row := &storage.OneTimeCode{ID: storage.NewSecret(), Purpose: purpose, AuthRequestID: authRequestID,
		Payload: string(payload), CreatedAt: now, ExpiresAt: now.Add(p.cfg.FlowTTL)}
	if err := p.cfg.Store.CreateCode(c.Request().Context(), row); err != nil {
		return nil, fmt.Errorf("keep certificate: %w", err)
	}
	return row, nil
}

// kept reads back a certificate that keep stored, checking the browser binding.
func (p *Part) kept(c echo.Context, row *storage.OneTimeCode) (*gost.Certificate, error) {
	var pl pendingLink
	if err := json.Unmarshal([]byte(row.Payload), &pl); err != nil {
		return nil, fmt.Errorf("kept certificate payload: %w", err)
	}
	if !p.binding().Bound(c, pl.Binding) {
		return nil, errOtherBrowser
	}
	der, err := base64.StdEncoding.DecodeString(pl.DER)
	if err != nil {
		return nil, fmt.Errorf("kept certificate: %w", err)
	}
	return gost.ParseCertificate(der)
}

var (
	errOtherBrowser    = errors.New("flow of another browser")
	errLinkedElsewhere = errors.New("certificate linked to another account")
)

// notLinked answers a verified certificate that no account holds: a renewed
// certificate of a known person is offered for linking after a sign-in; any other
// gets the ways on (sign in and link it in the cabinet, or register with it).
func (p *Part) notLinked(c echo.Context, authRequestID string, cert *gost.Certificate) error {
	return p.keepUnknown(c, authRequestID, cert, func(flow *storage.OneTimeCode) error {
		return p.notLinkedPage(c, authRequestID, cert, flow)
	})
}

// keepUnknown decides for a verified certificate that no account holds. The same
// person (SNILS) with an account already means a renewed certificate, to link after
// a sign-in and never a second account; any other is kept for a registration, and
// then answers with the kept flow.
func (p *Part) keepUnknown(c echo.Context, authRequestID string, cert *gost.Certificate, then func(flow *storage.OneTimeCode) error) error {
	same, err := p.cfg.Store.CertificatesBySNILS(c.Request().Context(), cert.Subject.SNILS)
	if err != nil {
		return p.pages().Internal(c, "find certificates by SNILS", err)
	}
	if len(same) > 0 {
		return p.offerRenewed(c, authRequestID, cert, same)
	}
	flow, err := p.keep(c, PurposeRegister, authRequestID, cert)
	if err != nil {
		return p.pages().Internal(c, "keep certificate for registration", err)
	}
	return then(flow)
}

// notLinkedPage offers the ways on for a certificate kept for registration in flow.
func (p *Part) notLinkedPage(c echo.Context, authRequestID string, cert *gost.Certificate, flow *storage.OneTimeCode) error {
	slog.InfoContext(c.Request().Context(), "certificate linked to no account", "thumbprint", thumbprint(cert))
	return p.pages().Render(c, http.StatusOK, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Сертификат не привязан", CSRFToken: page.CSRF(c)},
		Heading: "Сертификат не привязан к Личному кабинету",
		Message: "Сертификат: " + cert.Subject.Owner() + ". Если у Вас уже есть Личный кабинет, войдите другим способом и привяжите " +
			"сертификат в разделе «Способы входа». Если нет — зарегистрируйтесь с этим сертификатом.",
		Links: []web.Link{
			{Text: "Войти другим способом", URL: withRequest(login.PathLogin, authRequestID), Primary: true},
			{Text: "Зарегистрироваться с сертификатом", URL: registerURL(flow.ID, "")},
		},
	})
}

// offerRenewed answers a certificate no account holds whose SNILS is that of
// certificates linked already (same): the same person's renewed certificate, from a
// trusted CA (its chain was just verified). It is kept as a pending link for the
// sign-in that follows — never linked silently, and never a second account.
func (p *Part) offerRenewed(c echo.Context, authRequestID string, cert *gost.Certificate, same []storage.Certificate) error {
	flow, err := p.keep(c, PurposePendingLink, authRequestID, cert)
	if err != nil {
		return p.pages().Internal(c, "offer renewed certificate", err)
	}
	slog.InfoContext(c.Request().Context(), "renewed certificate offered for linking after sign-in",
		"thumbprint", thumbprint(cert), "linked_before", same[len(same)-1].Thumbprint)
	q := url.Values{"link": {flow.ID}}
	if authRequestID != "" {
		q.Set("authRequestID", authRequestID)
	}
	return p.pages().Render(c, http.StatusOK, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Новый сертификат", CSRFToken: page.CSRF(c)},
		Heading: "Этот сертификат еще не привязан к Личному кабинету",
		// The owner is named in the nominative, after a colon: Russian declines
		// names, and a name cannot be declined reliably by code.
		Message: "Сертификат: " + cert.Subject.Owner() + ". Похоже, он выдан взамен сертификата, который уже привязан к Личному кабинету. " +
			"Войдите другим способом — по паролю или по коду, — и мы привяжем новый сертификат: в следующий раз можно будет входить с ним.",
		Links: []web.Link{
			{Text: "Войти и привязать сертификат", URL: login.PathLogin + "?" + q.Encode(), Primary: true},
			{Text: "Войти без привязки", URL: withRequest(login.PathLogin, authRequestID)},
		},
	})
}

// link links a verified certificate to the account of the session that asked.
func (p *Part) link(c echo.Context, ch challenge, cert *gost.Certificate) error {
	ctx := c.Request().Context()
	sess, u, err := p.host.Sessions().Current(ctx, c.Request())
	if err != nil {
		return p.pages().Internal(c, "load session", err)
	}
	if sess == nil || u.ID != ch.UserID {
		p.refused(c, ModeLink, "link without the session that started it", nil)
		return p.pages().Error(c, http.StatusUnauthorized, "Войдите в Личный кабинет",
			"Сеанс завершен. Войдите в Личный кабинет и привяжите сертификат снова.", login.PathLogin)
	}
	err = p.linkCertificate(c, u, cert)
	if errors.Is(err, errLinkedElsewhere) {
		p.refused(c, ModeLink, "certificate "+thumbprint(cert)+" linked to another account", nil)
		return p.pages().Render(c, http.StatusConflict, "error", web.ErrorData{
			Layout:  web.Layout{Title: "Сертификат уже привязан", CSRFToken: page.CSRF(c)},
			Heading: "Сертификат уже привязан",
			Message: "Этот сертификат уже привязан к другому Личному кабинету. Войдите в тот кабинет и отвяжите его там.",
			BackURL: login.PathMethods, BackText: "Вернуться к способам входа",
		})
	}
	if err != nil {
		return p.pages().Internal(c, "link certificate", err)
	}
	return c.Redirect(http.StatusSeeOther, login.PathMethods)
}

// linkCertificate links cert to u and records it; a certificate u holds already is
// fine, one of another account is errLinkedElsewhere.
func (p *Part) linkCertificate(c echo.Context, u *storage.User, cert *gost.Certificate) error {
	ctx := c.Request().Context()
	err := p.cfg.Store.LinkCertificate(ctx, &storage.Identity{UserID: u.ID, DisplayName: displayName(cert)}, record(cert))
	if storage.IsConflict(err) {
		have, lerr := p.cfg.Store.CertificateByThumbprint(ctx, thumbprint(cert))
		if lerr != nil {
			return lerr
		}
		if have.UserID != u.ID {
			return errLinkedElsewhere
		}
		return nil
	}
	if err != nil {
		return err
	}
	p.record(c, &storage.AuditEvent{UserID: u.ID, Kind: "identity_linked", Method: "swk", Detail: "certificate " + thumbprint(cert)})
	return nil
}

// PendingLink implements login.PendingLinks.
func (p *Part) PendingLink(c echo.Context, flowID string) (string, bool) {
	row, err := p.cfg.Store.CodeByID(c.Request().Context(), flowID)
	if err != nil || row.Purpose != PurposePendingLink {
		return "", false
	}
	cert, err := p.kept(c, row)
	if err != nil {
		return "", false
	}
	return "сертификат " + cert.Subject.Owner(), true
}

// LinkPending implements login.PendingLinks.
func (p *Part) LinkPending(c echo.Context, flowID string, u *storage.User) error {
	row, err := p.cfg.Store.ConsumeCode(c.Request().Context(), flowID, PurposePendingLink)
	if err != nil {
		return err
	}
	cert, err := p.kept(c, row)
	if err != nil {
		return err
	}
	return p.linkCertificate(c, u, cert)
}

func (p *Part) pages() *page.Pages { return p.host.Pages() }

// refused logs why an attempt was refused; the person sees a page.
func (p *Part) refused(c echo.Context, mode, reason string, err error) {
	args := []any{"mode", mode, "reason", reason, "ip", c.RealIP()}
	if err != nil {
		args = append(args, "err", err)
	}
	slog.WarnContext(c.Request().Context(), "certificate sign-in refused", args...)
}

// record appends an audit event through the login app.
func (p *Part) record(c echo.Context, e *storage.AuditEvent) { p.host.Record(c, e) }

// withRequest adds the authorization request to a path of ours.
func withRequest(path, authRequestID string) string {
	if authRequestID == "" {
		return path
	}
	return path + "?" + url.Values{"authRequestID": {authRequestID}}.Encode()
}

// registerURL is the contact step of the registration kept in flow, in mode
// ("phone", "email"; empty: the default).
func registerURL(flow, mode string) string {
	q := url.Values{"flow": {flow}}
	if mode != "" {
		q.Set("mode", mode)
	}
	return Path + "/register?" + q.Encode()
}

// binding is the cookie that ties challenges, pending links and registrations to
// the browser.
func (p *Part) binding() binding.Cookie {
	return binding.Cookie{Name: CookieName, Secure: p.cfg.Secure, TTL: p.cfg.FlowTTL}
}
