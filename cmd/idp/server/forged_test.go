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

// Tests of requests crafted against the provider's reading of tokens: a second copy of
// a parameter, in another case, carrying forged claims; a refresh token's visible part
// with a guessed secret; a product removed and added again.

// Userinfo answers from the claims of the token op verified: a forged copy under the
// same parameter name in another case does not widen the scope.
func TestUserinfoIgnoresASecondToken(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend).with(t)
			tok := e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid offline_access"))
			genuine := tok.str("access_token")
			if r := e.userinfo("get", genuine); r.status != 200 || r.json["phone_number"] != nil {
				t.Fatalf("baseline: %s", r)
			}
			forged := forgeJWT(t, genuine, func(c map[string]any) { c["scope"] = "openid phone profile email" })
			body := "access_token=" + url.QueryEscape(forged) + "&ACCESS_TOKEN=" + url.QueryEscape(genuine)
			for i := 0; i < 40; i++ {
				st, m := postRaw(t, e.issuer+"/userinfo", body, [2]string{})
				if st == 200 && m["phone_number"] != nil {
					t.Fatalf("attempt %d: userinfo answered from forged claims: %v", i, m)
				}
			}
		})
	}
}

// Introspection answers from the claims of the token op verified: a second copy of the
// parameter in another case, with forged claims, gets nothing.
func TestIntrospectionIgnoresASecondToken(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend).with(t)
			tok := e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid offline_access"))
			genuine := tok.str("access_token")
			forged := forgeJWT(t, genuine, func(c map[string]any) { c["aud"] = []string{"signature"}; c["scope"] = "openid admin" })
			body := "token=" + url.QueryEscape(forged) + "&Token=" + url.QueryEscape(genuine)
			for i := 0; i < 40; i++ {
				_, m := postRaw(t, e.issuer+"/oauth/introspect", body, [2]string{"signature", testSecret})
				if m["active"] == true {
					t.Fatalf("attempt %d: introspection answered from forged claims: %v", i, m)
				}
			}
		})
	}
}

// A scope parameter in any case is a scope asked for: op's form decoder ignores case,
// and a refused widening must spend nothing.
func TestRefreshScopeInAnyCase(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend).with(t)
			tok := e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid offline_access"))
			r := e.call("/oauth/token", viaBasic("report"), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}, "SCOPE": {"openid email"}})
			t.Logf("refused request: %s", r)
			if r2 := e.refresh(viaBasic("report"), tok.str("refresh_token"), ""); r2.status != 200 {
				t.Fatalf("a refused request spent the token: %s", r2)
			}
		})
	}
}

// The visible part of a refresh token (its family's id), with any generation below the
// live one and any secret, presented by another product (here a public one, which needs
// no secret), takes nothing away.
func TestRefreshPrefixRevokesNothing(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend).with(t)
			tok := e.mustExchange(viaBasic("report"), e.codeGrant(nil, "report", reportCB, "openid offline_access"))
			next := e.refresh(viaBasic("report"), tok.str("refresh_token"), "")
			if next.status != 200 {
				t.Fatalf("refresh: %s", next)
			}
			id, _, _ := strings.Cut(next.str("refresh_token"), ".")
			fake := id + ".1." + strings.Repeat("A", 43)
			r := e.call("/oauth/token", viaNone("poa"), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fake}})
			t.Logf("attacker: %s", r)
			if r2 := e.refresh(viaBasic("report"), next.str("refresh_token"), ""); r2.status != 200 {
				t.Fatalf("the owner's live token was revoked by a forged prefix: %s", r2)
			}
		})
	}
}

// A product removed and added again does not take its earlier tokens back.
func TestMachineTokenNotRevivedByReAdding(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend).with(t)
			r := e.call("/oauth/token", viaBasic("signature"), url.Values{"grant_type": {"client_credentials"}})
			token := r.str("access_token")
			ctx := t.Context()
			c, err := e.store.ClientByID(ctx, "signature")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.store.DeleteClient(ctx, "signature"); err != nil {
				t.Fatal(err)
			}
			c2 := *c
			// Added again a second later: a JWT's iat is in whole seconds, so a token
			// issued in the very second its product is added again cannot be told apart.
			c2.CreatedAt, c2.UpdatedAt = time.Now().Add(time.Second), time.Time{}
			if err := e.store.CreateClient(ctx, &c2); err != nil {
				t.Fatal(err)
			}
			if e.active(viaBasic("signature"), token) {
				t.Fatal("a token issued before the product was removed is active again after it is re-added")
			}
		})
	}
}
