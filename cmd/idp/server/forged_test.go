package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// forgeJWT is tok with its claims edited and its signature kept (so no longer valid).
func forgeJWT(t *testing.T, tok string, edit func(map[string]any)) string {
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	nb, _ := json.Marshal(c)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(nb) + "." + parts[2]
}

// postRaw posts a form body as written, with client_secret_basic when basic is set.
func postRaw(t *testing.T, u, body string, basic [2]string) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic[0] != "" {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestCraftedRequests: requests crafted against the provider's reading of tokens — a
// second copy of a parameter in another case carrying forged claims (op's form decoder
// matches names ignoring case and keeps one value at random, hence the attempts), a
// refresh token's visible part with a guessed secret, a product removed and added again.
func TestCraftedRequests(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			env := newTestEnv(t, backend)
			grant := func(e *testEnv) apiResp {
				return e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid offline_access"))
			}
			cases := []struct {
				name string
				run  func(t *testing.T, e *testEnv)
			}{
				{"userinfo answers from the token op verified", func(t *testing.T, e *testEnv) {
					genuine := grant(e).str("access_token")
					if r := e.userinfo("get", genuine); r.status != 200 || r.json["phone_number"] != nil {
						t.Fatalf("userinfo of the genuine token: %s", r)
					}
					forged := forgeJWT(t, genuine, func(c map[string]any) { c["scope"] = "openid phone profile email" })
					body := "access_token=" + url.QueryEscape(forged) + "&ACCESS_TOKEN=" + url.QueryEscape(genuine)
					for i := range 40 {
						if st, m := postRaw(t, e.issuer+"/userinfo", body, [2]string{}); st == 200 && m["phone_number"] != nil {
							t.Fatalf("attempt %d: userinfo answered from forged claims: %v", i, m)
						}
					}
				}},
				{"introspection answers from the token op verified", func(t *testing.T, e *testEnv) {
					genuine := grant(e).str("access_token")
					forged := forgeJWT(t, genuine, func(c map[string]any) { c["aud"] = []string{"signature"}; c["scope"] = "openid admin" })
					body := "token=" + url.QueryEscape(forged) + "&Token=" + url.QueryEscape(genuine)
					for i := range 40 {
						if _, m := postRaw(t, e.issuer+"/oauth/introspect", body, [2]string{"signature", testSecret}); m["active"] == true {
							t.Fatalf("attempt %d: introspection answered from forged claims: %v", i, m)
						}
					}
				}},
				{"a scope in any case is asked for, and its refusal spends nothing", func(t *testing.T, e *testEnv) {
					tok := grant(e)
					r := e.call("/oauth/token", viaBasic("report"), url.Values{"grant_type": {"refresh_token"},
						"refresh_token": {tok.str("refresh_token")}, "SCOPE": {"openid email"}})
					wantOAuthError(t, r, http.StatusBadRequest, "invalid_scope")
					if r := e.refresh(viaBasic("report"), tok.str("refresh_token"), ""); r.status != 200 {
						t.Fatalf("a refused request spent the token: %s", r)
					}
				}},
				{"a refresh token's visible part from another product revokes nothing", func(t *testing.T, e *testEnv) {
					next := e.refresh(viaBasic("report"), grant(e).str("refresh_token"), "")
					if next.status != 200 {
						t.Fatalf("refresh: %s", next)
					}
					// The family's id and an earlier generation with a guessed secret, from a
					// public product, which needs no secret.
					id, _, _ := strings.Cut(next.str("refresh_token"), ".")
					r := e.call("/oauth/token", viaNone("poa"), url.Values{"grant_type": {"refresh_token"},
						"refresh_token": {id + ".1." + strings.Repeat("A", 43)}})
					wantOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
					if r := e.refresh(viaBasic("report"), next.str("refresh_token"), ""); r.status != 200 {
						t.Fatalf("the owner's live token was revoked by a forged prefix: %s", r)
					}
				}},
				// Last: it removes the product "signature".
				{"a product added again does not take its earlier tokens back", func(t *testing.T, e *testEnv) {
					token := e.call("/oauth/token", viaBasic("signature"), url.Values{"grant_type": {"client_credentials"}}).str("access_token")
					ctx := t.Context()
					c, err := e.store.ClientByID(ctx, "signature")
					if err != nil {
						t.Fatal(err)
					}
					if err := e.store.DeleteClient(ctx, "signature"); err != nil {
						t.Fatal(err)
					}
					// Added again a second later: a JWT's iat is in whole seconds, so a token
					// issued in the very second its product is added again cannot be told apart.
					again := *c
					again.CreatedAt, again.UpdatedAt = time.Now().Add(time.Second), time.Time{}
					if err := e.store.CreateClient(ctx, &again); err != nil {
						t.Fatal(err)
					}
					if e.active(viaBasic("signature"), token) {
						t.Fatal("a token issued before the product was removed is active again after it is re-added")
					}
				}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, env.with(t)) })
			}
		})
	}
}
