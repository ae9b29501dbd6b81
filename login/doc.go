// Package login is every page a person sees. It authenticates people and hands the
// result to the provider; it never signs a token.
//
// The sign-in flow: a product's authorization request arrives at the provider, which
// stores it and sends the browser to /login?authRequestID=…. If the browser already
// has a live session that satisfies the request (prompt, max_age, id_token_hint), the
// request is completed at once — single sign-on, no form. prompt=none without such a
// session is answered with login_required at the product's redirect URI. Otherwise the
// sign-in page is shown; a successful sign-in starts (or re-authenticates) the session,
// completes the request with amr and auth_time, and sends the browser to the
// provider's callback, which answers the product with a code. Without an authorization
// request, sign-in lands in the account cabinet.
//
// Each sign-in method lives in a subpackage (password, and later otp, certificate,
// upstream); this package holds the pages and the steps they share.
package login
