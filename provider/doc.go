// Package provider is the OpenID Provider: it speaks the protocol (discovery, JWKS,
// authorize, token, userinfo, introspection, revocation, end_session) through
// github.com/zitadel/oidc/v3/pkg/op, with an op.Storage adapter over storage.
//
// The flow of an authorization request:
//
//  1. op validates /authorize and calls CreateAuthRequest, which stores the request
//     (with the "claims" parameter op does not parse) and sends the browser to the
//     login app (Client.LoginURL).
//  2. The login app authenticates the person and calls Complete with the user, the
//     browser session and how they signed in (amr, acr, auth_time); then it sends the
//     browser to CallbackURL. The provider never renders a page, and login never signs
//     a token.
//  3. op answers the callback with a code; the product exchanges it at the token
//     endpoint (AuthRequestByCode marks it used; a second use revokes what the first
//     produced) for an ID token, a JWT access token and, with offline_access, an
//     opaque refresh token that rotates on every use. op parses, authenticates and
//     validates every grant; the answer is built in tokenresponse.go.
//  4. Logout ends the browser session and queues a back-channel logout for every
//     product of that session (provider/backchannel delivers them).
package provider
