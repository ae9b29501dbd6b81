package provider

import (
	"context"
	"net/http"
	"slices"
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
	// clients are the products op looked up or authenticated in this request; on the
	// token endpoint, the one presenting the grant (see presentingClient).
	clients []string
	// scopeAsked: the token request has a scope parameter.
	scopeAsked bool
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
	return once(ctx, usersOf, id, load)
}

// rememberUser keeps u, as a statement of this request returned it, for userOnce. Such
// an account has the columns the token endpoint uses (storage.returnedAccount) and no
// password hash; nothing that reads one in a token request needs the hash.
func rememberUser(ctx context.Context, u *storage.User) {
	if memo, _ := ctx.Value(requestMemoKey{}).(*requestMemo); memo != nil && u != nil {
		keep(memo, usersOf, u.ID, u)
	}
}

func usersOf(m *requestMemo) *map[string]*storage.User { return &m.users }

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
		keep(memo, table, key, v)
	}
	return v, err
}

// keep puts v under key in the memo's table.
func keep[T any](memo *requestMemo, table func(*requestMemo) *map[string]T, key string, v T) {
	memo.mu.Lock()
	defer memo.mu.Unlock()
	t := table(memo)
	if *t == nil {
		*t = map[string]T{}
	}
	(*t)[key] = v
}

// noteClient records a product op looked up or authenticated in this request.
func noteClient(ctx context.Context, id string) {
	if memo, _ := ctx.Value(requestMemoKey{}).(*requestMemo); memo != nil {
		memo.mu.Lock()
		if !slices.Contains(memo.clients, id) {
			memo.clients = append(memo.clients, id)
		}
		memo.mu.Unlock()
	}
}

// presentingClient is the product a token request comes from, as op authenticated it
// before it asks for the grant: the one product op looked up in this request. A
// request in which op looked up none or several has none.
func presentingClient(ctx context.Context) (string, bool) {
	memo, _ := ctx.Value(requestMemoKey{}).(*requestMemo)
	if memo == nil {
		return "", false
	}
	memo.mu.Lock()
	defer memo.mu.Unlock()
	if len(memo.clients) != 1 {
		return "", false
	}
	return memo.clients[0], true
}

// scopeAsked reports whether the token request has a scope parameter.
func scopeAsked(ctx context.Context) bool {
	memo, _ := ctx.Value(requestMemoKey{}).(*requestMemo)
	return memo == nil || memo.scopeAsked
}

// noteTokenForm is an op interceptor that notes in the memo whether a token request
// asks for a scope (a refresh may narrow it, which op checks after the grant is read).
func noteTokenForm(tokenPath string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == tokenPath {
				if memo, _ := r.Context().Value(requestMemoKey{}).(*requestMemo); memo != nil {
					// Present in any case: op's form decoder matches names ignoring case.
					memo.scopeAsked = formValues(r.Form, "scope") != nil
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
