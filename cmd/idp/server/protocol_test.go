package server

// Protocol tests of the token, refresh, client_credentials, introspection, revocation
// and userinfo endpoints and of the authorization request's parameters (prompt,
// max_age, id_token_hint, login_hint, claims, request objects), plus the helpers the
// other *_test.go files of this package share.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/astral/idp/login/password"
	"github.com/astral/idp/storage"
)

// Redirect URIs the harness registers for its products.
const (
	reportCB    = "http://127.0.0.1:9/report/cb"
	reportBye   = "http://127.0.0.1:9/report/bye"
	signatureCB = "http://127.0.0.1:9/signature/cb"
	poaCB       = "http://127.0.0.1:9/poa/cb"
)

// testMasterKey is the harness's IDP_MASTER_KEY, decoded.
var testMasterKey = []byte("0123456789abcdef0123456789abcdef")

// testPasswordParams are the harness's fast argon2 parameters.
var testPasswordParams = password.Params{Memory: 1024, Time: 1, Threads: 1}

// with returns a copy of e that reports to t: helpers call e.t.Fatal, which must run
// on the goroutine of the (sub)test that calls them.
func (e *testEnv) with(t *testing.T) *testEnv {
	c := *e
	c.t = t
	return &c
}

// noRedirectClient is a client without cookies that never follows a redirect.
func noRedirectClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// staying is browser b (same cookies) not following any redirect.
func staying(b *http.Client) *http.Client {
	c := *b
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// authQuery is a code-flow authorization request with PKCE (S256), a state and a nonce.
func codeAuthQuery(clientID, redirect, scope string) (url.Values, string) {
	v := oauth2.GenerateVerifier()
	return url.Values{
		"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {scope},
		"state": {"st-" + storage.NewID()}, "nonce": {"n-" + storage.NewID()},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(v)}, "code_challenge_method": {"S256"},
	}, v
}

func (e *testEnv) authURL(q url.Values) string { return e.issuer + "/authorize?" + q.Encode() }

// grant is an authorization code as a product received it.
type authzCode struct {
	clientID, redirect, code, verifier, nonce string
}

// authorize runs q in browser b (signing in with the form when it appears) and
// returns the code, checking the state came back.
func (e *testEnv) authorize(b *http.Client, q url.Values, verifier string) authzCode {
	e.t.Helper()
	cb := e.signIn(b, e.authURL(q), e.phone, e.password)
	if cb.Query().Get("code") == "" || cb.Query().Get("state") != q.Get("state") {
		e.t.Fatalf("authorization answered %s, want a code and state %q", cb, q.Get("state"))
	}
	return authzCode{clientID: q.Get("client_id"), redirect: q.Get("redirect_uri"), code: cb.Query().Get("code"),
		verifier: verifier, nonce: q.Get("nonce")}
}

// codeGrant signs in to clientID in browser b (a new browser when nil) with scope.
func (e *testEnv) codeGrant(b *http.Client, clientID, redirect, scope string) authzCode {
	e.t.Helper()
	if b == nil {
		b = e.browser()
	}
	q, v := codeAuthQuery(clientID, redirect, scope)
	return e.authorize(b, q, v)
}

// page fetches u in browser b and returns the last response (a redirect leaving the
// issuer is not followed) with its body.
func (e *testEnv) page(b *http.Client, u string) (*http.Response, string) {
	e.t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, readAll(e.t, resp)
}

// submitLogin fills the sign-in form of page (the body of resp) in browser b.
func (e *testEnv) submitLogin(b *http.Client, resp *http.Response, body, login, pw string) (*http.Response, string) {
	e.t.Helper()
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("no sign-in form (status %d): %.300s", resp.StatusCode, body)
	}
	form := url.Values{"_csrf": {m[1]}, "mode": {"phone"}, "login": {login}, "password": {pw}}
	r, err := b.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		e.t.Fatal(err)
	}
	return r, readAll(e.t, r)
}

// isForm reports whether a page is the sign-in form.
func isSignInForm(resp *http.Response, body string) bool {
	return resp.StatusCode == http.StatusOK && strings.Contains(body, `name="password"`) && csrfRe.MatchString(body)
}

// location parses the Location of a redirect.
func redirectTarget(t *testing.T, resp *http.Response) *url.URL {
	t.Helper()
	loc := resp.Header.Get("Location")
	if loc == "" {
		t.Fatalf("status %d without a Location", resp.StatusCode)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// redirectParams are the response parameters of a redirect to a product: the query,
// or the fragment when the response went there.
func responseParams(u *url.URL) url.Values {
	q := u.Query()
	if q.Get("error") == "" && q.Get("code") == "" && u.Fragment != "" {
		if f, err := url.ParseQuery(u.Fragment); err == nil {
			return f
		}
	}
	return q
}

// apiResp is an answer of a JSON endpoint.
type apiResp struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func (r apiResp) str(k string) string {
	s, _ := r.json[k].(string)
	return s
}

func (r apiResp) String() string { return fmt.Sprintf("%d %s", r.status, r.raw) }

// clientAuth is how a product authenticates: "basic" (client_secret_basic), "post"
// (client_secret_post) or "none" (a public client sends only its id).
type clientAuth struct{ id, secret, method string }

func viaBasic(id string) clientAuth { return clientAuth{id, testSecret, "basic"} }
func viaPost(id string) clientAuth  { return clientAuth{id, testSecret, "post"} }
func viaNone(id string) clientAuth  { return clientAuth{id, "", "none"} }

// call posts form to path with the client's authentication.
func (e *testEnv) call(path string, auth clientAuth, form url.Values) apiResp {
	e.t.Helper()
	form = copyValues(form)
	switch auth.method {
	case "post":
		form.Set("client_id", auth.id)
		form.Set("client_secret", auth.secret)
	case "none":
		form.Set("client_id", auth.id)
	}
	req, err := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth.method == "basic" {
		req.SetBasicAuth(url.QueryEscape(auth.id), url.QueryEscape(auth.secret))
	}
	resp, err := noRedirectClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	r := apiResp{status: resp.StatusCode, header: resp.Header, raw: readAll(e.t, resp)}
	_ = json.Unmarshal([]byte(r.raw), &r.json)
	return r
}

func copyValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// exchange redeems g at the token endpoint.
func (e *testEnv) exchange(auth clientAuth, g authzCode) apiResp {
	e.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {g.code}, "redirect_uri": {g.redirect}}
	if g.verifier != "" {
		form.Set("code_verifier", g.verifier)
	}
	return e.call("/oauth/token", auth, form)
}

// mustExchange redeems g and fails unless tokens come back.
func (e *testEnv) mustExchange(auth clientAuth, g authzCode) apiResp {
	e.t.Helper()
	r := e.exchange(auth, g)
	if r.status != http.StatusOK || r.str("access_token") == "" || r.str("id_token") == "" {
		e.t.Fatalf("code exchange: %s", r)
	}
	return r
}

// refresh uses a refresh token; scope may be empty.
func (e *testEnv) refresh(auth clientAuth, token, scope string) apiResp {
	e.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return e.call("/oauth/token", auth, form)
}

func (e *testEnv) introspect(auth clientAuth, token string) apiResp {
	e.t.Helper()
	return e.call("/oauth/introspect", auth, url.Values{"token": {token}})
}

func (e *testEnv) revoke(auth clientAuth, token, hint string) apiResp {
	e.t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	return e.call("/revoke", auth, form)
}

// active reports the "active" member of an introspection answer, failing on anything
// but a 200.
func (e *testEnv) active(auth clientAuth, token string) bool {
	e.t.Helper()
	r := e.introspect(auth, token)
	if r.status != http.StatusOK {
		e.t.Fatalf("introspection: %s", r)
	}
	a, ok := r.json["active"].(bool)
	if !ok {
		e.t.Fatalf("introspection without a boolean active: %s", r)
	}
	return a
}

// userinfo calls the userinfo endpoint: how is "get" (Authorization header), "post"
// (header) or "body" (access_token form parameter, OIDC Core §5.3.1).
func (e *testEnv) userinfo(how, token string) apiResp {
	e.t.Helper()
	var req *http.Request
	var err error
	switch how {
	case "get":
		req, err = http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	case "post":
		req, err = http.NewRequest(http.MethodPost, e.issuer+"/userinfo", nil)
	case "body":
		req, err = http.NewRequest(http.MethodPost, e.issuer+"/userinfo",
			strings.NewReader(url.Values{"access_token": {token}}.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	default:
		e.t.Fatalf("userinfo: unknown method %q", how)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	if how != "body" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := noRedirectClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	r := apiResp{status: resp.StatusCode, header: resp.Header, raw: readAll(e.t, resp)}
	_ = json.Unmarshal([]byte(r.raw), &r.json)
	return r
}

// jwks fetches the published key set.
func (e *testEnv) jwks() jose.JSONWebKeySet {
	e.t.Helper()
	resp, err := http.Get(e.issuer + "/keys")
	if err != nil {
		e.t.Fatal(err)
	}
	body := readAll(e.t, resp)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /keys: %d %s", resp.StatusCode, body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		e.t.Fatalf("GET /keys: %v: %s", err, body)
	}
	return set
}

// verifyJWT checks raw's signature with a key of /keys named by its kid header and
// returns the protected header and the claims.
func (e *testEnv) verifyJWT(raw string) (jose.Header, map[string]any) {
	e.t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		e.t.Fatalf("not a JWS: %v", err)
	}
	if len(jws.Signatures) != 1 {
		e.t.Fatalf("%d signatures", len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	if h.KeyID == "" {
		e.t.Fatalf("JWT without kid header: %+v", h)
	}
	set := e.jwks()
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		e.t.Fatalf("kid %q: %d keys in /keys", h.KeyID, len(keys))
	}
	if keys[0].Algorithm != h.Algorithm {
		e.t.Fatalf("kid %q: JWKS alg %q, JWT alg %q", h.KeyID, keys[0].Algorithm, h.Algorithm)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		e.t.Fatalf("signature does not verify with kid %q: %v", h.KeyID, err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		e.t.Fatal(err)
	}
	return h, claims
}

// idClaims verifies an ID token and checks iss, aud and nonce.
func (e *testEnv) idClaims(raw string, g authzCode) map[string]any {
	e.t.Helper()
	_, c := e.verifyJWT(raw)
	if c["iss"] != e.issuer {
		e.t.Fatalf("ID token iss %v", c["iss"])
	}
	if !audContains(c["aud"], g.clientID) {
		e.t.Fatalf("ID token aud %v, want %s", c["aud"], g.clientID)
	}
	if g.nonce != "" && c["nonce"] != g.nonce {
		e.t.Fatalf("ID token nonce %v, want %s", c["nonce"], g.nonce)
	}
	return c
}

func audContains(aud any, id string) bool {
	switch a := aud.(type) {
	case string:
		return a == id
	case []any:
		for _, v := range a {
			if v == id {
				return true
			}
		}
	}
	return false
}

func claimInt(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// shiftClock moves the store's clock by d until the returned function (also run at
// cleanup) restores it.
func (e *testEnv) shiftClock(d time.Duration) func() {
	e.store.SetClock(func() time.Time { return time.Now().Add(d) })
	restore := func() { e.store.SetClock(time.Now) }
	e.t.Cleanup(restore)
	return restore
}

// addUser creates another account with a password.
func (e *testEnv) addUser(phone, pw string, edit func(*storage.User)) *storage.User {
	e.t.Helper()
	hash, err := password.NewHasher(testPasswordParams).Hash(pw)
	if err != nil {
		e.t.Fatal(err)
	}
	u := &storage.User{Phone: &phone, PhoneVerified: true, PasswordHash: hash, FamilyName: "Петров", GivenName: "Петр"}
	if edit != nil {
		edit(u)
	}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

func wantOAuthError(t *testing.T, r apiResp, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %s, want %d %s", r, status, code)
	}
}

// TestTokenEndpoint covers the authorization_code grant's failure modes (RFC 6749
// §4.1.3, §5.2; RFC 7636 §4.6) and what every token response must carry.
func TestTokenEndpoint(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			cases := []struct {
				name   string
				grant  func(e *testEnv) authzCode // the code; default: report with PKCE
				redeem func(e *testEnv, g authzCode) apiResp
				status int
				err    string
			}{
				{name: "client_secret_basic", status: 200,
					redeem: func(e *testEnv, g authzCode) apiResp { return e.exchange(viaBasic("report"), g) }},
				{name: "client_secret_post", status: 200,
					redeem: func(e *testEnv, g authzCode) apiResp { return e.exchange(viaPost("report"), g) }},
				{name: "public client with verifier", status: 200,
					grant:  func(e *testEnv) authzCode { return e.codeGrant(nil, "poa", poaCB, "openid") },
					redeem: func(e *testEnv, g authzCode) apiResp { return e.exchange(viaNone("poa"), g) }},
				{name: "wrong client secret", status: 401, err: "invalid_client",
					redeem: func(e *testEnv, g authzCode) apiResp {
						return e.exchange(clientAuth{"report", testSecret + "x", "basic"}, g)
					}},
				{name: "wrong client secret by post", status: 401, err: "invalid_client",
					redeem: func(e *testEnv, g authzCode) apiResp {
						return e.exchange(clientAuth{"report", "nope", "post"}, g)
					}},
				{name: "confidential client without secret", status: 401, err: "invalid_client",
					redeem: func(e *testEnv, g authzCode) apiResp { return e.exchange(viaNone("report"), g) }},
				{name: "unknown client", status: 401, err: "invalid_client",
					redeem: func(e *testEnv, g authzCode) apiResp { return e.exchange(viaBasic("nobody"), g) }},
				{name: "wrong PKCE verifier", status: 400, err: "invalid_grant",
					redeem: func(e *testEnv, g authzCode) apiResp {
						g.verifier = oauth2.GenerateVerifier()
						return e.exchange(viaBasic("report"), g)
					}},
				{name: "PKCE downgrade: confidential client omits the verifier", status: 400, err: "invalid_request",
					redeem: func(e *testEnv, g authzCode) apiResp {
						g.verifier = ""
						return e.exchange(viaBasic("report"), g)
					}},
				{name: "PKCE downgrade: public client omits the verifier", status: 400, err: "invalid_request",
					grant: func(e *testEnv) authzCode { return e.codeGrant(nil, "poa", poaCB, "openid") },
					redeem: func(e *testEnv, g authzCode) apiResp {
						g.verifier = ""
						return e.exchange(viaNone("poa"), g)
					}},
				{name: "verifier without a challenge", status: 400, err: "invalid_request",
					grant: func(e *testEnv) authzCode {
						q, _ := codeAuthQuery("report", reportCB, "openid")
						q.Del("code_challenge")
						q.Del("code_challenge_method")
						return e.authorize(e.browser(), q, "")
					},
					redeem: func(e *testEnv, g authzCode) apiResp {
						g.verifier = oauth2.GenerateVerifier()
						return e.exchange(viaBasic("report"), g)
					}},
				{name: "redirect_uri mismatch", status: 400, err: "invalid_grant",
					redeem: func(e *testEnv, g authzCode) apiResp {
						g.redirect = reportCB + "/other"
						return e.exchange(viaBasic("report"), g)
					}},
				{name: "redirect_uri missing", status: 400, err: "invalid_grant",
					redeem: func(e *testEnv, g authzCode) apiResp {
						g.redirect = ""
						return e.exchange(viaBasic("report"), g)
					}},
				{name: "code of report redeemed by signature", status: 400, err: "invalid_grant",
					redeem: func(e *testEnv, g authzCode) apiResp {
						g.redirect = signatureCB
						return e.exchange(viaBasic("signature"), g)
					}},
				{name: "unknown code", status: 400, err: "invalid_grant",
					redeem: func(e *testEnv, g authzCode) apiResp {
						g.code = "not-a-code"
						return e.exchange(viaBasic("report"), g)
					}},
				{name: "code missing", status: 400, err: "invalid_request",
					redeem: func(e *testEnv, g authzCode) apiResp {
						g.code = ""
						return e.exchange(viaBasic("report"), g)
					}},
				{name: "expired code", status: 400, err: "invalid_grant",
					redeem: func(e *testEnv, g authzCode) apiResp {
						defer e.shiftClock(2 * time.Minute)()
						return e.exchange(viaBasic("report"), g)
					}},
				{name: "unsupported grant type", status: 400, err: "unsupported_grant_type",
					redeem: func(e *testEnv, g authzCode) apiResp {
						return e.call("/oauth/token", viaBasic("report"), url.Values{"grant_type": {"password"}, "username": {"x"}, "password": {"y"}})
					}},
				{name: "grant type missing", status: 400, err: "invalid_request",
					redeem: func(e *testEnv, g authzCode) apiResp {
						return e.call("/oauth/token", viaBasic("report"), url.Values{"code": {g.code}})
					}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e := env.with(t)
					var g authzCode
					if tc.grant != nil {
						g = tc.grant(e)
					} else {
						g = e.codeGrant(nil, "report", reportCB, "openid phone offline_access")
					}
					r := tc.redeem(e, g)
					if tc.status != http.StatusOK {
						wantOAuthError(t, r, tc.status, tc.err)
						if strings.Contains(r.raw, "access_token") {
							t.Fatalf("error answer carries a token: %s", r)
						}
						return
					}
					if r.status != http.StatusOK || r.str("access_token") == "" || r.str("id_token") == "" {
						t.Fatalf("exchange: %s", r)
					}
					if !strings.EqualFold(r.str("token_type"), "Bearer") {
						t.Fatalf("token_type %q", r.str("token_type"))
					}
					// RFC 6749 §5.1: the answer carries tokens and must not be cached.
					if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
						t.Fatalf("token response Cache-Control %q, want no-store", cc)
					}
					if p := r.header.Get("Pragma"); p != "no-cache" {
						t.Fatalf("token response Pragma %q, want no-cache", p)
					}
					// Every JWT names its key, and the key is published.
					_, claims := e.verifyJWT(r.str("id_token"))
					_, atc := e.verifyJWT(r.str("access_token"))
					if claims["sub"] != e.userID || atc["sub"] != e.userID || atc["jti"] == "" || atc["iss"] != e.issuer {
						t.Fatalf("ID token %v, access token %v", claims, atc)
					}
					// The code is spent now.
					if again := tc.redeem(e, g); again.status != http.StatusBadRequest || again.str("error") != "invalid_grant" {
						t.Fatalf("second redemption: %s", again)
					}
				})
			}
		})
	}
}

// TestCodeReuse: a code presented twice is refused, and what the first exchange
// produced is revoked (RFC 6749 §4.1.2; oidcc-codereuse, oidcc-codereuse-30seconds).
func TestCodeReuse(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			for _, delay := range []time.Duration{0, 30 * time.Second} {
				t.Run(fmt.Sprintf("after %s", delay), func(t *testing.T) {
					e := env.with(t)
					g := e.codeGrant(nil, "report", reportCB, "openid phone offline_access")
					first := e.mustExchange(viaBasic("report"), g)
					at, rt := first.str("access_token"), first.str("refresh_token")
					if rt == "" {
						t.Fatal("no refresh token")
					}
					if r := e.userinfo("get", at); r.status != http.StatusOK {
						t.Fatalf("userinfo before reuse: %s", r)
					}
					if !e.active(viaBasic("report"), at) {
						t.Fatal("fresh access token inactive")
					}
					restore := e.shiftClock(delay)
					second := e.exchange(viaBasic("report"), g)
					restore()
					wantOAuthError(t, second, http.StatusBadRequest, "invalid_grant")
					if r := e.userinfo("get", at); r.status == http.StatusOK {
						t.Fatalf("userinfo with the first exchange's access token after reuse: %s", r)
					}
					if e.active(viaBasic("report"), at) {
						t.Fatal("access token still active after code reuse")
					}
					if e.active(viaBasic("report"), rt) {
						t.Fatal("refresh token introspected active")
					}
					wantOAuthError(t, e.refresh(viaBasic("report"), rt, ""), http.StatusBadRequest, "invalid_grant")
				})
			}
		})
	}
}

// TestRefresh covers refresh cases beyond rotation and replay (flow_test.go): a
// blocked account, a token of another client, narrowing the scope, no offline_access.
func TestRefresh(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			cases := []struct {
				name string
				run  func(t *testing.T, e *testEnv, first apiResp)
			}{
				{"refresh works and rotates", func(t *testing.T, e *testEnv, first apiResp) {
					r := e.refresh(viaBasic("report"), first.str("refresh_token"), "")
					if r.status != http.StatusOK || r.str("refresh_token") == "" || r.str("refresh_token") == first.str("refresh_token") {
						t.Fatalf("refresh: %s", r)
					}
					if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
						t.Fatalf("refresh response Cache-Control %q", cc)
					}
					_, c := e.verifyJWT(r.str("id_token"))
					if c["sub"] != e.userID || c["phone_number"] != e.phone {
						t.Fatalf("refreshed ID token %v", c)
					}
				}},
				{"token of report used by signature", func(t *testing.T, e *testEnv, first apiResp) {
					wantOAuthError(t, e.refresh(viaBasic("signature"), first.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
					// The failed attempt spent nothing: report still refreshes.
					if r := e.refresh(viaBasic("report"), first.str("refresh_token"), ""); r.status != http.StatusOK {
						t.Fatalf("owner's refresh after a foreign attempt: %s", r)
					}
				}},
				{"wrong client secret", func(t *testing.T, e *testEnv, first apiResp) {
					wantOAuthError(t, e.refresh(clientAuth{"report", "wrong", "basic"}, first.str("refresh_token"), ""), http.StatusUnauthorized, "invalid_client")
				}},
				{"unknown refresh token", func(t *testing.T, e *testEnv, first apiResp) {
					wantOAuthError(t, e.refresh(viaBasic("report"), "no-such-token", ""), http.StatusBadRequest, "invalid_grant")
				}},
				{"scope narrowing", func(t *testing.T, e *testEnv, first apiResp) {
					r := e.refresh(viaBasic("report"), first.str("refresh_token"), "openid")
					if r.status != http.StatusOK {
						t.Fatalf("narrowed refresh: %s", r)
					}
					_, c := e.verifyJWT(r.str("id_token"))
					if _, ok := c["phone_number"]; ok {
						t.Fatalf("narrowed ID token has phone_number: %v", c)
					}
					in := e.introspect(viaBasic("report"), r.str("access_token"))
					if in.json["active"] != true || in.str("scope") != "openid" {
						t.Fatalf("narrowed access token: %s", in)
					}
					if info := e.userinfo("get", r.str("access_token")); info.status != 200 || info.str("phone_number") != "" {
						t.Fatalf("userinfo of the narrowed token: %s", info)
					}
					// RFC 6749 §6: the new refresh token keeps the scope of the one presented.
					wide := e.refresh(viaBasic("report"), r.str("refresh_token"), "openid phone")
					if wide.status != http.StatusOK {
						t.Fatalf("refresh with the original scope after narrowing: %s", wide)
					}
					if in := e.introspect(viaBasic("report"), wide.str("access_token")); !strings.Contains(in.str("scope"), "phone") {
						t.Fatalf("access token after narrowing back: %s", in)
					}
				}},
				{"scope widening", func(t *testing.T, e *testEnv, first apiResp) {
					wantOAuthError(t, e.refresh(viaBasic("report"), first.str("refresh_token"), "openid email"), http.StatusBadRequest, "invalid_scope")
					// The refused request spent nothing.
					if r := e.refresh(viaBasic("report"), first.str("refresh_token"), ""); r.status != http.StatusOK {
						t.Fatalf("refresh after a refused widening: %s", r)
					}
				}},
				{"refresh by a post-authenticated client", func(t *testing.T, e *testEnv, first apiResp) {
					r := e.refresh(viaPost("report"), first.str("refresh_token"), "")
					if r.status != http.StatusOK {
						t.Fatalf("refresh with client_secret_post: %s", r)
					}
					wantOAuthError(t, e.refresh(viaBasic("report"), first.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
					wantOAuthError(t, e.refresh(viaBasic("report"), r.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
				}},
				{"blocked account", func(t *testing.T, e *testEnv, first apiResp) {
					ctx := context.Background()
					if _, err := e.store.SetUserBlocked(ctx, e.userID, true); err != nil {
						t.Fatal(err)
					}
					defer func() {
						if _, err := e.store.SetUserBlocked(ctx, e.userID, false); err != nil {
							t.Fatal(err)
						}
					}()
					wantOAuthError(t, e.refresh(viaBasic("report"), first.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
				}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e := env.with(t)
					first := e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid phone offline_access"))
					if first.str("refresh_token") == "" {
						t.Fatalf("no refresh token: %s", first)
					}
					tc.run(t, e, first)
				})
			}
			t.Run("no offline_access, no refresh token", func(t *testing.T) {
				e := env.with(t)
				r := e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid phone"))
				if _, ok := r.json["refresh_token"]; ok {
					t.Fatalf("refresh token without offline_access: %s", r)
				}
			})
			t.Run("a code redeemed after a block issues and stores nothing", func(t *testing.T) {
				e := env.with(t)
				ctx := context.Background()
				g := e.codeGrant(nil, "report", reportCB, "openid offline_access")
				if _, err := e.store.SetUserBlocked(ctx, e.userID, true); err != nil {
					t.Fatal(err)
				}
				// A block also ends the account's sessions, so the code is refused as one
				// of an ended session before the account is looked at.
				wantOAuthError(t, e.exchange(viaBasic("report"), g), http.StatusBadRequest, "invalid_grant")
				if _, err := e.store.SetUserBlocked(ctx, e.userID, false); err != nil {
					t.Fatal(err)
				}
				ucs, err := e.store.UserClients(ctx, e.userID)
				if err != nil {
					t.Fatal(err)
				}
				for _, uc := range ucs {
					if uc.Active {
						t.Errorf("after unblocking, %s holds a live token issued for the code redeemed while blocked", uc.Client.ID)
					}
				}
			})
			t.Run("a blocked account is named only to the product that proved the code", func(t *testing.T) {
				e := env.with(t)
				ctx := context.Background()
				// Blocked with the session kept (a block ends them too, in the same
				// transaction): what a code's exchange meets racing a block.
				block := func(blocked bool) {
					if _, err := e.store.UpdateUser(ctx, e.userID, func(u *storage.User) error { u.Blocked = blocked; return nil }); err != nil {
						t.Fatal(err)
					}
				}
				g := e.codeGrant(nil, "report", reportCB, "openid offline_access")
				g2 := e.codeGrant(nil, "report", reportCB, "openid offline_access")
				block(true)
				defer block(false)
				wrong := g
				wrong.verifier = oauth2.GenerateVerifier()
				if r := e.exchange(viaBasic("report"), wrong); strings.Contains(r.raw, "blocked") || r.status != http.StatusBadRequest {
					t.Errorf("a wrong verifier: %s; want a refusal that says nothing of the account", r)
				}
				r := e.exchange(viaBasic("report"), g2)
				wantOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
				if r.str("error_description") != "account is blocked" {
					t.Errorf("the code's own product: %s; want «account is blocked»", r)
				}
			})
			t.Run("a code of a session ended before its exchange issues nothing", func(t *testing.T) {
				e := env.with(t)
				ctx := context.Background()
				g := e.codeGrant(nil, "report", reportCB, "openid offline_access")
				if _, err := e.store.EndUserSessions(ctx, e.userID, ""); err != nil {
					t.Fatal(err)
				}
				wantOAuthError(t, e.exchange(viaBasic("report"), g), http.StatusBadRequest, "invalid_grant")
			})
			t.Run("a refresh token from before a block stays dead after unblocking", func(t *testing.T) {
				e := env.with(t)
				ctx := context.Background()
				first := e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid offline_access"))
				if _, err := e.store.SetUserBlocked(ctx, e.userID, true); err != nil {
					t.Fatal(err)
				}
				if _, err := e.store.SetUserBlocked(ctx, e.userID, false); err != nil {
					t.Fatal(err)
				}
				wantOAuthError(t, e.refresh(viaBasic("report"), first.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
			})
		})
	}
}

// TestClientCredentials: a product acting for itself (RFC 6749 §4.4).
func TestClientCredentials(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			cc := func(auth clientAuth, scope string) func(e *testEnv) apiResp {
				return func(e *testEnv) apiResp {
					form := url.Values{"grant_type": {"client_credentials"}}
					if scope != "" {
						form.Set("scope", scope)
					}
					return e.call("/oauth/token", auth, form)
				}
			}
			cases := []struct {
				name   string
				call   func(e *testEnv) apiResp
				status int
				err    string
			}{
				{"signature by basic", cc(viaBasic("signature"), ""), 200, ""},
				{"signature by post", cc(viaPost("signature"), ""), 200, ""},
				{"personal scopes dropped", cc(viaBasic("signature"), "openid offline_access profile phone"), 200, ""},
				{"report is not allowed", cc(viaBasic("report"), ""), 400, "unauthorized_client"},
				{"wrong secret", cc(clientAuth{"signature", "wrong", "basic"}, ""), 401, "invalid_client"},
				{"wrong secret by post", cc(clientAuth{"signature", "wrong", "post"}, ""), 401, "invalid_client"},
				{"public client", cc(viaNone("poa"), ""), 401, "invalid_client"},
				{"unknown client", cc(viaBasic("nobody"), ""), 401, "invalid_client"},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e := env.with(t)
					r := tc.call(e)
					if tc.status != 200 {
						wantOAuthError(t, r, tc.status, tc.err)
						return
					}
					if r.status != 200 || r.str("access_token") == "" || !strings.EqualFold(r.str("token_type"), "Bearer") {
						t.Fatalf("client_credentials: %s", r)
					}
					for _, k := range []string{"refresh_token", "id_token"} {
						if _, ok := r.json[k]; ok {
							t.Fatalf("client_credentials answer has %s: %s", k, r)
						}
					}
					if s := r.str("scope"); s != "" {
						t.Fatalf("scope %q granted to a service: personal scopes must be dropped", s)
					}
					if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
						t.Fatalf("Cache-Control %q", cc)
					}
					_, c := e.verifyJWT(r.str("access_token"))
					if c["sub"] != "signature" || c["iss"] != e.issuer || !audContains(c["aud"], "signature") || claimInt(c["exp"]) <= time.Now().Unix() {
						t.Fatalf("client_credentials access token %v", c)
					}
					if sc, ok := c["scope"]; ok && sc != "" {
						t.Fatalf("access token scope %v", sc)
					}
					in := e.introspect(viaBasic("signature"), r.str("access_token"))
					if in.json["active"] != true || in.str("client_id") != "signature" {
						t.Fatalf("introspection of a service token: %s", in)
					}
					if info := e.userinfo("get", r.str("access_token")); info.status == http.StatusOK {
						t.Fatalf("userinfo answered a service token: %s", info)
					}
				})
			}
		})
	}
}

// TestClientCredentialsRevocation: a product's own token is not stored when it is
// issued, and still ends when it is revoked (RFC 7009) or the product is removed.
func TestClientCredentialsRevocation(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			issue := func(e *testEnv) string {
				r := e.call("/oauth/token", viaBasic("signature"), url.Values{"grant_type": {"client_credentials"}})
				if r.status != 200 || r.str("access_token") == "" {
					e.t.Fatalf("client_credentials: %s", r)
				}
				return r.str("access_token")
			}
			cases := []struct {
				name string
				run  func(t *testing.T, e *testEnv, token string)
			}{
				{"introspection answers from the token", func(t *testing.T, e *testEnv, token string) {
					in := e.introspect(viaBasic("signature"), token)
					if in.json["active"] != true || in.str("client_id") != "signature" || in.str("sub") != "signature" ||
						!audContains(in.json["aud"], "signature") || claimInt(in.json["exp"]) <= time.Now().Unix() ||
						claimInt(in.json["iat"]) > time.Now().Unix() || in.str("jti") == "" {
						t.Fatalf("introspection: %s", in)
					}
				}},
				{"another product learns nothing", func(t *testing.T, e *testEnv, token string) {
					if in := e.introspect(viaBasic("report"), token); in.json["active"] != false || len(in.json) != 1 {
						t.Fatalf("foreign introspection: %s", in)
					}
				}},
				{"revoked by its product", func(t *testing.T, e *testEnv, token string) {
					for _, hint := range []string{"access_token", ""} {
						if r := e.revoke(viaBasic("signature"), token, hint); r.status != 200 {
							t.Fatalf("revoke (hint %q): %s", hint, r)
						}
					}
					if e.active(viaBasic("signature"), token) {
						t.Fatal("revoked token active")
					}
					if other := issue(e); !e.active(viaBasic("signature"), other) {
						t.Fatal("revoking one token ended another")
					}
				}},
				{"another product cannot revoke it", func(t *testing.T, e *testEnv, token string) {
					wantOAuthError(t, e.revoke(viaBasic("report"), token, "access_token"), http.StatusBadRequest, "invalid_grant")
					if !e.active(viaBasic("signature"), token) {
						t.Fatal("another product revoked the token")
					}
				}},
				{"a tampered token revokes nothing", func(t *testing.T, e *testEnv, token string) {
					if r := e.revoke(viaBasic("signature"), token+"x", "access_token"); r.status != 200 {
						t.Fatalf("revoke: %s", r)
					}
					if !e.active(viaBasic("signature"), token) {
						t.Fatal("a tampered copy revoked the token")
					}
				}},
				{"two tokens in one introspection request answer nothing", func(t *testing.T, e *testEnv, token string) {
					in := e.call("/oauth/introspect", viaBasic("signature"), url.Values{"token": {token, issue(e)}})
					if in.json["active"] == true {
						t.Fatalf("introspection of two tokens at once: %s", in)
					}
				}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e := env.with(t)
					tc.run(t, e, issue(e))
				})
			}
			t.Run("removing the product ends its tokens", func(t *testing.T) {
				e := env.with(t)
				token := issue(e)
				if !e.active(viaBasic("signature"), token) {
					t.Fatal("a new token inactive")
				}
				if err := e.store.DeleteClient(context.Background(), "signature"); err != nil {
					t.Fatal(err)
				}
				// Right after, this node may still know the product's secret for up to
				// provider.ClientCacheTTL: the token itself must be inactive already.
				if in := e.introspect(viaBasic("signature"), token); in.json["active"] == true {
					t.Fatalf("introspection after the product was removed: %s", in)
				}
			})
		})
	}
}

// TestIntrospectionRevocation covers RFC 7662 and RFC 7009.
func TestIntrospectionRevocation(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			cases := []struct {
				name string
				run  func(t *testing.T, e *testEnv, tok apiResp)
			}{
				{"introspect an access token as its client", func(t *testing.T, e *testEnv, tok apiResp) {
					in := e.introspect(viaBasic("report"), tok.str("access_token"))
					if in.status != 200 || in.json["active"] != true || in.str("sub") != e.userID || in.str("client_id") != "report" ||
						!slices.Contains(strings.Fields(in.str("scope")), "openid") || claimInt(in.json["exp"]) <= time.Now().Unix() {
						t.Fatalf("introspection: %s", in)
					}
				}},
				{"introspection takes client_secret_basic only, as discovery says", func(t *testing.T, e *testEnv, tok apiResp) {
					if in := e.introspect(viaPost("report"), tok.str("access_token")); in.status != http.StatusUnauthorized {
						t.Fatalf("introspection by client_secret_post: %s", in)
					}
				}},
				{"introspection needs client authentication", func(t *testing.T, e *testEnv, tok apiResp) {
					if in := e.introspect(viaNone("report"), tok.str("access_token")); in.status != http.StatusUnauthorized {
						t.Fatalf("unauthenticated introspection: %s", in)
					}
					if in := e.introspect(clientAuth{"report", "wrong", "basic"}, tok.str("access_token")); in.status != http.StatusUnauthorized {
						t.Fatalf("introspection with a wrong secret: %s", in)
					}
				}},
				{"a refresh token introspects inactive", func(t *testing.T, e *testEnv, tok apiResp) {
					if e.active(viaBasic("report"), tok.str("refresh_token")) {
						t.Fatal("refresh token active")
					}
				}},
				{"another client learns nothing", func(t *testing.T, e *testEnv, tok apiResp) {
					in := e.introspect(viaBasic("signature"), tok.str("access_token"))
					if in.status != 200 || in.json["active"] != false || len(in.json) != 1 {
						t.Fatalf("foreign introspection: %s", in)
					}
				}},
				{"garbage introspects inactive", func(t *testing.T, e *testEnv, tok apiResp) {
					if e.active(viaBasic("report"), "garbage") {
						t.Fatal("garbage active")
					}
				}},
				{"revoke the access token", func(t *testing.T, e *testEnv, tok apiResp) {
					if r := e.revoke(viaBasic("report"), tok.str("access_token"), "access_token"); r.status != 200 {
						t.Fatalf("revoke: %s", r)
					}
					if e.active(viaBasic("report"), tok.str("access_token")) {
						t.Fatal("revoked access token active")
					}
					if r := e.userinfo("get", tok.str("access_token")); r.status == 200 {
						t.Fatalf("userinfo with a revoked token: %s", r)
					}
					// Revoking an access token leaves the refresh token alone.
					if r := e.refresh(viaBasic("report"), tok.str("refresh_token"), ""); r.status != 200 {
						t.Fatalf("refresh after revoking only the access token: %s", r)
					}
				}},
				{"revoking a refreshed access token ends the earlier ones, not the later", func(t *testing.T, e *testEnv, tok apiResp) {
					second := e.refresh(viaBasic("report"), tok.str("refresh_token"), "")
					if second.status != 200 {
						t.Fatalf("refresh: %s", second)
					}
					if !e.active(viaBasic("report"), tok.str("access_token")) {
						t.Fatal("the first access token ended when the refresh token rotated")
					}
					if r := e.revoke(viaBasic("report"), second.str("access_token"), "access_token"); r.status != 200 {
						t.Fatalf("revoke: %s", r)
					}
					for i, at := range []string{tok.str("access_token"), second.str("access_token")} {
						if e.active(viaBasic("report"), at) {
							t.Fatalf("access token %d active after the second was revoked", i+1)
						}
					}
					third := e.refresh(viaBasic("report"), second.str("refresh_token"), "")
					if third.status != 200 || !e.active(viaBasic("report"), third.str("access_token")) {
						t.Fatalf("the refresh after revoking an access token: %s", third)
					}
					if r := e.userinfo("get", third.str("access_token")); r.status != 200 || r.str("sub") != e.userID {
						t.Fatalf("userinfo with the next access token: %s", r)
					}
				}},
				{"userinfo reads the token op verified", func(t *testing.T, e *testEnv, tok apiResp) {
					// A second token in the body does not replace the one in the header.
					other := e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid offline_access"))
					req, err := http.NewRequest(http.MethodPost, e.issuer+"/userinfo",
						strings.NewReader(url.Values{"access_token": {other.str("access_token")}}.Encode()))
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Authorization", "Bearer "+tok.str("access_token"))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					var info map[string]any
					if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != 200 {
						t.Fatalf("userinfo: %d %v (%v)", resp.StatusCode, info, err)
					}
					if info["phone_number"] != e.phone {
						t.Fatalf("userinfo answered with the claims of the token in the body: %v", info)
					}
				}},
				{"revoke the access token without a hint", func(t *testing.T, e *testEnv, tok apiResp) {
					if r := e.revoke(viaPost("report"), tok.str("access_token"), ""); r.status != 200 {
						t.Fatalf("revoke: %s", r)
					}
					if e.active(viaBasic("report"), tok.str("access_token")) {
						t.Fatal("revoked access token active")
					}
				}},
				{"revoking an unknown token is 200", func(t *testing.T, e *testEnv, tok apiResp) {
					for _, hint := range []string{"", "access_token", "refresh_token"} {
						if r := e.revoke(viaBasic("report"), "no-such-token", hint); r.status != 200 {
							t.Fatalf("revoke unknown (hint %q): %s", hint, r)
						}
					}
				}},
				{"revoking a refresh token revokes its family", func(t *testing.T, e *testEnv, tok apiResp) {
					next := e.refresh(viaBasic("report"), tok.str("refresh_token"), "")
					if next.status != 200 {
						t.Fatalf("refresh: %s", next)
					}
					if r := e.revoke(viaBasic("report"), next.str("refresh_token"), "refresh_token"); r.status != 200 {
						t.Fatalf("revoke: %s", r)
					}
					wantOAuthError(t, e.refresh(viaBasic("report"), next.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
					for i, at := range []string{tok.str("access_token"), next.str("access_token")} {
						if e.active(viaBasic("report"), at) {
							t.Fatalf("access token %d of the family active after revocation", i)
						}
					}
				}},
				{"revoking a refresh token without a hint", func(t *testing.T, e *testEnv, tok apiResp) {
					if r := e.revoke(viaBasic("report"), tok.str("refresh_token"), ""); r.status != 200 {
						t.Fatalf("revoke: %s", r)
					}
					wantOAuthError(t, e.refresh(viaBasic("report"), tok.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
				}},
				{"a refresh token's visible half revokes nothing", func(t *testing.T, e *testEnv, tok apiResp) {
					// The part before the dot names the row; without the secret after it, it
					// must not find the token, whatever the hint.
					id, _, ok := strings.Cut(tok.str("refresh_token"), ".")
					if !ok {
						t.Fatalf("refresh token %q has no id part", tok.str("refresh_token"))
					}
					for _, hint := range []string{"", "access_token", "refresh_token"} {
						if r := e.revoke(viaBasic("report"), id, hint); r.status != 200 {
							t.Fatalf("revoke by id (hint %q): %s", hint, r)
						}
					}
					if r := e.refresh(viaBasic("report"), tok.str("refresh_token"), ""); r.status != 200 {
						t.Fatalf("refresh after revoking by the id alone: %s", r)
					}
				}},
				{"revocation needs the client's secret", func(t *testing.T, e *testEnv, tok apiResp) {
					wantOAuthError(t, e.revoke(clientAuth{"report", "wrong", "basic"}, tok.str("refresh_token"), ""), http.StatusUnauthorized, "invalid_client")
					if r := e.refresh(viaBasic("report"), tok.str("refresh_token"), ""); r.status != 200 {
						t.Fatalf("refresh after a failed revocation: %s", r)
					}
				}},
				{"another client cannot revoke", func(t *testing.T, e *testEnv, tok apiResp) {
					// RFC 6749 §5.2: a grant "issued to another client" is invalid_grant.
					wantOAuthError(t, e.revoke(viaBasic("signature"), tok.str("refresh_token"), "refresh_token"), http.StatusBadRequest, "invalid_grant")
					wantOAuthError(t, e.revoke(viaBasic("signature"), tok.str("access_token"), "access_token"), http.StatusBadRequest, "invalid_grant")
					if !e.active(viaBasic("report"), tok.str("access_token")) {
						t.Fatal("another client revoked the access token")
					}
					if r := e.refresh(viaBasic("report"), tok.str("refresh_token"), ""); r.status != 200 {
						t.Fatalf("another client revoked the refresh token: %s", r)
					}
				}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					e := env.with(t)
					tok := e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid phone offline_access"))
					tc.run(t, e, tok)
				})
			}
		})
	}
}

// TestUserinfo: the three ways to present the access token (OIDC Core §5.3.1, RFC
// 6750 §2) and the claims of the phone scope.
func TestUserinfo(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			tok := env.mustExchange(viaBasic("report"), env.codeGrant(nil, "report", reportCB, "openid phone"))
			for _, how := range []string{"get", "post", "body"} {
				t.Run(how, func(t *testing.T) {
					e := env.with(t)
					r := e.userinfo(how, tok.str("access_token"))
					if r.status != 200 || r.str("sub") != e.userID || r.str("phone_number") != e.phone || r.json["phone_number_verified"] != true {
						t.Fatalf("userinfo: %s", r)
					}
					for _, k := range []string{"name", "family_name", "email"} {
						if _, ok := r.json[k]; ok {
							t.Fatalf("userinfo has %s without its scope: %s", k, r)
						}
					}
					if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
						t.Fatalf("Content-Type %q", ct)
					}
				})
			}
			for _, tc := range []struct{ name, how, token string }{
				{"garbage token", "get", "garbage"},
				{"garbage token in the body", "body", "garbage"},
				{"no token", "body", ""},
				{"ID token instead of an access token", "get", tok.str("id_token")},
				{"tampered token", "get", tok.str("access_token") + "x"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if r := env.with(t).userinfo(tc.how, tc.token); r.status != http.StatusUnauthorized {
						t.Fatalf("userinfo: %s, want 401", r)
					}
				})
			}
		})
	}
}

var loginValueRe = regexp.MustCompile(`<input[^>]*name="login"[^>]*value="([^"]*)"`)

// TestAuthorizationParameters covers prompt, max_age, id_token_hint, login_hint,
// ui_locales, claims_locales, display, acr_values, claims and request objects.
func TestAuthorizationParameters(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			// signedIn is a browser with a fresh session and the ID token of its sign-in.
			signedIn := func(e *testEnv) (*http.Client, map[string]any, string) {
				b := e.browser()
				g := e.codeGrant(b, "report", reportCB, "openid offline_access")
				tok := e.mustExchange(viaBasic("report"), g)
				return b, e.idClaims(tok.str("id_token"), g), tok.str("id_token")
			}
			cases := []struct {
				name string
				run  func(t *testing.T, e *testEnv)
			}{
				{"prompt=none without a session", func(t *testing.T, e *testEnv) {
					q, _ := codeAuthQuery("report", reportCB, "openid")
					q.Set("prompt", "none")
					resp, _ := e.page(e.browser(), e.authURL(q))
					wantErrorRedirect(t, resp, reportCB, "login_required", q.Get("state"))
				}},
				{"prompt=none with a session", func(t *testing.T, e *testEnv) {
					b, _, _ := signedIn(e)
					q, v := codeAuthQuery("signature", signatureCB, "openid")
					q.Set("prompt", "none")
					g := e.authorize(b, q, v)
					e.mustExchange(viaBasic("signature"), g)
				}},
				{"prompt=login with a session shows the form; auth_time moves", func(t *testing.T, e *testEnv) {
					b, first, _ := signedIn(e)
					q, v := codeAuthQuery("report", reportCB, "openid")
					q.Set("prompt", "login")
					resp, body := e.page(b, e.authURL(q))
					if !isSignInForm(resp, body) {
						t.Fatalf("prompt=login with a session: %d, want the form", resp.StatusCode)
					}
					defer e.shiftClock(5 * time.Second)()
					resp, _ = e.submitLogin(b, resp, body, e.phone, e.password)
					cb := redirectTarget(t, resp)
					g := authzCode{clientID: "report", redirect: reportCB, code: cb.Query().Get("code"), verifier: v, nonce: q.Get("nonce")}
					c := e.idClaims(e.mustExchange(viaBasic("report"), g).str("id_token"), g)
					if claimInt(c["auth_time"]) <= claimInt(first["auth_time"]) {
						t.Fatalf("auth_time %d after prompt=login, before %d", claimInt(c["auth_time"]), claimInt(first["auth_time"]))
					}
				}},
				{"max_age=0 with a session shows the form", func(t *testing.T, e *testEnv) {
					b, _, _ := signedIn(e)
					q, _ := codeAuthQuery("report", reportCB, "openid")
					q.Set("max_age", "0")
					if resp, body := e.page(b, e.authURL(q)); !isSignInForm(resp, body) {
						t.Fatalf("max_age=0: %d %s, want the form", resp.StatusCode, resp.Header.Get("Location"))
					}
				}},
				{"max_age=1 with an older session shows the form", func(t *testing.T, e *testEnv) {
					// The session signs in an hour ago; its code is never redeemed.
					b := e.browser()
					restore := e.shiftClock(-time.Hour)
					q0, _ := codeAuthQuery("report", reportCB, "openid")
					e.signIn(b, e.authURL(q0), e.phone, e.password)
					restore()
					q, v := codeAuthQuery("report", reportCB, "openid")
					q.Set("max_age", "1")
					resp, body := e.page(b, e.authURL(q))
					if !isSignInForm(resp, body) {
						t.Fatalf("max_age=1 with an hour-old session: %d %s, want the form", resp.StatusCode, resp.Header.Get("Location"))
					}
					resp, _ = e.submitLogin(b, resp, body, e.phone, e.password)
					cb := redirectTarget(t, resp)
					g := authzCode{clientID: "report", redirect: reportCB, code: cb.Query().Get("code"), verifier: v, nonce: q.Get("nonce")}
					c := e.idClaims(e.mustExchange(viaBasic("report"), g).str("id_token"), g)
					if at := claimInt(c["auth_time"]); time.Now().Unix()-at > 60 {
						t.Fatalf("auth_time %d after re-authentication", at)
					}
				}},
				{"max_age=10000 with a fresh session signs in silently", func(t *testing.T, e *testEnv) {
					b, first, _ := signedIn(e)
					q, v := codeAuthQuery("signature", signatureCB, "openid")
					q.Set("max_age", "10000")
					g := e.authorize(b, q, v)
					c := e.idClaims(e.mustExchange(viaBasic("signature"), g).str("id_token"), g)
					if claimInt(c["auth_time"]) != claimInt(first["auth_time"]) {
						t.Fatalf("auth_time %v, want the session's %v", c["auth_time"], first["auth_time"])
					}
				}},
				{"id_token_hint of the session's subject with prompt=none", func(t *testing.T, e *testEnv) {
					b, _, idt := signedIn(e)
					q, v := codeAuthQuery("report", reportCB, "openid")
					q.Set("prompt", "none")
					q.Set("id_token_hint", idt)
					e.mustExchange(viaBasic("report"), e.authorize(b, q, v))
				}},
				{"id_token_hint of another subject with prompt=none", func(t *testing.T, e *testEnv) {
					other := e.addUser("+79105940800", "another secret password", nil)
					ob := e.browser()
					q0, v0 := codeAuthQuery("report", reportCB, "openid")
					cb := e.signIn(ob, e.authURL(q0), "+79105940800", "another secret password")
					otherToken := e.mustExchange(viaBasic("report"), authzCode{clientID: "report", redirect: reportCB, code: cb.Query().Get("code"), verifier: v0})
					if _, c := e.verifyJWT(otherToken.str("id_token")); c["sub"] != other.ID {
						t.Fatalf("other's ID token sub %v", c["sub"])
					}
					b, _, _ := signedIn(e)
					q, _ := codeAuthQuery("report", reportCB, "openid")
					q.Set("prompt", "none")
					q.Set("id_token_hint", otherToken.str("id_token"))
					resp, _ := e.page(b, e.authURL(q))
					wantErrorRedirect(t, resp, reportCB, "login_required", q.Get("state"))
				}},
				{"invalid id_token_hint", func(t *testing.T, e *testEnv) {
					b, _, _ := signedIn(e)
					q, _ := codeAuthQuery("report", reportCB, "openid")
					q.Set("prompt", "none")
					q.Set("id_token_hint", "eyJhbGciOiJub25lIn0.e30.")
					resp, _ := e.page(b, e.authURL(q))
					wantErrorRedirect(t, resp, reportCB, "login_required", q.Get("state"))
				}},
				{"login_hint prefills the phone", func(t *testing.T, e *testEnv) {
					q, _ := codeAuthQuery("report", reportCB, "openid")
					q.Set("login_hint", "+79105940899")
					resp, body := e.page(e.browser(), e.authURL(q))
					if !isSignInForm(resp, body) {
						t.Fatalf("status %d", resp.StatusCode)
					}
					m := loginValueRe.FindStringSubmatch(body)
					if m == nil || html.UnescapeString(m[1]) != "+79105940899" || !strings.Contains(body, `type="tel"`) {
						t.Fatalf("login field not prefilled with the phone: %v", m)
					}
				}},
				{"login_hint prefills the email", func(t *testing.T, e *testEnv) {
					q, _ := codeAuthQuery("report", reportCB, "openid")
					q.Set("login_hint", "ivan@example.ru")
					resp, body := e.page(e.browser(), e.authURL(q))
					m := loginValueRe.FindStringSubmatch(body)
					if !isSignInForm(resp, body) || m == nil || html.UnescapeString(m[1]) != "ivan@example.ru" || !strings.Contains(body, `type="email"`) {
						t.Fatalf("login field not prefilled with the email: %v", m)
					}
				}},
				{"ui_locales, claims_locales, display and acr_values are accepted", func(t *testing.T, e *testEnv) {
					q, v := codeAuthQuery("report", reportCB, "openid")
					q.Set("ui_locales", "ru-RU en")
					q.Set("claims_locales", "ru en")
					q.Set("display", "popup")
					q.Set("acr_values", "0 1")
					g := e.authorize(e.browser(), q, v)
					c := e.idClaims(e.mustExchange(viaBasic("report"), g).str("id_token"), g)
					if c["acr"] == nil || c["acr"] == "" {
						t.Fatalf("no acr in the ID token: %v", c)
					}
				}},
				{"claims parameter asks for the email", func(t *testing.T, e *testEnv) {
					ctx := context.Background()
					email := "ivan@example.ru"
					if _, err := e.store.UpdateUser(ctx, e.userID, func(u *storage.User) error {
						u.Email, u.EmailVerified = &email, true
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					defer func() {
						_, _ = e.store.UpdateUser(ctx, e.userID, func(u *storage.User) error { u.Email = nil; return nil })
					}()
					q, v := codeAuthQuery("report", reportCB, "openid")
					q.Set("claims", `{"id_token":{"email":{"essential":true}}}`)
					g := e.authorize(e.browser(), q, v)
					tok := e.mustExchange(viaBasic("report"), g)
					c := e.idClaims(tok.str("id_token"), g)
					if c["email"] != email {
						t.Fatalf("ID token email %v, want %s (claims parameter)", c["email"], email)
					}
					if _, ok := c["phone_number"]; ok {
						t.Fatalf("ID token has phone_number nobody asked for: %v", c)
					}
					// Only the ID token was asked for.
					if info := e.userinfo("get", tok.str("access_token")); info.status != 200 || info.str("email") != "" {
						t.Fatalf("userinfo: %s", info)
					}
				}},
				{"claims parameter asks userinfo for the phone", func(t *testing.T, e *testEnv) {
					q, v := codeAuthQuery("report", reportCB, "openid")
					q.Set("claims", `{"userinfo":{"phone_number":null}}`)
					tok := e.mustExchange(viaBasic("report"), e.authorize(e.browser(), q, v))
					if info := e.userinfo("get", tok.str("access_token")); info.status != 200 || info.str("phone_number") != e.phone {
						t.Fatalf("userinfo: %s", info)
					}
				}},
				{"claims parameter outlives the authorization request", func(t *testing.T, e *testEnv) {
					q, v := codeAuthQuery("report", reportCB, "openid offline_access")
					q.Set("claims", `{"userinfo":{"phone_number":null}}`)
					tok := e.mustExchange(viaBasic("report"), e.authorize(e.browser(), q, v))
					// An hour on, the authorization request row is gone; the refreshed
					// access token must still release the requested claim.
					e.store.SetClock(func() time.Time { return time.Now().Add(time.Hour) })
					defer e.store.SetClock(time.Now)
					if _, err := e.store.DeleteExpired(context.Background(), storage.DefaultRetention); err != nil {
						t.Fatal(err)
					}
					fresh := e.refresh(viaBasic("report"), tok.str("refresh_token"), "")
					if fresh.status != 200 {
						t.Fatalf("refresh: %s", fresh)
					}
					if info := e.userinfo("get", fresh.str("access_token")); info.status != 200 || info.str("phone_number") != e.phone {
						t.Fatalf("userinfo after refresh: %s", info)
					}
				}},
				{"request object is not supported", func(t *testing.T, e *testEnv) {
					q, _ := codeAuthQuery("report", reportCB, "openid")
					q.Set("request", unsignedRequestJWT(map[string]any{
						"iss": "report", "aud": e.issuer, "client_id": "report", "response_type": "code",
						"redirect_uri": reportCB, "scope": "openid", "state": q.Get("state"),
					}))
					resp, _ := e.page(e.browser(), e.authURL(q))
					wantErrorRedirect(t, resp, reportCB, "request_not_supported", q.Get("state"))
				}},
				{"request_uri is not supported", func(t *testing.T, e *testEnv) {
					q, _ := codeAuthQuery("report", reportCB, "openid")
					q.Set("request_uri", "https://rp.example/request.jwt")
					resp, _ := e.page(e.browser(), e.authURL(q))
					wantErrorRedirect(t, resp, reportCB, "request_uri_not_supported", q.Get("state"))
				}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, env.with(t)) })
			}
		})
	}
}

// unsignedRequestObject is a request object with alg "none" (OIDC Core §6.1).
func unsignedRequestJWT(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))
	p, _ := json.Marshal(claims)
	return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// wantRedirectError checks that resp sends the browser to redirect (and only there)
// with the OAuth error code and the state.
func wantErrorRedirect(t *testing.T, resp *http.Response, redirect, code, state string) {
	t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want a redirect to %s with error=%s", resp.StatusCode, redirect, code)
	}
	u := redirectTarget(t, resp)
	base := *u
	base.RawQuery, base.Fragment, base.RawFragment = "", "", ""
	if base.String() != redirect {
		t.Fatalf("redirected to %s, want %s", u, redirect)
	}
	p := responseParams(u)
	if p.Get("error") != code || p.Get("state") != state || p.Get("code") != "" {
		t.Fatalf("redirect %s: want error=%s state=%s", u, code, state)
	}
}

// TestHealthAndMetrics covers the probes and the Prometheus series.
func TestHealthAndMetrics(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			for _, p := range []string{"/healthz", "/readyz"} {
				resp, err := http.Get(e.issuer + p)
				if err != nil {
					t.Fatal(err)
				}
				if body := readAll(t, resp); resp.StatusCode != 200 {
					t.Fatalf("GET %s: %d %s", p, resp.StatusCode, body)
				}
			}
			e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid"))
			resp, err := http.Get(e.issuer + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("GET /metrics: %d", resp.StatusCode)
			}
			for _, want := range []string{
				`idp_tokens_issued_total{grant="authorization_code"} 1`,
				`idp_signins_total{method="pwd",result="success"} 1`,
				`idp_http_request_duration_seconds_bucket{endpoint="/oauth/token"`,
				`idp_http_requests_total{endpoint="/login",method="POST",status="303"}`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			// Codes and tokens never reach the metric labels.
			if strings.Contains(body, "code=") || strings.Contains(body, "authRequestID") {
				t.Error("/metrics carries request parameters")
			}
		})
	}
}
