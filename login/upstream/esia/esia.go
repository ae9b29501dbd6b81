package esia

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/upstream"
)

// Paths of ESIA's endpoints, relative to IDP_ESIA_URL.
const (
	PathAuthorize = "/aas/oauth2/v2/ac"
	PathToken     = "/aas/oauth2/v3/te"
	PathPersons   = "/rs/prns/" // {oid}, {oid}/ctts
)

// TimestampLayout is ESIA's "yyyy.MM.dd HH:mm:ss ±zzzz".
const TimestampLayout = "2006.01.02 15:04:05 -0700"

// scope is what we ask ESIA for: the person's names, birth date, SNILS and the
// contacts (with the mobile phone and email).
const scope = "openid fullname birthdate snils contacts mobile email"

const (
	// callTimeout bounds every call to ESIA and every signature.
	callTimeout = 10 * time.Second
	// skew is the clock difference allowed in exp and nbf.
	skew = 2 * time.Minute
	// maxAnswer bounds every answer read from ESIA.
	maxAnswer = 256 << 10
)

// Names of the claims of an ESIA identity, as the provider releases them.
const (
	ClaimFamilyName = "family_name"
	ClaimGivenName  = "given_name"
	ClaimMiddleName = "middle_name"
	ClaimBirthdate  = "birthdate" // YYYY-MM-DD
	ClaimSNILS      = "snils"     // "123-456-789 64", as ESIA writes it
	ClaimTrusted    = "gosuslugi_trusted"
	ClaimPhone      = "phone_number" // verified only
	ClaimEmail      = "email"        // verified only
)

// Config is the Gosuslugi upstream.
type Config struct {
	URL      string // IDP_ESIA_URL: https://esia.gosuslugi.ru (or the test ESIA)
	ClientID string // IDP_ESIA_CLIENT_ID: our mnemonic at ESIA
	Signer   Signer // the key file's or the command's
	// Certificate is our certificate (PEM or DER), registered at ESIA: its hash tells
	// ESIA which key signed client_secret.
	Certificate []byte
	// TokenCertificate is ESIA's token-signing certificate (PEM or DER).
	TokenCertificate []byte

	Now func() time.Time // nil is time.Now
}

// Connector is the Gosuslugi upstream.
type Connector struct {
	cfg      Config
	base     string
	certHash string
	tokenKey *tokenKey
	issuers  map[string]bool
	client   *http.Client
}

var (
	_ upstream.Connector = (*Connector)(nil)
	_ upstream.Registrar = (*Connector)(nil)
)

// New checks cfg and makes the connector; it does not talk to ESIA.
func New(cfg Config) (*Connector, error) {
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{{"URL", cfg.URL != ""}, {"ClientID", cfg.ClientID != ""}, {"Signer", cfg.Signer != nil},
		{"Certificate", len(cfg.Certificate) > 0}, {"TokenCertificate", len(cfg.TokenCertificate) > 0}} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ESIA upstream: %s required", strings.Join(missing, ", "))
	}
	base, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("ESIA URL %q: want https://esia.gosuslugi.ru", cfg.URL)
	}
	hash, err := CertificateHash(cfg.Certificate)
	if err != nil {
		return nil, err
	}
	key, err := parseTokenKey(cfg.TokenCertificate)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// ESIA writes "http://esia.gosuslugi.ru/" in iss for https://esia.gosuslugi.ru.
	issuers := map[string]bool{}
	for _, iss := range []string{"http://" + base.Host + "/", "https://" + base.Host + "/", base.String(), base.String() + "/"} {
		issuers[iss] = true
	}
	client := &http.Client{Timeout: callTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Connector{cfg: cfg, base: base.String(), certHash: hash, tokenKey: key, issuers: issuers, client: client}, nil
}

// CertificateHash is the client_certificate_hash of a certificate (PEM or DER): the
// Streebog-256 digest of its DER encoding, as upper-case hex of the digest's bytes
// in the order the hash function outputs them. That is what CryptoPro's
// `cpverify -mk -alg GR3411_2012_256 cert.der` prints, the tool ESIA's integrators
// are told to compute it with (github.com/ofstudio/go-api-epgu, esia/aas/doc.go: the
// hash is of the DER form — of the PEM text ESIA answers ESIA-007053), and what
// `openssl dgst -md_gost12_256` prints in lower case.
func CertificateHash(cert []byte) (string, error) {
	certs, err := gost.ParseCertificates(cert)
	if err != nil {
		return "", fmt.Errorf("ESIA client certificate: %w", err)
	}
	if len(certs) == 0 {
		return "", errors.New("ESIA client certificate: no certificate in the file")
	}
	return strings.ToUpper(hex.EncodeToString(gost.Streebog256(certs[0].Raw))), nil
}

// ID implements upstream.Connector.
func (c *Connector) ID() string { return "esia" }

// Title implements upstream.Connector.
func (c *Connector) Title() string { return "госуслуги" }

// signString is client_secret: the signature of the concatenated parameters,
// base64url without padding. The order — client_id, scope, scope_org, timestamp,
// state, redirect_uri and, at the token endpoint, code — is the v2/ac and v3/te
// order of ESIA's "Методические рекомендации по использованию ЕСИА", as
// github.com/ilimurzin/esia (4.x) and github.com/ofstudio/go-api-epgu (esia/aas)
// build it. The raw signature goes out in OpenSSL's s||r big-endian order: the
// former sends `openssl dgst -sign` output as it is, the latter reverses csptest's
// little-endian output into that order. Padding: ESIA reads base64url either way;
// we send none, as ilimurzin/esia does.
func (c *Connector) signString(ctx context.Context, parts ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	sig, err := c.cfg.Signer.Sign(ctx, []byte(strings.Join(parts, "")))
	if err != nil {
		return "", err
	}
	if len(sig) != SignatureSize {
		return "", fmt.Errorf("signature of %d bytes, want %d", len(sig), SignatureSize)
	}
	return base64.RawURLEncoding.EncodeToString(sig), nil
}

func (c *Connector) timestamp() string { return c.cfg.Now().UTC().Format(TimestampLayout) }

// LoginURL implements upstream.Connector: v2/ac with the signed parameters.
func (c *Connector) LoginURL(s upstream.Start) (string, error) {
	ts := c.timestamp()
	secret, err := c.signString(context.Background(), c.cfg.ClientID, scope, "", ts, s.State, s.RedirectURI)
	if err != nil {
		return "", fmt.Errorf("%w: sign the authorization request: %v", upstream.ErrUnavailable, err)
	}
	q := url.Values{
		"client_id": {c.cfg.ClientID}, "client_secret": {secret}, "client_certificate_hash": {c.certHash},
		"redirect_uri": {s.RedirectURI}, "scope": {scope}, "response_type": {"code"}, "state": {s.State},
		"timestamp": {ts}, "access_type": {"online"},
	}
	return c.base + PathAuthorize + "?" + q.Encode(), nil
}

// tokenAnswer is v3/te's answer.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	State       string `json:"state"`
	TokenType   string `json:"token_type"`
}

// HandleCallback implements upstream.Connector: the code for tokens, the tokens
// verified, the person and the contacts read.
func (c *Connector) HandleCallback(ctx context.Context, s upstream.Start, r *http.Request) (upstream.Identity, error) {
	q := r.URL.Query()
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return upstream.Identity{}, errors.New("callback without a code")
	}
	// The Part found the attempt by this state; ESIA must return the very one we sent.
	if q.Get("state") != s.State {
		return upstream.Identity{}, errors.New("callback state is not the attempt's")
	}
	tok, err := c.exchange(ctx, s, code)
	if err != nil {
		return upstream.Identity{}, err
	}
	oid, err := c.verifyTokens(tok)
	if err != nil {
		return upstream.Identity{}, err
	}
	p, err := c.person(ctx, oid, tok.AccessToken)
	if err != nil {
		return upstream.Identity{}, err
	}
	return p.identity(oid)
}

// exchange is the v3/te request: the code, signed, with a state of its own that the
// answer must echo.
func (c *Connector) exchange(ctx context.Context, s upstream.Start, code string) (*tokenAnswer, error) {
	ts, state := c.timestamp(), upstream.NewUUID()
	secret, err := c.signString(ctx, c.cfg.ClientID, scope, "", ts, state, s.RedirectURI, code)
	if err != nil {
		return nil, fmt.Errorf("%w: sign the token request: %v", upstream.ErrUnavailable, err)
	}
	form := url.Values{
		"client_id": {c.cfg.ClientID}, "code": {code}, "grant_type": {"authorization_code"},
		"client_secret": {secret}, "client_certificate_hash": {c.certHash}, "state": {state},
		"redirect_uri": {s.RedirectURI}, "scope": {scope}, "timestamp": {ts}, "token_type": {"Bearer"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+PathToken, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	body, err := c.do(req, "token endpoint")
	if err != nil {
		return nil, err
	}
	var tok tokenAnswer
	if err := json.Unmarshal(body, &tok); err != nil {
		return nil, fmt.Errorf("token endpoint answer: %w", err)
	}
	if tok.State != state {
		return nil, errors.New("token endpoint echoed another state")
	}
	if tok.AccessToken == "" {
		return nil, errors.New("token endpoint answered no access_token")
	}
	if tok.TokenType != "" && !strings.EqualFold(tok.TokenType, "Bearer") {
		return nil, fmt.Errorf("token type %.20q, want Bearer", tok.TokenType)
	}
	return &tok, nil
}

// do sends req and reads the answer, bounded: no answer or a 5xx is
// upstream.ErrUnavailable, another status a refusal with ESIA's error code.
func (c *Connector) do(req *http.Request, what string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(req.Context(), callTimeout)
	defer cancel()
	resp, err := c.client.Do(req.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", upstream.ErrUnavailable, what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: read: %v", upstream.ErrUnavailable, what, err)
	}
	if resp.StatusCode >= 500 {
		return nil, fmt.Errorf("%w: %s answered %d", upstream.ErrUnavailable, what, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, fmt.Errorf("%s answered %d %.64q: %.200q", what, resp.StatusCode, e.Error, e.Description)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("%s answered more than %d bytes", what, maxAnswer)
	}
	return body, nil
}
