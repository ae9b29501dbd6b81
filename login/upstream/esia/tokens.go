package esia

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/astral/idp/login/gost"
)

// JWT algorithms ESIA signs tokens with.
const (
	AlgGOST256 = "GOST3410_2012_256"
	AlgRS256   = "RS256"
)

// tokenKey is ESIA's token-signing key: GOST R 34.10-2012 256 (GOST3410_2012_256)
// or RSA (RS256).
type tokenKey struct{ pub *gost.PublicKey }

// parseTokenKey reads ESIA's certificate (PEM or DER).
func parseTokenKey(cert []byte) (*tokenKey, error) {
	certs, err := gost.ParseCertificates(cert)
	if err != nil {
		return nil, fmt.Errorf("ESIA token certificate: %w", err)
	}
	if len(certs) == 0 || certs[0].PublicKey == nil {
		return nil, errors.New("ESIA token certificate: no certificate in the file")
	}
	switch alg := certs[0].PublicKey.Algorithm(); alg {
	case gost.AlgGOST256, gost.AlgRSA:
		return &tokenKey{pub: certs[0].PublicKey}, nil
	default:
		return nil, fmt.Errorf("ESIA token certificate has a %s key: want GOST R 34.10-2012 (256) or RSA", alg)
	}
}

// maxToken bounds a token we parse.
const maxToken = 32 << 10

// verifyJWT checks a compact JWS with ESIA's key and returns its claims. The
// algorithm must be the key's: a GOST key verifies only GOST3410_2012_256, an RSA
// key only RS256, so no "none" and no algorithm confusion. The GOST signature is
// s||r big-endian, the order `openssl dgst -verify` takes it in (github.com/
// ekapusta/oauth2-esia verifies ESIA's tokens that way, without reordering).
func (k *tokenKey) verifyJWT(raw string) (map[string]any, error) {
	if len(raw) > maxToken {
		return nil, fmt.Errorf("token of %d bytes", len(raw))
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &header) != nil {
		return nil, errors.New("malformed token header")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("malformed token signature")
	}
	signed := []byte(parts[0] + "." + parts[1])
	alg := k.pub.Algorithm()
	if !(header.Alg == AlgGOST256 && alg == gost.AlgGOST256) && !(header.Alg == AlgRS256 && alg == gost.AlgRSA) {
		return nil, fmt.Errorf("token algorithm %.32q is not the one of ESIA's certificate (%s)", header.Alg, alg)
	}
	// Streebog-256 for GOST, SHA-256 PKCS #1 v1.5 for RSA: RS256.
	if err := k.pub.Verify(signed, sig); err != nil {
		return nil, fmt.Errorf("token signature: %w", err)
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("malformed token payload")
	}
	d := json.NewDecoder(bytes.NewReader(pb))
	d.UseNumber() // the oid is a number longer than a float64 keeps exactly
	var claims map[string]any
	if err := d.Decode(&claims); err != nil {
		return nil, fmt.Errorf("token payload: %w", err)
	}
	return claims, nil
}

// verifyTokens checks the access token (and the ID token, when ESIA sends one) and
// returns the person's oid.
func (c *Connector) verifyTokens(tok *tokenAnswer) (string, error) {
	at, err := c.tokenKey.verifyJWT(tok.AccessToken)
	if err != nil {
		return "", fmt.Errorf("access token: %w", err)
	}
	if err := c.checkClaims(at, false); err != nil {
		return "", fmt.Errorf("access token: %w", err)
	}
	oid := claimString(at["urn:esia:sbj_id"])
	if !validOID(oid) {
		return "", fmt.Errorf("access token: urn:esia:sbj_id %.32q is not an oid", oid)
	}
	if tok.IDToken != "" {
		it, err := c.tokenKey.verifyJWT(tok.IDToken)
		if err != nil {
			return "", fmt.Errorf("ID token: %w", err)
		}
		if err := c.checkClaims(it, true); err != nil {
			return "", fmt.Errorf("ID token: %w", err)
		}
		if sub := claimString(it["sub"]); sub != "" && sub != oid {
			return "", errors.New("ID token is of another person than the access token")
		}
	}
	return oid, nil
}

// checkClaims checks iss, the audience and the validity window. An access token names
// its client in client_id, an ID token in aud.
func (c *Connector) checkClaims(claims map[string]any, idToken bool) error {
	iss := claimString(claims["iss"])
	if !c.issuers[iss] {
		return fmt.Errorf("issuer %.100q is not ESIA's", iss)
	}
	ours := false
	if !idToken && claimString(claims["client_id"]) == c.cfg.ClientID {
		ours = true
	}
	switch aud := claims["aud"].(type) {
	case string:
		ours = ours || aud == c.cfg.ClientID
	case []any:
		for _, a := range aud {
			ours = ours || claimString(a) == c.cfg.ClientID
		}
	}
	if !ours {
		return errors.New("token is for another client (audience)")
	}
	now := c.cfg.Now()
	exp, ok := claimTime(claims["exp"])
	if !ok {
		return errors.New("token without exp")
	}
	if now.After(exp.Add(skew)) {
		return fmt.Errorf("token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if nbf, ok := claimTime(claims["nbf"]); ok && now.Add(skew).Before(nbf) {
		return fmt.Errorf("token not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	return nil
}

func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

func claimTime(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	sec, err := n.Int64()
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil {
			return time.Time{}, false
		}
		sec = int64(f)
	}
	return time.Unix(sec, 0), true
}

// validOID: ESIA's oids are positive decimal numbers; it goes into a URL path.
func validOID(s string) bool {
	if s == "" || len(s) > 20 || s[0] == '0' {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// CheckTokenCertificate reports whether cert (PEM or DER) can verify ESIA's tokens.
func CheckTokenCertificate(cert []byte) error {
	_, err := parseTokenKey(cert)
	return err
}
