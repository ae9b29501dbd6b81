package provider

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/astral/idp/storage"
)

// ScopeGosuslugi grants the Gosuslugi-verified identity claims.
const ScopeGosuslugi = "gosuslugi"

// client adapts a stored product to op.Client.
type client struct {
	c          *storage.Client
	loginURL   func(authRequestID string) string
	idTokenTTL time.Duration
	devMode    bool // plain-http loopback issuer: registered http redirect URIs are allowed
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }
func (c *client) LoginURL(id string) string        { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType {
	// JWT access tokens let products' APIs verify locally; every one is also recorded
	// (jti) so revocation and introspection stay authoritative.
	return op.AccessTokenTypeJWT
}
func (c *client) IDTokenLifetime() time.Duration { return c.idTokenTTL }
func (c *client) ClockSkew() time.Duration       { return 0 }

// DevMode lets op accept a registered plain-http redirect URI for every client type
// (it otherwise allows http only for confidential web clients), so that a browser or
// native app runs against a dev-mode provider. The match is still exact.
func (c *client) DevMode() bool { return c.devMode }

// IDTokenUserinfoClaimsAssertion puts the profile claims into the ID token too: the
// products read the name and phone from it without a userinfo round trip.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c *client) ApplicationType() op.ApplicationType {
	switch c.c.Type {
	case "native":
		return op.ApplicationTypeNative
	case "spa":
		return op.ApplicationTypeUserAgent
	default:
		return op.ApplicationTypeWeb
	}
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.c.Type == "web" {
		return oidc.AuthMethodBasic // client_secret_post is accepted as well
	}
	return oidc.AuthMethodNone
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.c.GrantTypes))
	for _, g := range c.c.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}

func (c *client) hasGrant(g oidc.GrantType) bool {
	return slices.Contains(c.c.GrantTypes, string(g))
}

// allowsScope applies the client's optional scope allow-list.
func (c *client) allowsScope(scope string) bool {
	if len(c.c.Scopes) == 0 {
		return scope != ScopeGosuslugi // verified identity is granted only explicitly
	}
	return slices.Contains(c.c.Scopes, scope)
}

// IsScopeAllowed lets op keep our non-standard scopes for clients that list them.
func (c *client) IsScopeAllowed(scope string) bool { return c.allowsScope(scope) }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
