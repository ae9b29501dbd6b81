package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTokenResponseClaims: the token endpoint's answers (built by the provider rather
// than op) carry op's claims, each member once. A person's grant (authorization_code,
// refresh_token): the ID token's at_hash of the access token beside it, c_hash of the
// code (code exchange only), nonce (code exchange only), acr, sid of the session and
// the claims of its scopes; the access token's scope, sid, client_id and jti; a kid
// in every header; expires_in and scope in the answer. A product's own
// (client_credentials): an access token about the product, with the scope granted,
// no sid, no ID token and no refresh token.
func TestTokenResponseClaims(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			const scope = "openid profile phone offline_access"
			g := e.codeGrant(nil, "report", reportCB, scope)
			first := e.mustExchange(viaBasic("report"), g)
			e.checkTokenResponse(t, first, scope, g.code, g.nonce)
			next := e.refresh(viaPost("report"), first.str("refresh_token"), "")
			if next.status != http.StatusOK {
				t.Fatalf("refresh: %s", next)
			}
			e.checkTokenResponse(t, next, scope, "", "")
			firstID, nextID := jwtMembers(t, first.str("id_token")), jwtMembers(t, next.str("id_token"))
			for _, name := range []string{"sid", "acr", "auth_time"} {
				if nextID[name] != firstID[name] {
					t.Errorf("the refreshed ID token's %s %v is not the sign-in's %v", name, nextID[name], firstID[name])
				}
			}

			own := e.call("/oauth/token", viaBasic("signature"), url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}})
			if own.status != http.StatusOK || own.str("token_type") != "Bearer" || own.json["expires_in"] == nil ||
				own.str("id_token") != "" || own.str("refresh_token") != "" || own.json["scope"] != nil {
				t.Fatalf("client_credentials: %s; want a Bearer access token alone, personal scopes dropped", own)
			}
			at := jwtMembers(t, own.str("access_token"))
			for name, want := range map[string]any{"iss": e.issuer, "sub": "signature", "client_id": "signature"} {
				if at[name] != want {
					t.Errorf("client_credentials access token %s = %v, want %v", name, at[name], want)
				}
			}
			if jti, _ := at["jti"].(string); !strings.HasPrefix(jti, "m-") || at["sid"] != nil || at["scope"] != nil {
				t.Errorf("client_credentials access token %v: want a jti m-…, no sid, no scope", at)
			}
		})
	}
}

// checkTokenResponse checks a person grant's answer: code and nonce are what the ID
// token must hash and carry ("" for a refresh, which carries neither).
func (e *testEnv) checkTokenResponse(t *testing.T, r apiResp, scope, code, nonce string) {
	t.Helper()
	if r.str("token_type") != "Bearer" || r.str("scope") != scope || r.str("refresh_token") == "" {
		t.Errorf("answer: %s; want a Bearer token, a refresh token and scope %q", r, scope)
	}
	if in, ok := r.json["expires_in"].(float64); !ok || in < 1 || time.Duration(in)*time.Second > 24*time.Hour {
		t.Errorf("expires_in %v", r.json["expires_in"])
	}
	access, idToken := r.str("access_token"), r.str("id_token")
	at, id := jwtMembers(t, access), jwtMembers(t, idToken)

	for name, want := range map[string]any{
		"iss": e.issuer, "sub": e.userID, "client_id": "report", "scope": scope, "sid": id["sid"],
	} {
		if at[name] != want {
			t.Errorf("access token %s = %v, want %v", name, at[name], want)
		}
	}
	for _, name := range []string{"jti", "exp", "iat", "aud", "sid"} {
		if at[name] == nil || at[name] == "" {
			t.Errorf("access token without %s: %v", name, at)
		}
	}
	if exp, _ := at["exp"].(float64); int64(exp) > time.Now().Add(time.Hour).Unix()+5 {
		t.Errorf("access token exp %v beyond its lifetime", at["exp"])
	}

	for name, want := range map[string]any{
		"iss": e.issuer, "sub": e.userID, "azp": "report", "at_hash": leftHalfHash(access),
		"phone_number": e.phone, "phone_number_verified": true,
	} {
		if id[name] != want {
			t.Errorf("ID token %s = %v, want %v", name, id[name], want)
		}
	}
	for _, name := range []string{"exp", "iat", "auth_time", "amr", "acr", "sid", "name", "updated_at"} {
		if id[name] == nil || id[name] == "" {
			t.Errorf("ID token without %s: %v", name, id)
		}
	}
	for what, claims := range map[string]map[string]any{"ID token": id, "access token": at} {
		if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != "report" {
			t.Errorf("%s aud = %v, want [report]", what, claims["aud"])
		}
		exp, _ := claims["exp"].(float64)
		iat, _ := claims["iat"].(float64)
		if life := time.Duration(exp-iat) * time.Second; life <= 0 || life > time.Hour {
			t.Errorf("%s lives %v (iat %v, exp %v)", what, life, claims["iat"], claims["exp"])
		}
	}
	if code != "" && id["c_hash"] != leftHalfHash(code) {
		t.Errorf("ID token c_hash = %v, want that of the code", id["c_hash"])
	}
	if code == "" && id["c_hash"] != nil {
		t.Errorf("a refreshed ID token with c_hash %v", id["c_hash"])
	}
	if got, _ := id["nonce"].(string); got != nonce {
		t.Errorf("ID token nonce = %q, want %q", got, nonce)
	}
	allowed := []string{
		"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "client_id", "at_hash",
		"c_hash", "sid", "name", "family_name", "given_name", "middle_name", "preferred_username", "updated_at",
		"phone_number", "phone_number_verified",
	}
	for name := range id {
		if !slices.Contains(allowed, name) {
			t.Errorf("ID token with %s = %v, which scope %q does not ask for", name, id[name], scope)
		}
	}
}

// jwtMembers is the claims of a compact JWS, failing on a header without kid or a
// member that occurs twice (which a JSON decoder into a map would hide).
func jwtMembers(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	var header map[string]any
	if h, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(h, &header) != nil {
		t.Fatalf("JWS header %q", parts[0])
	}
	if header["kid"] == nil || header["kid"] == "" || header["alg"] == nil {
		t.Errorf("JWS header without kid or alg: %v", header)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	claims := map[string]any{}
	if tk, err := dec.Token(); err != nil || tk != json.Delim('{') {
		t.Fatalf("claims are not an object: %s", payload)
	}
	for dec.More() {
		tk, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		name := tk.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if _, twice := claims[name]; twice {
			t.Errorf("claim %q occurs twice in %s", name, payload)
		}
		claims[name] = v
	}
	return claims
}

// leftHalfHash is at_hash or c_hash of v for RS256 or ES256 (OIDC Core §3.1.3.6).
func leftHalfHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
