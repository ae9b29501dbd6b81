// Package conformance is the behaviour every storage backend must show.
//
// One suite, one factory: a backend's test calls [Run] with a function that returns a
// fresh, empty, migrated *storage.Store, and every subtest gets its own store. The
// suite never sleeps: each store runs on a test clock ([storage.Store.SetClock]) that
// the subtests move forward to expire sessions, codes, tokens and leases. Races use
// real goroutines, so run it with -race now and then.
//
// Subtests are named by area (users, clients, sessions, auth requests, codes, tokens,
// keys, limits, logout deliveries, cleanup, events), then by behaviour; the races in
// each area start with "race".
package conformance

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

// start is every store's initial time: fixed, and on an hour boundary so that
// rate-limit windows begin at known instants.
var start = time.Date(2030, time.March, 4, 10, 0, 0, 0, time.UTC)

// racers is how many goroutines each race starts.
const racers = 16

// maxStores bounds how many stores are open at once: a race holds up to racers
// connections, and a PostgreSQL server has a connection limit.
const maxStores = 8

// test is one behaviour of one area.
type test struct {
	name string
	run  func(t *testing.T, e *env)
}

// Run runs the whole suite; newStore returns a fresh, empty, migrated store for one subtest.
// Subtests run in parallel (see go test -parallel), each on its own store.
func Run(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	areas := []struct {
		name  string
		tests []test
	}{
		{"users", userTests()},
		{"clients", clientTests()},
		{"sessions", sessionTests()},
		{"auth requests", authRequestTests()},
		{"codes", codeTests()},
		{"tokens", tokenTests()},
		{"keys", keyTests()},
		{"limits", limitTests()},
		{"logout deliveries", logoutTests()},
		{"cleanup", cleanupTests()},
		{"events", eventTests()},
		{"account", accountTests()},
		{"certificates", certificateTests()},
		{"identities", identityTests()},
	}
	open := make(chan struct{}, maxStores)
	for _, area := range areas {
		t.Run(area.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range area.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					open <- struct{}{}
					// Cleanups run last-in first-out: the store closes before the slot frees.
					t.Cleanup(func() { <-open })
					s := newStore(t)
					c := &clock{now: start}
					s.SetClock(c.Now)
					tc.run(t, &env{ctx: t.Context(), s: s, clock: c})
				})
			}
		})
	}
}

// clock is a test clock that goroutines may read while a test moves it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is what one subtest works with: its store, a context and the store's clock.
type env struct {
	ctx   context.Context
	s     *storage.Store
	clock *clock
}

func (e *env) now() time.Time          { return e.clock.Now() }
func (e *env) advance(d time.Duration) { e.clock.advance(d) }

// race runs fn n times at once, releasing every goroutine together, and returns
// the n errors in the order of i.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			errs[i] = fn(i)
		})
	}
	close(gate)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one of errs is nil and that every other error is
// what loser accepts; it returns the winner's index.
func oneWinner(t *testing.T, errs []error, loser func(error) bool, loserKind string) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("racers %d and %d both succeeded; want exactly one", winner, i)
		case err == nil:
			winner = i
		case !loser(err):
			t.Errorf("racer %d: got %v; want %s", i, err, loserKind)
		}
	}
	if winner < 0 {
		t.Fatalf("no racer succeeded; errors: %v", errors.Join(errs...))
	}
	return winner
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantNotFound(t *testing.T, err error, what string) {
	t.Helper()
	if !storage.IsNotFound(err) {
		t.Errorf("%s: got error %v; want one for which storage.IsNotFound is true", what, err)
	}
}

func wantConflict(t *testing.T, err error, what string) {
	t.Helper()
	if !storage.IsConflict(err) {
		t.Errorf("%s: got error %v; want one for which storage.IsConflict is true", what, err)
	}
}

func wantReused(t *testing.T, err error, what string) {
	t.Helper()
	if !storage.IsReused(err) {
		t.Errorf("%s: got error %v; want one for which storage.IsReused is true", what, err)
	}
}

func ptr[T any](v T) *T { return &v }
