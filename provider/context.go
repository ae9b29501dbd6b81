package provider

import (
	"context"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

type ctxKey int

const (
	claimsParamKey ctxKey = iota
	browserSessionKey
	requestURIParamKey
)

// claimsParamFrom returns the raw "claims" authorization parameter, which op's
// request type does not carry.
func claimsParamFrom(ctx context.Context) string {
	v, _ := ctx.Value(claimsParamKey).(string)
	return v
}

// requestURIParamFrom reports whether the authorization request came with a
// "request_uri" parameter, which op ignores.
func requestURIParamFrom(ctx context.Context) bool {
	v, _ := ctx.Value(requestURIParamKey).(bool)
	return v
}

// WithBrowserSession tells the provider the browser's session cookie value, so that
// end_session can end that session.
func WithBrowserSession(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, browserSessionKey, token)
}

// BrowserSessionFrom returns what WithBrowserSession stored.
func BrowserSessionFrom(ctx context.Context) string {
	v, _ := ctx.Value(browserSessionKey).(string)
	return v
}

// keepClaimsParam is an op interceptor that keeps the "claims" parameter of an
// authorization request for CreateAuthRequest, and notes a "request_uri" parameter
// so that it can be refused.
func keepClaimsParam(authorizePath string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == authorizePath {
				if err := r.ParseForm(); err == nil {
					if c := r.Form.Get("claims"); c != "" {
						r = r.WithContext(context.WithValue(r.Context(), claimsParamKey, c))
					}
					if r.Form.Get("request_uri") != "" {
						r = r.WithContext(context.WithValue(r.Context(), requestURIParamKey, true))
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// rejectMalformedForm answers a request whose query or form body does not parse with
// 400 invalid_request; op's end_session handler would answer it with a 500.
func rejectMalformedForm(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("malformed request parameters").WithParent(err), nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// noStoreTokens marks the token endpoint's answers uncacheable (RFC 6749 §5.1: they
// carry tokens); op sets no caching headers.
func noStoreTokens(tokenPath string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == tokenPath {
				w.Header().Set("Cache-Control", "no-store")
				w.Header().Set("Pragma", "no-cache")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// bearerChallenge makes the userinfo endpoint refuse a token it does not accept
// (revoked, expired, not an access token, of a blocked account) with 401 and a
// WWW-Authenticate challenge (RFC 6750 §3, §3.1). op answers those with 403, which a
// product takes for a permanent refusal rather than a reason to refresh.
func bearerChallenge(userinfoPath string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != userinfoPath {
				next.ServeHTTP(w, r)
				return
			}
			challenge := `Bearer error="invalid_token"`
			if r.Header.Get("Authorization") == "" && r.Form.Get("access_token") == "" {
				challenge = "Bearer" // §3.1: no error code when no token was sent
			}
			next.ServeHTTP(&bearerWriter{ResponseWriter: w, challenge: challenge}, r)
		})
	}
}

type bearerWriter struct {
	http.ResponseWriter
	challenge string
}

func (b *bearerWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		b.Header().Set("WWW-Authenticate", b.challenge)
		code = http.StatusUnauthorized
	}
	b.ResponseWriter.WriteHeader(code)
}
