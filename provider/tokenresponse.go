package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/astral/idp/provider/keys"
)

// The token endpoint's grants (authorization_code, refresh_token and
// client_credentials) are parsed, authenticated and validated by op, with the
// exported functions op.Exchange would call (ParseAccessTokenRequest,
// ValidateAccessTokenRequest and their counterparts), and only their response is
// built here. op's CreateTokenResponse marshals a token whose claims its structs have
// no field for (sid and scope in the access token, idp and the Gosuslugi claims in the
// ID token) three times, struct → JSON → map → JSON, which under load cost a quarter of
// a grant's CPU outside signing and the database. Here every token is marshalled once:
// the claims op has fields for go in its structs, and the rest are appended to the
// object (withMembers). What the answer contains is op's, claim for claim (one claim
// more: see idToken); the protocol tests hold it to that.

// exchangeGrants is an op interceptor on the token endpoint that serves the grants
// above; anything else goes on to op. p.op is read per request, since the interceptor
// is made before op's provider.
func (p *Provider) exchangeGrants(tokenPath string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != tokenPath {
				next.ServeHTTP(w, r)
				return
			}
			// The same lookup as op.Exchange's, so that both agree on the grant.
			switch r.FormValue("grant_type") {
			case string(oidc.GrantTypeCode):
				p.answer(w, r, p.codeGrant)
			case string(oidc.GrantTypeRefreshToken):
				if !p.op.GrantTypeRefreshTokenSupported() {
					next.ServeHTTP(w, r)
					return
				}
				p.answer(w, r, p.refreshGrant)
			case string(oidc.GrantTypeClientCredentials):
				if !p.op.GrantTypeClientCredentialsSupported() {
					next.ServeHTTP(w, r)
					return
				}
				p.answer(w, r, p.clientCredentialsGrant)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// grant is a token request op has parsed and validated, with the product presenting
// it and the code or refresh token it presented. A person's grant also gets an ID
// token.
type grant struct {
	req                op.TokenRequest
	client             op.Client
	code, refreshToken string
	person             bool
}

// answer writes the token endpoint's answer to the grant that validate finds in r,
// or op's error answer.
func (p *Provider) answer(w http.ResponseWriter, r *http.Request, validate func(*http.Request) (grant, error)) {
	g, err := validate(r)
	var resp *oidc.AccessTokenResponse
	if err == nil {
		resp, err = p.storage.tokenResponse(r.Context(), g)
	}
	if err != nil {
		op.RequestError(w, r, err, nil)
		return
	}
	httphelper.MarshalJSON(w, resp)
}

// codeGrant is op.CodeExchange's parsing and validation.
func (p *Provider) codeGrant(r *http.Request) (grant, error) {
	req, err := op.ParseAccessTokenRequest(r, p.op.Decoder())
	if err != nil {
		return grant{}, err
	}
	if req.Code == "" {
		return grant{}, oidc.ErrInvalidRequest().WithDescription("code missing")
	}
	ar, c, err := op.ValidateAccessTokenRequest(r.Context(), req, p.op)
	if err != nil {
		return grant{}, err
	}
	// An account blocked since its sign-in gets nothing for the code. op spends the
	// code (AuthRequestByCode) before it checks the verifier and the product, so this
	// is said only to a product that has proved both.
	if _, err := p.storage.userActive(r.Context(), ar.GetSubject()); err != nil {
		return grant{}, err
	}
	return grant{req: ar, client: c, code: req.Code, person: true}, nil
}

// refreshGrant is op.RefreshTokenExchange's parsing and validation.
func (p *Provider) refreshGrant(r *http.Request) (grant, error) {
	req, err := op.ParseRefreshTokenRequest(r, p.op.Decoder())
	if err != nil {
		return grant{}, err
	}
	rr, c, err := op.ValidateRefreshTokenRequest(r.Context(), req, p.op)
	return grant{req: rr, client: c, refreshToken: req.RefreshToken, person: true}, err
}

// clientCredentialsGrant is op.ClientCredentialsExchange's parsing and validation.
func (p *Provider) clientCredentialsGrant(r *http.Request) (grant, error) {
	req, err := op.ParseClientCredentialsRequest(r, p.op.Decoder())
	if err != nil {
		return grant{}, err
	}
	tr, c, err := op.ValidateClientCredentialsRequest(r.Context(), req, p.op)
	return grant{req: tr, client: c}, err
}

// tokenResponse is op.CreateTokenResponse (a person's grant: an ID token beside the
// access token) and op.CreateClientCredentialsTokenResponse (a product's own) for
// this provider's products, whose access tokens are JWTs, whose ID tokens carry the
// claims of their scopes, and which have no clock skew (see client). op would also
// call DeleteAuthRequest after a code exchange, which does nothing here: the spent
// code's row must stay.
func (s *opStorage) tokenResponse(ctx context.Context, g grant) (*oidc.AccessTokenResponse, error) {
	req := g.req
	c, ok := g.client.(*client)
	if !ok {
		return nil, oidc.ErrServerError().WithParent(fmt.Errorf("token response for a client of type %T", g.client))
	}
	var (
		id, newRefresh string
		exp            time.Time
		err            error
	)
	if withRefreshToken(req, c) {
		id, newRefresh, exp, err = s.CreateAccessAndRefreshTokens(ctx, req, g.refreshToken)
	} else {
		id, exp, err = s.CreateAccessToken(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	k, err := s.keys.Signing(ctx)
	if err != nil {
		return nil, asOIDC(ctx, err, "load signing key")
	}
	issuer := op.IssuerFromContext(ctx)
	resp := &oidc.AccessTokenResponse{
		RefreshToken: newRefresh,
		TokenType:    oidc.BearerToken,
		ExpiresIn:    uint64(time.Until(exp).Seconds()),
		Scope:        req.GetScopes(),
	}
	if resp.AccessToken, err = accessToken(req, c, issuer, id, exp, k); err != nil {
		return nil, err
	}
	if g.person {
		person, ok := req.(op.IDTokenRequest)
		if !ok {
			return nil, oidc.ErrServerError().WithParent(fmt.Errorf("ID token for a request of type %T", req))
		}
		if resp.IDToken, err = s.idToken(ctx, person, c, issuer, resp.AccessToken, g.code, k); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// withRefreshToken is op's rule for when a grant also issues a refresh token: every
// refresh, and a code exchange whose request had offline_access, for a product
// allowed the refresh_token grant.
func withRefreshToken(req op.TokenRequest, c *client) bool {
	switch r := req.(type) {
	case *refreshRequest:
		return true
	case authRequest:
		return slices.Contains(r.GetScopes(), oidc.ScopeOfflineAccess) && r.GetResponseType() == oidc.ResponseTypeCode &&
			op.ValidateGrantType(c, oidc.GrantTypeRefreshToken)
	}
	return false
}

// accessToken is op.CreateJWT's token: the registered claims, its scopes (RFC 9068
// §2.2.3: introspection and userinfo answer from them, since most access tokens have
// no row; see machineTokenPrefix) and the session's sid, so that a product's API can
// tie it to a logout. op makes no JWT access token itself: every grant that issues
// one is answered here.
func accessToken(req op.TokenRequest, c *client, issuer, id string, exp time.Time, k keys.Key) (string, error) {
	claims := oidc.NewAccessTokenClaims(issuer, req.GetSubject(), req.GetAudience(), exp, id, c.GetID(), c.ClockSkew())
	claims.Scopes = req.GetScopes()
	var extra map[string]any
	if sid := sessionOf(req); sid != "" {
		extra = map[string]any{"sid": sid}
	}
	return signClaims(claims, extra, k)
}

// idToken is op.CreateIDToken's token, with the claims of its scopes
// (SetUserinfoFromRequest), at_hash of accessToken and, from a code, c_hash. A
// refresh's ID token also keeps the sign-in's acr, which op leaves out (it takes acr
// from an authorization request only): a product checking acr on every ID token
// would otherwise find it gone after the first refresh.
func (s *opStorage) idToken(ctx context.Context, req op.IDTokenRequest, c *client, issuer, accessToken, code string, k keys.Key) (string, error) {
	var acr, nonce string
	if r, ok := req.(interface{ GetACR() string }); ok {
		acr = r.GetACR()
	}
	if ar, ok := req.(op.AuthRequest); ok {
		nonce = ar.GetNonce()
	}
	exp := time.Now().UTC().Add(c.ClockSkew()).Add(c.IDTokenLifetime())
	claims := oidc.NewIDTokenClaims(issuer, req.GetSubject(), req.GetAudience(), exp, req.GetAuthTime(), nonce, acr,
		req.GetAMR(), req.GetClientID(), c.ClockSkew())
	var err error
	if claims.AccessTokenHash, err = oidc.ClaimHash(accessToken, k.Algorithm); err != nil {
		return "", oidc.ErrServerError().WithParent(err)
	}
	if code != "" {
		if claims.CodeHash, err = oidc.ClaimHash(code, k.Algorithm); err != nil {
			return "", oidc.ErrServerError().WithParent(err)
		}
	}
	var extra map[string]any
	if scopes := req.GetScopes(); len(scopes) > 0 {
		info := new(oidc.UserInfo)
		if err := s.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
			// A database error's text stays in the log, out of the answer.
			return "", asOIDC(ctx, err, "claims of the ID token")
		}
		claims.SetUserInfo(info)
		// sid has a field; the rest are appended.
		extra, claims.Claims = claims.Claims, nil
		if sid, ok := extra["sid"].(string); ok {
			claims.SessionID = sid
			delete(extra, "sid")
		}
		if err := appendable(extra); err != nil {
			return "", oidc.ErrServerError().WithParent(err)
		}
	}
	return signClaims(claims, extra, k)
}

// appendedClaims are the ID token's claims that op's struct has no field for: the
// upstream connector and the Gosuslugi claims besides names and birthdate. Only these
// are appended: a name the struct also writes would occur twice, and a verifier
// would read whichever its parser keeps (op's merge let the struct's win).
var appendedClaims = map[string]bool{"idp": true, "snils": true, ClaimGosuslugiTrusted: true}

// appendable refuses extra claims other than appendedClaims.
func appendable(extra map[string]any) error {
	for name := range extra {
		if !appendedClaims[name] {
			return fmt.Errorf("claim %q has no place in an ID token", name)
		}
	}
	return nil
}

// signClaims signs claims, marshalled once, with extra appended, as op signs a
// token: a compact JWS with the key's alg and kid.
func signClaims(claims any, extra map[string]any, k keys.Key) (string, error) {
	payload, err := json.Marshal(claims)
	if err == nil {
		payload, err = withMembers(payload, extra)
	}
	if err != nil {
		return "", oidc.ErrServerError().WithParent(fmt.Errorf("marshal token claims: %w", err))
	}
	token, err := signPayload(k, payload, "")
	if err != nil {
		return "", oidc.ErrServerError().WithParent(err)
	}
	return token, nil
}

// withMembers appends members to the JSON object obj, in key order. Written by hand
// because the library way (into a map and out again) is what this file avoids; the
// keys are this provider's own claims, which obj's struct has no field for.
func withMembers(obj []byte, members map[string]any) ([]byte, error) {
	obj = bytes.TrimRight(obj, " \n")
	if len(members) == 0 {
		return obj, nil
	}
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return nil, errors.New("claims are not a JSON object")
	}
	out := obj[:len(obj)-1]
	for _, name := range slices.Sorted(maps.Keys(members)) {
		value, err := json.Marshal(members[name])
		if err != nil {
			return nil, fmt.Errorf("claim %q: %w", name, err)
		}
		key, _ := json.Marshal(name) // a string always marshals
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, key...), ':'), value...)
	}
	return append(out, '}'), nil
}
