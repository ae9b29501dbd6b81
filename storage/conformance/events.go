package conformance

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/astral/idp/storage"
)

func eventTests() []test {
	return []test{
		{"record and page newest first", testEventsPaging},
		{"same instant: newest recorded first", testEventsSameInstant},
		{"long user agent and detail are cut", testEventsLong},
	}
}

func testEventsPaging(t *testing.T, e *env) {
	kinds := []string{"signin", "signin_failed", "signin_failed", "signin", "blocked"}
	for _, kind := range kinds {
		ev := &storage.AuditEvent{
			UserID: "u1", Kind: kind, Method: "pwd", ClientID: "report",
			IP: "203.0.113.7", UserAgent: "Mozilla/5.0", Detail: "попытка " + kind,
		}
		must(t, e.s.RecordEvent(e.ctx, ev))
		if ev.ID == 0 || !ev.CreatedAt.Equal(e.now()) {
			t.Errorf("RecordEvent left id %d, created_at %v; want an id and the store's clock", ev.ID, ev.CreatedAt)
		}
		must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: "u2", Kind: "signin"}))
		e.advance(time.Minute)
	}
	var got []string
	var times []time.Time
	for offset := 0; ; offset += 2 {
		page, err := e.s.UserEvents(e.ctx, "u1", offset, 2)
		must(t, err)
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("a page of 2 has %d events", len(page))
		}
		for _, ev := range page {
			if ev.UserID != "u1" || ev.Method != "pwd" || ev.ClientID != "report" || ev.IP != "203.0.113.7" ||
				ev.UserAgent != "Mozilla/5.0" || ev.Detail != "попытка "+ev.Kind {
				t.Errorf("loaded event %+v", ev)
			}
			got, times = append(got, ev.Kind), append(times, ev.CreatedAt)
		}
	}
	want := slices.Clone(kinds)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Errorf("events by page %v; want newest first %v", got, want)
	}
	for i := 1; i < len(times); i++ {
		if !times[i].Before(times[i-1]) {
			t.Errorf("event %d at %v is not older than event %d at %v", i, times[i], i-1, times[i-1])
		}
	}
	other, err := e.s.UserEvents(e.ctx, "u2", 0, 100)
	must(t, err)
	if len(other) != len(kinds) {
		t.Errorf("u2 has %d events; want %d", len(other), len(kinds))
	}
	none, err := e.s.UserEvents(e.ctx, "absent", 0, 10)
	must(t, err)
	if len(none) != 0 {
		t.Errorf("an account without events has %d", len(none))
	}
}

func testEventsSameInstant(t *testing.T, e *env) {
	for _, kind := range []string{"first", "second", "third"} {
		must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: "u1", Kind: kind}))
	}
	events, err := e.s.UserEvents(e.ctx, "u1", 0, 10)
	must(t, err)
	var got []string
	for _, ev := range events {
		got = append(got, ev.Kind)
	}
	if !slices.Equal(got, []string{"third", "second", "first"}) {
		t.Errorf("events of one instant %v; want the last recorded first", got)
	}
}

func testEventsLong(t *testing.T, e *env) {
	long := "x" + strings.Repeat("Яндекс.Браузер ", 100)
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: "u1", Kind: "signin", UserAgent: long, Detail: long}))
	events, err := e.s.UserEvents(e.ctx, "u1", 0, 10)
	must(t, err)
	if len(events) != 1 {
		t.Fatalf("%d events; want 1", len(events))
	}
	for name, got := range map[string]string{"user agent": events[0].UserAgent, "detail": events[0].Detail} {
		if len(got) < 400 || len(got) > 512 || !strings.HasPrefix(long, got) || !utf8.ValidString(got) {
			t.Errorf("stored a %s of %d bytes; want a valid prefix of at most 512", name, len(got))
		}
	}
}
