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
	// gosuslugi are the accounts' Gosuslugi claims (nil: read, none linked).
	gosuslugi map[string]map[string]any
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
	return once(ctx, func(m *requestMemo) *map[string]*storage.User { return &m.users }, id, load)
}

// gosuslugiOnce returns the account's Gosuslugi claims, reading them at most once per
// request (an ID token and a userinfo answer in one request ask twice).
func gosuslugiOnce(ctx context.Context, userID string, load func(context.Context, string) (map[string]any, error)) (map[string]any, error) {
	return once(ctx, func(m *requestMemo) *map[string]map[string]any { return &m.gosuslugi }, userID, load)
}

// once reads key through load at most once per request, keeping what it read in the
// request memo's table; without a memo (outside a protocol request) it just loads.
func once[T any](ctx context.Context, table func(*requestMemo) *map[string]T, key string, load func(context.Context, string) (T, error)) (T, error) {
	memo, _ := ctx.Value(requestMemoKey{}).(*requestMemo)
	if memo == nil {
		return load(ctx, key)
	}
	memo.mu.Lock()
	v, ok := (*table(memo))[key]
	memo.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := load(ctx, key)
	if err == nil {
		memo.mu.Lock()
		t := table(memo)
		if *t == nil {
			*t = map[string]T{}
		}
		(*t)[key] = v
		memo.mu.Unlock()
	}
	return v, err
}
