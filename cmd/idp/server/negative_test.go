package server

// Negative tests: bad authorization requests (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6)
// and the sign-in page's refusals and protections.

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

// TestAuthorizeNegative: a request whose client or redirect_uri cannot be trusted is
// answered here and never redirected; any other bad request is answered at the
// registered redirect_uri with the error code and the state. Nothing is a 500.
func TestAuthorizeNegative(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			notRedirected := []struct {
				name string
				edit func(q url.Values)
			}{
				{"unknown client_id", func(q url.Values) { q.Set("client_id", "nobody") }},
				{"client_id missing", func(q url.Values) { q.Del("client_id") }},
				{"redirect_uri not registered", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }},
				{"redirect_uri of another client", func(q url.Values) { q.Set("redirect_uri", signatureCB) }},
				{"redirect_uri with an extra path", func(q url.Values) { q.Set("redirect_uri", reportCB+"/x") }},
				{"redirect_uri with an extra query", func(q url.Values) { q.Set("redirect_uri", reportCB+"?next=https://evil.example") }},
				{"redirect_uri differing in case", func(q url.Values) { q.Set("redirect_uri", strings.ToUpper(reportCB)) }},
				{"redirect_uri missing", func(q url.Values) { q.Del("redirect_uri") }},
				{"unregistered redirect_uri and a bad response_type", func(q url.Values) {
					q.Set("redirect_uri", "https://evil.example/cb")
					q.Set("response_type", "token")
				}},
				{"unknown client and no scope", func(q url.Values) { q.Set("client_id", "nobody"); q.Del("scope") }},
			}
			for _, tc := range notRedirected {
				t.Run(tc.name, func(t *testing.T) {
					e := env.with(t)
					q, _ := codeAuthQuery("report", reportCB, "openid")
					tc.edit(q)
					resp, body := e.page(e.browser(), e.authURL(q))
					if resp.StatusCode != http.StatusBadRequest {
						t.Fatalf("status %d (Location %q), want 400", resp.StatusCode, resp.Header.Get("Location"))
					}
					if loc := resp.Header.Get("Location"); loc != "" {
						t.Fatalf("redirected to %s", loc)
					}
					if strings.Contains(body, "evil.example") {
						t.Fatalf("error page echoes the untrusted redirect_uri: %s", body)
					}
				})
			}
			redirected := []struct {
				name string
				edit func(q url.Values)
				err  string
			}{
				{"response_type missing", func(q url.Values) { q.Del("response_type") }, "invalid_request"},
				{"response_type token", func(q url.Values) { q.Set("response_type", "token") }, "unauthorized_client"},
				{"response_type id_token", func(q url.Values) { q.Set("response_type", "id_token") }, "unauthorized_client"},
				{"response_type unknown", func(q url.Values) { q.Set("response_type", "bogus") }, "unauthorized_client"},
				{"scope missing", func(q url.Values) { q.Del("scope") }, "invalid_request"},
				{"scope without openid", func(q url.Values) { q.Set("scope", "profile phone") }, "invalid_scope"},
				{"public client without code_challenge", func(q url.Values) {
					q.Set("client_id", "poa")
					q.Set("redirect_uri", poaCB)
					q.Del("code_challenge")
					q.Del("code_challenge_method")
				}, "invalid_request"},
				{"public client with code_challenge_method=plain", func(q url.Values) {
					q.Set("client_id", "poa")
					q.Set("redirect_uri", poaCB)
					q.Set("code_challenge", strings.Repeat("a", 43))
					q.Set("code_challenge_method", "plain")
				}, "invalid_request"},
				{"code_challenge_method=plain", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
				{"code_challenge without a method (plain by default)", func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
				{"code_challenge_method unknown", func(q url.Values) { q.Set("code_challenge_method", "S512") }, "invalid_request"},
				{"code_challenge too short", func(q url.Values) { q.Set("code_challenge", "abc") }, "invalid_request"},
				{"code_challenge too long", func(q url.Values) { q.Set("code_challenge", strings.Repeat("a", 300)) }, "invalid_request"},
				{"prompt none with login", func(q url.Values) { q.Set("prompt", "none login") }, "invalid_request"},
				{"claims not JSON", func(q url.Values) { q.Set("claims", "{not json") }, "invalid_request"},
				{"response_mode unknown", func(q url.Values) { q.Set("response_mode", "bogus") }, "invalid_request"},
				{"response_mode over-long", func(q url.Values) { q.Set("response_mode", strings.Repeat("q", 100)) }, "invalid_request"},
				{"state not UTF-8", func(q url.Values) { q.Set("state", "st-\xff\xfe") }, "invalid_request"},
				{"nonce not UTF-8", func(q url.Values) { q.Set("nonce", "\xff\xfe") }, "invalid_request"},
				{"login_hint not UTF-8", func(q url.Values) { q.Set("login_hint", "\xff") }, "invalid_request"},
				{"claims not UTF-8", func(q url.Values) { q.Set("claims", "{\"id_token\":{\"\xff\":null}}") }, "invalid_request"},
			}
			for _, tc := range redirected {
				t.Run(tc.name, func(t *testing.T) {
					e := env.with(t)
					q, _ := codeAuthQuery("report", reportCB, "openid")
					tc.edit(q)
					resp, body := e.page(e.browser(), e.authURL(q))
					if resp.StatusCode >= 500 {
						t.Fatalf("status %d: %s", resp.StatusCode, body)
					}
					wantErrorRedirect(t, resp, q.Get("redirect_uri"), tc.err, q.Get("state"))
				})
			}
			// Odd but harmless input is accepted, or refused without a 500.
			neverServerError := []struct {
				name string
				edit func(q url.Values)
			}{
				{"max_age not a number", func(q url.Values) { q.Set("max_age", "abc") }},
				{"max_age negative", func(q url.Values) { q.Set("max_age", "-1") }},
				{"prompt unknown", func(q url.Values) { q.Set("prompt", "bogus") }},
				{"display unknown", func(q url.Values) { q.Set("display", "bogus") }},
				{"state very long", func(q url.Values) { q.Set("state", strings.Repeat("s", 5000)) }},
				{"nonce very long", func(q url.Values) { q.Set("nonce", strings.Repeat("n", 5000)) }},
				{"response_mode form_post", func(q url.Values) { q.Set("response_mode", "form_post") }},
				{"ui_locales garbage", func(q url.Values) { q.Set("ui_locales", "!!! ???") }},
				{"login_hint very long", func(q url.Values) { q.Set("login_hint", strings.Repeat("9", 3000)) }},
				{"acr_values very long", func(q url.Values) { q.Set("acr_values", strings.Repeat("a ", 2000)) }},
				{"id_token_hint garbage", func(q url.Values) { q.Set("id_token_hint", "garbage") }},
				{"claims of the wrong shape", func(q url.Values) { q.Set("claims", `{"id_token":["email"]}`) }},
				{"duplicate client_id", func(q url.Values) { q.Add("client_id", "signature") }},
				{"scope with control characters", func(q url.Values) { q.Set("scope", "openid \x00\x01") }},
				{"ui_locales not UTF-8", func(q url.Values) { q.Set("ui_locales", "\xff") }},
				{"prompt not UTF-8", func(q url.Values) { q.Set("prompt", "\xff") }},
				{"acr_values not UTF-8", func(q url.Values) { q.Set("acr_values", "\xff") }},
				{"scope not UTF-8", func(q url.Values) { q.Set("scope", "openid \xff") }},
			}
			for _, tc := range neverServerError {
				t.Run(tc.name, func(t *testing.T) {
					e := env.with(t)
					q, _ := codeAuthQuery("report", reportCB, "openid")
					tc.edit(q)
					resp, body := e.page(e.browser(), e.authURL(q))
					if resp.StatusCode >= 500 {
						t.Fatalf("status %d: %.300s", resp.StatusCode, body)
					}
					if loc := resp.Header.Get("Location"); loc != "" {
						u := redirectTarget(t, resp)
						if u.Host != "127.0.0.1:9" {
							t.Fatalf("redirected to %s", u)
						}
						if p := responseParams(u); p.Get("error") == "server_error" {
							t.Fatalf("server_error for bad input: %s", u)
						}
					}
				})
			}
			t.Run("malformed query strings", func(t *testing.T) {
				e := env.with(t)
				for _, path := range []string{
					"/authorize?%zz", "/authorize?client_id=report&redirect_uri=%zz", "/end_session?%zz",
					"/end_session?client_id=nobody", "/end_session?id_token_hint=garbage", "/userinfo?%zz",
					"/oauth/token?%zz", "/oauth/introspect?%zz", "/revoke?%zz", "/authorize/callback?id=nope",
					"/authorize/callback", "/login?authRequestID=nope", "/login?authRequestID=" + strings.Repeat("x", 100),
				} {
					resp, body := e.page(noRedirectClient(), e.issuer+path)
					if resp.StatusCode >= 500 {
						t.Errorf("GET %s: %d %.200s", path, resp.StatusCode, body)
					}
				}
			})
		})
	}
}

var alertTextRe = regexp.MustCompile(`role="alert">([^<]*)<`)

// TestLoginPage covers the sign-in page: the same answer for a wrong password and an
// unknown phone, CSRF, blocked accounts, phone formats, the body limit, security
// headers and the session cookie.
func TestLoginPage(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			env.addUser("+79105940801", "blocked person password", func(u *storage.User) { u.Blocked = true })
			// form opens a sign-in page for report in a new browser.
			form := func(e *testEnv) (*http.Client, *http.Response, string) {
				b := e.browser()
				q, _ := codeAuthQuery("report", reportCB, "openid")
				resp, body := e.page(b, e.authURL(q))
				if !isSignInForm(resp, body) {
					e.t.Fatalf("no sign-in form: %d", resp.StatusCode)
				}
				return b, resp, body
			}
			t.Run("wrong password and unknown phone look the same", func(t *testing.T) {
				e := env.with(t)
				type answer struct {
					status int
					alert  string
				}
				try := func(login, pw string) answer {
					b, resp, body := form(e)
					r, rb := e.submitLogin(b, resp, body, login, pw)
					m := alertTextRe.FindStringSubmatch(rb)
					if m == nil {
						t.Fatalf("no error message (status %d)", r.StatusCode)
					}
					for _, c := range r.Cookies() {
						if c.Name == "idp_session" && c.Value != "" {
							t.Fatal("a failed sign-in set a session cookie")
						}
					}
					return answer{r.StatusCode, m[1]}
				}
				wrong := try(e.phone, "not the password")
				unknown := try("+79990000000", "not the password")
				unknownRight := try("+79990000000", e.password)
				if wrong != unknown || wrong != unknownRight {
					t.Fatalf("wrong password %+v, unknown phone %+v, %+v", wrong, unknown, unknownRight)
				}
				if wrong.status != http.StatusUnauthorized || !strings.Contains(wrong.alert, "Неверный") {
					t.Fatalf("answer %+v, want 401 with a Russian message", wrong)
				}
			})
			t.Run("missing CSRF token", func(t *testing.T) {
				e := env.with(t)
				b, resp, _ := form(e)
				r, err := b.PostForm(resp.Request.URL.String(), url.Values{"mode": {"phone"}, "login": {e.phone}, "password": {e.password}})
				if err != nil {
					t.Fatal(err)
				}
				body := readAll(t, r)
				if r.StatusCode != http.StatusForbidden || !strings.Contains(body, "Страница устарела") {
					t.Fatalf("status %d: %.300s", r.StatusCode, body)
				}
			})
			t.Run("wrong CSRF token", func(t *testing.T) {
				e := env.with(t)
				b, resp, _ := form(e)
				r, err := b.PostForm(resp.Request.URL.String(), url.Values{"_csrf": {"forged"}, "mode": {"phone"}, "login": {e.phone}, "password": {e.password}})
				if err != nil {
					t.Fatal(err)
				}
				if body := readAll(t, r); r.StatusCode != http.StatusForbidden || !strings.Contains(body, "Страница устарела") {
					t.Fatalf("status %d: %.300s", r.StatusCode, body)
				}
			})
			t.Run("blocked account with the right password", func(t *testing.T) {
				e := env.with(t)
				b, resp, body := form(e)
				r, rb := e.submitLogin(b, resp, body, "+79105940801", "blocked person password")
				if r.StatusCode != http.StatusUnauthorized || r.Header.Get("Location") != "" {
					t.Fatalf("blocked sign-in: %d %s", r.StatusCode, r.Header.Get("Location"))
				}
				if m := alertTextRe.FindStringSubmatch(rb); m == nil {
					t.Fatal("no error message")
				}
				for _, c := range r.Cookies() {
					if c.Name == "idp_session" && c.Value != "" {
						t.Fatal("blocked account got a session cookie")
					}
				}
			})
			for _, phone := range []string{"+7 910 594-08-99", "8 (910) 594-08-99", "9105940899", "+79105940899", "7 910 5940899"} {
				t.Run("phone written as "+phone, func(t *testing.T) {
					e := env.with(t)
					q, v := codeAuthQuery("report", reportCB, "openid")
					cb := e.signIn(e.browser(), e.authURL(q), phone, e.password)
					if cb.Query().Get("code") == "" {
						t.Fatalf("callback %s", cb)
					}
					e.mustExchange(viaBasic("report"), authzCode{clientID: "report", redirect: reportCB, code: cb.Query().Get("code"), verifier: v})
				})
			}
			t.Run("a field over the body limit", func(t *testing.T) {
				e := env.with(t)
				b, resp, body := form(e)
				m := csrfRe.FindStringSubmatch(body)
				r, err := b.PostForm(resp.Request.URL.String(), url.Values{
					"_csrf": {m[1]}, "mode": {"phone"}, "login": {e.phone}, "password": {strings.Repeat("p", 100<<10)},
				})
				if err != nil {
					t.Fatal(err)
				}
				rb := readAll(t, r)
				if r.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(rb, "Слишком большой запрос") {
					t.Fatalf("status %d: %.300s", r.StatusCode, rb)
				}
			})
			t.Run("a long password under the body limit", func(t *testing.T) {
				e := env.with(t)
				b, resp, body := form(e)
				r, _ := e.submitLogin(b, resp, body, e.phone, strings.Repeat("p", 10<<10))
				if r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d", r.StatusCode)
				}
			})
			t.Run("security headers", func(t *testing.T) {
				e := env.with(t)
				for _, path := range []string{"", "/login", "/logout", "/no-such-page"} {
					var resp *http.Response
					if path == "" {
						_, resp, _ = form(e)
					} else {
						resp, _ = e.page(noRedirectClient(), e.issuer+path)
					}
					h := resp.Header
					csp := h.Get("Content-Security-Policy")
					if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") ||
						!strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
						t.Errorf("%s: CSP %q", path, csp)
					}
					if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
						t.Errorf("%s: headers %v", path, h)
					}
				}
				_, resp, body := form(e)
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("sign-in page Cache-Control %q", cc)
				}
				if strings.Contains(body, "<script>") || strings.Contains(body, " onclick=") || strings.Contains(body, " style=\"") {
					t.Error("inline script or style on the sign-in page")
				}
			})
			t.Run("session cookie", func(t *testing.T) {
				e := env.with(t)
				b, resp, body := form(e)
				r, _ := e.submitLogin(staying(b), resp, body, e.phone, e.password)
				if r.StatusCode != http.StatusSeeOther {
					t.Fatalf("sign-in: %d", r.StatusCode)
				}
				var found bool
				for _, c := range r.Cookies() {
					if c.Name != "idp_session" {
						continue
					}
					found = true
					if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || len(c.Value) < 40 {
						t.Fatalf("session cookie %+v", c)
					}
					if c.Secure {
						t.Fatal("Secure cookie on a plain-http dev issuer")
					}
				}
				if !found {
					t.Fatal("no session cookie")
				}
				for _, c := range resp.Cookies() {
					if c.Name == "idp_csrf" && (!c.HttpOnly || c.SameSite != http.SameSiteLaxMode) {
						t.Fatalf("CSRF cookie %+v", c)
					}
				}
			})
			t.Run("an expired sign-in request", func(t *testing.T) {
				e := env.with(t)
				b, resp, body := form(e)
				restore := e.shiftClock(31 * time.Minute)
				r, rb := e.submitLogin(b, resp, body, e.phone, e.password)
				restore()
				if r.StatusCode != http.StatusBadRequest || !strings.Contains(rb, "Ссылка для входа устарела") {
					t.Fatalf("status %d: %.300s", r.StatusCode, rb)
				}
			})
		})
	}
}
