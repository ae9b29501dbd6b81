package server

// The OpenID Foundation's Basic OP certification plan (oidcc-basic-certification-test-
// plan, response_type=code, client_secret_basic and client_secret_post) and its
// Config OP discovery checks, module by module. Where a test in another file already
// covers a module it is named here; the tests below cover the rest.
//
//	module                                                          covered by
//	oidcc-server                                                    TestCodeFlow (flow_test.go); TestConformanceBasicOP/oidcc-server
//	oidcc-server-client-secret-post (client_auth_type variant)      TestConformanceBasicOP/oidcc-server-client-secret-post; TestTokenEndpoint/client_secret_post
//	oidcc-response-type-missing                                     TestAuthorizeNegative/response_type_missing
//	oidcc-userinfo-get                                              TestUserinfo/get
//	oidcc-userinfo-post-header                                      TestUserinfo/post
//	oidcc-userinfo-post-body                                        TestUserinfo/body
//	oidcc-ensure-request-without-nonce-succeeds-for-code-flow       TestConformanceBasicOP/oidcc-ensure-request-without-nonce-succeeds-for-code-flow
//	oidcc-scope-profile, -email, -phone, -address, -all             TestConformanceBasicOP/oidcc-scope-*
//	oidcc-ensure-other-scope-order-succeeds                         TestConformanceBasicOP/oidcc-ensure-other-scope-order-succeeds
//	oidcc-display-page, oidcc-display-popup                         TestConformanceBasicOP/oidcc-display-*
//	oidcc-prompt-login                                              TestAuthorizationParameters/prompt=login_with_a_session_…
//	oidcc-prompt-none-not-logged-in                                 TestAuthorizationParameters/prompt=none_without_a_session
//	oidcc-prompt-none-logged-in                                     TestAuthorizationParameters/prompt=none_with_a_session
//	oidcc-max-age-1                                                 TestAuthorizationParameters/max_age=1_with_an_older_session_…
//	oidcc-max-age-10000                                             TestAuthorizationParameters/max_age=10000_with_a_fresh_session_…
//	oidcc-ensure-request-with-unknown-parameter-succeeds            TestConformanceBasicOP/oidcc-ensure-request-with-unknown-parameter-succeeds
//	oidcc-id-token-hint                                             TestAuthorizationParameters/id_token_hint_of_the_session's_subject_…, …_of_another_subject_…
//	oidcc-login-hint                                                TestAuthorizationParameters/login_hint_prefills_*
//	oidcc-ui-locales, oidcc-claims-locales                          TestAuthorizationParameters/ui_locales,_claims_locales,_display_and_acr_values_…
//	oidcc-ensure-request-with-acr-values-succeeds (oidcc-acr-values) TestAuthorizationParameters/ui_locales,_claims_locales,_display_and_acr_values_…
//	oidcc-codereuse                                                 TestCodeReuse/after_0s
//	oidcc-codereuse-30seconds                                       TestCodeReuse/after_30s
//	oidcc-ensure-registered-redirect-uri                            TestAuthorizeNegative/redirect_uri_not_registered (and its neighbours)
//	oidcc-ensure-redirect-uri-in-authorization-request              TestAuthorizeNegative/redirect_uri_missing
//	oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported
//	                                                                TestAuthorizationParameters/request_object_is_not_supported; TestConformanceBasicOP/oidcc-unsigned-request-object-…
//	oidcc-claims-essential                                          TestAuthorizationParameters/claims_parameter_asks_for_the_email
//	oidcc-ensure-request-object-with-redirect-uri                   TestConformanceBasicOP/oidcc-ensure-request-object-with-redirect-uri
//	oidcc-refresh-token                                             TestCodeFlow (flow_test.go), TestRefresh; TestConformanceBasicOP/oidcc-refresh-token
//	oidcc-ensure-request-with-valid-pkce-succeeds                   TestConformanceBasicOP/oidcc-ensure-request-with-valid-pkce-succeeds
//	oidcc-ensure-post-request-succeeds                              TestConformanceBasicOP/oidcc-ensure-post-request-succeeds
//	oidcc-discovery-endpoint-verification, oidcc-discovery-issuer-not-matching-config
//	                                                                TestConformanceDiscovery
//	oidcc-id-token-kid-absent-*, oidcc-id-token-aud-single-value, oidcc-id-token-iat, oidcc-id-token-sub, oidcc-id-token-signature
//	                                                                TestConformanceBasicOP/oidcc-server (checks every ID token claim), TestTokenEndpoint (kid in /keys)

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

const conformanceEmail = "ivan.ivanov@example.ru"

// TestConformanceBasicOP covers the Basic OP modules no other test covers.
func TestConformanceBasicOP(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			email := conformanceEmail
			if _, err := env.store.UpdateUser(context.Background(), env.userID, func(u *storage.User) error {
				u.Email, u.EmailVerified, u.MiddleName = &email, true, "Иванович"
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// claimsOf redeems a code for report by client_secret_basic and returns the
			// verified ID token's claims and the userinfo answer.
			claimsOf := func(e *testEnv, g authzCode) (map[string]any, apiResp) {
				tok := e.mustExchange(viaBasic("report"), g)
				idt := e.idClaims(tok.str("id_token"), g)
				info := e.userinfo("get", tok.str("access_token"))
				if info.status != http.StatusOK || info.str("sub") != e.userID {
					e.t.Fatalf("userinfo: %s", info)
				}
				return idt, info
			}
			profile := []string{"name", "family_name", "given_name", "middle_name", "preferred_username", "updated_at"}
			emailClaims := []string{"email", "email_verified"}
			phoneClaims := []string{"phone_number", "phone_number_verified"}
			scopeCases := []struct {
				module, scope string
				want, absent  []string
			}{
				{"oidcc-scope-profile", "openid profile", profile, append(slices.Clone(emailClaims), phoneClaims...)},
				{"oidcc-scope-email", "openid email", emailClaims, append(slices.Clone(profile), phoneClaims...)},
				{"oidcc-scope-phone", "openid phone", phoneClaims, append(slices.Clone(profile), emailClaims...)},
				// address is not offered (scopes_supported lacks it): the suite then
				// checks only that the request succeeds without an address claim.
				{"oidcc-scope-address", "openid address", nil, append(append([]string{"address"}, profile...), phoneClaims...)},
				{"oidcc-scope-all", "openid profile email address phone", append(append(slices.Clone(profile), emailClaims...), phoneClaims...), []string{"address"}},
				{"oidcc-ensure-other-scope-order-succeeds", "email openid", emailClaims, phoneClaims},
			}
			for _, tc := range scopeCases {
				t.Run(tc.module, func(t *testing.T) {
					e := env.with(t)
					idt, info := claimsOf(e, e.codeGrant(nil, "report", reportCB, tc.scope))
					for _, k := range tc.want {
						if _, ok := info.json[k]; !ok {
							t.Errorf("userinfo lacks %s: %s", k, info)
						}
						if _, ok := idt[k]; !ok {
							t.Errorf("ID token lacks %s: %v", k, idt)
						}
					}
					for _, k := range tc.absent {
						if _, ok := info.json[k]; ok {
							t.Errorf("userinfo has %s without its scope", k)
						}
					}
					if slices.Contains(tc.want, "email") && (info.str("email") != conformanceEmail || info.json["email_verified"] != true) {
						t.Errorf("email claims %v %v", info.json["email"], info.json["email_verified"])
					}
					if slices.Contains(tc.want, "name") && info.str("name") != "Иванов Иван Иванович" {
						t.Errorf("name %q", info.str("name"))
					}
				})
			}
			cases := []struct {
				module string
				run    func(t *testing.T, e *testEnv)
			}{
				{"oidcc-server", func(t *testing.T, e *testEnv) {
					g := e.codeGrant(nil, "report", reportCB, "openid")
					tok := e.mustExchange(viaBasic("report"), g)
					if !strings.EqualFold(tok.str("token_type"), "Bearer") || claimInt(tok.json["expires_in"]) <= 0 {
						t.Fatalf("token response %s", tok)
					}
					h, c := e.verifyJWT(tok.str("id_token"))
					if h.Algorithm != "RS256" {
						t.Fatalf("ID token alg %s", h.Algorithm)
					}
					now := time.Now().Unix()
					// oidcc-id-token-*: iss, sub, aud (a single value or a list with
					// this client), iat and exp around now, nonce echoed, auth_time.
					if c["iss"] != e.issuer || c["sub"] != e.userID || !audContains(c["aud"], "report") || c["nonce"] != g.nonce {
						t.Fatalf("ID token claims %v", c)
					}
					if iat := claimInt(c["iat"]); iat < now-60 || iat > now+60 {
						t.Fatalf("iat %d, now %d", iat, now)
					}
					if exp := claimInt(c["exp"]); exp <= now || exp > now+24*3600 {
						t.Fatalf("exp %d, now %d", exp, now)
					}
					if claimInt(c["auth_time"]) == 0 {
						t.Fatal("no auth_time")
					}
					if aud, ok := c["aud"].([]any); ok && len(aud) > 1 && c["azp"] != "report" {
						t.Fatalf("several audiences without azp: %v", c)
					}
					if c["at_hash"] == nil {
						t.Log("no at_hash (optional for the code flow)")
					}
				}},
				{"oidcc-server-client-secret-post", func(t *testing.T, e *testEnv) {
					g := e.codeGrant(nil, "report", reportCB, "openid")
					tok := e.exchange(viaPost("report"), g)
					if tok.status != http.StatusOK {
						t.Fatalf("client_secret_post: %s", tok)
					}
					e.idClaims(tok.str("id_token"), g)
				}},
				{"oidcc-ensure-request-without-nonce-succeeds-for-code-flow", func(t *testing.T, e *testEnv) {
					q, v := codeAuthQuery("report", reportCB, "openid")
					q.Del("nonce")
					g := e.authorize(e.browser(), q, v)
					_, c := e.verifyJWT(e.mustExchange(viaBasic("report"), g).str("id_token"))
					if _, ok := c["nonce"]; ok {
						t.Fatalf("nonce in the ID token of a request without one: %v", c)
					}
				}},
				{"oidcc-display-page", func(t *testing.T, e *testEnv) {
					q, v := codeAuthQuery("report", reportCB, "openid")
					q.Set("display", "page")
					e.mustExchange(viaBasic("report"), e.authorize(e.browser(), q, v))
				}},
				{"oidcc-display-popup", func(t *testing.T, e *testEnv) {
					q, v := codeAuthQuery("report", reportCB, "openid")
					q.Set("display", "popup")
					e.mustExchange(viaBasic("report"), e.authorize(e.browser(), q, v))
				}},
				{"oidcc-ensure-request-with-unknown-parameter-succeeds", func(t *testing.T, e *testEnv) {
					q, v := codeAuthQuery("report", reportCB, "openid")
					q.Set("extra_parameter", "ignored")
					e.mustExchange(viaBasic("report"), e.authorize(e.browser(), q, v))
				}},
				{"oidcc-ensure-request-with-valid-pkce-succeeds", func(t *testing.T, e *testEnv) {
					// S256 with a confidential client (the suite's variant) and with the public one.
					e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid"))
					e.mustExchange(viaNone("poa"), e.codeGrant(nil, "poa", poaCB, "openid"))
				}},
				{"oidcc-ensure-post-request-succeeds", func(t *testing.T, e *testEnv) {
					// The authorization request by form POST (OIDC Core §3.1.2.1).
					q, v := codeAuthQuery("report", reportCB, "openid phone")
					b := e.browser()
					resp, err := b.PostForm(e.issuer+"/authorize", q)
					if err != nil {
						t.Fatal(err)
					}
					body := readAll(t, resp)
					if !isSignInForm(resp, body) {
						t.Fatalf("POST /authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
					}
					r, _ := e.submitLogin(b, resp, body, e.phone, e.password)
					cb := redirectTarget(t, r)
					if cb.Query().Get("state") != q.Get("state") {
						t.Fatalf("callback %s", cb)
					}
					g := authzCode{clientID: "report", redirect: reportCB, code: cb.Query().Get("code"), verifier: v, nonce: q.Get("nonce")}
					if c := e.idClaims(e.mustExchange(viaBasic("report"), g).str("id_token"), g); c["phone_number"] != e.phone {
						t.Fatalf("ID token %v", c)
					}
				}},
				{"oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", func(t *testing.T, e *testEnv) {
					q, _ := codeAuthQuery("report", reportCB, "openid")
					q.Set("request", unsignedRequestJWT(map[string]any{
						"iss": "report", "aud": e.issuer, "client_id": "report", "response_type": "code",
						"redirect_uri": reportCB, "scope": "openid", "state": q.Get("state"), "nonce": q.Get("nonce"),
					}))
					resp, _ := e.page(e.browser(), e.authURL(q))
					wantErrorRedirect(t, resp, reportCB, "request_not_supported", q.Get("state"))
				}},
				{"oidcc-ensure-request-object-with-redirect-uri", func(t *testing.T, e *testEnv) {
					// The request object carries the redirect_uri too; request objects
					// are refused, and the refusal goes to the registered URI.
					q, _ := codeAuthQuery("report", reportCB, "openid")
					q.Set("request", unsignedRequestJWT(map[string]any{
						"iss": "report", "aud": e.issuer, "client_id": "report", "response_type": "code",
						"redirect_uri": "https://evil.example/cb", "scope": "openid", "state": q.Get("state"),
					}))
					resp, _ := e.page(e.browser(), e.authURL(q))
					wantErrorRedirect(t, resp, reportCB, "request_not_supported", q.Get("state"))
				}},
				{"oidcc-refresh-token", func(t *testing.T, e *testEnv) {
					g := e.codeGrant(nil, "report", reportCB, "openid phone offline_access")
					first := e.mustExchange(viaBasic("report"), g)
					idt := e.idClaims(first.str("id_token"), g)
					r := e.refresh(viaBasic("report"), first.str("refresh_token"), "")
					if r.status != http.StatusOK || r.str("access_token") == "" {
						t.Fatalf("refresh: %s", r)
					}
					// OIDC Core §12.2: a refreshed ID token keeps iss, sub, aud and auth_time.
					_, c := e.verifyJWT(r.str("id_token"))
					for _, k := range []string{"iss", "sub", "auth_time"} {
						if c[k] != idt[k] {
							t.Fatalf("refreshed ID token %s %v, first %v", k, c[k], idt[k])
						}
					}
					if !audContains(c["aud"], "report") {
						t.Fatalf("refreshed ID token aud %v", c["aud"])
					}
					if info := e.userinfo("post", r.str("access_token")); info.status != http.StatusOK || info.str("sub") != e.userID {
						t.Fatalf("userinfo with the refreshed token: %s", info)
					}
					wantOAuthError(t, e.refresh(viaBasic("report"), first.str("refresh_token"), ""), http.StatusBadRequest, "invalid_grant")
				}},
			}
			for _, tc := range cases {
				t.Run(tc.module, func(t *testing.T) { tc.run(t, env.with(t)) })
			}
		})
	}
}

// TestConformanceDiscovery: oidcc-discovery-endpoint-verification and
// oidcc-discovery-issuer-not-matching-config (OIDC Discovery §3, §4.3), and the key
// set every token's kid points into (RFC 7517 §4).
func TestConformanceDiscovery(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) { checkDiscovery(t, newTestEnv(t, backend)) })
	}
}

func checkDiscovery(t *testing.T, e *testEnv) {
	resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("discovery: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	str := func(k string) string { s, _ := d[k].(string); return s }
	list := func(k string) []string {
		var out []string
		vs, _ := d[k].([]any)
		for _, v := range vs {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if str("issuer") != e.issuer {
		t.Fatalf("issuer %q, want %q", str("issuer"), e.issuer)
	}
	endpoints := map[string]string{
		"authorization_endpoint": "/authorize", "token_endpoint": "/oauth/token", "userinfo_endpoint": "/userinfo",
		"jwks_uri": "/keys", "end_session_endpoint": "/end_session", "revocation_endpoint": "/revoke",
		"introspection_endpoint": "/oauth/introspect",
	}
	for k, path := range endpoints {
		if str(k) != e.issuer+path {
			t.Errorf("%s %q, want %q", k, str(k), e.issuer+path)
		}
	}
	contains := map[string][]string{
		"response_types_supported":              {"code"},
		"subject_types_supported":               {"public"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"scopes_supported":                      {"openid", "profile", "email", "phone", "offline_access"},
		"grant_types_supported":                 {"authorization_code", "refresh_token", "client_credentials"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      {"S256"},
		"claims_supported":                      {"sub", "iss", "auth_time", "acr", "amr", "sid", "name", "email", "phone_number"},
	}
	for k, want := range contains {
		have := list(k)
		for _, w := range want {
			if !slices.Contains(have, w) {
				t.Errorf("%s %v lacks %s", k, have, w)
			}
		}
	}
	// Only what is supported is advertised: no implicit or hybrid flow, no device flow.
	if got := list("response_types_supported"); len(got) != 1 {
		t.Errorf("response_types_supported %v, want only code", got)
	}
	for _, g := range list("grant_types_supported") {
		if g == "implicit" || strings.Contains(g, "device_code") || strings.Contains(g, "jwt-bearer") {
			t.Errorf("grant_types_supported advertises %s", g)
		}
	}
	if str("device_authorization_endpoint") != "" {
		t.Error("device_authorization_endpoint advertised")
	}
	if v, _ := d["claims_parameter_supported"].(bool); !v {
		t.Error("claims_parameter_supported is not true")
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("discovery is not readable cross-origin")
	}
	if slices.Contains(list("code_challenge_methods_supported"), "plain") {
		t.Error("plain PKCE advertised but refused")
	}
	if slices.Contains(list("id_token_signing_alg_values_supported"), "none") {
		t.Error("unsigned ID tokens advertised")
	}
	// Booleans; an absent member means its default (OIDC Discovery §3): false for
	// request_parameter_supported, true for request_uri_parameter_supported.
	for k, want := range map[string]bool{
		"request_parameter_supported": false, "request_uri_parameter_supported": false,
		"backchannel_logout_supported": true, "backchannel_logout_session_supported": true,
	} {
		v, ok := d[k].(bool)
		if !ok {
			v = k != "request_parameter_supported" // the default
		}
		if v != want {
			t.Errorf("%s = %v, want %v", k, d[k], want)
		}
	}
	// Introspection answers client_secret_basic only (TestIntrospectionRevocation).
	if m := list("introspection_endpoint_auth_methods_supported"); !slices.Contains(m, "client_secret_basic") || slices.Contains(m, "client_secret_post") {
		t.Errorf("introspection_endpoint_auth_methods_supported %v", m)
	}
	if len(list("request_object_signing_alg_values_supported")) != 0 {
		t.Error("request object algorithms advertised while request objects are refused")
	}

	// The key set: every key has kid, use=sig, alg and the public half only.
	resp, err = http.Get(str("jwks_uri"))
	if err != nil {
		t.Fatal(err)
	}
	raw := readAll(t, resp)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(raw), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks %s: %v", raw, err)
	}
	kids := map[string]bool{}
	for _, k := range set.Keys {
		kid, _ := k["kid"].(string)
		if kid == "" || k["use"] != "sig" || k["alg"] == nil || k["alg"] == "" || k["kty"] == nil {
			t.Errorf("key %v", k)
		}
		if kids[kid] {
			t.Errorf("kid %s twice", kid)
		}
		kids[kid] = true
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("key %s publishes private member %s", kid, private)
			}
		}
	}
	// An ID token's kid is one of them (checked with the signature by verifyJWT).
	g := e.codeGrant(nil, "report", reportCB, "openid")
	h, _ := e.verifyJWT(e.mustExchange(viaBasic("report"), g).str("id_token"))
	if !kids[h.KeyID] {
		t.Fatalf("ID token kid %s not in %v", h.KeyID, kids)
	}
}
