package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/astral/idp/storage"
)

// Access tokens are JWTs, and a JWT needs no row to be verified: the row exists only
// to end a token before its exp. The token's jti says where that state is kept:
//
//   - "m-<id>", a product's own token (client_credentials): nothing is written when it
//     is issued, which on the token endpoint is a write a grant fewer. It ends when the
//     product is removed (the product is read at introspection, and one added again
//     does not take the earlier tokens back) or when the token
//     itself is revoked (a row in access_tokens that denies it, see
//     storage.DenyAccessToken). Its scopes, audience and times are its claims.
//   - "<access id>.<generation>", a person's token issued with a refresh token: the
//     state is the refresh family's row (storage.RefreshFamily), which a refresh
//     updates anyway. It ends with its family (revoked with the account, session, code
//     or product, or on a replay) or when revoked itself (RFC 7009), which marks its
//     generation and the earlier ones in the family's row. Its scopes (narrower after
//     a refresh that asked for less), audience and times are its claims.
//   - "<id>", a person's token from a code without a refresh token: a row in
//     access_tokens, revoked with its account, session, code or product.
const machineTokenPrefix = "m-"

// familyTokenID is the jti of the access token issued with a family's generation.
func familyTokenID(accessID string, generation int64) string {
	return accessID + "." + strconv.FormatInt(generation, 10)
}

// parseFamilyTokenID is the family and generation a familyTokenID names.
func parseFamilyTokenID(jti string) (accessID string, generation int64, ok bool) {
	accessID, gen, ok := strings.Cut(jti, ".")
	if !ok || accessID == "" {
		return "", 0, false
	}
	generation, err := strconv.ParseInt(gen, 10, 64)
	if err != nil || generation < 1 {
		return "", 0, false
	}
	return accessID, generation, true
}

// isMachineToken reports whether jti names a client_credentials token.
func isMachineToken(jti string) bool { return strings.HasPrefix(jti, machineTokenPrefix) }

// newMachineTokenID is the jti of a client_credentials token.
func newMachineTokenID() string { return machineTokenPrefix + storage.NewID() }

// accessClaims are the claims of a JWT access token that introspection and userinfo
// answer from when no row holds them.
type accessClaims struct {
	JWTID      string                   `json:"jti"`
	Subject    string                   `json:"sub"`
	ClientID   string                   `json:"client_id"`
	Scopes     oidc.SpaceDelimitedArray `json:"scope"`
	Audience   oidc.Audience            `json:"aud"`
	Expiration oidc.Time                `json:"exp"`
	IssuedAt   oidc.Time                `json:"iat"`
}

type presentedTokenKey struct{}

// keepPresentedToken is an op interceptor that keeps the access token a userinfo or
// introspection request presents, taken from where op takes it: op verifies the JWT
// and hands the storage only its jti and sub, and a token without a row is answered
// from its claims. A request that presents more than one candidate (a parameter
// repeated, in any case) keeps none, so the claims read are always those of the token
// op verified.
func keepPresentedToken(userinfoPath, introspectPath string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var token string
			switch r.URL.Path {
			case userinfoPath:
				token = userinfoToken(r)
			case introspectPath:
				token = single(formValues(r.Form, "token"))
			}
			if token != "" {
				r = r.WithContext(context.WithValue(r.Context(), presentedTokenKey{}, token))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// userinfoToken is the token op's userinfo endpoint reads: an Authorization header
// with the Bearer scheme (in any case), else the access_token parameter.
func userinfoToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) >= len(oidc.PrefixBearer) && strings.EqualFold(h[:len(oidc.PrefixBearer)], oidc.PrefixBearer) {
		return h[len(oidc.PrefixBearer):]
	}
	return single(formValues(r.Form, "access_token"))
}

// formValues are the values op's form decoder (zitadel/schema) may take for the
// parameter name: it matches names ignoring case, in the map's random order.
func formValues(form url.Values, name string) []string {
	var vs []string
	for k, v := range form {
		if strings.EqualFold(k, name) {
			vs = append(vs, v...)
		}
	}
	return vs
}

// single is the one value of a parameter; none when it is absent or repeated.
func single(vs []string) string {
	if len(vs) != 1 {
		return ""
	}
	return vs[0]
}

// presentedClaims decodes the claims of the token this request presented, which op
// has verified and found to have jti and sub.
func presentedClaims(ctx context.Context, jti, sub string) (*accessClaims, error) {
	raw, _ := ctx.Value(presentedTokenKey{}).(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("no JWT access token presented")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("decode access token claims: %w", err)
	}
	var c accessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("decode access token claims: %w", err)
	}
	if c.JWTID != jti || c.Subject != sub {
		return nil, errors.New("the presented access token is not the verified one")
	}
	return &c, nil
}

// liveAccessToken is the access token jti, if nothing has ended it: its row, or for a
// token without one, a view of its claims and the state that can end it.
func (s *opStorage) liveAccessToken(ctx context.Context, jti, sub string) (*storage.AccessToken, error) {
	accessID, generation, family := parseFamilyTokenID(jti)
	if !family && !isMachineToken(jti) {
		return s.store.AccessTokenByID(ctx, jti)
	}
	c, err := presentedClaims(ctx, jti, sub)
	if err != nil {
		return nil, fmt.Errorf("access token %q: %v: %w", jti, err, storage.ErrNotFound)
	}
	if !s.store.Now().Before(c.Expiration.AsTime()) {
		return nil, fmt.Errorf("access token %q: expired: %w", jti, storage.ErrNotFound)
	}
	t := &storage.AccessToken{
		ID: jti, ClientID: c.ClientID, Scopes: storage.StringList(c.Scopes), Audience: storage.StringList(c.Audience),
		CreatedAt: c.IssuedAt.AsTime(), ExpiresAt: c.Expiration.AsTime(),
	}
	if family {
		f, err := s.store.RefreshFamilyByAccessID(ctx, accessID)
		if err != nil {
			return nil, err
		}
		switch {
		case f.RevokedAt != nil || generation <= f.AccessRevokedThrough:
			return nil, fmt.Errorf("access token %q: revoked: %w", jti, storage.ErrNotFound)
		case generation > f.Generation || f.UserID != sub || f.ClientID != c.ClientID:
			return nil, fmt.Errorf("access token %q does not match its family: %w", jti, storage.ErrNotFound)
		}
		t.UserID, t.SessionID, t.AuthRequestID, t.Claims = f.UserID, f.SessionID, f.AuthRequestID, f.Claims
		return t, nil
	}
	// From the store, not the client cache: removing a product ends its tokens at once,
	// and one removed and added again starts afresh (a JWT's iat is in whole seconds).
	p, err := s.store.ClientByID(ctx, c.ClientID)
	if err != nil {
		return nil, fmt.Errorf("access token %q of product %q: %w", jti, c.ClientID, err)
	}
	if p.CreatedAt.Truncate(time.Second).After(t.CreatedAt) {
		return nil, fmt.Errorf("access token %q issued before its product was added again: %w", jti, storage.ErrNotFound)
	}
	denied, err := s.store.AccessTokenDenied(ctx, jti)
	if err != nil {
		return nil, err
	}
	if denied {
		return nil, fmt.Errorf("access token %q: revoked: %w", jti, storage.ErrNotFound)
	}
	return t, nil
}

// revokeAccessToken revokes the access token jti of subject sub for clientID (RFC
// 7009), wherever its state is kept: a family's access tokens up to its generation, a
// product's own token by a row that denies it until it would have expired anyway, a
// person's token by its row. A token issued to another product is refused with
// errIssuedToAnother; an unknown one is ErrNotFound.
func (s *opStorage) revokeAccessToken(ctx context.Context, jti, sub, clientID string) error {
	if accessID, generation, ok := parseFamilyTokenID(jti); ok {
		f, err := s.store.RefreshFamilyByAccessID(ctx, accessID)
		switch {
		case err != nil:
			return err
		case f.ClientID != clientID:
			return errIssuedToAnother()
		}
		return s.store.RevokeFamilyAccess(ctx, f.ID, generation)
	}
	if isMachineToken(jti) {
		if sub != clientID { // a product's own token has the product as its subject
			return errIssuedToAnother()
		}
		return s.store.DenyAccessToken(ctx, jti, clientID, s.store.Now().Add(s.lifetimes.AccessToken+time.Minute))
	}
	t, err := s.store.AccessTokenByID(ctx, jti)
	switch {
	case err != nil:
		return err
	case t.ClientID != clientID:
		return errIssuedToAnother()
	}
	return s.store.RevokeAccessToken(ctx, t.ID)
}
