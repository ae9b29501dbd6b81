// Package server assembles the identity provider from its parts — storage, the
// OpenID Provider, the login app, the back-channel logout worker — and runs it: HTTP,
// key rotation, cleanup of expired rows, graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/astral/idp/cmd/idp/config"
	"github.com/astral/idp/login"
	"github.com/astral/idp/login/account"
	"github.com/astral/idp/login/certificate"
	"github.com/astral/idp/login/notify"
	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/login/password"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/upstream"
	"github.com/astral/idp/login/upstream/esia"
	"github.com/astral/idp/login/upstream/oidc"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/provider/backchannel"
	"github.com/astral/idp/provider/clientfile"
	"github.com/astral/idp/provider/keys"
	"github.com/astral/idp/storage"
)

// Options tune what the environment does not configure; tests shorten timings.
type Options struct {
	KeyPolicy       keys.Policy
	Lifetimes       provider.Lifetimes
	SessionPolicy   session.Policy
	PasswordParams  password.Params
	PasswordLimits  password.Limits
	CleanupInterval time.Duration
	LogoutPoll      time.Duration
	CodePolicy      otp.Policy
	// Notifier sends codes; nil builds it from the IDP_* sender variables.
	Notifier otp.Sender
	// LookupEnv reads the sender variables and expands ${VAR} in the clients file.
	LookupEnv func(string) (string, bool)
}

// DefaultOptions are the production settings.
func DefaultOptions() Options {
	return Options{
		KeyPolicy: keys.DefaultPolicy, Lifetimes: provider.DefaultLifetimes,
		SessionPolicy: session.DefaultPolicy, PasswordParams: password.DefaultParams,
		PasswordLimits: password.DefaultLimits, CleanupInterval: 10 * time.Minute,
		LogoutPoll: 5 * time.Second, CodePolicy: otp.DefaultPolicy, LookupEnv: os.LookupEnv,
	}
}

// Server is the assembled identity provider.
type Server struct {
	cfg      *config.Config
	opts     Options
	Store    *storage.Store
	Provider *provider.Provider
	keys     *keys.Manager
	logouts  *backchannel.Worker
	metrics  *metrics
	echo     *echo.Echo
}

// New assembles the server: opens and migrates the database, loads the clients file,
// makes sure a signing key exists.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	store, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	s, err := assemble(ctx, cfg, opts, store)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	return s, nil
}

func assemble(ctx context.Context, cfg *config.Config, opts Options, store *storage.Store) (*Server, error) {
	if err := LoadClients(ctx, store, cfg.ClientsFile, cfg.MasterKey, opts.LookupEnv); err != nil {
		return nil, err
	}
	sealer, err := keys.NewSealer(provider.DeriveKey(cfg.MasterKey, "signing-keys"))
	if err != nil {
		return nil, err
	}
	km, err := keys.NewManager(store, jose.SignatureAlgorithm(cfg.SigningAlg), sealer, opts.KeyPolicy)
	if err != nil {
		return nil, err
	}
	if err := km.Rotate(ctx); err != nil {
		return nil, fmt.Errorf("prepare signing keys: %w", err)
	}
	if _, err := km.Signing(ctx); err != nil {
		return nil, fmt.Errorf("prepare signing keys: %w", err)
	}
	m := newMetrics()
	s := &Server{cfg: cfg, opts: opts, Store: store, keys: km, metrics: m}
	p, err := provider.New(provider.Config{
		Issuer: cfg.Issuer, MasterKey: cfg.MasterKey, Lifetimes: opts.Lifetimes,
		LoginPath: login.PathLogin, LogoutPath: login.PathLogout, LoggedOutPath: login.PathLoggedOut,
		Metrics: m, OnLogout: func() { s.logouts.Kick() },
	}, store, km)
	if err != nil {
		return nil, err
	}
	s.Provider = p
	s.logouts = backchannel.NewWorker(store, p, cfg.Issuer, &http.Client{Timeout: 5 * time.Second}, m)
	s.logouts.Poll = opts.LogoutPoll
	renderer, err := web.NewRenderer()
	if err != nil {
		return nil, fmt.Errorf("load page templates: %w", err)
	}
	sender := opts.Notifier
	if sender == nil {
		n, err := notify.FromEnv(opts.LookupEnv)
		if err != nil {
			return nil, err
		}
		sender = n
	}
	secure := strings.HasPrefix(cfg.Issuer, "https://")
	hasher := password.NewHasher(opts.PasswordParams)
	upstreams, err := newUpstreams(cfg, store, secure)
	if err != nil {
		return nil, err
	}
	codes := otp.New(store, sender, provider.DeriveKey(cfg.MasterKey, "one-time-codes"), opts.CodePolicy)
	certs, err := newCertificate(cfg, store, codes, secure)
	if err != nil {
		return nil, err
	}
	links := make([]account.LinkOption, 0, len(upstreams.Connectors())+1)
	parts := []login.Part{upstreams}
	if certs != nil {
		// First, as the seeds order the buttons: Сертификат · госуслуги · Telegram.
		links = append(links, account.LinkOption{ID: storage.ConnectorCertificate, Title: certificate.Title, URL: certificate.LinkURL, Many: true})
		parts = []login.Part{certs, upstreams}
	}
	for _, c := range upstreams.Connectors() {
		links = append(links, account.LinkOption{ID: c.ID(), Title: c.Title()})
	}
	cabinet := account.New(account.Config{Store: store, Codes: codes, Hasher: hasher, Links: links})
	app := login.New(login.Config{
		Authorizer: p,
		Passwords:  password.NewAuthenticator(store, store, hasher, opts.PasswordLimits),
		Codes:      codes,
		Accounts:   store,
		Hasher:     hasher,
		Sessions:   session.NewManager(store, opts.SessionPolicy, secure),
		Events:     store, Metrics: m, Renderer: renderer, Secure: secure,
		OnLogout: s.logouts.Kick,
		Parts:    append(parts, cabinet),
	})
	s.echo = s.routes(app, secure)
	return s, nil
}

// newUpstreams builds upstream sign-in with the upstreams the configuration switched
// on: Gosuslugi first (its button comes before Telegram's), then the OpenID Connect
// ones (Telegram).
func newUpstreams(cfg *config.Config, store *storage.Store, secure bool) (*upstream.Part, error) {
	conns := make([]upstream.Connector, 0, len(cfg.Upstreams)+1)
	if e := cfg.ESIA; e != nil {
		c, err := esia.New(esia.Config{URL: e.URL, ClientID: e.ClientID, Signer: e.Signer,
			Certificate: e.Certificate, TokenCertificate: e.TokenCert})
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	for _, u := range cfg.Upstreams {
		c, err := oidc.New(oidc.Config{ID: u.ID, Title: u.Title, Issuer: u.Issuer, ClientID: u.ClientID,
			ClientSecret: u.ClientSecret, Scopes: u.Scopes})
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	return upstream.New(upstream.Config{Connectors: conns, Store: store, BaseURL: cfg.Issuer, Secure: secure})
}

// LoadClients reads the clients file and makes the database's file clients match it.
func LoadClients(ctx context.Context, store *storage.Store, path string, masterKey []byte, lookupEnv func(string) (string, bool)) error {
	clients, err := clientfile.Load(path, lookupEnv)
	if err != nil {
		return err
	}
	hasher := provider.ClientSecretHasher(masterKey)
	rows := make([]storage.Client, 0, len(clients))
	for _, c := range clients {
		row := storage.Client{
			ID: c.ID, Name: c.Name, Type: c.Type, RedirectURIs: c.RedirectURIs,
			PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes, Scopes: c.Scopes,
			BackchannelLogoutURI: c.BackchannelLogoutURI, HomeURL: c.HomeURL,
		}
		if c.Secret != "" {
			row.SecretHash = hasher.Hash(c.Secret)
		}
		rows = append(rows, row)
	}
	if err := store.SyncFileClients(ctx, rows); err != nil {
		return fmt.Errorf("clients file %s: %w", path, err)
	}
	slog.InfoContext(ctx, "clients file loaded", "file", path, "clients", len(rows))
	return nil
}

// providerPaths are served by the OpenID Provider.
var providerPaths = []string{
	"/.well-known/openid-configuration", "/authorize", "/authorize/callback", "/oauth/token",
	"/oauth/introspect", "/userinfo", "/revoke", "/end_session", "/keys",
}

// contentSecurityPolicy allows only our own scripts and styles. It has no form-action:
// browsers apply form-action to the redirects after a form post, and a sign-in ends in
// a redirect to the product.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

func (s *Server) routes(app *login.App, secure bool) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// The peer address is the client: X-Forwarded-For is not trusted unless a proxy
	// rewrites RemoteAddr, so nobody can spoof an IP past the rate limits.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code := http.StatusInternalServerError
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
		}
		if code >= 500 {
			slog.ErrorContext(c.Request().Context(), "request failed", "err", err)
		}
		_ = app.ErrorPage(c, code)
	}
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		RequestIDHandler: func(c echo.Context, id string) {
			c.SetRequest(c.Request().WithContext(withRequestID(c.Request().Context(), id)))
		},
	}))
	e.Use(s.observe)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			slog.ErrorContext(c.Request().Context(), "panic", "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.BodyLimit("64K"))
	e.Use(securityHeaders(secure, contentSecurityPolicyFor(s.cfg)))

	op := s.Provider.Handler()
	withSession := func(c echo.Context) error {
		r := c.Request()
		if token := session.Token(r); token != "" {
			r = r.WithContext(provider.WithBrowserSession(r.Context(), token))
		}
		op.ServeHTTP(c.Response(), r)
		return nil
	}
	for _, p := range providerPaths {
		e.Any(p, withSession)
	}
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/readyz", func(c echo.Context) error {
		if err := s.Store.Ping(c.Request().Context()); err != nil {
			slog.WarnContext(c.Request().Context(), "not ready", "err", err)
			return c.String(http.StatusServiceUnavailable, "database unreachable")
		}
		return c.String(http.StatusOK, "ok")
	})
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})))
	app.Register(e)
	return e
}

// observe logs and measures every request. Only the path is logged: queries carry
// codes and tokens.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		d := time.Since(start)
		s.metrics.requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status)).Inc()
		s.metrics.latency.WithLabelValues(route).Observe(d.Seconds())
		if route != "/metrics" && route != "/healthz" && route != "/readyz" {
			slog.InfoContext(c.Request().Context(), "request", "method", c.Request().Method, "path", c.Request().URL.Path,
				"status", status, "duration_ms", float64(d.Microseconds())/1000, "ip", c.RealIP())
		}
		return nil
	}
}

func securityHeaders(secure bool, csp string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			// Codes travel in URLs; no Referer may carry one to another site.
			h.Set("Referrer-Policy", "no-referrer")
			if secure {
				h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
			}
			return next(c)
		}
	}
}

// Handler is the whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.echo }

// RunBackground runs key rotation, cleanup and back-channel delivery until ctx ends.
func (s *Server) RunBackground(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.keys.Run(ctx, time.Hour, func(err error) { slog.ErrorContext(ctx, "rotate signing keys", "err", err) })
	}()
	go func() {
		defer wg.Done()
		s.logouts.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.opts.CleanupInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				counts, err := s.Store.DeleteExpired(ctx, storage.DefaultRetention)
				if err != nil && ctx.Err() == nil {
					slog.ErrorContext(ctx, "delete expired rows", "err", err)
				} else if err == nil {
					slog.DebugContext(ctx, "deleted expired rows", "counts", counts)
				}
			}
		}
	}()
	return &wg
}

// DeliverLogouts makes one delivery pass now (tests).
func (s *Server) DeliverLogouts(ctx context.Context) { s.logouts.DeliverDue(ctx) }

// Run serves on the configured address until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	tuneGC(s.opts.LookupEnv, s.opts.PasswordParams, memlimit.FromCgroup)
	srv := &http.Server{
		Addr: s.cfg.Addr, Handler: s.echo,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	wg := s.RunBackground(bgCtx)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("identity provider listening", "addr", s.cfg.Addr, "issuer", s.cfg.Issuer, "dev", s.cfg.Dev,
		"database", s.Store.Dialect(), "signing_alg", s.cfg.SigningAlg)
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		slog.Info("shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = srv.Shutdown(shutdownCtx)
		cancel()
	}
	stopBackground()
	wg.Wait()
	if cerr := s.Store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close releases the database (when Run was not used).
func (s *Server) Close() error { return s.Store.Close() }
