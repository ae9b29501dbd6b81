// Package oidctest is an OpenID Provider for tests that plays an upstream such as
// Telegram: discovery, JWKS, an authorization endpoint without any page (it logs in
// whoever the test named and redirects straight back with a code) and a token
// endpoint that checks the client secret, the redirect URI and the PKCE verifier and
// answers with a signed ID token carrying the nonce it was given.
//
// It misbehaves on demand ([Fault]): a forged ID token, a wrong nonce, a wrong
// audience, a refused login, or discovery that is down.
//
//	tg := oidctest.New(t, "7700000000", "bot-secret")
//	tg.LogIn("100200300", map[string]any{"name": "Иван Петров"})
//	// configure IDP_TELEGRAM_URL=tg.URL …
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Fault is how the provider misbehaves in the logins that start after SetFault.
type Fault int

// Faults.
const (
	None          Fault = iota
	ForgedToken         // the ID token is signed by a key the JWKS does not have (same kid)
	WrongNonce          // the ID token carries another nonce
	WrongAudience       // the ID token is for another client
	Deny                // the authorization endpoint answers error=access_denied
)

// Provider is a running test OpenID Provider.
type Provider struct {
	URL          string // the issuer
	ClientID     string
	ClientSecret string

	srv *httptest.Server

	mu      sync.Mutex
	subject string
	claims  map[string]any
	fault   Fault
	down    bool
	grants  map[string]grant
	tokens  int // ID tokens issued
}

type grant struct {
	redirectURI, challenge, nonce, subject string
	claims                                 map[string]any
	fault                                  Fault
}

const keyID = "oidctest-1"

var (
	keysOnce        sync.Once
	signKey, forged *rsa.PrivateKey
)

func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keysOnce.Do(func() {
		var err error
		if signKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
		if forged, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return signKey, forged
}

// New starts a provider for client clientID with clientSecret; it stops when the
// test ends. Nobody is logged in until LogIn.
func New(t testing.TB, clientID, clientSecret string) *Provider {
	t.Helper()
	keys(t)
	p := &Provider{ClientID: clientID, ClientSecret: clientSecret, grants: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /auth", p.auth)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// LogIn sets who logs in at the authorization endpoint from now on, with the claims
// the ID token carries besides the protocol's.
func (p *Provider) LogIn(subject string, claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subject, p.claims = subject, maps.Clone(claims)
}

// SetFault makes the logins that start from now on misbehave (None: behave).
func (p *Provider) SetFault(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
}

// SetDown makes discovery answer 503 (true) or work again (false).
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// Tokens counts the ID tokens issued.
func (p *Provider) Tokens() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		http.Error(w, "down for a test", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.URL,
		"authorization_endpoint":                p.URL + "/auth",
		"token_endpoint":                        p.URL + "/token",
		"jwks_uri":                              p.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "phone"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &signKey.PublicKey, KeyID: keyID, Algorithm: string(jose.RS256), Use: "sig"},
	}})
}

// auth logs the test's subject in at once and redirects back with a code.
func (p *Provider) auth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	switch {
	case q.Get("client_id") != p.ClientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case redirect == "" || q.Get("response_type") != "code":
		http.Error(w, "want response_type=code and a redirect_uri", http.StatusBadRequest)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	case q.Get("nonce") == "" || q.Get("state") == "" || !strings.Contains(" "+q.Get("scope")+" ", " openid "):
		http.Error(w, "want scope openid, a state and a nonce", http.StatusBadRequest)
		return
	}
	back, err := url.Parse(redirect)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	g := grant{redirectURI: redirect, challenge: q.Get("code_challenge"), nonce: q.Get("nonce"),
		subject: p.subject, claims: maps.Clone(p.claims), fault: p.fault}
	code := rand.Text()
	if g.subject != "" && g.fault != Deny {
		p.grants[code] = g
	}
	p.mu.Unlock()
	bq := back.Query()
	bq.Set("state", q.Get("state"))
	if g.subject == "" || g.fault == Deny {
		bq.Set("error", "access_denied")
		bq.Set("error_description", "the user declined")
	} else {
		bq.Set("code", code)
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.ClientSecret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	p.mu.Lock()
	g, found := p.grants[r.PostForm.Get("code")]
	delete(p.grants, r.PostForm.Get("code")) // single use
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !found || g.redirectURI != r.PostForm.Get("redirect_uri") ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	now := time.Now()
	claims := map[string]any{}
	maps.Copy(claims, g.claims)
	maps.Copy(claims, map[string]any{
		"iss": p.URL, "sub": g.subject, "aud": p.ClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"auth_time": now.Unix(), "nonce": g.nonce,
	})
	key := signKey
	switch g.fault {
	case ForgedToken:
		key = forged
	case WrongNonce:
		claims["nonce"] = "not-" + g.nonce
	case WrongAudience:
		claims["aud"] = "another-client"
	}
	idToken, err := sign(key, claims)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error")
		return
	}
	p.mu.Lock()
	p.tokens++
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300, "id_token": idToken,
	})
}

func sign(key *rsa.PrivateKey, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: keyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
