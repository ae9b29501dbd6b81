package provider

import (
	"context"
	"net/http"
	"sync"

	"github.com/astral/idp/storage"
)

// requestMemo keeps the accounts one protocol request has read: a refresh checks the
// account when it reads the token and again for the ID token's claims. Nothing
// outlives the request, so a blocked account is seen by the next request at once.
type requestMemo struct {
	mu    sync.Mutex
	users map[string]*storage.User
}

type requestMemoKey struct{}

// withRequestMemo is an op interceptor that gives every request its memo.
func withRequestMemo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestMemoKey{}, &requestMemo{})))
	})
}

// userOnce returns the account, reading it at most once per request.
func userOnce(ctx context.Context, id string, load func(context.Context, string) (*storage.User, error)) (*storage.User, error) {
	memo, _ := ctx.Value(requestMemoKey{}).(*requestMemo)
	if memo == nil {
		return load(ctx, id)
	}
	memo.mu.Lock()
	u := memo.users[id]
	memo.mu.Unlock()
	if u != nil {
		return u, nil
	}
	u, err := load(ctx, id)
	if err == nil {
		memo.mu.Lock()
		if memo.users == nil {
			memo.users = map[string]*storage.User{}
		}
		memo.users[id] = u
		memo.mu.Unlock()
	}
	return u, err
}
