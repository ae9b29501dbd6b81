package server

import (
	"context"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/astral/idp/cmd/idp/config"
	"github.com/astral/idp/login/upstream"
	"github.com/astral/idp/login/upstream/oidc/oidctest"
	"github.com/astral/idp/storage"
)

// The test Telegram bot: its id is the client id, its web-login secret the secret.
const (
	tgBotID     = "7700000000"
	tgBotSecret = "bot-web-login-secret-0123456789"
)

// newTelegramEnv starts the server with Telegram's OpenID Connect login played by a
// test provider at IDP_TELEGRAM_URL.
func newTelegramEnv(t *testing.T, backend string) (*testEnv, *oidctest.Provider) {
	t.Helper()
	tg := oidctest.New(t, tgBotID, tgBotSecret)
	e := newTestEnvWith(t, backend, map[string]string{
		"IDP_TELEGRAM_URL": tg.URL, "IDP_TELEGRAM_CLIENT_ID": tgBotID, "IDP_TELEGRAM_CLIENT_SECRET": tgBotSecret,
	})
	return e, tg
}

// upBrowser is a browser with cookies whose redirects the test follows by hand: to
// our pages and to the test Telegram, never to a product or into the cabinet (another
// part builds those pages: the walk stops at the redirect there).
type upBrowser struct {
	t      *testing.T
	e      *testEnv
	tg     *oidctest.Provider
	client *http.Client
}

func (e *testEnv) upBrowser(tg *oidctest.Provider) *upBrowser {
	jar, _ := cookiejar.New(nil)
	return &upBrowser{t: e.t, e: e, tg: tg, client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// upPage is where a walk ended: a page, or a redirect the browser was not to follow.
type upPage struct {
	status int
	url    *url.URL // the page, or the request that answered with stop
	body   string
	stop   *url.URL // the redirect the walk stopped at, or nil
}

func (b *upBrowser) follows(u *url.URL) bool {
	issuer, _ := url.Parse(b.e.issuer)
	if u.Host == issuer.Host {
		return !strings.HasPrefix(u.Path, "/account")
	}
	if b.tg != nil {
		tg, _ := url.Parse(b.tg.URL)
		return u.Host == tg.Host
	}
	return false
}

// do sends req and follows redirects as a browser would, until a page answers or a
// redirect leads where the browser does not follow.
func (b *upBrowser) do(req *http.Request) upPage {
	b.t.Helper()
	for range 20 {
		resp, err := b.client.Do(req)
		if err != nil {
			b.t.Fatal(err)
		}
		body := readAll(b.t, resp)
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return upPage{status: resp.StatusCode, url: req.URL, body: body}
		}
		loc, err := resp.Location()
		if err != nil {
			b.t.Fatal(err)
		}
		if !b.follows(loc) {
			return upPage{status: resp.StatusCode, url: req.URL, body: body, stop: loc}
		}
		req, _ = http.NewRequest(http.MethodGet, loc.String(), nil)
	}
	b.t.Fatal("too many redirects")
	return upPage{}
}

func (b *upBrowser) get(raw string) upPage {
	b.t.Helper()
	if strings.HasPrefix(raw, "/") {
		raw = b.e.issuer + raw
	}
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *upBrowser) post(raw string, form url.Values) upPage {
	b.t.Helper()
	if strings.HasPrefix(raw, "/") {
		raw = b.e.issuer + raw
	}
	req, err := http.NewRequest(http.MethodPost, raw, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	upActionRe = regexp.MustCompile(`<form class="form" method="post" action="([^"]*)"`)
	upLinkRe   = regexp.MustCompile(`name="link" value="([^"]*)"`)
	upHrefRe   = func(text string) *regexp.Regexp {
		return regexp.MustCompile(`href="([^"]*)"[^>]*>(?:<[^>]*>|\s)*` + regexp.QuoteMeta(text) + `\s*<`)
	}
)

// inCabinet reports whether a walk ended with a redirect into the cabinet, where a
// sign-in without a product lands.
func inCabinet(p upPage) bool { return p.stop != nil && strings.HasPrefix(p.stop.Path, "/account") }

// href is the link of the page with the given text, unescaped.
func (p upPage) href(t *testing.T, text string) string {
	t.Helper()
	m := upHrefRe(text).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no link %q on %s:\n%s", text, p.url, p.body)
	}
	return html.UnescapeString(m[1])
}

// signInWithPassword fills the sign-in form of the page p shows, carrying its hidden
// fields, with the account's phone and password.
func (b *upBrowser) signInWithPassword(p upPage, phone, pw string) upPage {
	b.t.Helper()
	if !strings.Contains(p.body, `name="password"`) {
		b.t.Fatalf("not a sign-in page: %d %s\n%s", p.status, p.url, p.body)
	}
	form := url.Values{"_csrf": {csrfRe.FindStringSubmatch(p.body)[1]}, "mode": {"phone"}, "login": {phone}, "password": {pw}}
	if m := upLinkRe.FindStringSubmatch(p.body); m != nil {
		form.Set("link", html.UnescapeString(m[1]))
	}
	action := html.UnescapeString(upActionRe.FindStringSubmatch(p.body)[1])
	return b.post(action, form)
}

// signOut ends the browser's session with the logout form.
func (b *upBrowser) signOut() {
	b.t.Helper()
	p := b.get("/logout")
	got := b.post("/logout", url.Values{"_csrf": {csrfRe.FindStringSubmatch(p.body)[1]}})
	if got.status != http.StatusOK || !strings.Contains(got.body, "Вы вышли") {
		b.t.Fatalf("sign out: %d %s", got.status, got.body)
	}
}

// upProduct is a product (go-oidc relying party) with one pending authorization.
type upProduct struct {
	e        *testEnv
	provider *oidc.Provider
	config   *oauth2.Config
	verifier string
	nonce    string
}

func (e *testEnv) upProduct(clientID string) *upProduct {
	e.t.Helper()
	p, err := oidc.NewProvider(context.Background(), e.issuer)
	if err != nil {
		e.t.Fatal(err)
	}
	return &upProduct{e: e, provider: p, config: rpConfig(e, p, clientID, "http://127.0.0.1:9/"+clientID+"/cb")}
}

// authURL starts an authorization request of the product.
func (rp *upProduct) authURL() string {
	rp.verifier, rp.nonce = oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	return rp.config.AuthCodeURL("st", oidc.Nonce(rp.nonce), oauth2.S256ChallengeOption(rp.verifier))
}

// upClaims are what the tests read from an ID token.
type upClaims struct {
	Subject string
	AMR     []string `json:"amr"`
	IDP     string   `json:"idp"`
	Nonce   string   `json:"nonce"`
}

// tokens exchanges the code the walk stopped with and verifies the ID token.
func (rp *upProduct) tokens(t *testing.T, p upPage) upClaims {
	t.Helper()
	if p.stop == nil || p.stop.Host != "127.0.0.1:9" || p.stop.Query().Get("code") == "" {
		t.Fatalf("want a redirect to the product with a code, got %d at %s (stop %v)\n%s", p.status, p.url, p.stop, p.body)
	}
	ctx := context.Background()
	tok, err := rp.config.Exchange(ctx, p.stop.Query().Get("code"), oauth2.VerifierOption(rp.verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.provider.Verifier(&oidc.Config{ClientID: rp.config.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var c upClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Nonce != rp.nonce {
		t.Fatalf("ID token nonce %q, want %q", c.Nonce, rp.nonce)
	}
	c.Subject = idt.Subject
	return c
}

// telegramButton opens the product's sign-in page and presses "Telegram".
func (b *upBrowser) telegramButton(rp *upProduct) upPage {
	b.t.Helper()
	login := b.get(rp.authURL())
	if login.status != http.StatusOK || login.url.Path != "/login" {
		b.t.Fatalf("want the sign-in page, got %d %s", login.status, login.url)
	}
	href := login.href(b.t, "Telegram")
	if !strings.HasPrefix(href, "/upstream/telegram/start?") || !strings.Contains(href, "authRequestID=") {
		b.t.Fatalf("the Telegram button goes to %q", href)
	}
	return b.get(href)
}

// wantRefusal checks a Russian refusal page: 4xx (never a 500), the heading.
func wantRefusal(t *testing.T, what string, p upPage, status int, heading string) {
	t.Helper()
	if p.status != status || !strings.Contains(p.body, heading) || !strings.Contains(p.body, `lang="ru"`) {
		t.Errorf("%s: %d at %s, want %d with %q\n%s", what, p.status, p.url, status, heading, p.body)
	}
}

func (e *testEnv) identityOf(subject string) *storage.Identity {
	e.t.Helper()
	id, err := e.store.IdentityBySubject(context.Background(), "telegram", subject)
	if storage.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// TestUpstreamTelegram is the journey: link Telegram from a signed-in session, sign
// out, sign in with Telegram into a product (amr fed, idp telegram), then single
// sign-on into a second product keeps idp telegram.
func TestUpstreamTelegram(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e, tg := newTelegramEnv(t, backend)
			ctx := context.Background()
			b := e.upBrowser(tg)

			// Signed in with the password, link Telegram.
			if p := b.signInWithPassword(b.get("/login"), "+79105940899", e.password); !inCabinet(p) {
				t.Fatalf("password sign-in ended at %d %s", p.status, p.url)
			}
			tg.LogIn("100200300", map[string]any{"name": "Иван Иванов", "preferred_username": "ivan", "phone_number": "+79105940899"})
			p := b.get("/upstream/telegram/start?mode=link")
			if p.stop == nil || p.stop.Path != "/account/methods" {
				t.Fatalf("linking ended at %d %s (stop %v)\n%s", p.status, p.url, p.stop, p.body)
			}
			id := e.identityOf("100200300")
			if id == nil || id.UserID != e.userID || id.DisplayName != "Иван Иванов" || !strings.Contains(id.Claims, `"preferred_username":"ivan"`) {
				t.Fatalf("linked identity %+v", id)
			}
			// Linking it again is fine.
			if p := b.get("/upstream/telegram/start?mode=link"); p.stop == nil || p.stop.Path != "/account/methods" {
				t.Fatalf("linking again ended at %d %s\n%s", p.status, p.url, p.body)
			}
			b.signOut()

			// Sign in with Telegram into a product.
			report := e.upProduct("report")
			c := report.tokens(t, b.telegramButton(report))
			if c.Subject != e.userID || len(c.AMR) != 1 || c.AMR[0] != "fed" || c.IDP != "telegram" {
				t.Fatalf("ID token after Telegram sign-in: %+v, want sub %s amr [fed] idp telegram", c, e.userID)
			}
			if id := e.identityOf("100200300"); id.LastUsedAt == nil {
				t.Error("the identity's last use was not recorded")
			}
			// Single sign-on into a second product keeps the upstream.
			signature := e.upProduct("signature")
			c = signature.tokens(t, b.get(signature.authURL()))
			if c.Subject != e.userID || len(c.AMR) != 1 || c.AMR[0] != "fed" || c.IDP != "telegram" {
				t.Fatalf("ID token of single sign-on: %+v, want amr [fed] idp telegram", c)
			}
			events, err := e.store.UserEvents(ctx, e.userID, 0, 20)
			if err != nil {
				t.Fatal(err)
			}
			var linked, fed bool
			for _, ev := range events {
				linked = linked || ev.Kind == "identity_linked" && ev.Method == "fed" && ev.Detail == "telegram"
				fed = fed || ev.Kind == "signin" && ev.Method == "fed" && ev.Detail == "telegram" && ev.ClientID == "report"
			}
			if !linked || !fed {
				t.Errorf("audit events %+v: want identity_linked and a fed signin through telegram", events)
			}
		})
	}
}

// TestUpstreamUnlinked: a Telegram account linked to no account gets the explaining
// page; signing in with the password (or a code) from there links it in one step.
func TestUpstreamUnlinked(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e, tg := newTelegramEnv(t, backend)
			tg.LogIn("555000111", map[string]any{"name": "Иван"})
			b := e.upBrowser(tg)
			report := e.upProduct("report")
			p := b.telegramButton(report)
			if p.status != http.StatusOK || !strings.Contains(p.body, "Этот аккаунт Telegram не привязан к Личному кабинету") {
				t.Fatalf("unlinked Telegram: %d %s\n%s", p.status, p.url, p.body)
			}
			linkURL := p.href(t, "Войти и привязать Telegram")
			if !strings.Contains(linkURL, "link=") || !strings.Contains(linkURL, "authRequestID=") {
				t.Fatalf("the link button goes to %q", linkURL)
			}
			if e.identityOf("555000111") != nil {
				t.Fatal("linked before anyone signed in")
			}

			// The link in another browser does nothing: it is bound to this one.
			other := e.upBrowser(tg)
			op := other.get(linkURL)
			if strings.Contains(op.body, `name="link"`) {
				t.Errorf("another browser's sign-in page carries the pending link")
			}

			login := b.get(linkURL)
			if !strings.Contains(login.body, `name="link"`) || !strings.Contains(login.body, "аккаунт Telegram будет привязан") {
				t.Fatalf("the sign-in page lost the pending link:\n%s", login.body)
			}
			// A wrong password keeps the link on the page.
			wrong := b.signInWithPassword(login, "+79105940899", "wrong password")
			if wrong.status != http.StatusUnauthorized || !strings.Contains(wrong.body, `name="link"`) {
				t.Fatalf("wrong password: %d, link kept: %v", wrong.status, strings.Contains(wrong.body, `name="link"`))
			}
			c := report.tokens(t, b.signInWithPassword(wrong, "+79105940899", e.password))
			if c.Subject != e.userID || len(c.AMR) != 1 || c.AMR[0] != "pwd" {
				t.Fatalf("ID token %+v", c)
			}
			if id := e.identityOf("555000111"); id == nil || id.UserID != e.userID {
				t.Fatalf("after signing in with the link flow the identity is %+v", id)
			}
			// The flow is used up.
			if again := b.get(linkURL); strings.Contains(again.body, `name="link"`) {
				t.Error("a used pending link is still offered")
			}

			// Next time Telegram signs in.
			b.signOut()
			c = report.tokens(t, b.telegramButton(report))
			if c.Subject != e.userID || c.IDP != "telegram" {
				t.Fatalf("Telegram sign-in after linking: %+v", c)
			}
		})
	}
}

// TestUpstreamUnlinkedByCode: the pending link goes through sign-in by code too.
func TestUpstreamUnlinkedByCode(t *testing.T) {
	e, tg := newTelegramEnv(t, "sqlite")
	tg.LogIn("555000222", nil)
	b := e.upBrowser(tg)
	p := b.get("/upstream/telegram/start?mode=signin")
	linkURL := p.href(t, "Войти и привязать Telegram")
	login := b.get(linkURL)
	codePage := b.get(login.href(t, "У меня есть код"))
	if !strings.Contains(codePage.url.RawQuery, "link=") {
		t.Fatalf("«У меня есть код» lost the link: %s", codePage.url)
	}
	action := html.UnescapeString(upActionRe.FindStringSubmatch(codePage.body)[1])
	confirm := b.post(action, url.Values{"_csrf": {csrfRe.FindStringSubmatch(codePage.body)[1]}, "mode": {"phone"}, "login": {e.phone}})
	if confirm.status != http.StatusOK {
		t.Fatalf("code form: %d\n%s", confirm.status, confirm.body)
	}
	flow := regexp.MustCompile(`name="flow" value="([^"]*)"`).FindStringSubmatch(confirm.body)[1]
	done := b.post("/login/code/confirm", url.Values{"_csrf": {csrfRe.FindStringSubmatch(confirm.body)[1]},
		"flow": {flow}, "code": {e.sent.lastCode(t, e.phone)}})
	if !inCabinet(done) {
		t.Fatalf("code sign-in ended at %d %s", done.status, done.url)
	}
	if id := e.identityOf("555000222"); id == nil || id.UserID != e.userID {
		t.Fatalf("after sign-in by code with the link flow the identity is %+v", id)
	}
}

// TestUpstreamLinkRefusals: an identity of another account is refused with what to
// do; linking needs a session.
func TestUpstreamLinkRefusals(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e, tg := newTelegramEnv(t, backend)
			ctx := context.Background()
			bob := e.addUser("+79990001122", "another password 123", nil)
			if err := e.store.LinkIdentity(ctx, &storage.Identity{UserID: bob.ID, Connector: "telegram", Subject: "777"}); err != nil {
				t.Fatal(err)
			}
			b := e.upBrowser(tg)
			if p := b.get("/upstream/telegram/start?mode=link"); p.stop != nil || p.url.Path != "/login" {
				t.Fatalf("link without a session: %d %s, want the sign-in page", p.status, p.url)
			}
			b.signInWithPassword(b.get("/login"), e.phone, e.password)
			tg.LogIn("777", nil)
			p := b.get("/upstream/telegram/start?mode=link")
			wantRefusal(t, "identity of another account", p, http.StatusConflict,
				"Этот аккаунт Telegram уже привязан к другому Личному кабинету. Войдите в тот кабинет и отвяжите его там.")
			if id := e.identityOf("777"); id.UserID != bob.ID {
				t.Fatalf("the identity moved to %s", id.UserID)
			}
			if p := b.get("/upstream/telegram/start?mode=nonsense"); p.status != http.StatusBadRequest {
				t.Errorf("unknown mode: %d", p.status)
			}
			if p := b.get("/upstream/vk/start?mode=signin"); p.status != http.StatusNotFound {
				t.Errorf("unknown connector: %d", p.status)
			}
		})
	}
}

// TestUpstreamCallbackRefusals: whatever is wrong with the way back from Telegram is
// a Russian page (4xx, never a 500) and nobody is signed in.
func TestUpstreamCallbackRefusals(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e, tg := newTelegramEnv(t, backend)
			if err := e.store.LinkIdentity(context.Background(), &storage.Identity{UserID: e.userID, Connector: "telegram", Subject: "100"}); err != nil {
				t.Fatal(err)
			}
			tg.LogIn("100", nil)
			const failed = "Вход через Telegram не удался"
			signedOut := func(b *upBrowser) {
				t.Helper()
				if p := b.get("/login"); p.stop != nil || p.status != http.StatusOK {
					t.Errorf("the browser has a session after a refusal: /login led to %d (%v)", p.status, p.stop)
				}
			}
			for _, tt := range []struct {
				name   string
				fault  oidctest.Fault
				status int
				text   string
			}{
				{"forged ID token", oidctest.ForgedToken, http.StatusBadRequest, failed},
				{"wrong nonce", oidctest.WrongNonce, http.StatusBadRequest, failed},
				{"wrong audience", oidctest.WrongAudience, http.StatusBadRequest, failed},
				{"declined in Telegram", oidctest.Deny, http.StatusBadRequest, "Вход через Telegram отменен"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					tg.SetFault(tt.fault)
					defer tg.SetFault(oidctest.None)
					b := e.upBrowser(tg)
					wantRefusal(t, tt.name, b.get("/upstream/telegram/start?mode=signin"), tt.status, tt.text)
					signedOut(b)
				})
			}

			// callback returns the callback URL Telegram sends browser b back with,
			// without following it.
			callback := func(b *upBrowser) string {
				t.Helper()
				b.tg = nil // do not follow to Telegram: take its redirect by hand
				defer func() { b.tg = tg }()
				p := b.get("/upstream/telegram/start?mode=signin")
				if p.stop == nil {
					t.Fatalf("start: %d %s, want a redirect to Telegram", p.status, p.url)
				}
				resp, err := b.client.Get(p.stop.String())
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				loc, _ := resp.Location()
				return loc.String()
			}

			t.Run("wrong state", func(t *testing.T) {
				b := e.upBrowser(tg)
				cb := callback(b)
				u, _ := url.Parse(cb)
				q := u.Query()
				q.Set("state", "forged-state")
				u.RawQuery = q.Encode()
				wantRefusal(t, "wrong state", b.get(u.String()), http.StatusBadRequest, failed)
				q.Del("state")
				u.RawQuery = q.Encode()
				wantRefusal(t, "no state", b.get(u.String()), http.StatusBadRequest, failed)
				signedOut(b)
			})
			t.Run("no browser binding cookie", func(t *testing.T) {
				b := e.upBrowser(tg)
				cb := callback(b)
				stranger := e.upBrowser(tg)
				wantRefusal(t, "callback in another browser", stranger.get(cb), http.StatusBadRequest, failed)
				signedOut(stranger)
			})
			t.Run("replayed callback", func(t *testing.T) {
				b := e.upBrowser(tg)
				cb := callback(b)
				if p := b.get(cb); !inCabinet(p) {
					t.Fatalf("first callback: %d %s\n%s", p.status, p.url, p.body)
				}
				b.signOut()
				wantRefusal(t, "replayed callback", b.get(cb), http.StatusBadRequest, failed)
				signedOut(b)
			})
			t.Run("stale authorization request", func(t *testing.T) {
				b := e.upBrowser(tg)
				wantRefusal(t, "stale request", b.get("/upstream/telegram/start?mode=signin&authRequestID=gone"),
					http.StatusBadRequest, "Ссылка для входа устарела")
			})
			t.Run("blocked account", func(t *testing.T) {
				if _, err := e.store.UpdateUser(context.Background(), e.userID, func(u *storage.User) error {
					u.Blocked = true
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				b := e.upBrowser(tg)
				report := e.upProduct("report")
				wantRefusal(t, "blocked account", b.telegramButton(report), http.StatusForbidden, "Учетная запись заблокирована")
				signedOut(b)
			})
			// Last: a Telegram that cannot be reached is 503 at start (remembered
			// for a few seconds).
			t.Run("Telegram down", func(t *testing.T) {
				e2, tg2 := newTelegramEnv(t, backend)
				tg2.SetDown(true)
				b := e2.upBrowser(tg2)
				wantRefusal(t, "Telegram down", b.get("/upstream/telegram/start?mode=signin"), http.StatusServiceUnavailable,
					"Telegram недоступен")
			})
		})
	}
}

// TestUpstreamNotConfigured: without IDP_TELEGRAM_* there is no button and no route.
func TestUpstreamNotConfigured(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	b := e.upBrowser(nil)
	p := b.get("/login")
	if p.status != http.StatusOK || strings.Contains(p.body, "Telegram") || strings.Contains(p.body, "/upstream/") ||
		strings.Contains(p.body, "или авторизуйтесь через") {
		t.Fatalf("sign-in page without Telegram configured:\n%s", p.body)
	}
	if p := b.get("/upstream/telegram/start?mode=signin"); p.status != http.StatusNotFound {
		t.Fatalf("start without Telegram configured: %d", p.status)
	}

	// Configured: the button, a plain link, and no script of anyone else's.
	e2, _ := newTelegramEnv(t, "sqlite")
	p = e2.upBrowser(nil).get("/login")
	if href := p.href(t, "Telegram"); href != "/upstream/telegram/start?mode=signin" {
		t.Fatalf("Telegram button goes to %q", href)
	}
	for _, m := range regexp.MustCompile(`<script[^>]*src="([^"]*)"`).FindAllStringSubmatch(p.body, -1) {
		if !strings.HasPrefix(m[1], "/static/") {
			t.Errorf("third-party script %q on the sign-in page", m[1])
		}
	}
}

// TestUpstreamConfig: the Telegram variables go together.
func TestUpstreamConfig(t *testing.T) {
	base := map[string]string{"IDP_DATABASE_URL": "sqlite://x.db"}
	load := func(extra map[string]string) (*config.Config, error) {
		return config.Load(func(k string) (string, bool) {
			if v, ok := extra[k]; ok {
				return v, true
			}
			v, ok := base[k]
			return v, ok
		})
	}
	c, err := load(nil)
	if err != nil || len(c.Upstreams) != 0 {
		t.Fatalf("no variables: %+v, %v", c, err)
	}
	c, err = load(map[string]string{"IDP_TELEGRAM_CLIENT_ID": "1", "IDP_TELEGRAM_CLIENT_SECRET": "s"})
	if err != nil || len(c.Upstreams) != 1 || c.Upstreams[0].Issuer != "https://oauth.telegram.org" || c.Upstreams[0].ID != "telegram" ||
		c.Upstreams[0].Title != "Telegram" || strings.Join(c.Upstreams[0].Scopes, " ") != "openid profile phone" {
		t.Fatalf("Telegram on: %+v, %v", c, err)
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"IDP_TELEGRAM_CLIENT_ID": "1"}, "IDP_TELEGRAM_CLIENT_SECRET"},
		{map[string]string{"IDP_TELEGRAM_CLIENT_SECRET": "s"}, "IDP_TELEGRAM_CLIENT_ID"},
		{map[string]string{"IDP_TELEGRAM_CLIENT_ID": "1", "IDP_TELEGRAM_CLIENT_SECRET": "s", "IDP_TELEGRAM_URL": "http://oauth.telegram.org"},
			"IDP_TELEGRAM_URL"},
	} {
		if _, err := load(tt.env); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want a problem naming %s", tt.env, err, tt.want)
		}
	}
}

// TestUpstreamStartLimit: one address cannot write upstream attempts without end.
func TestUpstreamStartLimit(t *testing.T) {
	e, _ := newTelegramEnv(t, "sqlite")
	b := e.upBrowser(nil) // stops at the redirect to Telegram
	for i := range upstream.DefaultStartLimit {
		if p := b.get("/upstream/telegram/start?mode=signin"); p.stop == nil {
			t.Fatalf("start %d: %d, want a redirect to Telegram", i+1, p.status)
		}
	}
	wantRefusal(t, "one start too many", b.get("/upstream/telegram/start?mode=signin"), http.StatusTooManyRequests, "Слишком много попыток")
}
