// Package oidc is an upstream connector (login/upstream) for any OpenID Connect
// provider: the authorization code flow with PKCE S256, state and nonce, and an ID
// token verified against the provider's published keys (signature, iss, aud, exp,
// nonce). The person's name, username, phone and picture are read from the ID token.
//
// Telegram's login (https://oauth.telegram.org) is one such provider: issuer
// IDP_TELEGRAM_URL, client id = the bot's id, the secret from BotFather's web-login
// settings, scopes "openid profile phone". Another provider is another [Config]:
// cmd/idp/config keeps them in a registry keyed by connector id.
//
// The provider's discovery document is fetched on first use, within a timeout, not
// when the server starts: an upstream that is down does not stop ours, and a failed
// fetch is tried again (after RetryAfter) by the next person who presses the button.
package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/astral/idp/login/upstream"
)

// Config is one OpenID Connect upstream.
type Config struct {
	ID           string   // connector id, the idp claim: "telegram"
	Title        string   // button text: "Telegram"
	Issuer       string   // exactly as the provider's discovery document says it
	ClientID     string   // Telegram: the bot's id
	ClientSecret string   // Telegram: the web-login secret
	Scopes       []string // "openid" is added when missing

	// HTTPClient talks to the provider; nil is a client with a Timeout.
	HTTPClient *http.Client
	// Timeout bounds discovery (and, for the default client, every request); 0 is
	// DefaultTimeout.
	Timeout time.Duration
	// RetryAfter is how long a failed discovery is answered from memory before the
	// next try; 0 is DefaultRetryAfter, negative tries every time.
	RetryAfter time.Duration
}

// Defaults of Config.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultRetryAfter = 5 * time.Second
)

// Connector is an OpenID Connect upstream.
type Connector struct {
	cfg    Config
	client *http.Client

	mu       sync.Mutex
	found    *discovered // nil until discovery succeeded
	lastErr  error       // of the last failed discovery
	failedAt time.Time
}

var _ upstream.Connector = (*Connector)(nil)

type discovered struct {
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
}

// New makes a connector; it does not talk to the provider yet.
func New(cfg Config) (*Connector, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"ID", cfg.ID}, {"Title", cfg.Title}, {"Issuer", cfg.Issuer},
		{"ClientID", cfg.ClientID}, {"ClientSecret", cfg.ClientSecret}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("oidc upstream %q: %s required", cfg.ID, strings.Join(missing, ", "))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	hasOpenID := false
	for _, s := range cfg.Scopes {
		hasOpenID = hasOpenID || s == gooidc.ScopeOpenID
	}
	if !hasOpenID {
		cfg.Scopes = append([]string{gooidc.ScopeOpenID}, cfg.Scopes...)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	return &Connector{cfg: cfg, client: client}, nil
}

// ID implements upstream.Connector.
func (c *Connector) ID() string { return c.cfg.ID }

// Title implements upstream.Connector.
func (c *Connector) Title() string { return c.cfg.Title }

// discover returns the provider's endpoints and ID token verifier, fetching them on
// first use. A failure is upstream.ErrUnavailable and is tried again later.
func (c *Connector) discover(ctx context.Context) (*discovered, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.found != nil {
		return c.found, nil
	}
	if c.lastErr != nil && c.cfg.RetryAfter > 0 && time.Since(c.failedAt) < c.cfg.RetryAfter {
		return nil, c.lastErr
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	p, err := gooidc.NewProvider(gooidc.ClientContext(dctx, c.client), c.cfg.Issuer)
	if err != nil {
		err = fmt.Errorf("%w: discovery of %s: %v", upstream.ErrUnavailable, c.cfg.Issuer, err)
		if ctx.Err() == nil { // the caller's own cancellation says nothing of the provider
			c.lastErr, c.failedAt = err, time.Now()
		}
		return nil, err
	}
	// The verifier checks the signature with the provider's JWKS (fetched through
	// c.client, refreshed when an unknown key id appears), iss, aud and exp.
	c.found = &discovered{provider: p, verifier: p.Verifier(&gooidc.Config{ClientID: c.cfg.ClientID})}
	c.lastErr = nil
	return c.found, nil
}

func (c *Connector) oauth(d *discovered, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, Endpoint: d.provider.Endpoint(),
		RedirectURL: redirectURI, Scopes: c.cfg.Scopes,
	}
}

// LoginURL implements upstream.Connector: the provider's authorization endpoint with
// the state, the nonce and the S256 challenge of the verifier.
func (c *Connector) LoginURL(s upstream.Start) (string, error) {
	d, err := c.discover(context.Background())
	if err != nil {
		return "", err
	}
	return c.oauth(d, s.RedirectURI).AuthCodeURL(s.State, gooidc.Nonce(s.Nonce), oauth2.S256ChallengeOption(s.Verifier)), nil
}

// HandleCallback implements upstream.Connector: it exchanges the code (with the
// verifier and the client secret) and verifies the ID token.
func (c *Connector) HandleCallback(ctx context.Context, s upstream.Start, r *http.Request) (upstream.Identity, error) {
	code := r.URL.Query().Get("code")
	if code == "" {
		return upstream.Identity{}, errors.New("callback without a code")
	}
	d, err := c.discover(ctx)
	if err != nil {
		return upstream.Identity{}, err
	}
	ctx = gooidc.ClientContext(ctx, c.client)
	tok, err := c.oauth(d, s.RedirectURI).Exchange(ctx, code, oauth2.VerifierOption(s.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return upstream.Identity{}, fmt.Errorf("token endpoint refused the code: %w", err)
		}
		return upstream.Identity{}, fmt.Errorf("%w: token endpoint: %v", upstream.ErrUnavailable, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return upstream.Identity{}, errors.New("token response without an id_token")
	}
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("ID token: %w", err)
	}
	// go-oidc leaves the nonce to the caller (OIDC Core §3.1.3.7 step 11).
	if s.Nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(s.Nonce)) != 1 {
		return upstream.Identity{}, errors.New("ID token nonce does not match the attempt")
	}
	// OIDC Core §3.1.3.8: at_hash, when present, binds the access token to the ID token.
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return upstream.Identity{}, fmt.Errorf("ID token at_hash: %w", err)
		}
	}
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return upstream.Identity{}, fmt.Errorf("ID token claims: %w", err)
	}
	return identityOf(c.cfg.ID, idt.Subject, all), nil
}

// profileClaims are the claims kept with a linked identity; the protocol's own (iss,
// aud, exp, nonce, …) are not.
var profileClaims = []string{
	"name", "given_name", "family_name", "preferred_username", "picture",
	"phone_number", "phone_number_verified", "email", "email_verified",
}

func identityOf(connector, subject string, all map[string]any) upstream.Identity {
	str := func(k string) string {
		s, _ := all[k].(string)
		return strings.TrimSpace(s)
	}
	id := upstream.Identity{Connector: connector, Subject: subject, Phone: str("phone_number"), Claims: map[string]any{}}
	if b, _ := all["email_verified"].(bool); b {
		id.Email = str("email")
	}
	switch {
	case str("name") != "":
		id.DisplayName = str("name")
	case str("given_name") != "" || str("family_name") != "":
		id.DisplayName = strings.TrimSpace(str("given_name") + " " + str("family_name"))
	case str("preferred_username") != "":
		id.DisplayName = "@" + strings.TrimPrefix(str("preferred_username"), "@")
	case id.Phone != "":
		id.DisplayName = id.Phone
	}
	for _, k := range profileClaims {
		if v, ok := all[k]; ok {
			id.Claims[k] = v
		}
	}
	return id
}
