package conformance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

func limitTests() []test {
	return []test{
		{"hit counts per key and window", testLimitHit},
		{"a new window starts at 1", testLimitWindow},
		{"one key, two window lengths", testLimitWindowLengths},
		{"reset", testLimitReset},
		{"long keys", testLimitLongKey},
		{"old windows are cleaned up", testLimitCleanup},
		{"race hit one key", testLimitRaceHit},
	}
}

func testLimitHit(t *testing.T, e *env) {
	const window = time.Minute
	hits := []struct {
		key  string
		want int64
	}{
		{"signin:+79105940899", 1}, {"signin:+79105940899", 2}, {"ip:203.0.113.7", 1},
		{"signin:+79105940899", 3}, {"ip:203.0.113.7", 2}, {"otp:ivan@example.ru", 1},
	}
	for _, h := range hits {
		n, err := e.s.Hit(e.ctx, h.key, window)
		must(t, err)
		if n != h.want {
			t.Errorf("Hit(%q) = %d; want %d", h.key, n, h.want)
		}
		e.advance(time.Second) // still the same window
	}
	for key, want := range map[string]int64{"signin:+79105940899": 3, "ip:203.0.113.7": 2, "absent": 0} {
		n, err := e.s.Count(e.ctx, key, window)
		must(t, err)
		if n != want {
			t.Errorf("Count(%q) = %d; want %d", key, n, want)
		}
	}
}

func testLimitWindow(t *testing.T, e *env) {
	const key, window = "signin:+79105940899", 10 * time.Minute
	for range 3 {
		_, err := e.s.Hit(e.ctx, key, window)
		must(t, err)
	}
	e.advance(window - time.Second)
	n, err := e.s.Hit(e.ctx, key, window)
	must(t, err)
	if n != 4 {
		t.Errorf("the last second of a window: Hit = %d; want 4", n)
	}
	e.advance(time.Second)
	n, err = e.s.Count(e.ctx, key, window)
	must(t, err)
	if n != 0 {
		t.Errorf("Count in a new window = %d; want 0", n)
	}
	n, err = e.s.Hit(e.ctx, key, window)
	must(t, err)
	if n != 1 {
		t.Errorf("the first Hit of a new window = %d; want 1", n)
	}
}

// testLimitWindowLengths counts one key under two limits ("5 a minute, 20 an hour"):
// their windows begin at the same instant on the hour and must still count apart.
func testLimitWindowLengths(t *testing.T, e *env) {
	const key = "signin:+79105940899"
	for i := range 3 {
		n, err := e.s.Hit(e.ctx, key, time.Minute)
		must(t, err)
		if n != int64(i+1) {
			t.Errorf("minute window: Hit = %d; want %d", n, i+1)
		}
		n, err = e.s.Hit(e.ctx, key, time.Hour)
		must(t, err)
		if n != int64(i+1) {
			t.Errorf("hour window: Hit = %d; want %d", n, i+1)
		}
	}
	must(t, e.s.ResetLimit(e.ctx, key, time.Minute))
	n, err := e.s.Count(e.ctx, key, time.Hour)
	must(t, err)
	if n != 3 {
		t.Errorf("hour window after resetting the minute window: Count = %d; want 3", n)
	}
	// The minute window's counter expires first; the hour's must survive its cleanup.
	_, err = e.s.Hit(e.ctx, key, time.Minute)
	must(t, err)
	e.advance(time.Minute)
	_, err = e.s.DeleteExpired(e.ctx, storage.DefaultRetention)
	must(t, err)
	n, err = e.s.Count(e.ctx, key, time.Hour)
	must(t, err)
	if n != 3 {
		t.Errorf("hour window after the minute window's cleanup: Count = %d; want 3", n)
	}
}

func testLimitReset(t *testing.T, e *env) {
	const window = time.Hour
	for range 4 {
		_, err := e.s.Hit(e.ctx, "signin:+79105940899", window)
		must(t, err)
	}
	_, err := e.s.Hit(e.ctx, "signin:+79105940800", window)
	must(t, err)
	must(t, e.s.ResetLimit(e.ctx, "signin:+79105940899", window))
	must(t, e.s.ResetLimit(e.ctx, "absent", window))
	n, err := e.s.Count(e.ctx, "signin:+79105940899", window)
	must(t, err)
	if n != 0 {
		t.Errorf("Count after ResetLimit = %d; want 0", n)
	}
	n, err = e.s.Hit(e.ctx, "signin:+79105940899", window)
	must(t, err)
	if n != 1 {
		t.Errorf("Hit after ResetLimit = %d; want 1", n)
	}
	n, err = e.s.Count(e.ctx, "signin:+79105940800", window)
	must(t, err)
	if n != 1 {
		t.Errorf("ResetLimit of one key changed another: Count = %d; want 1", n)
	}
}

// testLimitLongKey counts keys longer than any column would hold (an email may have
// 320 characters, and the caller adds a prefix).
func testLimitLongKey(t *testing.T, e *env) {
	long := "signin:" + strings.Repeat("a", 300) + "@example.ru"
	for _, key := range []string{long, long, long + "x", long} {
		_, err := e.s.Hit(e.ctx, key, time.Minute)
		must(t, err)
	}
	for key, want := range map[string]int64{long: 3, long + "x": 1} {
		n, err := e.s.Count(e.ctx, key, time.Minute)
		must(t, err)
		if n != want {
			t.Errorf("Count of a %d-byte key = %d; want %d", len(key), n, want)
		}
	}
	must(t, e.s.ResetLimit(e.ctx, long, time.Minute))
	n, err := e.s.Count(e.ctx, long, time.Minute)
	must(t, err)
	if n != 0 {
		t.Errorf("Count of a long key after ResetLimit = %d", n)
	}
}

func testLimitCleanup(t *testing.T, e *env) {
	for _, key := range []string{"a", "b", "c"} {
		_, err := e.s.Hit(e.ctx, key, time.Minute)
		must(t, err)
	}
	e.advance(time.Minute)
	_, err := e.s.Hit(e.ctx, "a", time.Minute)
	must(t, err)
	counts, err := e.s.DeleteExpired(e.ctx, storage.DefaultRetention)
	must(t, err)
	if counts["rate_counters"] != 3 {
		t.Errorf("DeleteExpired removed %d rate counters; want the 3 of the last window", counts["rate_counters"])
	}
	n, err := e.s.Count(e.ctx, "a", time.Minute)
	must(t, err)
	if n != 1 {
		t.Errorf("the current window's counter: %d; want 1", n)
	}
}

func testLimitRaceHit(t *testing.T, e *env) {
	const perRacer = 10
	got := make([][]int64, racers)
	errs := race(racers, func(i int) error {
		for range perRacer {
			n, err := e.s.Hit(e.ctx, "signin:+79105940899", time.Hour)
			if err != nil {
				return err
			}
			got[i] = append(got[i], n)
		}
		return nil
	})
	for _, err := range errs {
		must(t, err)
	}
	n, err := e.s.Count(e.ctx, "signin:+79105940899", time.Hour)
	must(t, err)
	if n != racers*perRacer {
		t.Errorf("Count after %d racing hits = %d", racers*perRacer, n)
	}
	// Each hit saw its own count: together they are exactly 1…N.
	all := slices.Concat(got...)
	slices.Sort(all)
	for i, v := range all {
		if v != int64(i+1) {
			t.Errorf("racing hits returned counts %v; want each of 1…%d once", all, racers*perRacer)
			break
		}
	}
}
