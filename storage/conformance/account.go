package conformance

import (
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

// The queries of the account cabinet (storage/account.go).
func accountTests() []test {
	return []test{
		{"events page with total", testEventsPage},
		{"products an account used", testUserClients},
		{"products: revoked and expired tokens are not access", testUserClientsActive},
		{"end other sessions keeps one and its tokens", testEndOtherSessions},
	}
}

func testEventsPage(t *testing.T, e *env) {
	for i := range 25 {
		must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: "u1", Kind: "signin", Detail: string(rune('a' + i))}))
		e.advance(time.Second)
	}
	for range 3 {
		must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: "u2", Kind: "signin"}))
	}
	first, total, err := e.s.UserEventsPage(e.ctx, "u1", 0, 20)
	must(t, err)
	if total != 25 || len(first) != 20 || first[0].Detail != "y" || first[19].Detail != "f" {
		t.Errorf("first page: %d events of %d, from %q to %q; want 20 of 25 from the newest (y) to f",
			len(first), total, first[0].Detail, first[len(first)-1].Detail)
	}
	second, total, err := e.s.UserEventsPage(e.ctx, "u1", 20, 20)
	must(t, err)
	if total != 25 || len(second) != 5 || second[0].Detail != "e" || second[4].Detail != "a" {
		t.Errorf("second page: %d events of %d; want the 5 oldest of 25", len(second), total)
	}
	past, total, err := e.s.UserEventsPage(e.ctx, "u1", 40, 20)
	must(t, err)
	if total != 25 || len(past) != 0 {
		t.Errorf("a page past the end: %d events of %d; want none of 25", len(past), total)
	}
	none, total, err := e.s.UserEventsPage(e.ctx, "absent", 0, 20)
	must(t, err)
	if total != 0 || len(none) != 0 {
		t.Errorf("an account without events: %d events of %d", len(none), total)
	}
}

func testUserClients(t *testing.T, e *env) {
	for _, id := range []string{"report", "sign", "trust", "poa", "edo"} {
		e.client(t, id, "")
	}
	u, other := e.user(t), e.user(t)
	t0 := e.now()
	// report: a refresh token, live.
	e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
	// edo: a refresh token made now and refreshed last of all: a refresh is a use.
	edo, _ := e.family(t, storage.RefreshFamily{ClientID: "edo", UserID: u.ID})
	e.advance(time.Minute)
	// sign: a sign-in through a session, no token.
	sess, _ := e.session(t, u.ID)
	e.signIn(t, e.authRequest(t, "sign"), u.ID, sess.ID)
	e.advance(time.Minute)
	// trust: only in the audit events; a removed product too.
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: u.ID, Kind: "signin", ClientID: "trust"}))
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: u.ID, Kind: "signin", ClientID: "removed"}))
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: u.ID, Kind: "signin"})) // no product
	// poa: another account's only.
	e.family(t, storage.RefreshFamily{ClientID: "poa", UserID: other.ID})
	e.advance(time.Minute)
	// report again, later, in the events: its last use moves.
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: u.ID, Kind: "signin", ClientID: "report"}))
	e.advance(time.Minute)
	// A failed attempt and a revoked access are no use: sign's last use stays.
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: u.ID, Kind: "signin_failed", ClientID: "sign"}))
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: u.ID, Kind: "access_revoked", ClientID: "sign"}))
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: u.ID, Kind: "signin_failed", ClientID: "poa"}))
	e.rotate(t, edo)

	got, err := e.s.UserClients(e.ctx, u.ID)
	must(t, err)
	type row struct {
		id, name string
		last     time.Time
		active   bool
	}
	want := []row{
		{"edo", "Астрал.Отчет edo", t0.Add(4 * time.Minute), true},
		{"report", "Астрал.Отчет report", t0.Add(3 * time.Minute), true},
		{"trust", "Астрал.Отчет trust", t0.Add(2 * time.Minute), false},
		{"sign", "Астрал.Отчет sign", t0.Add(time.Minute), false},
	}
	if len(got) != len(want) {
		t.Fatalf("UserClients: %d products %+v; want %d (edo, report, trust, sign)", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Client.ID != w.id || g.Client.Name != w.name || !g.LastUsed.Equal(w.last) || g.Active != w.active ||
			g.Client.HomeURL != "https://"+w.id+".example.ru/" {
			t.Errorf("product %d: %s %q last used %v active %v home %q; want %s %q %v %v",
				i, g.Client.ID, g.Client.Name, g.LastUsed, g.Active, g.Client.HomeURL, w.id, w.name, w.last, w.active)
		}
	}
	none, err := e.s.UserClients(e.ctx, "absent")
	must(t, err)
	if len(none) != 0 {
		t.Errorf("an account that used nothing has %d products", len(none))
	}
}

func testUserClientsActive(t *testing.T, e *env) {
	for _, id := range []string{"report", "sign", "trust", "poa"} {
		e.client(t, id, "")
	}
	u := e.user(t)
	active := func() map[string]bool {
		t.Helper()
		got, err := e.s.UserClients(e.ctx, u.ID)
		must(t, err)
		m := map[string]bool{}
		for _, c := range got {
			m[c.Client.ID] = c.Active
		}
		return m
	}
	// report: revoked by the cabinet's "Отозвать доступ".
	e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
	// sign: refreshed after its first access token expired; the family lives on.
	sign, _ := e.family(t, storage.RefreshFamily{ClientID: "sign", UserID: u.ID, ExpiresAt: e.now().Add(48 * time.Hour)})
	// trust: a refresh token whose idle expiry passes before its access token's exp.
	e.family(t, storage.RefreshFamily{ClientID: "trust", UserID: u.ID, ExpiresAt: e.now().Add(10 * time.Minute)})
	// poa: an access token only (no refresh token was asked for).
	e.access(t, storage.AccessToken{ClientID: "poa", UserID: u.ID, ExpiresAt: e.now().Add(2 * time.Hour)})
	if got := active(); !got["report"] || !got["sign"] || !got["trust"] || !got["poa"] {
		t.Errorf("fresh tokens: access %v; want every product", got)
	}
	must(t, e.s.RevokeUserClientTokens(e.ctx, u.ID, "report"))
	// trust's refresh token has expired, the access token issued with it has not:
	// the product can still call APIs.
	e.advance(30 * time.Minute)
	if got := active(); got["report"] || !got["trust"] {
		t.Errorf("at 30 minutes: access %v; want report revoked and trust live through its access token", got)
	}
	e.advance(31 * time.Minute) // the families' first access tokens expire, trust's with them
	_, err := e.s.RotateRefreshFamily(e.ctx, sign, e.now().Add(time.Hour), e.now().Add(15*time.Minute))
	must(t, err)
	got := active()
	want := map[string]bool{"report": false, "sign": true, "trust": false, "poa": true}
	for id, w := range want {
		if v, ok := got[id]; !ok || v != w {
			t.Errorf("product %s: listed %v, access %v; want listed, access %v", id, ok, v, w)
		}
	}
	// Once sign's refresh token and its access token expire, nothing is left; the
	// family's first idle expiry, still ahead, does not count: rotation moved it.
	e.advance(61 * time.Minute)
	if got := active(); got["sign"] {
		t.Error("sign has access with its refresh and access tokens expired")
	}
}

func testEndOtherSessions(t *testing.T, e *env) {
	e.client(t, "report", "https://report.example.ru/oidc/backchannel-logout")
	u, other := e.user(t), e.user(t)
	keep, keepRaw := e.session(t, u.ID)
	must(t, e.s.AddSessionClient(e.ctx, keep.ID, "report"))
	keepAccess, keepRefresh := e.sessionTokens(t, keep, "report")
	gone, goneRaw := e.session(t, u.ID)
	must(t, e.s.AddSessionClient(e.ctx, gone.ID, "report"))
	goneAccess, goneRefresh := e.sessionTokens(t, gone, "report")
	// A session that expired without being ended: its products stopped trusting it,
	// but its refresh tokens (offline access) live on until revoked.
	stale := &storage.Session{UserID: u.ID, AuthTime: e.now(), ExpiresAt: e.now().Add(time.Minute)}
	must(t, e.s.CreateSession(e.ctx, stale, storage.NewSecret()))
	must(t, e.s.AddSessionClient(e.ctx, stale.ID, "report"))
	staleRefresh, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, SessionID: stale.ID,
		ExpiresAt: e.now().Add(48 * time.Hour)})
	// A token issued without a session.
	loose, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, ExpiresAt: e.now().Add(48 * time.Hour)})
	otherSess, otherRaw := e.session(t, other.ID)
	otherAccess, otherRefresh := e.sessionTokens(t, otherSess, "report")
	e.advance(2 * time.Minute)

	ended, err := e.s.EndOtherSessions(e.ctx, u.ID, keep.ID)
	must(t, err)
	endedIDs := map[string]bool{}
	for _, s := range ended {
		endedIDs[s.ID] = true
		if s.EndedAt == nil {
			t.Errorf("returned session %s without its end time", s.ID)
		}
	}
	if len(ended) != 2 || !endedIDs[gone.ID] || !endedIDs[stale.ID] {
		t.Errorf("EndOtherSessions ended %v; want the other live session and the expired one", endedIDs)
	}
	if _, err := e.s.SessionByToken(e.ctx, keepRaw); err != nil {
		t.Errorf("the kept session: %v", err)
	}
	_, err = e.s.SessionByToken(e.ctx, goneRaw)
	wantNotFound(t, err, "the other session")
	e.checkTokens(t, "the kept session", true, keepAccess, keepRefresh)
	e.checkTokens(t, "the other session", false, goneAccess, goneRefresh)
	e.checkTokens(t, "the expired session", false, nil, []string{staleRefresh.ID})
	e.checkTokens(t, "a token without a session", false, nil, []string{loose.ID})
	for id, want := range map[string]int{keep.ID: 0, gone.ID: 1, stale.ID: 0} {
		ds, err := e.s.LogoutDeliveries(e.ctx, id)
		must(t, err)
		if len(ds) != want {
			t.Errorf("session %s: %d back-channel logouts queued; want %d", id, len(ds), want)
		}
	}
	if _, err := e.s.SessionByToken(e.ctx, otherRaw); err != nil {
		t.Errorf("another account's session: %v", err)
	}
	e.checkTokens(t, "another account's session", true, otherAccess, otherRefresh)

	again, err := e.s.EndOtherSessions(e.ctx, u.ID, keep.ID)
	must(t, err)
	if len(again) != 0 {
		t.Errorf("a second call ended %d sessions; want none", len(again))
	}
}
