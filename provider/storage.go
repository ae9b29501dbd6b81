package provider

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/astral/idp/provider/keys"
	"github.com/astral/idp/storage"
)

// Store is what the provider needs from storage.
type Store interface {
	ClientByID(ctx context.Context, id string) (*storage.Client, error)
	UserByID(ctx context.Context, id string) (*storage.User, error)
	UserIdentities(ctx context.Context, userID string) ([]storage.Identity, error)

	CreateAuthRequest(ctx context.Context, r *storage.AuthRequest) error
	AuthRequestByID(ctx context.Context, id string) (*storage.AuthRequest, error)
	CompleteAuthRequest(ctx context.Context, id string, a storage.Authentication) error
	SaveAuthCode(ctx context.Context, id, code string, ttl time.Duration) error
	ExchangeCode(ctx context.Context, code string, retain time.Duration) (*storage.AuthRequest, error)
	DeleteAuthRequest(ctx context.Context, id string) error

	CreateAccessToken(ctx context.Context, t *storage.AccessToken) error
	AccessTokenByID(ctx context.Context, id string) (*storage.AccessToken, error)
	RevokeAccessToken(ctx context.Context, id string) error
	DenyAccessToken(ctx context.Context, id, clientID string, expiresAt time.Time) error
	AccessTokenDenied(ctx context.Context, id string) (bool, error)
	CreateRefreshFamily(ctx context.Context, f *storage.RefreshFamily) (string, error)
	RefreshFamilyByToken(ctx context.Context, raw, clientID string) (*storage.RefreshFamily, error)
	RefreshFamilyByAccessID(ctx context.Context, accessID string) (*storage.RefreshFamily, error)
	FindRefreshFamily(ctx context.Context, raw string) (*storage.RefreshFamily, error)
	RotateRefreshFamily(ctx context.Context, f *storage.RefreshFamily, expiresAt, accessExpiresAt time.Time) (string, error)
	RotateRefreshFamilyByToken(ctx context.Context, raw, clientID string, expiresAt, accessExpiresAt time.Time) (*storage.RefreshFamily, string, error)
	RevokeRefreshFamily(ctx context.Context, id string) error
	RevokeFamilyAccess(ctx context.Context, id string, generation int64) error
	RevokeAuthRequestTokens(ctx context.Context, authRequestID string) error

	SessionByToken(ctx context.Context, token string) (*storage.Session, error)
	SessionByID(ctx context.Context, id string) (*storage.Session, error)
	EndSession(ctx context.Context, id string) (*storage.Session, error)

	Ping(ctx context.Context) error
	Now() time.Time
}

// Metrics receives what the provider issues; the server counts it.
type Metrics interface {
	TokenIssued(grant string)
}

// opStorage adapts Store to op.Storage and its optional capabilities.
type opStorage struct {
	store     Store
	clients   *clientCache
	keys      *keys.Manager
	secrets   SecretHasher
	lifetimes Lifetimes
	loginURL  func(authRequestID string) string
	logoutURL func(ctx context.Context, redirect string) string
	metrics   Metrics
	onLogout  func()
	devMode   bool // plain-http loopback issuer
}

var (
	_ op.Storage                        = (*opStorage)(nil)
	_ op.ClientCredentialsStorage       = (*opStorage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*opStorage)(nil)
	_ op.CanTerminateSessionFromRequest = (*opStorage)(nil)
)

// asOIDC keeps protocol errors and turns everything else into server_error, logging
// the detail: op answers a bare error with a 500 anyway, and this way the log says why.
func asOIDC(ctx context.Context, err error, what string) error {
	var oe *oidc.Error
	if errors.As(err, &oe) {
		return err
	}
	slog.ErrorContext(ctx, what, "err", err)
	return oidc.ErrServerError().WithParent(err)
}

func (s *opStorage) client(ctx context.Context, id string) (*client, error) {
	c, err := s.clients.get(ctx, id)
	if storage.IsNotFound(err) {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client").WithParent(err)
	}
	if err != nil {
		return nil, asOIDC(ctx, err, "load client")
	}
	return &client{c: c, loginURL: s.loginURL, idTokenTTL: s.lifetimes.IDToken, devMode: s.devMode}, nil
}

// GetClientByClientID implements op.OPStorage.
func (s *opStorage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	noteClient(ctx, clientID)
	return s.client(ctx, clientID)
}

// AuthorizeClientIDSecret implements op.OPStorage.
func (s *opStorage) AuthorizeClientIDSecret(ctx context.Context, clientID, secret string) error {
	noteClient(ctx, clientID)
	c, err := s.client(ctx, clientID)
	if err != nil {
		return err
	}
	if !s.secrets.Verify(secret, c.c.SecretHash) {
		return oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	return nil
}

// CreateAuthRequest implements op.AuthStorage. op has validated the request; here the
// client's scope allow-list is applied and the "claims" parameter (which op does not
// parse) is kept.
func (s *opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject string) (op.AuthRequest, error) {
	c, err := s.client(ctx, req.ClientID)
	if err != nil {
		return nil, err
	}
	rawClaims := claimsParamFrom(ctx)
	if _, err := parseClaimsRequest(rawClaims); err != nil {
		return nil, err
	}
	scopes := slices.DeleteFunc(slices.Clone([]string(req.Scopes)), func(sc string) bool { return !c.allowsScope(sc) })
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	if slices.Contains(scopes, oidc.ScopeOfflineAccess) && !c.hasGrant(oidc.GrantTypeRefreshToken) {
		scopes = slices.DeleteFunc(scopes, func(sc string) bool { return sc == oidc.ScopeOfflineAccess })
	}
	// PKCE is required of public clients (RFC 9700 §2.1.1); op checks it at the token
	// endpoint, but refusing here tells the product before the person signs in.
	if c.AuthMethod() == oidc.AuthMethodNone && req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is required for public clients")
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	// RFC 7636 §4.2: an S256 challenge is the base64url SHA-256 of the verifier, 43
	// characters; no verifier can ever match anything else.
	if req.CodeChallenge != "" && !s256Challenge.MatchString(req.CodeChallenge) {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is not a base64url SHA-256 digest")
	}
	if err := checkStoredParams(req, rawClaims); err != nil {
		return nil, err
	}
	if requestURIParamFrom(ctx) {
		// OIDC Core §6.2; discovery says request_uri_parameter_supported: false.
		return nil, &oidc.Error{ErrorType: "request_uri_not_supported", Description: "the request_uri parameter is not supported"}
	}
	r := &storage.AuthRequest{
		ClientID: req.ClientID, RedirectURI: req.RedirectURI, State: req.State, Nonce: req.Nonce,
		Scopes: scopes, ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt: []string(req.Prompt), LoginHint: req.LoginHint, ACRValues: []string(req.ACRValues),
		Claims: rawClaims, HintSubject: hintSubject,
		CreatedAt: s.store.Now(), ExpiresAt: s.store.Now().Add(s.lifetimes.AuthRequest),
	}
	for _, tag := range req.UILocales {
		r.UILocales = append(r.UILocales, tag.String())
	}
	if req.MaxAge != nil {
		v := int64(*req.MaxAge)
		r.MaxAge = &v
	}
	if err := s.store.CreateAuthRequest(ctx, r); err != nil {
		return nil, asOIDC(ctx, err, "store auth request")
	}
	return authRequest{r}, nil
}

var s256Challenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// checkStoredParams refuses free-form parameters that cannot be stored as text
// (PostgreSQL accepts only valid UTF-8) and response modes op does not implement.
func checkStoredParams(req *oidc.AuthRequest, rawClaims string) error {
	for name, v := range map[string]string{
		"state": req.State, "nonce": req.Nonce, "login_hint": req.LoginHint, "claims": rawClaims,
	} {
		if !utf8.ValidString(v) {
			return oidc.ErrInvalidRequest().WithDescription("%s is not valid UTF-8", name)
		}
	}
	switch req.ResponseMode {
	case "", oidc.ResponseModeQuery, oidc.ResponseModeFragment, oidc.ResponseModeFormPost:
	default:
		return oidc.ErrInvalidRequest().WithDescription("unsupported response_mode")
	}
	return nil
}

// AuthRequestByID implements op.AuthStorage.
func (s *opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.store.AuthRequestByID(ctx, id)
	if storage.IsNotFound(err) {
		return nil, oidc.ErrInvalidRequest().WithDescription("the sign-in request has expired").WithParent(err)
	}
	if err != nil {
		return nil, asOIDC(ctx, err, "load auth request")
	}
	return authRequest{r}, nil
}

// AuthRequestByCode implements op.AuthStorage. The code is spent here, before op
// checks PKCE and the client, so a code can never be tried twice; a second
// presentation revokes the tokens the first one produced (RFC 6749 §4.1.2).
func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.store.ExchangeCode(ctx, code, s.lifetimes.CodeRetention)
	if storage.IsReused(err) {
		slog.WarnContext(ctx, "authorization code reused; revoking its tokens", "client_id", r.ClientID, "auth_request", r.ID)
		if rerr := s.store.RevokeAuthRequestTokens(ctx, r.ID); rerr != nil {
			return nil, asOIDC(ctx, rerr, "revoke tokens of a reused code")
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("code already used").WithParent(err)
	}
	if storage.IsNotFound(err) {
		return nil, oidc.ErrInvalidGrant().WithDescription("code invalid or expired").WithParent(err)
	}
	if err != nil {
		return nil, asOIDC(ctx, err, "exchange code")
	}
	// The account came back with the spend; the grant checks it once op has
	// authenticated the product (codeGrant), before any token is stored.
	rememberUser(ctx, r.Account)
	return authRequest{r}, nil
}

// SaveAuthCode implements op.AuthStorage.
func (s *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	if err := s.store.SaveAuthCode(ctx, id, code, s.lifetimes.Code); err != nil {
		if storage.IsNotFound(err) {
			return oidc.ErrInvalidRequest().WithDescription("the sign-in request is not complete").WithParent(err)
		}
		return asOIDC(ctx, err, "save code")
	}
	return nil
}

// DeleteAuthRequest implements op.AuthStorage. op's own token response would call it
// after a code exchange (tokenResponse does not): the row stays, marked used, until it
// expires so that reuse is recognised.
func (s *opStorage) DeleteAuthRequest(ctx context.Context, id string) error { return nil }

// userActive refuses tokens for accounts that are gone or blocked.
func (s *opStorage) userActive(ctx context.Context, userID string) (*storage.User, error) {
	u, err := userOnce(ctx, userID, s.store.UserByID)
	if storage.IsNotFound(err) {
		return nil, oidc.ErrInvalidGrant().WithDescription("account not found").WithParent(err)
	}
	if err != nil {
		return nil, asOIDC(ctx, err, "load user")
	}
	if u.Blocked {
		return nil, oidc.ErrInvalidGrant().WithDescription("account is blocked")
	}
	return u, nil
}

// accessTokenRow is the row of the access token a code exchange without a refresh
// token issues (see machineTokenPrefix for the kinds of access tokens).
func (s *opStorage) accessTokenRow(r authRequest) *storage.AccessToken {
	now := s.store.Now()
	return &storage.AccessToken{ // the store gives it its id
		ClientID: r.r.ClientID, UserID: r.r.UserID, SessionID: r.r.SessionID, AuthRequestID: r.r.ID,
		Scopes: r.GetScopes(), Audience: r.GetAudience(), Claims: r.r.Claims,
		CreatedAt: now, ExpiresAt: now.Add(s.lifetimes.AccessToken),
	}
}

// CreateAccessToken implements op.AuthStorage.
func (s *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	switch r := req.(type) {
	case authRequest:
		t := s.accessTokenRow(r)
		if err := s.store.CreateAccessToken(ctx, t); err != nil {
			return "", time.Time{}, codeTokenErr(ctx, err, "store access token")
		}
		s.metrics.TokenIssued(string(oidc.GrantTypeCode))
		return t.ID, t.ExpiresAt, nil
	case clientCredentialsRequest:
		// Nothing to write: see machineTokenPrefix.
		s.metrics.TokenIssued(string(oidc.GrantTypeClientCredentials))
		return newMachineTokenID(), s.store.Now().Add(s.lifetimes.AccessToken), nil
	}
	return "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

// codeTokenErr is the protocol error for storing a token made from a code (or for a
// machine): a code presented again while this exchange ran refuses it (see
// AuthRequestByCode).
func codeTokenErr(ctx context.Context, err error, what string) error {
	if storage.IsReused(err) {
		return oidc.ErrInvalidGrant().WithDescription("code already used, or its sign-in ended").WithParent(err)
	}
	return asOIDC(ctx, err, what)
}

// CreateAccessAndRefreshTokens implements op.AuthStorage: a new family after a code
// exchange, the next generation after a refresh. The access token has no row: its jti
// names the family and the generation (see familyTokenID).
func (s *opStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.store.Now()
	accessExpires := now.Add(s.lifetimes.AccessToken)
	switch r := req.(type) {
	case authRequest:
		f := &storage.RefreshFamily{ // the store gives it its ids
			ClientID: r.r.ClientID, UserID: r.r.UserID, SessionID: r.r.SessionID, AuthRequestID: r.r.ID,
			Scopes: r.r.Scopes, Audience: r.GetAudience(),
			AuthTime: r.r.AuthTime, AMR: r.r.AMR, ACR: r.r.ACR, IDP: r.r.IDP, Claims: r.r.Claims,
			CreatedAt: now, ExpiresAt: now.Add(s.lifetimes.RefreshIdle), FamilyExpiresAt: now.Add(s.lifetimes.RefreshMax),
			AccessExpiresAt: accessExpires,
		}
		raw, err := s.store.CreateRefreshFamily(ctx, f)
		if err != nil {
			return "", "", time.Time{}, codeTokenErr(ctx, err, "store refresh token")
		}
		s.metrics.TokenIssued(string(oidc.GrantTypeCode))
		return familyTokenID(f.AccessID, f.Generation), raw, accessExpires, nil
	case *refreshRequest:
		if r.next != "" { // rotated already (TokenRequestByRefreshToken)
			s.metrics.TokenIssued(string(oidc.GrantTypeRefreshToken))
			return familyTokenID(r.f.AccessID, r.f.Generation), r.next, r.accessExpires, nil
		}
		// RFC 6749 §6: a narrower scope asked for applies to the new access token
		// only (op puts it in the JWT); the family keeps the scope it was granted.
		f := r.f
		raw, err := s.store.RotateRefreshFamily(ctx, f, now.Add(s.lifetimes.RefreshIdle), accessExpires)
		if storage.IsReused(err) {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used").WithParent(err)
		}
		if storage.IsNotFound(err) {
			// Revoked or expired since TokenRequestByRefreshToken read it, or its
			// account blocked or session ended: the rotation re-checks all of it.
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token invalid or expired").WithParent(err)
		}
		if err != nil {
			return "", "", time.Time{}, asOIDC(ctx, err, "rotate refresh token")
		}
		s.metrics.TokenIssued(string(oidc.GrantTypeRefreshToken))
		return familyTokenID(f.AccessID, f.Generation), raw, accessExpires, nil
	}
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

// TokenRequestByRefreshToken implements op.AuthStorage.
//
// op reads the grant here and creates the tokens later (CreateAccessAndRefreshTokens),
// checking in between only that the grant is the presenting product's and that a scope
// asked for is within the granted one. When the request asks for no scope and op has
// authenticated one product, the rotation happens here instead, in one statement that
// also does those checks, and saves reading the family first; anything that statement
// does not rotate takes the path below, which tells why.
func (s *opStorage) TokenRequestByRefreshToken(ctx context.Context, raw string) (op.RefreshTokenRequest, error) {
	clientID, known := presentingClient(ctx)
	if known && !scopeAsked(ctx) {
		now := s.store.Now()
		accessExpires := now.Add(s.lifetimes.AccessToken)
		f, next, err := s.store.RotateRefreshFamilyByToken(ctx, raw, clientID, now.Add(s.lifetimes.RefreshIdle), accessExpires)
		if err == nil {
			rememberUser(ctx, f.Account)
			return &refreshRequest{f: f, scopes: f.Scopes, next: next, accessExpires: accessExpires}, nil
		}
		if !storage.IsNotFound(err) {
			return nil, asOIDC(ctx, err, "rotate refresh token")
		}
	}
	// An unknown product ("") never counts as the family's own: no replay is taken
	// from it (see storage.Store.RefreshFamilyByToken).
	f, err := s.store.RefreshFamilyByToken(ctx, raw, clientID)
	switch {
	case storage.IsReused(err):
		slog.WarnContext(ctx, "refresh token replayed; family revoked", "err", err)
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token already used").WithParent(err)
	case storage.IsNotFound(err):
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token invalid or expired").WithParent(err)
	case err != nil:
		return nil, asOIDC(ctx, err, "load refresh token")
	}
	if _, err := s.userActive(ctx, f.UserID); err != nil {
		return nil, err
	}
	return &refreshRequest{f: f, scopes: f.Scopes}, nil
}

// TerminateSession implements op.AuthStorage; TerminateSessionFromRequest is used instead.
func (s *opStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	return nil
}

// TerminateSessionFromRequest implements op.CanTerminateSessionFromRequest. It ends
// the browser's own session and the one the id_token_hint names (if it is the same
// person's). Without a valid id_token_hint nothing is ended here: the person is asked
// to confirm on the login app's logout page, so that a link alone cannot sign anyone out.
func (s *opStorage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if req.IDTokenHintClaims == nil {
		return s.logoutURL(ctx, req.RedirectURI), nil
	}
	ended := false
	if token := BrowserSessionFrom(ctx); token != "" {
		if sess, err := s.store.SessionByToken(ctx, token); err == nil && sess.UserID == req.UserID {
			if _, err := s.store.EndSession(ctx, sess.ID); err != nil && !storage.IsNotFound(err) {
				return "", asOIDC(ctx, err, "end session")
			}
			ended = true
		}
	}
	if sid := req.IDTokenHintClaims.SessionID; sid != "" {
		if sess, err := s.store.SessionByID(ctx, sid); err == nil && sess.UserID == req.UserID {
			if _, err := s.store.EndSession(ctx, sid); err != nil && !storage.IsNotFound(err) {
				return "", asOIDC(ctx, err, "end session")
			}
			ended = true
		}
	}
	if ended && s.onLogout != nil {
		s.onLogout()
	}
	return req.RedirectURI, nil
}

// RevokeToken implements op.AuthStorage (RFC 7009). tokenOrID is a raw refresh token
// (GetRefreshTokenInfo hands it back as its "id"), an access token's id when op has
// identified a JWT access token (userID is then set), or whatever the client sent.
// Unknown tokens are not an error.
func (s *opStorage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	// op passes the user id for a refresh token too (from GetRefreshTokenInfo), so the
	// refresh token is looked for first: an access token id never names one.
	f, err := s.store.FindRefreshFamily(ctx, tokenOrID)
	if err != nil && !storage.IsNotFound(err) {
		slog.ErrorContext(ctx, "find refresh token to revoke", "err", err)
		return oidc.ErrServerError()
	}
	if err == nil {
		if f.ClientID != clientID {
			return errIssuedToAnother()
		}
		if err := s.store.RevokeRefreshFamily(ctx, f.ID); err != nil {
			slog.ErrorContext(ctx, "revoke refresh family", "err", err)
			return oidc.ErrServerError()
		}
		return nil
	}
	if userID == "" {
		return nil
	}
	err = s.revokeAccessToken(ctx, tokenOrID, userID, clientID)
	var oe *oidc.Error
	switch {
	case errors.As(err, &oe):
		return oe
	case storage.IsNotFound(err):
		return nil
	case err != nil:
		slog.ErrorContext(ctx, "revoke access token", "err", err)
		return oidc.ErrServerError()
	}
	return nil
}

// errIssuedToAnother refuses to revoke another client's token (RFC 7009 §2.1) with
// the code RFC 6749 §5.2 names for a grant "issued to another client"; invalid_client
// would tell the product that its own credentials are wrong.
func errIssuedToAnother() *oidc.Error {
	return oidc.ErrInvalidGrant().WithDescription("token was issued to another client")
}

// GetRefreshTokenInfo implements op.AuthStorage. The "token id" it returns is the token
// itself, which op passes on to RevokeToken: a family's id is the visible half of its
// token, so nothing revokes by the id alone.
func (s *opStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	f, err := s.store.FindRefreshFamily(ctx, token)
	if err != nil {
		return "", "", op.ErrInvalidRefreshToken
	}
	return f.UserID, token, nil
}

// signingKey adapts the current key to op.SigningKey.
type signingKey struct{ k keys.Key }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.k.Algorithm }
func (k signingKey) Key() any                                    { return k.k.Private }
func (k signingKey) ID() string                                  { return k.k.ID }

// publicKey adapts a published key to op.Key.
type publicKey struct{ k keys.Key }

func (k publicKey) ID() string                         { return k.k.ID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.k.Algorithm }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.k.Public }

// SigningKey implements op.AuthStorage.
func (s *opStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k, err := s.keys.Signing(ctx)
	if err != nil {
		return nil, asOIDC(ctx, err, "load signing key")
	}
	return signingKey{k}, nil
}

// SignatureAlgorithms implements op.AuthStorage.
func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.keys.Algorithm()}, nil
}

// KeySet implements op.AuthStorage.
func (s *opStorage) KeySet(ctx context.Context) ([]op.Key, error) {
	ks, err := s.keys.Published(ctx)
	if err != nil {
		return nil, asOIDC(ctx, err, "load key set")
	}
	out := make([]op.Key, len(ks))
	for i, k := range ks {
		out[i] = publicKey{k}
	}
	return out, nil
}

// SetUserinfoFromScopes implements op.OPStorage; SetUserinfoFromRequest does the work.
func (s *opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest for ID tokens.
func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if r, ok := req.(*refreshRequest); ok && !slices.ContainsFunc(scopes, needsAccount) {
		// A refresh's ID token that carries no claims of the account needs no read
		// of it: the rotation, which comes first, refused a blocked account.
		info.Subject = r.f.UserID
		appendSessionClaims(info, req)
		return nil
	}
	u, err := s.userActive(ctx, req.GetSubject())
	if err != nil {
		return err
	}
	if ar, ok := req.(authRequest); ok {
		c, err := s.client(ctx, ar.r.ClientID)
		if err != nil {
			return err
		}
		scopes = effectiveScopes(scopes, ar.r.Claims, "id_token", c.allowsScope)
	}
	fillUserinfo(info, u, scopes)
	if err := s.fillGosuslugi(ctx, info, u, scopes); err != nil {
		return err
	}
	appendSessionClaims(info, req)
	return nil
}

// appendSessionClaims adds the sign-in's session (sid) and upstream connector (idp).
func appendSessionClaims(info *oidc.UserInfo, req op.IDTokenRequest) {
	if sid := sessionOf(req); sid != "" {
		info.AppendClaims("sid", sid)
	}
	if idp := idpOf(req); idp != "" {
		info.AppendClaims("idp", idp)
	}
}

// needsAccount reports whether an ID token with scope carries claims read from the
// account (fillUserinfo, fillGosuslugi).
func needsAccount(scope string) bool {
	switch scope {
	case oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone, ScopeGosuslugi:
		return true
	}
	return false
}

// SetUserinfoFromToken implements op.OPStorage for the userinfo endpoint.
func (s *opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	t, err := s.liveAccessToken(ctx, tokenID, subject)
	if err != nil {
		if storage.IsNotFound(err) {
			return oidc.ErrAccessDenied().WithDescription("access token invalid or revoked")
		}
		return asOIDC(ctx, err, "load access token")
	}
	if t.UserID == "" || t.UserID != subject {
		return oidc.ErrAccessDenied().WithDescription("access token does not belong to a person")
	}
	u, err := s.userActive(ctx, t.UserID)
	if err != nil {
		return oidc.ErrAccessDenied().WithDescription("account is not active")
	}
	scopes := []string(t.Scopes)
	// The token carries the request's "claims" parameter: the authorization request
	// itself is gone minutes after the code exchange, while refreshed tokens live on.
	if t.Claims != "" {
		if c, err := s.client(ctx, t.ClientID); err == nil {
			scopes = effectiveScopes(scopes, t.Claims, "userinfo", c.allowsScope)
		}
	}
	fillUserinfo(info, u, scopes)
	if err := s.fillGosuslugi(ctx, info, u, scopes); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// SetIntrospectionFromToken implements op.OPStorage. Any error makes op answer
// active:false, which is what a revoked, expired or foreign token must get.
func (s *opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.liveAccessToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if t.UserID != "" {
		if _, err := s.userActive(ctx, t.UserID); err != nil {
			return err
		}
	}
	// RFC 7662 §4: a resource server learns only about tokens meant for it.
	if clientID != t.ClientID && !slices.Contains(t.Audience, clientID) {
		return errors.New("token not meant for the introspecting client")
	}
	resp.Scope = oidc.SpaceDelimitedArray(t.Scopes)
	resp.ClientID = t.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(t.CreatedAt)
	resp.Subject = subject
	resp.Audience = oidc.Audience(t.Audience)
	resp.JWTID = t.ID
	return nil
}

// GetPrivateClaimsFromScopes implements op.OPStorage.
func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID implements op.OPStorage; private_key_jwt is not offered.
func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrInvalidClient().WithDescription("private_key_jwt is not supported")
}

// ValidateJWTProfileScopes implements op.OPStorage; the JWT profile grant is not offered.
func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

// Health implements op.Storage.
func (s *opStorage) Health(ctx context.Context) error { return s.store.Ping(ctx) }

// ClientCredentials implements op.ClientCredentialsStorage: the secret is checked
// here, in constant time, because op does not.
func (s *opStorage) ClientCredentials(ctx context.Context, clientID, secret string) (op.Client, error) {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if !s.secrets.Verify(secret, c.c.SecretHash) {
		return nil, oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	// The grant itself is checked by op next, which answers unauthorized_client (RFC
	// 6749 §5.2); any error returned here becomes invalid_client.
	return c, nil
}

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage. Scopes about a
// person (openid, profile, …, offline_access) mean nothing here and are dropped.
func (s *opStorage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	granted := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		if _, personal := personalScopes[sc]; !personal && c.allowsScope(sc) {
			granted = append(granted, sc)
		}
	}
	return clientCredentialsRequest{clientID: clientID, scopes: granted}, nil
}

var personalScopes = map[string]struct{}{
	oidc.ScopeOpenID: {}, oidc.ScopeProfile: {}, oidc.ScopeEmail: {}, oidc.ScopePhone: {},
	oidc.ScopeAddress: {}, oidc.ScopeOfflineAccess: {}, ScopeGosuslugi: {},
}
