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

// gosuslugiOnce returns the account's Gosuslugi claims, reading them at most once per
// request (an ID token and a userinfo answer in one request ask twice).
func gosuslugiOnce(ctx context.Context, userID string, load func(context.Context, string) (map[string]any, error)) (map[string]any, error) {
	memo, _ := ctx.Value(requestMemoKey{}).(*requestMemo)
	if memo == nil {
		return load(ctx, userID)
	}
	memo.mu.Lock()
	claims, ok := memo.gosuslugi[userID]
	memo.mu.Unlock()
	if ok {
		return claims, nil
	}
	claims, err := load(ctx, userID)
	if err == nil {
		memo.mu.Lock()
		if memo.gosuslugi == nil {
			memo.gosuslugi = map[string]map[string]any{}
		}
		memo.gosuslugi[userID] = claims
		memo.mu.Unlock()
	}
	return claims, err
}
