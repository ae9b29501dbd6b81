package provider

import (
	"context"
	"net/http"
)

type ctxKey int

const (
	claimsParamKey ctxKey = iota
	browserSessionKey
)

// claimsParamFrom returns the raw "claims" authorization parameter, which op's
// request type does not carry.
func claimsParamFrom(ctx context.Context) string {
	v, _ := ctx.Value(claimsParamKey).(string)
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
// authorization request for CreateAuthRequest.
func keepClaimsParam(authorizePath string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == authorizePath {
				if err := r.ParseForm(); err == nil {
					if c := r.Form.Get("claims"); c != "" {
						r = r.WithContext(context.WithValue(r.Context(), claimsParamKey, c))
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
