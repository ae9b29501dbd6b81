package oidc_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/astral/idp/login/upstream"
	"github.com/astral/idp/login/upstream/oidc"
	"github.com/astral/idp/login/upstream/oidc/oidctest"
)

const redirectURI = "http://127.0.0.1:9/upstream/telegram/callback"

func newConnector(t *testing.T, tg *oidctest.Provider, secret string) *oidc.Connector {
	t.Helper()
	c, err := oidc.New(oidc.Config{ID: "telegram", Title: "Telegram", Issuer: tg.URL, ClientID: tg.ClientID,
		ClientSecret: secret, Scopes: []string{"openid", "profile", "phone"}, RetryAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newStart() upstream.Start {
	return upstream.Start{State: rand.Text(), Nonce: rand.Text(), Verifier: rand.Text() + rand.Text(), RedirectURI: redirectURI}
}

// authorize follows the connector's login URL to the provider and returns the
// callback request the provider sends the browser back with.
func authorize(t *testing.T, c *oidc.Connector, s upstream.Start) *http.Request {
	t.Helper()
	dest, err := c.LoginURL(s)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dest)
	q := u.Query()
	if q.Get("state") != s.State || q.Get("nonce") != s.Nonce || q.Get("code_challenge_method") != "S256" ||
		q.Get("redirect_uri") != redirectURI || q.Get("scope") != "openid profile phone" {
		t.Fatalf("login URL %s", dest)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(dest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorization endpoint answered %d", resp.StatusCode)
	}
	loc, _ := resp.Location()
	if loc.Query().Get("state") != s.State {
		t.Fatalf("callback %s lost the state", loc)
	}
	return httptest.NewRequest(http.MethodGet, loc.String(), nil)
}

func TestSignIn(t *testing.T) {
	tg := oidctest.New(t, "7700000000", "bot-secret")
	tg.LogIn("100200300", map[string]any{"name": "Иван Петров", "preferred_username": "ivan",
		"phone_number": "+79105940899", "picture": "https://t.me/i/ivan.jpg"})
	c := newConnector(t, tg, "bot-secret")
	s := newStart()
	id, err := c.HandleCallback(context.Background(), s, authorize(t, c, s))
	if err != nil {
		t.Fatal(err)
	}
	if id.Connector != "telegram" || id.Subject != "100200300" || id.DisplayName != "Иван Петров" || id.Phone != "+79105940899" ||
		id.Claims["preferred_username"] != "ivan" || id.Claims["picture"] != "https://t.me/i/ivan.jpg" || id.Claims["nonce"] != nil {
		t.Fatalf("identity %+v", id)
	}

	// Only a username: it names the person.
	tg.LogIn("100200301", map[string]any{"preferred_username": "petr"})
	s = newStart()
	if id, err = c.HandleCallback(context.Background(), s, authorize(t, c, s)); err != nil || id.DisplayName != "@petr" {
		t.Fatalf("identity %+v, %v", id, err)
	}
}

func TestRefusals(t *testing.T) {
	tg := oidctest.New(t, "7700000000", "bot-secret")
	tg.LogIn("100200300", nil)
	c := newConnector(t, tg, "bot-secret")
	for _, tt := range []struct {
		name  string
		fault oidctest.Fault
		edit  func(s *upstream.Start)
		want  string
	}{
		{"forged ID token", oidctest.ForgedToken, nil, "signature"},
		{"wrong nonce", oidctest.WrongNonce, nil, "nonce"},
		{"wrong audience", oidctest.WrongAudience, nil, "audience"},
		{"wrong PKCE verifier", oidctest.None, func(s *upstream.Start) { s.Verifier += "-other" }, "invalid_grant"},
		{"other redirect URI", oidctest.None, func(s *upstream.Start) { s.RedirectURI += "x" }, "invalid_grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tg.SetFault(tt.fault)
			defer tg.SetFault(oidctest.None)
			s := newStart()
			r := authorize(t, c, s)
			if tt.edit != nil {
				tt.edit(&s)
			}
			_, err := c.HandleCallback(context.Background(), s, r)
			if err == nil || errors.Is(err, upstream.ErrUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("HandleCallback: %v, want a refusal about %q", err, tt.want)
			}
		})
	}
	t.Run("replayed code", func(t *testing.T) {
		s := newStart()
		r := authorize(t, c, s)
		if _, err := c.HandleCallback(context.Background(), s, r); err != nil {
			t.Fatal(err)
		}
		if _, err := c.HandleCallback(context.Background(), s, r); err == nil || errors.Is(err, upstream.ErrUnavailable) {
			t.Fatalf("replayed code: %v, want a refusal", err)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		bad := newConnector(t, tg, "not-the-secret")
		s := newStart()
		if _, err := bad.HandleCallback(context.Background(), s, authorize(t, bad, s)); err == nil || errors.Is(err, upstream.ErrUnavailable) {
			t.Fatalf("wrong secret: %v, want a refusal", err)
		}
	})
	t.Run("no code", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, redirectURI+"?state=x", nil)
		if _, err := c.HandleCallback(context.Background(), newStart(), r); err == nil {
			t.Fatal("a callback without a code was accepted")
		}
	})
}

// TestDiscoveryLazyAndRetried: a provider that is down neither stops New nor stays
// broken once it is back.
func TestDiscoveryLazyAndRetried(t *testing.T) {
	tg := oidctest.New(t, "7700000000", "bot-secret")
	tg.LogIn("100200300", nil)
	tg.SetDown(true)
	c := newConnector(t, tg, "bot-secret")
	if _, err := c.LoginURL(newStart()); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("LoginURL with discovery down: %v, want ErrUnavailable", err)
	}
	tg.SetDown(false)
	s := newStart()
	if _, err := c.HandleCallback(context.Background(), s, authorize(t, c, s)); err != nil {
		t.Fatalf("after discovery came back: %v", err)
	}
	// Once found, discovery is not needed again.
	tg.SetDown(true)
	s = newStart()
	if _, err := c.HandleCallback(context.Background(), s, authorize(t, c, s)); err != nil {
		t.Fatalf("discovery fetched again: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	tg := oidctest.New(t, "7700000000", "bot-secret")
	tg.SetDown(true)
	c, err := oidc.New(oidc.Config{ID: "telegram", Title: "Telegram", Issuer: tg.URL, ClientID: tg.ClientID, ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoginURL(newStart()); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatal(err)
	}
	tg.SetDown(false)
	// Within DefaultRetryAfter the failure is answered from memory.
	if _, err := c.LoginURL(newStart()); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("second try at once: %v, want the remembered failure", err)
	}
}

func TestNewRequiresFields(t *testing.T) {
	_, err := oidc.New(oidc.Config{ID: "telegram", Title: "Telegram", Issuer: "https://oauth.telegram.org", ClientID: "1"})
	if err == nil || !strings.Contains(err.Error(), "ClientSecret") {
		t.Fatalf("New without a secret: %v", err)
	}
}
