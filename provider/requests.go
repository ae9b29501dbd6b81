package provider

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/astral/idp/storage"
)

// authRequest adapts a stored authorization request to op.AuthRequest.
type authRequest struct{ r *storage.AuthRequest }

var _ op.AuthRequest = authRequest{}

func (a authRequest) GetID() string                      { return a.r.ID }
func (a authRequest) GetACR() string                     { return a.r.ACR }
func (a authRequest) GetAMR() []string                   { return a.r.AMR }
func (a authRequest) GetAudience() []string              { return []string{a.r.ClientID} }
func (a authRequest) GetAuthTime() time.Time             { return a.r.AuthTime }
func (a authRequest) GetClientID() string                { return a.r.ClientID }
func (a authRequest) GetNonce() string                   { return a.r.Nonce }
func (a authRequest) GetRedirectURI() string             { return a.r.RedirectURI }
func (a authRequest) GetScopes() []string                { return a.r.Scopes }
func (a authRequest) GetState() string                   { return a.r.State }
func (a authRequest) GetSubject() string                 { return a.r.UserID }
func (a authRequest) Done() bool                         { return a.r.Done }
func (a authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(a.r.ResponseType) }
func (a authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.r.ResponseMode) }

func (a authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.r.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{
		Challenge: a.r.CodeChallenge,
		Method:    oidc.CodeChallengeMethod(a.r.CodeChallengeMethod),
	}
}

// refreshRequest adapts a refresh family at its live generation to op.RefreshTokenRequest.
type refreshRequest struct {
	f      *storage.RefreshFamily
	scopes []string
	// next is the next generation's token when the request rotated the family as it
	// read it, and accessExpires the exp its access token gets.
	next          string
	accessExpires time.Time
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.f.AMR }
func (r *refreshRequest) GetACR() string              { return r.f.ACR }
func (r *refreshRequest) GetAudience() []string       { return r.f.Audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.f.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.f.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.f.UserID }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// clientCredentialsRequest is a product acting for itself.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

var _ op.TokenRequest = clientCredentialsRequest{}

func (c clientCredentialsRequest) GetSubject() string    { return c.clientID }
func (c clientCredentialsRequest) GetAudience() []string { return []string{c.clientID} }
func (c clientCredentialsRequest) GetScopes() []string   { return c.scopes }

// sessionOf names the browser session a token request belongs to, for the sid claim.
func sessionOf(req any) string {
	switch r := req.(type) {
	case authRequest:
		return r.r.SessionID
	case *refreshRequest:
		return r.f.SessionID
	}
	return ""
}

// idpOf names the upstream connector of a federated sign-in, for the idp claim.
func idpOf(req any) string {
	switch r := req.(type) {
	case authRequest:
		return r.r.IDP
	case *refreshRequest:
		return r.f.IDP
	}
	return ""
}
