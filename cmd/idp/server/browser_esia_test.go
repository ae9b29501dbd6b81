package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/astral/idp/login/browsertest"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// snilsProduct is a product that asks for the scope gosuslugi and shows the SNILS
// its verified ID token and the userinfo endpoint gave it.
type snilsProduct struct {
	srv      *httptest.Server
	provider *oidc.Provider
	configs  map[string]*oauth2.Config // by path

	mu      sync.Mutex
	pending map[string]string // state → verifier
}

var snilsPage = template.Must(template.New("p").Parse(`<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>Продукт</title></head>
<body><p id="who">{{.}}</p></body></html>`))

// newSnilsProducts registers two products at the provider: "with" is allowed the
// scope gosuslugi, "without" is not; both ask for it.
func newSnilsProducts(t *testing.T, e *testEnv) *snilsProduct {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	sp := &snilsProduct{provider: p, configs: map[string]*oauth2.Config{}, pending: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{product}/start", sp.start)
	mux.HandleFunc("GET /{product}/cb", sp.callback)
	sp.srv = httptest.NewServer(mux)
	t.Cleanup(sp.srv.Close)
	for path, scopes := range map[string][]string{
		"with":    {"openid", "profile", "gosuslugi"},
		"without": {"openid", "profile"},
	} {
		secret, redirect := rand.Text(), sp.srv.URL+"/"+path+"/cb"
		err := e.store.CreateClient(context.Background(), &storage.Client{
			ID: "browser-" + path, Name: "Продукт " + path, Type: "web", Source: "cli",
			RedirectURIs: storage.StringList{redirect}, GrantTypes: storage.StringList{"authorization_code"},
			Scopes: storage.StringList(scopes), SecretHash: provider.ClientSecretHasher([]byte(browserMasterKey)).Hash(secret),
		})
		if err != nil {
			t.Fatal(err)
		}
		sp.configs[path] = &oauth2.Config{ClientID: "browser-" + path, ClientSecret: secret, Endpoint: p.Endpoint(),
			RedirectURL: redirect, Scopes: []string{"openid", "profile", "gosuslugi"}}
	}
	return sp
}

func (sp *snilsProduct) start(w http.ResponseWriter, r *http.Request) {
	cfg := sp.configs[r.PathValue("product")]
	if cfg == nil {
		http.NotFound(w, r)
		return
	}
	state, verifier := rand.Text(), oauth2.GenerateVerifier()
	sp.mu.Lock()
	sp.pending[state] = verifier
	sp.mu.Unlock()
	http.Redirect(w, r, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// callback shows "СНИЛС <id token> / <userinfo>" or the error.
func (sp *snilsProduct) callback(w http.ResponseWriter, r *http.Request) {
	text, err := sp.read(r)
	if err != nil {
		text = "Ошибка продукта: " + err.Error()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = snilsPage.Execute(w, text)
}

func (sp *snilsProduct) read(r *http.Request) (string, error) {
	cfg := sp.configs[r.PathValue("product")]
	q := r.URL.Query()
	sp.mu.Lock()
	verifier, ok := sp.pending[q.Get("state")]
	delete(sp.pending, q.Get("state"))
	sp.mu.Unlock()
	if cfg == nil || !ok || q.Get("code") == "" {
		return "", fmt.Errorf("unexpected callback %s", r.URL.RawQuery)
	}
	ctx := r.Context()
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return "", fmt.Errorf("exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := sp.provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("ID token: %w", err)
	}
	var claims struct {
		SNILS string `json:"snils"`
	}
	if err := idt.Claims(&claims); err != nil {
		return "", err
	}
	ui, err := sp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return "", fmt.Errorf("userinfo: %w", err)
	}
	var info struct {
		SNILS string `json:"snils"`
	}
	if err := ui.Claims(&info); err != nil {
		return "", err
	}
	show := func(s string) string {
		if s == "" {
			return "нет"
		}
		return s
	}
	return "СНИЛС " + show(claims.SNILS) + " / " + show(info.SNILS), nil
}

// TestBrowserESIARegister is registration through Gosuslugi as a person does it, in
// headless Chromium, with ESIA played by the stand-in: a product allowed the
// gosuslugi scope sends the person to the sign-in page, "Регистрация", then
// "госуслуги"; the account is opened from the verified data and the product shows
// the SNILS from its ID token and userinfo. A second product, which asks for the
// scope without being allowed it, signs the same person in with single sign-on and
// gets no SNILS.
func TestBrowserESIARegister(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e, _ := newESIAEnv(t, backend)
			sp := newSnilsProducts(t, e)
			b := browsertest.New(t)
			browserScreenshotOnFailure(t, b, "ivanov")

			if _, err := chromedp.RunResponse(b, chromedp.Navigate(sp.srv.URL+"/with/start")); err != nil {
				t.Fatal(err)
			}
			if p := readShownPage(t, b); !strings.HasPrefix(p.URL, e.issuer+"/login?") {
				t.Fatalf("the product led to %s, want the sign-in page\n%s", p.URL, p.Text)
			}
			followLink(t, b, "Регистрация")
			if got := pageText(t, b, "h1"); got != "Регистрация" {
				t.Fatalf("registration page heading %q", got)
			}
			followLink(t, b, "госуслуги")
			p := readShownPage(t, b)
			if want := "СНИЛС 112-233-445 95 / 112-233-445 95"; !strings.HasPrefix(p.URL, sp.srv.URL+"/with/cb?") || p.Text != want {
				t.Fatalf("after registering through Gosuslugi: %s shows %q, want %q", p.URL, p.Text, want)
			}
			if _, err := e.store.IdentityBySubject(context.Background(), "esia", "1000404834"); err != nil {
				t.Fatalf("the Gosuslugi identity: %v", err)
			}

			if _, err := chromedp.RunResponse(b, chromedp.Navigate(sp.srv.URL+"/without/start")); err != nil {
				t.Fatal(err)
			}
			p = readShownPage(t, b)
			if want := "СНИЛС нет / нет"; !strings.HasPrefix(p.URL, sp.srv.URL+"/without/cb?") || p.Text != want {
				t.Fatalf("the product without the scope: %s shows %q, want %q", p.URL, p.Text, want)
			}
		})
	}
}
