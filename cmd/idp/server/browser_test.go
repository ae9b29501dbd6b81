package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/astral/idp/login/browsertest"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// browserMasterKey is the master key the harness configures (IDP_MASTER_KEY, raw bytes).
const browserMasterKey = "0123456789abcdef0123456789abcdef"

// envScreenshots names a folder where TestBrowserSignIn also saves the login page with
// a field error, to look at (unset: only failures are saved, to a folder in TMPDIR).
const envScreenshots = "IDP_TEST_SCREENSHOTS"

// TestBrowserSignIn is the sign-in as a person does it, in a real headless Chromium,
// against a product that is an independent relying party (go-oidc + x/oauth2, with
// state, nonce and PKCE S256):
//
//  1. the product sends the browser to the login page: heading, labels, links and
//     the +7 mask, typed key by key;
//  2. a wrong password shows the Russian error on the same page; the right one lands
//     on the product, which verifies the ID token (sub, nonce, amr=pwd);
//  3. a second product in the same browser signs in without any form (single sign-on),
//     checked on the history of committed pages;
//  4. a second, fresh browser gets the form, a field error next to the phone, and
//     switches to email mode and back with the links, with JavaScript off.
//
// On failure a screenshot of each browser is saved and its path logged.
func TestBrowserSignIn(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			rp := newRelyingParty(t, e)
			report := rp.addProduct(t, e, "browser-report", "Астрал.Отчет", "report")
			signature := rp.addProduct(t, e, "browser-signature", "Астрал.Подпись", "signature")

			alice := browsertest.New(t)
			browserScreenshotOnFailure(t, alice, "alice")

			// 1. The first product sends the person to the login page.
			start := rp.srv.URL + "/" + report.path + "/start"
			resp, err := chromedp.RunResponse(alice, chromedp.Navigate(start))
			if err != nil {
				t.Fatalf("open %s: %v", start, err)
			}
			p := readShownPage(t, alice)
			if resp.Status != http.StatusOK || !strings.HasPrefix(p.URL, e.issuer+"/login?") {
				t.Fatalf("%s led to %s (status %d), want the login page of %s\n%s", start, p.URL, resp.Status, e.issuer, p.Text)
			}
			loginURL := p.URL
			checkBrowserLoginPage(t, alice, "Астрал.Отчет", "phone")
			if p.Title != "Вход в Астрал.Отчет" {
				t.Errorf("title %q, want %q", p.Title, "Вход в Астрал.Отчет")
			}
			if err := chromedp.Do(alice, chromedp.SendKeys(chromedp.ID("login"), "9105940899")); err != nil {
				t.Fatal(err)
			}
			if v := fieldValue(t, alice, "#login"); v != "+7 (910) 594-08-99" {
				t.Fatalf("after typing 9105940899 the phone field shows %q, want %q", v, "+7 (910) 594-08-99")
			}

			// 2. A wrong password: the error on the same page, the phone kept.
			if err := chromedp.Do(alice, chromedp.SendKeys(chromedp.ID("password"), "wrong password")); err != nil {
				t.Fatal(err)
			}
			clickSignIn(t, alice)
			p = readShownPage(t, alice)
			if p.URL != loginURL {
				t.Errorf("after a wrong password the browser is at %s, want it to stay at %s", p.URL, loginURL)
			}
			if got := pageText(t, alice, "[role=alert]"); got != "Неверный номер телефона, email или пароль" {
				t.Errorf("wrong password: alert %q, want %q", got, "Неверный номер телефона, email или пароль")
			}
			checkBrowserLoginPage(t, alice, "Астрал.Отчет", "phone")
			if v := fieldValue(t, alice, "#login"); v != "+7 (910) 594-08-99" {
				t.Errorf("after a wrong password the phone field shows %q, want the number kept", v)
			}
			if v := fieldValue(t, alice, "#password"); v != "" {
				t.Errorf("after a wrong password the password field still holds %q", v)
			}

			// The right password: the product's callback verifies the ID token.
			if err := chromedp.Do(alice, chromedp.SendKeys(chromedp.ID("password"), e.password)); err != nil {
				t.Fatal(err)
			}
			clickSignIn(t, alice)
			p = readShownPage(t, alice)
			want := "Вошли как " + e.userID + ", amr=pwd"
			if !strings.HasPrefix(p.URL, rp.srv.URL+"/"+report.path+"/cb?") || p.Text != want {
				t.Fatalf("after signing in: %s shows %q, want %q", p.URL, p.Text, want)
			}

			// 3. The second product in the same browser: single sign-on, no form.
			var (
				mu        sync.Mutex
				committed []string // documents the tab showed
				visited   []string // every document request, redirects included
			)
			lctx, stopListening := context.WithCancel(alice)
			if err := chromedp.Listen(lctx, func(ev any) {
				mu.Lock()
				defer mu.Unlock()
				switch ev := ev.(type) {
				case *page.EventFrameNavigated:
					if ev.Frame.ParentID == "" {
						committed = append(committed, ev.Frame.URL)
					}
				case *network.EventRequestWillBeSent:
					if ev.Type == network.ResourceTypeDocument {
						visited = append(visited, ev.Request.URL)
					}
				}
			}); err != nil {
				t.Fatal(err)
			}
			start2 := rp.srv.URL + "/" + signature.path + "/start"
			if err := chromedp.Do(alice, chromedp.Navigate(start2)); err != nil {
				t.Fatalf("open %s: %v", start2, err)
			}
			stopListening()
			p = readShownPage(t, alice)
			mu.Lock()
			shown, chain := append([]string(nil), committed...), append([]string(nil), visited...)
			mu.Unlock()
			if !strings.HasPrefix(p.URL, rp.srv.URL+"/"+signature.path+"/cb?") || p.Text != want {
				t.Errorf("second product: %s shows %q, want %q without a form", p.URL, p.Text, want)
			}
			if len(shown) != 1 || !strings.HasPrefix(shown[0], rp.srv.URL+"/"+signature.path+"/cb?") {
				t.Errorf("second product: the tab showed %q, want only the product's callback (no login page)", shown)
			}
			if !slices.ContainsFunc(chain, func(u string) bool { return strings.HasPrefix(u, e.issuer+"/authorize?") }) {
				t.Errorf("second product: document requests %q never went through %s/authorize", chain, e.issuer)
			}

			// 4. A fresh browser has no session: the form, a field error, email mode.
			bob := browsertest.NewContext(t, alice)
			browserScreenshotOnFailure(t, bob, "bob")
			if err := chromedp.Do(bob, chromedp.Navigate(start)); err != nil {
				t.Fatalf("second browser: open %s: %v", start, err)
			}
			if p := readShownPage(t, bob); !strings.HasPrefix(p.URL, e.issuer+"/login?") {
				t.Fatalf("second browser: %s led to %s, want the login form (no session)\n%s", start, p.URL, p.Text)
			}
			checkBrowserLoginPage(t, bob, "Астрал.Отчет", "phone")
			if err := chromedp.Do(bob,
				chromedp.SendKeys(chromedp.ID("login"), "910594"),
				chromedp.SendKeys(chromedp.ID("password"), e.password),
			); err != nil {
				t.Fatal(err)
			}
			clickSignIn(t, bob)
			const phoneErr = "Введите номер мобильного телефона в формате +7 (900) 000-00-00"
			if got := pageText(t, bob, "#login-error"); got != phoneErr {
				t.Errorf("incomplete phone: field error %q, want %q", got, phoneErr)
			}
			if got := pageAttr(t, bob, "#login", "aria-invalid"); got != "true" {
				t.Errorf("incomplete phone: aria-invalid=%q on the field", got)
			}
			if got := pageAttr(t, bob, "#login", "aria-describedby"); got != "login-error" {
				t.Errorf("incomplete phone: aria-describedby=%q, want login-error", got)
			}
			if v := fieldValue(t, bob, "#login"); v != "+7 (910) 594" {
				t.Errorf("incomplete phone: the field shows %q, want %q", v, "+7 (910) 594")
			}
			if dir := os.Getenv(envScreenshots); dir != "" {
				browsertest.Screenshot(t, bob, filepath.Join(dir, "login-field-error-"+backend+".png"))
			}
			// The field has the focus (autofocus): the person goes on typing the number.
			if id, err := browserLook(bob, chromedp.Evaluate[string](`document.activeElement.id`)); err != nil || id != "login" {
				t.Errorf("incomplete phone: the focus is on %q (%v), want the phone field", id, err)
			}
			if err := chromedp.Do(bob, chromedp.KeyEvent("0899")); err != nil {
				t.Fatal(err)
			}
			if v := fieldValue(t, bob, "#login"); v != "+7 (910) 594-08-99" {
				t.Errorf("typing 0899 into the focused field with the error gives %q, want %q", v, "+7 (910) 594-08-99")
			}

			// The mode links are plain links: they work with JavaScript off.
			if _, err := chromedp.Call(bob, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
				t.Fatal(err)
			}
			followLink(t, bob, "По email")
			checkBrowserLoginPage(t, bob, "Астрал.Отчет", "email")
			// The script adds the password toggle: without it, JavaScript is off indeed.
			if n, err := browserLook(bob, chromedp.Evaluate[int](`document.querySelectorAll(".password-toggle").length`)); err != nil || n != 0 {
				t.Errorf("email mode: %d password toggles (%v), want none with JavaScript off", n, err)
			}
			followLink(t, bob, "По телефону")
			checkBrowserLoginPage(t, bob, "Астрал.Отчет", "phone")
		})
	}
}

// rpProduct is one registered product of the relying party.
type rpProduct struct {
	path   string // under the relying party's URL: /{path}/start, /{path}/cb
	name   string
	config *oauth2.Config
}

// rpAttempt is what /start remembered for /cb, by state.
type rpAttempt struct {
	product  string
	nonce    string
	verifier string
}

// relyingParty is a small independent product: it only speaks OpenID Connect to the
// identity provider, as a real one would.
type relyingParty struct {
	srv      *httptest.Server
	provider *oidc.Provider

	mu       sync.Mutex
	products map[string]*rpProduct
	pending  map[string]rpAttempt
}

func newRelyingParty(t *testing.T, e *testEnv) *relyingParty {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	rp := &relyingParty{provider: p, products: map[string]*rpProduct{}, pending: map[string]rpAttempt{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{product}/start", rp.start)
	mux.HandleFunc("GET /{product}/cb", rp.callback)
	rp.srv = httptest.NewServer(mux)
	t.Cleanup(rp.srv.Close)
	return rp
}

// addProduct registers a confidential web client for the product at /{path}/.
func (rp *relyingParty) addProduct(t *testing.T, e *testEnv, id, name, path string) *rpProduct {
	t.Helper()
	secret := rand.Text()
	redirect := rp.srv.URL + "/" + path + "/cb"
	err := e.store.CreateClient(context.Background(), &storage.Client{
		ID: id, Name: name, Type: "web", Source: "cli",
		RedirectURIs: storage.StringList{redirect},
		GrantTypes:   storage.StringList{"authorization_code", "refresh_token"},
		SecretHash:   provider.ClientSecretHasher([]byte(browserMasterKey)).Hash(secret),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &rpProduct{path: path, name: name, config: &oauth2.Config{
		ClientID: id, ClientSecret: secret, Endpoint: rp.provider.Endpoint(), RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID, "profile", "phone"},
	}}
	rp.mu.Lock()
	rp.products[path] = p
	rp.mu.Unlock()
	return p
}

func (rp *relyingParty) product(r *http.Request) *rpProduct {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.products[r.PathValue("product")]
}

func (rp *relyingParty) start(w http.ResponseWriter, r *http.Request) {
	p := rp.product(r)
	if p == nil {
		http.NotFound(w, r)
		return
	}
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	rp.mu.Lock()
	rp.pending[state] = rpAttempt{product: p.path, nonce: nonce, verifier: verifier}
	rp.mu.Unlock()
	http.Redirect(w, r, p.config.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

var rpPageTemplate = template.Must(template.New("rp").Parse(`<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>{{.Product}}</title></head>
<body><p id="{{.ID}}">{{.Text}}</p></body></html>`))

func (rp *relyingParty) callback(w http.ResponseWriter, r *http.Request) {
	p := rp.product(r)
	if p == nil {
		http.NotFound(w, r)
		return
	}
	text, err := rp.signIn(r, p)
	data := struct{ Product, ID, Text string }{p.name, "who", text}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		data.ID, data.Text = "rp-error", "Ошибка продукта: "+err.Error()
		w.WriteHeader(http.StatusBadRequest)
	}
	_ = rpPageTemplate.Execute(w, data)
}

// signIn checks the callback as a product must and returns the line it shows.
func (rp *relyingParty) signIn(r *http.Request, p *rpProduct) (string, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("the provider answered %s: %s", e, q.Get("error_description"))
	}
	rp.mu.Lock()
	a, ok := rp.pending[q.Get("state")]
	delete(rp.pending, q.Get("state"))
	rp.mu.Unlock()
	if !ok || a.product != p.path {
		return "", fmt.Errorf("unknown state %q", q.Get("state"))
	}
	ctx := r.Context()
	tok, err := p.config.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		return "", fmt.Errorf("exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.provider.Verifier(&oidc.Config{ClientID: p.config.ClientID}).Verify(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("ID token: %w", err)
	}
	if idt.Nonce != a.nonce {
		return "", fmt.Errorf("ID token nonce %q, want %q", idt.Nonce, a.nonce)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil {
		return "", err
	}
	return fmt.Sprintf("Вошли как %s, amr=%s", idt.Subject, strings.Join(claims.AMR, " ")), nil
}

// shownPage is what the tab shows.
type shownPage struct {
	URL   string `json:"url"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

func readShownPage(t *testing.T, ctx context.Context) shownPage {
	t.Helper()
	p, err := browserLook(ctx, chromedp.Evaluate[shownPage](
		`({url: location.href, title: document.title, text: document.body ? document.body.innerText.trim() : ""})`))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return p
}

// checkLoginPage asserts the visible texts of the login form in mode "phone" or "email".
func checkBrowserLoginPage(t *testing.T, ctx context.Context, client, mode string) {
	t.Helper()
	label, field, other, otherMode := "Телефон *", "tel", "По email", "email"
	if mode == "email" {
		label, field, other, otherMode = "Email *", "email", "По телефону", "phone"
	}
	checks := []struct{ what, sel, want string }{
		{"heading", "h1", "Вход в " + client},
		{"login label", "label[for=login]", label},
		{"password label", "label[for=password]", "Пароль"},
		{"button", "form button[type=submit]", "Войти"},
		{"mode link", "a.field-switch", other},
	}
	for _, c := range checks {
		if got := pageText(t, ctx, c.sel); got != c.want {
			t.Errorf("%s mode: %s %q, want %q", mode, c.what, got, c.want)
		}
	}
	if typ := pageAttr(t, ctx, "#login", "type"); typ != field {
		t.Errorf("%s mode: login field type %q, want %q", mode, typ, field)
	}
	if href := pageAttr(t, ctx, "a.field-switch", "href"); !strings.Contains(href, "mode="+otherMode) || !strings.Contains(href, "authRequestID=") {
		t.Errorf("%s mode: the link %q goes to %q, want a plain link to mode=%s of the same request", mode, other, href, otherMode)
	}
}

// submit clicks "Войти" and waits for the page that answers.
func clickSignIn(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("form button[type=submit]"))); err != nil {
		t.Fatalf("submit the login form: %v", err)
	}
}

// follow clicks the link with the given text and waits for the new page.
func followLink(t *testing.T, ctx context.Context, linkText string) {
	t.Helper()
	sel := chromedp.JSPath(fmt.Sprintf(`[...document.querySelectorAll("a")].find(a => a.textContent.trim() === %q)`, linkText))
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(sel)); err != nil {
		t.Fatalf("follow the link %q: %v", linkText, err)
	}
}

var browserSpaces = regexp.MustCompile(`\s+`)

// browserQueryTimeout bounds one look at the page: an element that is not there fails the
// test at once instead of at the browser's deadline.
const browserQueryTimeout = 5 * time.Second

// look runs one action that reads the page, within browserQueryTimeout.
func browserLook[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	qctx, cancel := context.WithTimeout(ctx, browserQueryTimeout)
	defer cancel()
	return chromedp.Run(qctx, a)
}

func pageText(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := browserLook(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return strings.TrimSpace(browserSpaces.ReplaceAllString(s, " "))
}

func fieldValue(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	v, err := browserLook(ctx, chromedp.Value(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("value of %s: %v", css, err)
	}
	return v
}

func pageAttr(t *testing.T, ctx context.Context, css, name string) string {
	t.Helper()
	v, err := browserLook(ctx, chromedp.Evaluate[string](
		fmt.Sprintf(`(document.querySelector(%q) || {getAttribute: () => "(no element)"}).getAttribute(%q) || ""`, css, name)))
	if err != nil {
		t.Fatalf("attribute %s of %s: %v", name, css, err)
	}
	return v
}

// screenshotOnFailure saves what the browser shows when the test fails, to a folder
// that outlives the test (t.TempDir would be removed with it), and logs the path.
func browserScreenshotOnFailure(t *testing.T, ctx context.Context, who string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir := os.Getenv(envScreenshots)
		if dir == "" {
			dir = filepath.Join(os.TempDir(), "idp-browser-test")
		}
		name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + "-" + who + ".png"
		browsertest.Screenshot(t, ctx, filepath.Join(dir, name))
	})
}
