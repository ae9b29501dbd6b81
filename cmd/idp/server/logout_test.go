package server

// Logout: RP-initiated (OpenID Connect RP-Initiated Logout 1.0), the confirmation
// page for a logout without id_token_hint, back-channel logout tokens (Back-Channel
// Logout 1.0 §2.4) with retries, and logout on blocking an account.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/astral/idp/provider"
	"github.com/astral/idp/provider/backchannel"
	"github.com/astral/idp/storage"
)

// rpSession is a browser signed in to report, with the tokens report got.
type rpSession struct {
	b      *http.Client
	tokens apiResp
	claims map[string]any // of the ID token
}

func (e *testEnv) signedInReport() rpSession {
	e.t.Helper()
	b := e.browser()
	g := e.codeGrant(b, "report", reportCB, "openid offline_access")
	tok := e.mustExchange(viaBasic("report"), g)
	if tok.str("refresh_token") == "" {
		e.t.Fatal("no refresh token")
	}
	c := e.idClaims(tok.str("id_token"), g)
	if sid, _ := c["sid"].(string); sid == "" {
		e.t.Fatalf("ID token without sid: %v", c)
	}
	return rpSession{b: b, tokens: tok, claims: c}
}

func (s rpSession) sid() string { v, _ := s.claims["sid"].(string); return v }

// wantSessionGone checks that browser b gets the form again and the refresh token
// of the session is dead.
func (e *testEnv) wantSessionGone(s rpSession) {
	e.t.Helper()
	q, _ := codeAuthQuery("report", reportCB, "openid")
	if resp, body := e.page(s.b, e.authURL(q)); !isSignInForm(resp, body) {
		e.t.Fatalf("after logout the browser got %d %s, want the sign-in form", resp.StatusCode, resp.Header.Get("Location"))
	}
	wantOAuthError(e.t, e.refresh(viaBasic("report"), s.tokens.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
	if e.active(viaBasic("report"), s.tokens.str("access_token")) {
		e.t.Fatal("access token of an ended session active")
	}
}

// wantSessionAlive checks that browser b still signs in without a form.
func (e *testEnv) wantSessionAlive(s rpSession) {
	e.t.Helper()
	q, v := codeAuthQuery("report", reportCB, "openid")
	q.Set("prompt", "none")
	e.authorize(s.b, q, v)
}

// logoutToken waits for the next back-channel logout delivered to e.rp.
func (e *testEnv) logoutToken() string {
	e.t.Helper()
	select {
	case form := <-e.logouts:
		tok := form.Get("logout_token")
		if tok == "" || len(form) != 1 {
			e.t.Fatalf("back-channel logout form %v", form)
		}
		return tok
	case <-time.After(10 * time.Second):
		e.t.Fatal("no back-channel logout arrived")
	}
	return ""
}

// checkLogoutToken verifies a logout token for report and the session s.
func (e *testEnv) checkLogoutToken(raw string, s rpSession) {
	e.t.Helper()
	h, c := e.verifyJWT(raw)
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "logout+jwt" {
		e.t.Fatalf("logout token typ %q", typ)
	}
	if c["iss"] != e.issuer || !audContains(c["aud"], "report") || c["sub"] != e.userID || c["sid"] != s.sid() {
		e.t.Fatalf("logout token claims %v (sid want %s)", c, s.sid())
	}
	ev, _ := c["events"].(map[string]any)
	if _, ok := ev[backchannel.EventBackchannelLogout]; !ok || len(ev) != 1 {
		e.t.Fatalf("logout token events %v", c["events"])
	}
	if _, ok := c["nonce"]; ok {
		e.t.Fatal("logout token has a nonce")
	}
	if c["jti"] == nil || c["jti"] == "" || claimInt(c["iat"]) == 0 {
		e.t.Fatalf("logout token without jti or iat: %v", c)
	}
	if exp := claimInt(c["exp"]); exp != 0 && exp < time.Now().Unix() {
		e.t.Fatalf("logout token expired at %d", exp)
	}
}

// noMoreLogouts checks that nothing else was delivered for a moment.
func (e *testEnv) noMoreLogouts() {
	e.t.Helper()
	select {
	case form := <-e.logouts:
		e.t.Fatalf("unexpected back-channel logout %v", form)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestRPInitiatedLogout: a product sends the browser to end_session with its ID
// token; the session ends everywhere and the product hears of it on the back channel.
func TestRPInitiatedLogout(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			cases := []struct {
				name   string
				params func(s rpSession) url.Values
				want   string // Location
			}{
				{"with post_logout_redirect_uri and state", func(s rpSession) url.Values {
					return url.Values{"id_token_hint": {s.tokens.str("id_token")}, "post_logout_redirect_uri": {reportBye}, "state": {"bye-1"}}
				}, reportBye + "?state=bye-1"},
				{"with client_id too", func(s rpSession) url.Values {
					return url.Values{"id_token_hint": {s.tokens.str("id_token")}, "client_id": {"report"}, "post_logout_redirect_uri": {reportBye}}
				}, reportBye},
				{"without a redirect", func(s rpSession) url.Values {
					return url.Values{"id_token_hint": {s.tokens.str("id_token")}}
				}, "/logged-out"},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e := env.with(t)
					s := e.signedInReport()
					resp, _ := e.page(s.b, e.issuer+"/end_session?"+tc.params(s).Encode())
					if resp.StatusCode == http.StatusOK && tc.want == "/logged-out" {
						if resp.Request.URL.Path != "/logged-out" {
							t.Fatalf("ended on %s", resp.Request.URL)
						}
					} else if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != tc.want {
						t.Fatalf("end_session: %d %q, want a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), tc.want)
					}
					e.checkLogoutToken(e.logoutToken(), s)
					e.wantSessionGone(s)
					e.noMoreLogouts()
				})
			}
			t.Run("POST end_session", func(t *testing.T) {
				e := env.with(t)
				s := e.signedInReport()
				r, err := s.b.PostForm(e.issuer+"/end_session", url.Values{
					"id_token_hint": {s.tokens.str("id_token")}, "post_logout_redirect_uri": {reportBye}, "state": {"p"},
				})
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, r)
				if r.StatusCode != http.StatusFound || r.Header.Get("Location") != reportBye+"?state=p" {
					t.Fatalf("POST end_session: %d %q", r.StatusCode, r.Header.Get("Location"))
				}
				e.checkLogoutToken(e.logoutToken(), s)
				e.wantSessionGone(s)
			})
			t.Run("from another browser, the hint's session ends", func(t *testing.T) {
				e := env.with(t)
				s := e.signedInReport()
				resp, _ := e.page(noRedirectClient(), e.issuer+"/end_session?"+url.Values{
					"id_token_hint": {s.tokens.str("id_token")}, "post_logout_redirect_uri": {reportBye},
				}.Encode())
				if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != reportBye {
					t.Fatalf("end_session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
				}
				e.checkLogoutToken(e.logoutToken(), s)
				e.wantSessionGone(s)
			})
			refused := []struct {
				name   string
				params func(s rpSession) url.Values
			}{
				{"unregistered post_logout_redirect_uri", func(s rpSession) url.Values {
					return url.Values{"id_token_hint": {s.tokens.str("id_token")}, "post_logout_redirect_uri": {"https://evil.example/"}}
				}},
				{"another client's redirect", func(s rpSession) url.Values {
					return url.Values{"id_token_hint": {s.tokens.str("id_token")}, "post_logout_redirect_uri": {signatureCB}}
				}},
				{"registered redirect with a suffix", func(s rpSession) url.Values {
					return url.Values{"id_token_hint": {s.tokens.str("id_token")}, "post_logout_redirect_uri": {reportBye + "x"}}
				}},
				{"client_id not the hint's audience", func(s rpSession) url.Values {
					return url.Values{"id_token_hint": {s.tokens.str("id_token")}, "client_id": {"signature"}, "post_logout_redirect_uri": {reportBye}}
				}},
				{"client_id with an unregistered redirect", func(s rpSession) url.Values {
					return url.Values{"client_id": {"report"}, "post_logout_redirect_uri": {"https://evil.example/"}}
				}},
				{"forged id_token_hint", func(s rpSession) url.Values {
					return url.Values{"id_token_hint": {s.tokens.str("id_token")[:len(s.tokens.str("id_token"))-4] + "AAAA"}, "post_logout_redirect_uri": {reportBye}}
				}},
			}
			for _, tc := range refused {
				t.Run(tc.name, func(t *testing.T) {
					e := env.with(t)
					s := e.signedInReport()
					resp, body := e.page(s.b, e.issuer+"/end_session?"+tc.params(s).Encode())
					if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
						t.Fatalf("end_session: %d %q %.200s, want 400 without a redirect", resp.StatusCode, resp.Header.Get("Location"), body)
					}
					e.wantSessionAlive(s)
				})
			}
		})
	}
}

// TestLogoutConfirmation: without id_token_hint nobody is signed out by a link; the
// person confirms on a page with a CSRF token.
func TestLogoutConfirmation(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			// confirm opens the confirmation page through end_session with params.
			confirm := func(e *testEnv, s rpSession, params url.Values) (*http.Response, string) {
				resp, body := e.page(s.b, e.issuer+"/end_session?"+params.Encode())
				if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/logout" || !csrfRe.MatchString(body) ||
					!strings.Contains(body, "Выйти") {
					e.t.Fatalf("end_session without id_token_hint: %d %s, want the confirmation page", resp.StatusCode, resp.Request.URL)
				}
				return resp, body
			}
			submit := func(e *testEnv, s rpSession, page *http.Response, form url.Values) *http.Response {
				r, err := staying(s.b).PostForm(page.Request.URL.String(), form)
				if err != nil {
					e.t.Fatal(err)
				}
				readAll(e.t, r)
				return r
			}
			hidden := func(body, name string) string {
				m := strings.Index(body, `name="`+name+`" value="`)
				if m < 0 {
					return ""
				}
				rest := body[m+len(`name="`+name+`" value="`):]
				return rest[:strings.IndexByte(rest, '"')]
			}
			t.Run("confirmed with the CSRF token", func(t *testing.T) {
				e := env.with(t)
				s := e.signedInReport()
				page, body := confirm(e, s, url.Values{"client_id": {"report"}, "post_logout_redirect_uri": {reportBye}, "state": {"c1"}})
				e.noMoreLogouts()
				e.wantSessionAlive(s)
				form := url.Values{"_csrf": {csrfRe.FindStringSubmatch(body)[1]}}
				for _, k := range []string{"post_logout_redirect_uri", "sig"} {
					if v := hidden(body, k); v != "" {
						form.Set(k, unescapeAttr(v))
					}
				}
				r := submit(e, s, page, form)
				if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != reportBye+"?state=c1" {
					t.Fatalf("confirmed logout: %d %q", r.StatusCode, r.Header.Get("Location"))
				}
				e.checkLogoutToken(e.logoutToken(), s)
				e.wantSessionGone(s)
			})
			t.Run("without the CSRF token nothing happens", func(t *testing.T) {
				e := env.with(t)
				s := e.signedInReport()
				page, _ := confirm(e, s, url.Values{"client_id": {"report"}, "post_logout_redirect_uri": {reportBye}})
				r := submit(e, s, page, url.Values{})
				if r.StatusCode != http.StatusForbidden {
					t.Fatalf("logout without CSRF: %d", r.StatusCode)
				}
				r = submit(e, s, page, url.Values{"_csrf": {"forged"}})
				if r.StatusCode != http.StatusForbidden {
					t.Fatalf("logout with a forged CSRF token: %d", r.StatusCode)
				}
				e.noMoreLogouts()
				e.wantSessionAlive(s)
			})
			t.Run("an unregistered redirect is never followed", func(t *testing.T) {
				e := env.with(t)
				s := e.signedInReport()
				// Without client_id op cannot check the URI and drops it.
				page, body := confirm(e, s, url.Values{"post_logout_redirect_uri": {"https://evil.example/"}})
				if strings.Contains(body, "evil.example") {
					t.Fatal("confirmation page carries the unregistered redirect")
				}
				r := submit(e, s, page, url.Values{"_csrf": {csrfRe.FindStringSubmatch(body)[1]},
					"post_logout_redirect_uri": {"https://evil.example/"}, "sig": {"forged"}})
				if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/logged-out" {
					t.Fatalf("logout: %d %q", r.StatusCode, r.Header.Get("Location"))
				}
				e.checkLogoutToken(e.logoutToken(), s)
				e.wantSessionGone(s)
			})
			t.Run("a forged confirmation link", func(t *testing.T) {
				e := env.with(t)
				s := e.signedInReport()
				resp, body := e.page(s.b, e.issuer+"/logout?"+url.Values{"post_logout_redirect_uri": {"https://evil.example/"}, "sig": {"AAAA"}}.Encode())
				if resp.StatusCode != http.StatusOK || strings.Contains(body, "evil.example") {
					t.Fatalf("forged link: %d, page carries the redirect: %v", resp.StatusCode, strings.Contains(body, "evil.example"))
				}
				// A valid signature of another URI does not transfer.
				page, good := confirm(e, s, url.Values{"client_id": {"report"}, "post_logout_redirect_uri": {reportBye}})
				r := submit(e, s, page, url.Values{"_csrf": {csrfRe.FindStringSubmatch(good)[1]},
					"post_logout_redirect_uri": {"https://evil.example/"}, "sig": {unescapeAttr(hidden(good, "sig"))}})
				if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/logged-out" {
					t.Fatalf("logout: %d %q", r.StatusCode, r.Header.Get("Location"))
				}
				e.checkLogoutToken(e.logoutToken(), s)
			})
		})
	}
}

func unescapeAttr(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#61;", "=", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'").Replace(s)
}

// flakyEndpoint answers 500 to its first fails calls, then 200, and counts them.
type flakyEndpoint struct {
	mu    sync.Mutex
	fails int
	calls int
	forms []url.Values
}

func (f *flakyEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.forms = append(f.forms, r.PostForm)
	if f.calls <= f.fails {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// waitFor polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBackchannelRetry: a delivery that fails is recorded with its attempts and
// error, and retried after the back-off.
func TestBackchannelRetry(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			flaky := &flakyEndpoint{fails: 1}
			srv := httptest.NewServer(flaky)
			t.Cleanup(srv.Close)
			if err := e.store.CreateClient(ctx, &storage.Client{
				ID: "flaky", Name: "Нестабильный продукт", Type: "web",
				SecretHash:   provider.ClientSecretHasher(testMasterKey).Hash(testSecret),
				RedirectURIs: []string{"http://127.0.0.1:9/flaky/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
				BackchannelLogoutURI: srv.URL + "/bcl", Source: "cli",
			}); err != nil {
				t.Fatal(err)
			}
			b := e.browser()
			g := e.codeGrant(b, "flaky", "http://127.0.0.1:9/flaky/cb", "openid")
			tok := e.mustExchange(viaBasic("flaky"), g)
			c := e.idClaims(tok.str("id_token"), g)
			sid, _ := c["sid"].(string)
			resp, _ := e.page(b, e.issuer+"/end_session?"+url.Values{"id_token_hint": {tok.str("id_token")}}.Encode())
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/logged-out" {
				t.Fatalf("end_session: %d %s", resp.StatusCode, resp.Request.URL)
			}
			var d storage.LogoutDelivery
			deliveries := func() []storage.LogoutDelivery {
				ds, err := e.store.LogoutDeliveries(ctx, sid)
				if err != nil {
					t.Fatal(err)
				}
				return ds
			}
			waitUntil(t, "the failed first attempt to be recorded", func() bool {
				ds := deliveries()
				if len(ds) != 1 {
					return false
				}
				d = ds[0]
				return d.Attempts == 1 && d.LastError != "" && d.DeliveredAt == nil
			})
			if d.ClientID != "flaky" || d.UserID != e.userID || d.GaveUpAt != nil || !strings.Contains(d.LastError, "500") {
				t.Fatalf("failed delivery %+v", d)
			}
			if wait := d.NextAttemptAt.Sub(e.store.Now()); wait < 5*time.Second {
				t.Fatalf("retry due in %s: no back-off", wait)
			}
			// Nothing happens before the back-off ends ...
			time.Sleep(200 * time.Millisecond)
			if ds := deliveries(); ds[0].Attempts != 1 {
				t.Fatalf("retried before the back-off: %+v", ds[0])
			}
			// ... and the retry comes once it has.
			e.shiftClock(time.Minute)
			waitUntil(t, "the retry to be delivered", func() bool {
				ds := deliveries()
				d = ds[0]
				return d.DeliveredAt != nil
			})
			if d.Attempts != 2 {
				t.Fatalf("delivered after %d attempts, want 2", d.Attempts)
			}
			flaky.mu.Lock()
			defer flaky.mu.Unlock()
			if flaky.calls != 2 || flaky.forms[0].Get("logout_token") == "" || flaky.forms[1].Get("logout_token") == "" {
				t.Fatalf("endpoint saw %d calls: %v", flaky.calls, flaky.forms)
			}
			_, lc := e.verifyJWT(flaky.forms[1].Get("logout_token"))
			if !audContains(lc["aud"], "flaky") || lc["sid"] != sid {
				t.Fatalf("retried logout token %v", lc)
			}
		})
	}
}

// TestBlockingLogsOut: blocking an account ends its sessions, revokes its tokens and
// tells its products on the back channel.
func TestBlockingLogsOut(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			s := e.signedInReport()
			ended, err := e.store.SetUserBlocked(context.Background(), e.userID, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(ended) != 1 || ended[0].ID != s.sid() {
				t.Fatalf("ended sessions %+v, want %s", ended, s.sid())
			}
			e.checkLogoutToken(e.logoutToken(), s)
			wantOAuthError(t, e.refresh(viaBasic("report"), s.tokens.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
			if e.active(viaBasic("report"), s.tokens.str("access_token")) {
				t.Fatal("access token of a blocked account active")
			}
			if r := e.userinfo("get", s.tokens.str("access_token")); r.status == http.StatusOK {
				t.Fatalf("userinfo for a blocked account: %s", r)
			}
			q, _ := codeAuthQuery("report", reportCB, "openid")
			q.Set("prompt", "none")
			resp, _ := e.page(s.b, e.authURL(q))
			wantErrorRedirect(t, resp, reportCB, "login_required", q.Get("state"))
		})
	}
}
