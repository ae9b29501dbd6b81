package admin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/storage"
	"github.com/astral/idp/storage/pgtest"
)

// TestUserEvents: `idp user events USER` shows the account's audit events, newest
// first, as a table; --limit bounds them and says when there may be more.
func TestUserEvents(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var h *harness
			if backend == "postgres" {
				h = newHarnessAt(t, pgtest.URL(t))
			} else {
				h = newHarness(t)
			}
			u := &storage.User{Phone: ptr("+79105940899"), Email: ptr("ivan@example.ru"), PasswordHash: "x"}
			if err := h.store.CreateUser(h.ctx, u); err != nil {
				t.Fatal(err)
			}
			other := &storage.User{Phone: ptr("+79105940800"), PasswordHash: "x"}
			if err := h.store.CreateUser(h.ctx, other); err != nil {
				t.Fatal(err)
			}
			at := time.Date(2026, time.November, 22, 11, 5, 0, 0, time.UTC)
			events := []storage.AuditEvent{
				{UserID: u.ID, Kind: "signin", Method: "pwd", ClientID: "report", IP: "203.0.113.7", Detail: "ok", CreatedAt: at},
				{UserID: u.ID, Kind: "signin_failed", Method: "pwd", IP: "198.51.100.9", Detail: "invalid +7***99",
					CreatedAt: at.Add(time.Minute)},
				{UserID: u.ID, Kind: "password_changed", Method: "pwd", CreatedAt: at.Add(2 * time.Minute)},
				{UserID: other.ID, Kind: "signin", Method: "otp", Detail: "sms", CreatedAt: at.Add(3 * time.Minute)},
			}
			for i := range events {
				if err := h.store.RecordEvent(h.ctx, &events[i]); err != nil {
					t.Fatal(err)
				}
			}

			res := h.mustRun("", "user", "events", "8 (910) 594-08-99")
			lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
			if len(lines) != 4 {
				t.Fatalf("want a header and 3 rows:\n%s", res.stdout)
			}
			want := []string{
				"TIME KIND METHOD CLIENT IP DETAIL",
				"2026-11-22T11:07:00Z password_changed pwd - - -",
				"2026-11-22T11:06:00Z signin_failed pwd - 198.51.100.9 invalid +7***99",
				"2026-11-22T11:05:00Z signin pwd report 203.0.113.7 ok",
			}
			for i, w := range want {
				if got := strings.Join(strings.Fields(lines[i]), " "); got != w {
					t.Errorf("line %d: %q, want %q", i, got, w)
				}
			}
			if res.stderr != "" {
				t.Errorf("stderr with fewer events than the limit: %q", res.stderr)
			}
			// By id or by email, the same account; --limit keeps the newest.
			byID := h.mustRun("", "user", "events", u.ID, "--limit", "1")
			if n := strings.Count(strings.TrimSpace(byID.stdout), "\n"); n != 1 || !strings.Contains(byID.stdout, "password_changed") {
				t.Errorf("--limit 1:\n%s", byID.stdout)
			}
			contains(t, "stderr", byID.stderr, "there may be more", "--limit 2")
			if got := h.mustRun("", "user", "events", "IVAN@example.ru").stdout; got != res.stdout {
				t.Errorf("by email:\n%s\nby phone:\n%s", got, res.stdout)
			}
			quiet := &storage.User{Email: ptr("quiet@example.ru"), PasswordHash: "x"}
			if err := h.store.CreateUser(h.ctx, quiet); err != nil {
				t.Fatal(err)
			}
			contains(t, "no events", h.mustRun("", "user", "events", "quiet@example.ru").stdout, "has no events")

			for _, c := range []struct {
				args []string
				code int
				msg  string
			}{
				{[]string{"user", "events"}, 2, "name exactly one account"},
				{[]string{"user", "events", "a", "b"}, 2, "name exactly one account"},
				{[]string{"user", "events", u.ID, "--limit", "0"}, 2, "--limit must be from 1"},
				{[]string{"user", "events", "nobody@example.ru"}, 1, `no account has the id, phone number or email "nobody@example.ru"`},
			} {
				res := h.run("", c.args...)
				if res.code != c.code {
					t.Errorf("idp %s: exit %d, want %d", strings.Join(c.args, " "), res.code, c.code)
				}
				contains(t, "stderr", res.stderr, c.msg)
			}
			contains(t, "help", h.mustRun("", "user", "events", "-h").stdout, "Usage: idp user events USER", "--limit N", "Example:")
			contains(t, "group help", h.mustRun("", "user", "--help").stdout, "events")
		})
	}
}
