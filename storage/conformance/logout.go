package conformance

import (
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/astral/idp/storage"
)

func logoutTests() []test {
	return []test{
		{"claim leases", testLogoutClaimLease},
		{"claim respects the limit", testLogoutClaimLimit},
		{"finish delivered", testLogoutDelivered},
		{"finish retry", testLogoutRetry},
		{"finish give up", testLogoutGiveUp},
		{"long error is cut to a valid text", testLogoutLongError},
		{"race claim", testLogoutRaceClaim},
	}
}

// delivery reloads one delivery.
func (e *env) delivery(t *testing.T, d storage.LogoutDelivery) storage.LogoutDelivery {
	t.Helper()
	ds, err := e.s.LogoutDeliveries(e.ctx, d.SessionID)
	must(t, err)
	for _, got := range ds {
		if got.ID == d.ID {
			return got
		}
	}
	t.Fatalf("delivery %s is gone", d.ID)
	return storage.LogoutDelivery{}
}

// claimIDs claims up to limit deliveries with lease and returns their ids.
func (e *env) claimIDs(t *testing.T, limit int, lease time.Duration) map[string]int {
	t.Helper()
	ds, err := e.s.ClaimLogoutDeliveries(e.ctx, limit, lease)
	must(t, err)
	ids := map[string]int{}
	for _, d := range ds {
		ids[d.ID] = d.Attempts
	}
	return ids
}

func testLogoutClaimLease(t *testing.T, e *env) {
	queued := e.deliveries(t, 3)
	first := e.claimIDs(t, 10, time.Minute)
	if len(first) != 3 {
		t.Fatalf("claimed %d of 3 due deliveries", len(first))
	}
	for _, d := range queued {
		if first[d.ID] != 1 {
			t.Errorf("delivery %s claimed with attempts %d; want 1", d.ID, first[d.ID])
		}
	}
	if got := e.claimIDs(t, 10, time.Minute); len(got) != 0 {
		t.Errorf("claimed %d leased deliveries again at once", len(got))
	}
	e.advance(time.Minute - time.Second)
	if got := e.claimIDs(t, 10, time.Minute); len(got) != 0 {
		t.Errorf("claimed %d deliveries a second before their lease ends", len(got))
	}
	e.advance(time.Second)
	again := e.claimIDs(t, 10, time.Minute)
	if len(again) != 3 {
		t.Errorf("claimed %d of 3 deliveries whose lease ended", len(again))
	}
	for id, attempts := range again {
		if attempts != 2 {
			t.Errorf("delivery %s re-claimed with attempts %d; want 2", id, attempts)
		}
	}
	if got := e.delivery(t, queued[0]); got.Attempts != 2 || !got.NextAttemptAt.Equal(e.now().Add(time.Minute)) {
		t.Errorf("stored delivery has attempts %d, next attempt %v; want 2 and the lease's end", got.Attempts, got.NextAttemptAt)
	}
}

func testLogoutClaimLimit(t *testing.T, e *env) {
	e.deliveries(t, 3)
	if got := e.claimIDs(t, 2, time.Minute); len(got) != 2 {
		t.Errorf("Claim(2) took %d", len(got))
	}
	if got := e.claimIDs(t, 10, time.Minute); len(got) != 1 {
		t.Errorf("the next claim took %d; want the 1 left", len(got))
	}
}

func testLogoutDelivered(t *testing.T, e *env) {
	ds := e.deliveries(t, 2)
	e.claimIDs(t, 10, time.Minute)
	e.advance(time.Second)
	must(t, e.s.FinishLogoutDelivery(e.ctx, ds[0].ID, true, "", time.Time{}))
	got := e.delivery(t, ds[0])
	if got.DeliveredAt == nil || !got.DeliveredAt.Equal(e.now()) || got.GaveUpAt != nil {
		t.Errorf("a delivered delivery: delivered_at %v, gave_up_at %v", got.DeliveredAt, got.GaveUpAt)
	}
	e.advance(time.Hour)
	claimed := e.claimIDs(t, 10, time.Minute)
	if _, ok := claimed[ds[0].ID]; ok || len(claimed) != 1 {
		t.Errorf("after the lease claimed %v; want only the undelivered %s", claimed, ds[1].ID)
	}
}

func testLogoutRetry(t *testing.T, e *env) {
	ds := e.deliveries(t, 1)
	e.claimIDs(t, 10, time.Minute)
	next := e.now().Add(5 * time.Minute)
	must(t, e.s.FinishLogoutDelivery(e.ctx, ds[0].ID, false, "Post \"https://report.example.ru\": timeout", next))
	got := e.delivery(t, ds[0])
	if got.DeliveredAt != nil || got.GaveUpAt != nil || !got.NextAttemptAt.Equal(next) ||
		got.LastError != "Post \"https://report.example.ru\": timeout" {
		t.Errorf("a delivery to retry: %+v", got)
	}
	e.advance(5*time.Minute - time.Second)
	if got := e.claimIDs(t, 10, time.Minute); len(got) != 0 {
		t.Errorf("claimed %d deliveries before their retry time", len(got))
	}
	e.advance(time.Second)
	if got := e.claimIDs(t, 10, time.Minute); got[ds[0].ID] != 2 {
		t.Errorf("at the retry time claimed %v; want %s with attempts 2", got, ds[0].ID)
	}
}

func testLogoutGiveUp(t *testing.T, e *env) {
	ds := e.deliveries(t, 1)
	e.claimIDs(t, 10, time.Minute)
	must(t, e.s.FinishLogoutDelivery(e.ctx, ds[0].ID, false, "410 Gone", time.Time{}))
	got := e.delivery(t, ds[0])
	if got.GaveUpAt == nil || !got.GaveUpAt.Equal(e.now()) || got.DeliveredAt != nil || got.LastError != "410 Gone" {
		t.Errorf("a delivery given up: %+v", got)
	}
	e.advance(24 * time.Hour)
	if got := e.claimIDs(t, 10, time.Minute); len(got) != 0 {
		t.Errorf("claimed %d deliveries given up on", len(got))
	}
}

// testLogoutLongError stores an error text longer than the column, in Russian
// (two bytes a letter) and one byte out of step, so that a cut by bytes would split a
// letter: the stored text must still be valid UTF-8, as PostgreSQL demands.
func testLogoutLongError(t *testing.T, e *env) {
	ds := e.deliveries(t, 1)
	long := "x" + strings.Repeat("ошибка доставки; ", 200)
	must(t, e.s.FinishLogoutDelivery(e.ctx, ds[0].ID, false, long, e.now().Add(time.Minute)))
	got := e.delivery(t, ds[0])
	if !utf8.ValidString(got.LastError) || len(got.LastError) > 1024 || !strings.HasPrefix(long, got.LastError) ||
		len(got.LastError) < 900 {
		t.Errorf("stored last error of %d bytes (valid UTF-8: %v); want a valid prefix of at most 1024 bytes",
			len(got.LastError), utf8.ValidString(got.LastError))
	}
}

func testLogoutRaceClaim(t *testing.T, e *env) {
	const n = 24
	queued := e.deliveries(t, n)
	var mu sync.Mutex
	claims := map[string]int{}
	errs := race(racers/2, func(int) error {
		for {
			ds, err := e.s.ClaimLogoutDeliveries(e.ctx, 3, time.Minute)
			if err != nil || len(ds) == 0 {
				return err
			}
			mu.Lock()
			for _, d := range ds {
				claims[d.ID]++
			}
			mu.Unlock()
		}
	})
	for _, err := range errs {
		must(t, err)
	}
	for _, d := range queued {
		if claims[d.ID] != 1 {
			t.Errorf("delivery %s claimed %d times; want once", d.ID, claims[d.ID])
		}
	}
	if len(claims) != n {
		t.Errorf("claimed %d distinct deliveries; want %d", len(claims), n)
	}
}
