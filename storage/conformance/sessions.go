package conformance

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/astral/idp/storage"
)

func sessionTests() []test {
	return []test{
		{"create and load by cookie", testSessionByToken},
		{"absent is not found", testSessionAbsent},
		{"long user agent is cut", testSessionLongUserAgent},
		{"invalid UTF-8 from the outside is stored", testInvalidUTF8Stored},
		{"expiry", testSessionExpiry},
		{"expiry in any time zone", testSessionExpiryZones},
		{"touch moves the expiry", testSessionTouch},
		{"reauthenticate", testSessionReauthenticate},
		{"user sessions, newest first", testUserSessions},
		{"session clients", testSessionClients},
		{"end session revokes tokens and queues logouts", testEndSession},
		{"end an expired session queues no logout", testEndExpiredSession},
		{"end user sessions keeping one", testEndUserSessions},
		{"block ends sessions and revokes tokens", testBlockEndsSessions},
	}
}

func testSessionByToken(t *testing.T, e *env) {
	u := e.user(t)
	raw := storage.NewSecret()
	sess := &storage.Session{
		UserID: u.ID, AuthTime: e.now(), AMR: storage.StringList{"otp", "sms"}, ACR: "1",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "203.0.113.7", ExpiresAt: e.now().Add(time.Hour),
	}
	must(t, e.s.CreateSession(e.ctx, sess, raw))
	if sess.ID == "" {
		t.Fatal("CreateSession left the id empty")
	}
	got, err := e.s.SessionByToken(e.ctx, raw)
	must(t, err)
	if got.ID != sess.ID || got.UserID != u.ID || !slices.Equal(got.AMR, []string{"otp", "sms"}) ||
		got.ACR != "1" || got.IP != sess.IP || got.UserAgent != sess.UserAgent ||
		!got.AuthTime.Equal(e.now()) || !got.ExpiresAt.Equal(sess.ExpiresAt) || got.EndedAt != nil {
		t.Errorf("SessionByToken returned %+v; want %+v", got, sess)
	}
	if got.TokenHash != storage.HashSecret(raw) || got.TokenHash == raw {
		t.Errorf("the row keeps token %q; want only the hash of the cookie value", got.TokenHash)
	}
	byID, err := e.s.SessionByID(e.ctx, sess.ID)
	must(t, err)
	if byID.TokenHash != storage.HashSecret(raw) {
		t.Errorf("SessionByID: token hash %q; want the hash of the cookie value", byID.TokenHash)
	}
	_, err = e.s.SessionByToken(e.ctx, storage.HashSecret(raw))
	wantNotFound(t, err, "SessionByToken with the stored hash instead of the cookie")
}

// testSessionLongUserAgent stores a User-Agent header longer than its column, as a
// client may send: the session is still created, with a valid prefix of it.
func testSessionLongUserAgent(t *testing.T, e *env) {
	ua := "Mozilla/5.0 " + strings.Repeat("Яндекс.Браузер ", 100)
	sess := &storage.Session{UserID: "u1", UserAgent: ua, ExpiresAt: e.now().Add(time.Hour)}
	raw := storage.NewSecret()
	must(t, e.s.CreateSession(e.ctx, sess, raw))
	got, err := e.s.SessionByToken(e.ctx, raw)
	must(t, err)
	if len(got.UserAgent) < 400 || len(got.UserAgent) > 512 || !strings.HasPrefix(ua, got.UserAgent) || !utf8.ValidString(got.UserAgent) {
		t.Errorf("stored a user agent of %d bytes; want a valid prefix of at most 512", len(got.UserAgent))
	}
}

func testSessionAbsent(t *testing.T, e *env) {
	e.session(t, e.user(t).ID)
	_, err := e.s.SessionByToken(e.ctx, storage.NewSecret())
	wantNotFound(t, err, "SessionByToken")
	_, err = e.s.SessionByID(e.ctx, "absent")
	wantNotFound(t, err, "SessionByID")
	_, err = e.s.EndSession(e.ctx, "absent")
	wantNotFound(t, err, "EndSession")
	wantNotFound(t, e.s.ReauthenticateSession(e.ctx, "absent", e.now(), []string{"pwd"}, "", ""), "ReauthenticateSession")
}

func testSessionExpiry(t *testing.T, e *env) {
	u := e.user(t)
	sess, raw := e.session(t, u.ID) // expires in a day
	e.advance(24*time.Hour - time.Second)
	if _, err := e.s.SessionByToken(e.ctx, raw); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	e.advance(time.Second)
	_, err := e.s.SessionByToken(e.ctx, raw)
	wantNotFound(t, err, "SessionByToken at expiry")
	_, err = e.s.SessionByID(e.ctx, sess.ID)
	wantNotFound(t, err, "SessionByID at expiry")
	live, err := e.s.UserSessions(e.ctx, u.ID)
	must(t, err)
	if len(live) != 0 {
		t.Errorf("UserSessions lists %d expired sessions", len(live))
	}
}

// testSessionExpiryZones stores expiry instants written in other time zones (the
// caller's local time): they must compare as instants, not as wall-clock text.
func testSessionExpiryZones(t *testing.T, e *env) {
	u := e.user(t)
	for _, zone := range []*time.Location{
		time.FixedZone("MSK", 3*3600), time.FixedZone("EST", -5*3600), time.FixedZone("NPT", 5*3600+45*60),
	} {
		t.Run(zone.String(), func(t *testing.T) {
			raw := storage.NewSecret()
			sess := &storage.Session{UserID: u.ID, AuthTime: e.now().In(zone), ExpiresAt: e.now().Add(time.Hour).In(zone)}
			must(t, e.s.CreateSession(e.ctx, sess, raw))
			e.advance(time.Hour - time.Second)
			if _, err := e.s.SessionByToken(e.ctx, raw); err != nil {
				t.Errorf("a second before expiry: %v", err)
			}
			e.advance(time.Second)
			_, err := e.s.SessionByToken(e.ctx, raw)
			wantNotFound(t, err, "SessionByToken at expiry")
		})
	}
}

func testSessionTouch(t *testing.T, e *env) {
	sess, raw := e.session(t, e.user(t).ID)
	e.advance(23 * time.Hour)
	must(t, e.s.TouchSession(e.ctx, sess.ID, e.now(), e.now().Add(24*time.Hour)))
	e.advance(23 * time.Hour)
	got, err := e.s.SessionByToken(e.ctx, raw)
	if err != nil {
		t.Fatalf("a touched session expired at its old time: %v", err)
	}
	if !got.LastSeenAt.Equal(start.Add(23 * time.Hour)) {
		t.Errorf("LastSeenAt is %v; want %v", got.LastSeenAt, start.Add(23*time.Hour))
	}
	e.advance(time.Hour)
	_, err = e.s.SessionByToken(e.ctx, raw)
	wantNotFound(t, err, "SessionByToken after the new expiry")
}

func testSessionReauthenticate(t *testing.T, e *env) {
	sess, raw := e.session(t, e.user(t).ID)
	e.advance(time.Hour)
	must(t, e.s.ReauthenticateSession(e.ctx, sess.ID, e.now(), []string{"fed"}, "2", "telegram"))
	got, err := e.s.SessionByToken(e.ctx, raw)
	must(t, err)
	if !got.AuthTime.Equal(e.now()) || !slices.Equal(got.AMR, []string{"fed"}) || got.ACR != "2" || got.IDP != "telegram" {
		t.Errorf("after re-authentication: auth_time %v amr %v acr %q", got.AuthTime, got.AMR, got.ACR)
	}
	_, err = e.s.EndSession(e.ctx, sess.ID)
	must(t, err)
	wantNotFound(t, e.s.ReauthenticateSession(e.ctx, sess.ID, e.now(), []string{"pwd"}, "", ""),
		"ReauthenticateSession of an ended session")
}

func testUserSessions(t *testing.T, e *env) {
	u, other := e.user(t), e.user(t)
	var ids []string
	for range 3 {
		sess, _ := e.session(t, u.ID)
		ids = append(ids, sess.ID)
		e.advance(time.Minute)
	}
	e.session(t, other.ID)
	_, err := e.s.EndSession(e.ctx, ids[1])
	must(t, err)
	got, err := e.s.UserSessions(e.ctx, u.ID)
	must(t, err)
	var gotIDs []string
	for _, s := range got {
		gotIDs = append(gotIDs, s.ID)
	}
	if want := []string{ids[2], ids[0]}; !slices.Equal(gotIDs, want) {
		t.Errorf("UserSessions = %v; want the live ones newest first %v", gotIDs, want)
	}
}

func testSessionClients(t *testing.T, e *env) {
	sess, _ := e.session(t, e.user(t).ID)
	other, _ := e.session(t, e.user(t).ID)
	must(t, e.s.AddSessionClient(e.ctx, sess.ID, "report"))
	e.advance(time.Second)
	must(t, e.s.AddSessionClient(e.ctx, sess.ID, "sign"))
	must(t, e.s.AddSessionClient(e.ctx, sess.ID, "report")) // again: not an error, not a duplicate
	must(t, e.s.AddSessionClient(e.ctx, other.ID, "trust"))
	got, err := e.s.SessionClients(e.ctx, sess.ID)
	must(t, err)
	if !slices.Equal(got, []string{"report", "sign"}) {
		t.Errorf("SessionClients = %v; want [report sign]", got)
	}
}

// sessionTokens issues, through sess, an access token with a row (a code exchange
// without a refresh token) and a refresh family rotated once (rotation must keep the
// session it was issued through); it returns the access token ids and the family ids.
func (e *env) sessionTokens(t *testing.T, sess *storage.Session, clientID string) (access, families []string) {
	t.Helper()
	a := e.access(t, storage.AccessToken{ClientID: clientID, UserID: sess.UserID, SessionID: sess.ID})
	f, _ := e.family(t, storage.RefreshFamily{ClientID: clientID, UserID: sess.UserID, SessionID: sess.ID})
	e.rotate(t, f)
	return []string{a.ID}, []string{f.ID}
}

// checkTokens checks that the access token rows and the refresh families are live or
// revoked. A family's access tokens have no rows: they end with their family.
func (e *env) checkTokens(t *testing.T, what string, live bool, access, families []string) {
	t.Helper()
	for _, id := range access {
		if e.accessLive(t, id) != live {
			t.Errorf("%s: access token %s live=%v; want %v", what, id, !live, live)
		}
	}
	for _, id := range families {
		if e.familyRevoked(t, id) == live {
			t.Errorf("%s: refresh family %s revoked=%v; want %v", what, id, live, !live)
		}
	}
}

func testEndSession(t *testing.T, e *env) {
	e.client(t, "report", "https://report.example.ru/oidc/backchannel-logout")
	e.client(t, "sign", "") // no back-channel logout
	e.client(t, "trust", "https://trust.example.ru/logout")
	u := e.user(t)
	sess, raw := e.session(t, u.ID)
	other, otherRaw := e.session(t, u.ID)
	r := e.authRequest(t, "report")
	e.signIn(t, r, u.ID, sess.ID) // records report in the session
	must(t, e.s.AddSessionClient(e.ctx, sess.ID, "sign"))
	must(t, e.s.AddSessionClient(e.ctx, other.ID, "trust"))
	access, refresh := e.sessionTokens(t, sess, "report")
	otherAccess, otherRefresh := e.sessionTokens(t, other, "trust")

	e.advance(time.Minute)
	ended, err := e.s.EndSession(e.ctx, sess.ID)
	must(t, err)
	if ended.ID != sess.ID || ended.UserID != u.ID || ended.EndedAt == nil || !ended.EndedAt.Equal(e.now()) {
		t.Errorf("EndSession returned %+v; want the session, ended now", ended)
	}
	_, err = e.s.SessionByToken(e.ctx, raw)
	wantNotFound(t, err, "SessionByToken after EndSession")
	_, err = e.s.SessionByID(e.ctx, sess.ID)
	wantNotFound(t, err, "SessionByID after EndSession")
	e.checkTokens(t, "ended session", false, access, refresh)

	ds, err := e.s.LogoutDeliveries(e.ctx, sess.ID)
	must(t, err)
	if len(ds) != 1 {
		t.Fatalf("ending the session queued %d deliveries %+v; want 1 (report has a logout URI, sign has none)", len(ds), ds)
	}
	d := ds[0]
	if d.ClientID != "report" || d.UserID != u.ID || d.SessionID != sess.ID ||
		d.URI != "https://report.example.ru/oidc/backchannel-logout" || d.Attempts != 0 ||
		!d.NextAttemptAt.Equal(e.now()) || d.DeliveredAt != nil || d.GaveUpAt != nil || d.ID == "" {
		t.Errorf("queued delivery %+v", d)
	}

	if _, err := e.s.SessionByToken(e.ctx, otherRaw); err != nil {
		t.Errorf("ending one session ended another: %v", err)
	}
	e.checkTokens(t, "other session", true, otherAccess, otherRefresh)
	ds, err = e.s.LogoutDeliveries(e.ctx, other.ID)
	must(t, err)
	if len(ds) != 0 {
		t.Errorf("ending one session queued %d deliveries for another", len(ds))
	}

	// Ending it again is not an error and owes nobody a second logout.
	e.advance(time.Minute)
	again, err := e.s.EndSession(e.ctx, sess.ID)
	if err != nil {
		t.Errorf("ending an ended session: %v; want no error", err)
	} else if again.ID != sess.ID {
		t.Errorf("ending an ended session returned %+v", again)
	}
	ds, err = e.s.LogoutDeliveries(e.ctx, sess.ID)
	must(t, err)
	if len(ds) != 1 {
		t.Errorf("ending the session twice queued %d deliveries; want 1", len(ds))
	}
}

func testEndExpiredSession(t *testing.T, e *env) {
	e.client(t, "report", "https://report.example.ru/oidc/backchannel-logout")
	u := e.user(t)
	expired, _ := e.session(t, u.ID)
	must(t, e.s.AddSessionClient(e.ctx, expired.ID, "report"))
	access, refresh := e.sessionTokens(t, expired, "report")
	e.advance(24 * time.Hour)
	live, _ := e.session(t, u.ID)
	must(t, e.s.AddSessionClient(e.ctx, live.ID, "report"))

	ended, err := e.s.EndUserSessions(e.ctx, u.ID, "")
	must(t, err)
	if len(ended) != 2 {
		t.Errorf("EndUserSessions ended %d sessions; want 2 (a live and an expired one)", len(ended))
	}
	e.checkTokens(t, "tokens of an expired session", false, access, refresh)
	ds, err := e.s.LogoutDeliveries(e.ctx, expired.ID)
	must(t, err)
	if len(ds) != 0 {
		t.Errorf("ending an expired session queued %d logouts; want none", len(ds))
	}
	ds, err = e.s.LogoutDeliveries(e.ctx, live.ID)
	must(t, err)
	if len(ds) != 1 {
		t.Errorf("ending a live session queued %d logouts; want 1", len(ds))
	}
}

func testEndUserSessions(t *testing.T, e *env) {
	e.client(t, "report", "https://report.example.ru/oidc/backchannel-logout")
	u, other := e.user(t), e.user(t)
	var sessions []*storage.Session
	var access, refresh [][]string
	for range 3 {
		sess, _ := e.session(t, u.ID)
		must(t, e.s.AddSessionClient(e.ctx, sess.ID, "report"))
		a, r := e.sessionTokens(t, sess, "report")
		sessions, access, refresh = append(sessions, sess), append(access, a), append(refresh, r)
	}
	otherSess, _ := e.session(t, other.ID)
	otherAccess, otherRefresh := e.sessionTokens(t, otherSess, "report")

	keep := sessions[1].ID
	ended, err := e.s.EndUserSessions(e.ctx, u.ID, keep)
	must(t, err)
	endedIDs := map[string]bool{}
	for _, s := range ended {
		endedIDs[s.ID] = true
	}
	if len(ended) != 2 || !endedIDs[sessions[0].ID] || !endedIDs[sessions[2].ID] {
		t.Errorf("EndUserSessions(keep %s) ended %v; want sessions 0 and 2", keep, endedIDs)
	}
	for i, sess := range sessions {
		kept := sess.ID == keep
		_, err := e.s.SessionByID(e.ctx, sess.ID)
		if kept && err != nil {
			t.Errorf("the kept session: %v", err)
		}
		if !kept {
			wantNotFound(t, err, "an ended session")
		}
		e.checkTokens(t, "session "+sess.ID, kept, access[i], refresh[i])
		ds, err := e.s.LogoutDeliveries(e.ctx, sess.ID)
		must(t, err)
		if want := map[bool]int{true: 0, false: 1}[kept]; len(ds) != want {
			t.Errorf("session %d: %d deliveries; want %d", i, len(ds), want)
		}
	}
	e.checkTokens(t, "another account's session", true, otherAccess, otherRefresh)

	ended, err = e.s.EndUserSessions(e.ctx, u.ID, "")
	must(t, err)
	if len(ended) != 1 || ended[0].ID != keep {
		t.Errorf("EndUserSessions without keep ended %d sessions; want the one kept before", len(ended))
	}
	if live, _ := e.s.UserSessions(e.ctx, u.ID); len(live) != 0 {
		t.Errorf("%d sessions still live", len(live))
	}
	if _, err := e.s.SessionByID(e.ctx, otherSess.ID); err != nil {
		t.Errorf("another account's session: %v", err)
	}
}

func testBlockEndsSessions(t *testing.T, e *env) {
	e.client(t, "report", "https://report.example.ru/oidc/backchannel-logout")
	u, other := e.user(t), e.user(t)
	s1, raw1 := e.session(t, u.ID)
	s2, raw2 := e.session(t, u.ID)
	must(t, e.s.AddSessionClient(e.ctx, s1.ID, "report"))
	a1, r1 := e.sessionTokens(t, s1, "report")
	a2, r2 := e.sessionTokens(t, s2, "report")
	// A client_credentials-style token of the account with no session.
	loose := e.access(t, storage.AccessToken{ClientID: "report", UserID: u.ID})
	looseRefresh, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
	otherSess, _ := e.session(t, other.ID)
	oa, or := e.sessionTokens(t, otherSess, "report")

	ended, err := e.s.SetUserBlocked(e.ctx, u.ID, true)
	must(t, err)
	if len(ended) != 2 {
		t.Errorf("blocking ended %d sessions; want 2", len(ended))
	}
	for _, raw := range []string{raw1, raw2} {
		_, err := e.s.SessionByToken(e.ctx, raw)
		wantNotFound(t, err, "a session of a blocked account")
	}
	e.checkTokens(t, "blocked account", false,
		append(append([]string{loose.ID}, a1...), a2...), append(append([]string{looseRefresh.ID}, r1...), r2...))
	e.checkTokens(t, "another account", true, oa, or)
	ds, err := e.s.LogoutDeliveries(e.ctx, s1.ID)
	must(t, err)
	if len(ds) != 1 {
		t.Errorf("blocking queued %d logouts for a session shared with report; want 1", len(ds))
	}

	ended, err = e.s.SetUserBlocked(e.ctx, u.ID, false)
	must(t, err)
	if len(ended) != 0 {
		t.Errorf("unblocking ended %d sessions", len(ended))
	}
	if _, err := e.s.SessionByToken(e.ctx, raw1); !storage.IsNotFound(err) {
		t.Errorf("unblocking revived a session: %v", err)
	}
}

// testInvalidUTF8Stored: a browser may send any bytes as its User-Agent, and an
// upstream any display name; PostgreSQL refuses invalid UTF-8, so the store must make
// such text valid rather than fail the sign-in.
func testInvalidUTF8Stored(t *testing.T, e *env) {
	u := e.user(t)
	bad := "Mozilla/5.0 \xff\xfe (X11)"
	sess := &storage.Session{UserID: u.ID, AuthTime: e.now(), UserAgent: bad, ExpiresAt: e.now().Add(time.Hour)}
	must(t, e.s.CreateSession(e.ctx, sess, storage.NewSecret()))
	got, err := e.s.SessionByID(e.ctx, sess.ID)
	must(t, err)
	if !utf8.ValidString(got.UserAgent) || !strings.HasPrefix(got.UserAgent, "Mozilla/5.0 ") {
		t.Errorf("stored user agent %q", got.UserAgent)
	}
	must(t, e.s.RecordEvent(e.ctx, &storage.AuditEvent{UserID: u.ID, Kind: "signin", UserAgent: bad, Detail: bad}))
	must(t, e.s.LinkIdentity(e.ctx, &storage.Identity{UserID: u.ID, Connector: "telegram", Subject: "1", DisplayName: "Иван \xff"}))
}
