package provider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/crypto/hkdf"
	"golang.org/x/text/language"

	"github.com/astral/idp/provider/keys"
	"github.com/astral/idp/storage"
)

// Config is what the provider is built from.
type Config struct {
	Issuer    string // absolute URL; http only on a loopback host
	MasterKey []byte // 32 bytes; keys for secrets and token encryption derive from it
	Lifetimes Lifetimes
	// LoginPath and LogoutPath are the login app's pages (relative to the issuer).
	LoginPath  string
	LogoutPath string
	// LoggedOutPath is where a logout without a registered redirect ends.
	LoggedOutPath string
	Metrics       Metrics
	// OnLogout is called after sessions were ended, to deliver back-channel logouts soon.
	OnLogout func()
}

// Provider is the OpenID Provider.
type Provider struct {
	op        *op.Provider
	storage   *opStorage
	issuer    string
	handler   http.Handler
	logoutKey []byte
}

// signRedirect binds a post-logout redirect that op has validated to this provider,
// so the logout confirmation page cannot be turned into an open redirect.
func (p *Provider) signRedirect(uri string) string {
	mac := hmac.New(sha256.New, p.logoutKey)
	mac.Write([]byte(uri))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyLogoutRedirect reports whether sig is the provider's signature of uri.
func (p *Provider) VerifyLogoutRedirect(uri, sig string) bool {
	return hmac.Equal([]byte(p.signRedirect(uri)), []byte(sig))
}

// DeriveKey derives a purpose-bound key from the master key (HKDF-SHA256), so one
// secret configures everything and no two uses share a key.
func DeriveKey(masterKey []byte, purpose string) []byte {
	out := make([]byte, 32)
	r := hkdf.New(sha256.New, masterKey, nil, []byte("astral-idp/"+purpose))
	_, _ = r.Read(out) // HKDF-SHA256 yields far more than 32 bytes
	return out
}

// ClientSecretHasher is the hasher the provider checks client secrets with; the CLI
// and the clients-file loader use it to store them.
func ClientSecretHasher(masterKey []byte) SecretHasher {
	return NewSecretHasher(DeriveKey(masterKey, "client-secret"))
}

// New builds the provider.
func New(cfg Config, store Store, km *keys.Manager) (*Provider, error) {
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil || issuer.Host == "" {
		return nil, fmt.Errorf("issuer %q is not an absolute URL", cfg.Issuer)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	s := &opStorage{
		store: store, clients: newClientCache(ClientCacheTTL, store.ClientByID), keys: km, secrets: ClientSecretHasher(cfg.MasterKey), lifetimes: cfg.Lifetimes,
		metrics: cfg.Metrics, onLogout: cfg.OnLogout, devMode: issuer.Scheme == "http",
		loginURL: func(id string) string {
			return cfg.Issuer + cfg.LoginPath + "?authRequestID=" + url.QueryEscape(id)
		},
	}
	p := &Provider{issuer: cfg.Issuer, storage: s, logoutKey: DeriveKey(cfg.MasterKey, "logout-redirect")}
	s.logoutURL = func(_ context.Context, redirect string) string {
		u := cfg.Issuer + cfg.LogoutPath
		if redirect != "" && redirect != cfg.LoggedOutPath {
			u += "?post_logout_redirect_uri=" + url.QueryEscape(redirect) + "&sig=" + p.signRedirect(redirect)
		}
		return u
	}
	var cryptoKey [32]byte
	copy(cryptoKey[:], DeriveKey(cfg.MasterKey, "access-token"))
	opCfg := &op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: cfg.LoggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		RequestObjectSupported:   false,
		SupportedUILocales:       []language.Tag{language.Russian, language.English},
		SupportedClaims: []string{
			"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "azp", "sid", "idp",
			"name", "family_name", "given_name", "middle_name", "preferred_username", "updated_at",
			"email", "email_verified", "phone_number", "phone_number_verified",
			// scope gosuslugi: the Gosuslugi-verified identity
			"birthdate", "snils", ClaimGosuslugiTrusted,
		},
		SupportedScopes: []string{
			oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone,
			oidc.ScopeOfflineAccess, ScopeGosuslugi,
		},
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}
	opts := []op.Option{
		op.WithHttpInterceptors(withRequestMemo, rejectMalformedForm, keepClaimsParam("/authorize"),
			noStoreTokens("/oauth/token"), noteTokenForm("/oauth/token"), bearerChallenge("/userinfo"),
			keepPresentedToken("/userinfo", "/oauth/introspect"), p.exchangeGrants("/oauth/token")),
	}
	if issuer.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	o, err := op.NewProvider(opCfg, s, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("create OpenID provider: %w", err)
	}
	p.op = o
	mux := http.NewServeMux()
	mux.HandleFunc(oidc.DiscoveryEndpoint, p.discovery)
	mux.Handle("/", o)
	p.handler = mux
	return p, nil
}

// discovery is op's discovery document, corrected to what this provider offers: op
// advertises the implicit and hybrid response types, the device flow and the JWT
// bearer grant whether or not a provider supports them.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	cfg := op.CreateDiscoveryConfig(ctx, p.op, p.storage)
	cfg.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	cfg.ResponseModesSupported = []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFormPost)}
	cfg.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	cfg.DeviceAuthorizationEndpoint = ""
	cfg.ClaimsParameterSupported = true
	cfg.RequestParameterSupported = false
	cfg.RequestURIParameterSupported = false
	// The document is public; browser apps (spa clients) read it cross-origin.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	op.Discover(w, cfg)
}

// Handler serves the protocol endpoints.
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer is the issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// SignJWT signs claims with the current signing key (back-channel logout tokens).
func (p *Provider) SignJWT(ctx context.Context, claims any, typ string) (string, error) {
	return signJWT(ctx, p.storage.keys, claims, typ)
}

// PendingRequest is what the login app needs to know about an authorization request.
type PendingRequest struct {
	ID          string
	ClientID    string
	ClientName  string
	Prompt      []string
	MaxAge      *time.Duration
	LoginHint   string
	HintSubject string // sub of a valid id_token_hint
	UILocales   []string
	Done        bool
}

// ErrRequestNotFound means the authorization request is unknown or expired.
var ErrRequestNotFound = errors.New("authorization request not found or expired")

// PendingRequest loads an authorization request for the login app.
func (p *Provider) PendingRequest(ctx context.Context, id string) (*PendingRequest, error) {
	r, err := p.storage.store.AuthRequestByID(ctx, id)
	if storage.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %v", ErrRequestNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	c, err := p.storage.store.ClientByID(ctx, r.ClientID)
	if err != nil {
		return nil, fmt.Errorf("load client of auth request %q: %w", id, err)
	}
	pr := &PendingRequest{
		ID: r.ID, ClientID: r.ClientID, ClientName: c.Name, Prompt: r.Prompt, LoginHint: r.LoginHint,
		HintSubject: r.HintSubject, UILocales: r.UILocales, Done: r.Done,
	}
	if r.MaxAge != nil {
		d := time.Duration(*r.MaxAge) * time.Second
		pr.MaxAge = &d
	}
	return pr, nil
}

// Complete records the sign-in that satisfies an authorization request; the login app
// then sends the browser to CallbackURL.
func (p *Provider) Complete(ctx context.Context, id string, a storage.Authentication) error {
	if err := p.storage.store.CompleteAuthRequest(ctx, id, a); err != nil {
		if storage.IsNotFound(err) || storage.IsReused(err) {
			return fmt.Errorf("%w: %v", ErrRequestNotFound, err)
		}
		return err
	}
	return nil
}

// CallbackURL is where the browser goes once a request is complete.
func (p *Provider) CallbackURL(ctx context.Context, id string) string {
	return op.AuthCallbackURL(p.op)(op.ContextWithIssuer(ctx, p.issuer), id)
}

// Fail answers an authorization request with a protocol error at the product's
// redirect URI (for example login_required after prompt=none).
func (p *Provider) Fail(w http.ResponseWriter, r *http.Request, id string, e *oidc.Error) {
	req, err := p.storage.AuthRequestByID(r.Context(), id)
	if err != nil {
		op.AuthRequestError(w, r, nil, err, p.op)
		return
	}
	_ = p.storage.store.DeleteAuthRequest(r.Context(), id)
	op.AuthRequestError(w, r, req, e, p.op)
}

type noMetrics struct{}

func (noMetrics) TokenIssued(string) {}
