package conformance

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

func cleanupTests() []test {
	return []test{
		{"nothing to delete", testCleanupEmpty},
		{"deletes what expired and keeps what retention keeps", testCleanupRetention},
	}
}

// tables are the keys DeleteExpired must report; it may report more tables, whose
// rows this suite never creates.
var tables = []string{
	"auth_requests", "rate_counters", "access_tokens", "refresh_families", "sessions",
	"session_clients", "logout_deliveries", "signing_keys", "audit_events",
}

func (e *env) deleteExpired(t *testing.T, r storage.Retention, want map[string]int64) {
	t.Helper()
	got, err := e.s.DeleteExpired(e.ctx, r)
	must(t, err)
	for _, table := range tables {
		if _, ok := got[table]; !ok {
			t.Errorf("DeleteExpired reported no count for %s", table)
		}
	}
	for _, table := range slices.Sorted(maps.Keys(got)) {
		if got[table] != want[table] {
			t.Errorf("at %v DeleteExpired removed %d %s; want %d", e.now().Sub(start), got[table], table, want[table])
		}
	}
}

func testCleanupEmpty(t *testing.T, e *env) {
	e.deleteExpired(t, storage.DefaultRetention, nil)
	e.user(t)
	e.session(t, e.user(t).ID)
	e.authRequest(t, "report")
	e.advance(time.Minute)
	e.deleteExpired(t, storage.DefaultRetention, nil)
}

// testCleanupRetention builds rows on a timeline and checks what each cleanup takes:
// expired rows go at once (auth requests, counters, keys) or after the retention
// (tokens, sessions, deliveries, events); live and recently finished rows stay.
func testCleanupRetention(t *testing.T, e *env) {
	day := 24 * time.Hour
	r := storage.Retention{Sessions: day, Tokens: day, Deliveries: day, Events: 30 * day}
	at := func(d time.Duration) time.Time { return start.Add(d) }
	e.client(t, "report", "https://report.example.ru/oidc/backchannel-logout")
	u := e.user(t)

	// At the start (t0).
	oldRequest := e.authRequest(t, "report") // expires t0+30m
	liveRequest := &storage.AuthRequest{ClientID: "report", ExpiresAt: at(100 * time.Hour)}
	must(t, e.s.CreateAuthRequest(e.ctx, liveRequest))
	_, err := e.s.Hit(e.ctx, "signin:old", time.Minute) // window ends t0+1m
	must(t, err)
	e.access(t, storage.AccessToken{ClientID: "report", UserID: u.ID, ExpiresAt: at(time.Hour)})
	e.access(t, storage.AccessToken{ClientID: "report", UserID: u.ID, ExpiresAt: at(30 * time.Hour)}) // expired, within retention
	liveAccess := e.access(t, storage.AccessToken{ClientID: "report", UserID: u.ID, ExpiresAt: at(100 * time.Hour)})
	// A product's own token revoked at once: its denial lasts until the token's exp.
	denied := "m-" + storage.NewID()
	must(t, e.s.DenyAccessToken(e.ctx, denied, "report", at(time.Hour)))
	// Families whose first access tokens expire at t0+1h, unless said otherwise.
	idle, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, ExpiresAt: at(time.Hour)})
	absolute, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID,
		ExpiresAt: at(100 * time.Hour), FamilyExpiresAt: at(2 * time.Hour)})
	revoked, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, ExpiresAt: at(100 * time.Hour)})
	must(t, e.s.RevokeRefreshFamily(e.ctx, revoked.ID))
	recentRevoked, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, ExpiresAt: at(100 * time.Hour)})
	liveRefresh, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, ExpiresAt: at(100 * time.Hour)})
	// Its refresh token expires at t0+1h, its access token at t0+30h: the row holds
	// that access token's state, so it stays until t0+30h is past the retention.
	lateAccess, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID,
		ExpiresAt: at(time.Hour), AccessExpiresAt: at(30 * time.Hour)})

	newSession := func(expires time.Time) *storage.Session {
		s := &storage.Session{UserID: u.ID, ExpiresAt: expires}
		must(t, e.s.CreateSession(e.ctx, s, storage.NewSecret()))
		return s
	}
	expiredSession := newSession(at(time.Hour))
	liveSession := newSession(at(100 * time.Hour))
	endedSession := newSession(at(100 * time.Hour))
	gaveUpSession := newSession(at(100 * time.Hour))
	recentSession := newSession(at(100 * time.Hour)) // ends at t0+40h
	for _, s := range []*storage.Session{expiredSession, liveSession, endedSession, gaveUpSession, recentSession} {
		must(t, e.s.AddSessionClient(e.ctx, s.ID, "report"))
	}
	for _, s := range []*storage.Session{endedSession, gaveUpSession} {
		_, err := e.s.EndSession(e.ctx, s.ID)
		must(t, err)
	}
	ds, err := e.s.ClaimLogoutDeliveries(e.ctx, 10, time.Minute)
	must(t, err)
	if len(ds) != 2 {
		t.Fatalf("claimed %d deliveries; want 2", len(ds))
	}
	for _, d := range ds {
		must(t, e.s.FinishLogoutDelivery(e.ctx, d.ID, d.SessionID == endedSession.ID, "", time.Time{}))
	}

	oldKey := e.key("RS256", 1) // leaves the key set at t0+49h
	_, err = e.s.CreateSigningKey(e.ctx, oldKey)
	must(t, err)
	oldKey.Generation, oldKey.ID, oldKey.ExpiresAt = 2, storage.NewID(), at(100*time.Hour)
	_, err = e.s.CreateSigningKey(e.ctx, oldKey)
	must(t, err)
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: u.ID, Kind: "signin", CreatedAt: at(-31 * day)}))
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: u.ID, Kind: "signin"}))

	// At t0+40h: the recent ones finish.
	e.advance(40 * time.Hour)
	must(t, e.s.RevokeRefreshFamily(e.ctx, recentRevoked.ID))
	_, err = e.s.EndSession(e.ctx, recentSession.ID)
	must(t, err)
	ds, err = e.s.ClaimLogoutDeliveries(e.ctx, 10, time.Minute)
	must(t, err)
	if len(ds) != 1 {
		t.Fatalf("claimed %d deliveries at t0+40h; want 1", len(ds))
	}
	must(t, e.s.FinishLogoutDelivery(e.ctx, ds[0].ID, true, "", time.Time{}))

	// At t0+48h.
	e.advance(8 * time.Hour)
	_, err = e.s.Hit(e.ctx, "signin:now", time.Minute)
	must(t, err)
	e.deleteExpired(t, r, map[string]int64{
		"auth_requests":     1, // oldRequest
		"rate_counters":     1, // signin:old
		"access_tokens":     2, // expired t0+1h, and the denial that lasted until t0+1h
		"refresh_families":  3, // idle, absolute, revoked at t0
		"sessions":          3, // expired at t0+1h, ended at t0 (two)
		"session_clients":   3, // of those three
		"logout_deliveries": 2, // delivered at t0, given up at t0
		"signing_keys":      0,
		"audit_events":      1, // 31 days old
	})
	e.deleteExpired(t, r, nil) // nothing more at the same instant

	_, err = e.s.AuthRequestByID(e.ctx, oldRequest.ID)
	wantNotFound(t, err, "a cleaned-up auth request")
	if _, err := e.s.AuthRequestByID(e.ctx, liveRequest.ID); err != nil {
		t.Errorf("a live auth request: %v", err)
	}
	for _, id := range []string{idle.ID, absolute.ID, revoked.ID} {
		_, err := e.s.RefreshFamilyByID(e.ctx, id)
		wantNotFound(t, err, "a cleaned-up refresh family")
	}
	for _, id := range []string{recentRevoked.ID, liveRefresh.ID, lateAccess.ID} {
		if _, err := e.s.RefreshFamilyByID(e.ctx, id); err != nil {
			t.Errorf("refresh family %s within retention: %v", id, err)
		}
	}
	if d, err := e.s.AccessTokenDenied(e.ctx, denied); err != nil || d {
		t.Errorf("a cleaned-up denial: denied %v, %v; want gone", d, err)
	}
	if !e.accessLive(t, liveAccess.ID) {
		t.Error("a live access token was cleaned up")
	}
	if _, err := e.s.SessionByID(e.ctx, liveSession.ID); err != nil {
		t.Errorf("a live session: %v", err)
	}
	if clients, _ := e.s.SessionClients(e.ctx, liveSession.ID); len(clients) != 1 {
		t.Errorf("the live session's clients: %v", clients)
	}
	if ds, _ := e.s.LogoutDeliveries(e.ctx, recentSession.ID); len(ds) != 1 {
		t.Errorf("a recently delivered logout: %d rows; want 1", len(ds))
	}
	events, err := e.s.UserEvents(e.ctx, u.ID, 0, 10)
	must(t, err)
	if len(events) != 1 {
		t.Errorf("%d audit events left; want the recent one", len(events))
	}

	// At t0+64h every row finished before t0+40h is past its retention.
	e.advance(16 * time.Hour)
	e.deleteExpired(t, r, map[string]int64{
		"rate_counters":     1, // signin:now
		"access_tokens":     1, // recentAccess, expired t0+30h
		"refresh_families":  2, // recentRevoked, revoked t0+40h; lateAccess, its access token expired t0+30h
		"sessions":          1, // recentSession, ended t0+40h
		"session_clients":   1,
		"logout_deliveries": 1, // delivered t0+40h
		"signing_keys":      1, // the first key left the key set at t0+49h
	})
	if !e.accessLive(t, liveAccess.ID) {
		t.Error("a live access token was cleaned up")
	}
	if _, err := e.s.RefreshFamilyByID(e.ctx, liveRefresh.ID); err != nil {
		t.Errorf("a live refresh family: %v", err)
	}
	if _, err := e.s.SessionByID(e.ctx, liveSession.ID); err != nil {
		t.Errorf("a live session: %v", err)
	}
}
