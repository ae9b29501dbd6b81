package conformance

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

// The races between issuing tokens and taking them away. The provider checks the
// account before a refresh and spends the code before creating its tokens, each a
// step of its own: whatever commits in between (a block, a logout, a password reset,
// a revocation, a second presentation of the code) must still leave no live token.

func tokenRaceTests() []test {
	return []test{
		{"rotation refuses a blocked account", testRotateRefusesBlocked},
		{"rotation refuses an ended session", testRotateRefusesEndedSession},
		{"race rotate and revoke", testRaceRotateRevoke},
		{"a reused code's late tokens are refused", testCodeReusedBeforeTokens},
		{"race code tokens and reuse", testRaceCodeTokensReuse},
	}
}

// wantRefused checks that a rotation was refused as a storage outcome the provider
// answers with invalid_grant (reuse or not found), not as a failure.
func wantRefused(t *testing.T, err error, what string) {
	t.Helper()
	if !storage.IsReused(err) && !storage.IsNotFound(err) {
		t.Errorf("%s: got error %v; want one for which storage.IsReused or storage.IsNotFound is true", what, err)
	}
}

// A block that commits after the provider read the account and before the rotation:
// the rotation itself must see it. The account is blocked here without SetUserBlocked,
// whose revocation would refuse the rotation anyway, so that the rotation's own check
// is what is tested.
func testRotateRefusesBlocked(t *testing.T, e *env) {
	u := e.user(t)
	r1, _, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: u.ID})
	_, err := e.s.UpdateUser(e.ctx, u.ID, func(u *storage.User) error { u.Blocked = true; return nil })
	must(t, err)
	n, a := e.next(r1)
	_, err = e.s.RotateRefreshToken(e.ctx, r1.ID, n, a)
	wantRefused(t, err, "rotating a blocked account's token")
	_, err = e.s.RefreshTokenByID(e.ctx, n.ID)
	wantNotFound(t, err, "the generation a refused rotation offered")
	if e.accessLive(t, a.ID) {
		t.Error("the access token a refused rotation offered is live")
	}

	// Unblocked, the account's other families rotate again.
	_, err = e.s.UpdateUser(e.ctx, u.ID, func(u *storage.User) error { u.Blocked = false; return nil })
	must(t, err)
	other, _, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: u.ID})
	e.rotate(t, other)
}

// The same for a session that ended: its tokens must not outlive it.
func testRotateRefusesEndedSession(t *testing.T, e *env) {
	u := e.user(t)
	ended := &storage.Session{UserID: u.ID, AuthTime: e.now(), ExpiresAt: e.now().Add(24 * time.Hour), EndedAt: ptr(e.now())}
	must(t, e.s.CreateSession(e.ctx, ended, storage.NewSecret()))
	r1, _, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: u.ID, SessionID: ended.ID})
	n, a := e.next(r1)
	_, err := e.s.RotateRefreshToken(e.ctx, r1.ID, n, a)
	wantRefused(t, err, "rotating a token of an ended session")
	_, err = e.s.RefreshTokenByID(e.ctx, n.ID)
	wantNotFound(t, err, "the generation a refused rotation offered")
	if e.accessLive(t, a.ID) {
		t.Error("the access token a refused rotation offered is live")
	}

	// A live session's family, and one with no session, still rotate.
	live, _ := e.session(t, u.ID)
	withSession, _, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: u.ID, SessionID: live.ID})
	e.rotate(t, withSession)
	noSession, _, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: u.ID})
	e.rotate(t, noSession)
}

// testRaceRotateRevoke refreshes families over and over while something takes them
// away. Whatever the interleaving, every generation and access token a rotation
// issued must end up revoked: a rotation that committed just before the revocation
// is caught by it, one that comes after is refused. On PostgreSQL (READ COMMITTED) a
// revoking UPDATE that waits for a rotation's row lock sees the rotated row but not
// the generation the rotation inserted, which is what this looks for.
func testRaceRotateRevoke(t *testing.T, e *env) {
	cases := []struct {
		name        string
		withSession bool
		revoke      func(u *storage.User, sess *storage.Session, families []*storage.RefreshToken) error
	}{
		{"block", true, func(u *storage.User, _ *storage.Session, _ []*storage.RefreshToken) error {
			_, err := e.s.SetUserBlocked(e.ctx, u.ID, true)
			return err
		}},
		{"logout", true, func(_ *storage.User, sess *storage.Session, _ []*storage.RefreshToken) error {
			_, err := e.s.EndSession(e.ctx, sess.ID)
			return err
		}},
		// A password reset; the families have no session, so only the revocation by
		// account stands between them and the next refresh.
		{"password reset", false, func(u *storage.User, _ *storage.Session, _ []*storage.RefreshToken) error {
			if _, err := e.s.EndUserSessions(e.ctx, u.ID, ""); err != nil {
				return err
			}
			return e.s.RevokeUserTokens(e.ctx, u.ID)
		}},
		{"revoke family", false, func(_ *storage.User, _ *storage.Session, families []*storage.RefreshToken) error {
			for _, f := range families {
				if err := e.s.RevokeRefreshFamily(e.ctx, f.FamilyID); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	const rounds = 4
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for round := range rounds {
				u := e.user(t)
				sess, _ := e.session(t, u.ID)
				families := make([]*storage.RefreshToken, racers-1)
				for i := range families {
					r := storage.RefreshToken{ClientID: "report", UserID: u.ID}
					if c.withSession {
						r.SessionID = sess.ID
					}
					families[i], _, _ = e.family(t, r)
				}
				var mu sync.Mutex
				var refresh, access []string // what the rotations issued
				var revoked atomic.Bool
				errs := race(racers, func(i int) error {
					if i == racers-1 {
						runtime.Gosched() // let the rotations get going
						defer revoked.Store(true)
						return c.revoke(u, sess, families)
					}
					cur := families[i]
					// Rotate until refused. Once the revocation has returned, at most one
					// more rotation may report success (one that committed before it and
					// returned after); the next must be refused.
					for after := 0; after < 2; {
						if revoked.Load() {
							after++
						}
						n, a := e.next(cur)
						_, err := e.s.RotateRefreshToken(e.ctx, cur.ID, n, a)
						if storage.IsReused(err) || storage.IsNotFound(err) {
							return nil // taken away: the race is over for this family
						}
						if err != nil {
							return fmt.Errorf("racer %d: rotate: %w", i, err)
						}
						mu.Lock()
						refresh, access = append(refresh, n.ID), append(access, a.ID)
						mu.Unlock()
						cur = n
					}
					return fmt.Errorf("racer %d: the family still rotates after the revocation returned", i)
				})
				if err := errors.Join(errs...); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				for _, id := range refresh {
					if !e.refreshRevoked(t, id) {
						t.Errorf("round %d: generation %s, issued by a rotation racing the revocation, is live", round, id)
					}
				}
				for _, id := range access {
					if e.accessLive(t, id) {
						t.Errorf("round %d: access token %s, issued by a rotation racing the revocation, is live", round, id)
					}
				}
			}
		})
	}
}

// A code presented twice at once: the second presentation revokes the code's tokens,
// possibly before the first has created them. Reuse is remembered, so tokens created
// afterwards from that code are refused.
func testCodeReusedBeforeTokens(t *testing.T, e *env) {
	r, code := e.code(t, "report")
	_, err := e.s.ExchangeCode(e.ctx, code, time.Hour) // the winner, about to create tokens
	must(t, err)
	_, err = e.s.ExchangeCode(e.ctx, code, time.Hour) // the loser: reuse
	wantReused(t, err, "ExchangeCode a second time")
	must(t, e.s.RevokeAuthRequestTokens(e.ctx, r.ID))

	rt, a := codeFamily(e, r)
	_, err = e.s.CreateRefreshToken(e.ctx, rt, a)
	wantReused(t, err, "CreateRefreshToken of a reused code")
	plain := &storage.AccessToken{ID: storage.NewID(), ClientID: "report", UserID: r.UserID, SessionID: r.SessionID,
		AuthRequestID: r.ID, ExpiresAt: e.now().Add(time.Hour)}
	wantReused(t, e.s.CreateAccessToken(e.ctx, plain), "CreateAccessToken of a reused code")
	e.checkAbsent(t, "tokens of a reused code", []string{a.ID, plain.ID}, []string{rt.ID})

	// Another code of the same account and session is untouched.
	other, otherCode := e.code(t, "report")
	_, err = e.s.ExchangeCode(e.ctx, otherCode, time.Hour)
	must(t, err)
	ort, oa := codeFamily(e, other)
	_, err = e.s.CreateRefreshToken(e.ctx, ort, oa)
	must(t, err)
	must(t, e.s.CreateAccessToken(e.ctx, &storage.AccessToken{ClientID: "report", UserID: other.UserID,
		AuthRequestID: other.ID, ExpiresAt: e.now().Add(time.Hour)}))
}

// The winner's token creation racing the loser's revocation: either the creation is
// refused or its tokens are revoked.
func testRaceCodeTokensReuse(t *testing.T, e *env) {
	const codes = 24
	type exchange struct {
		r       *storage.AuthRequest
		refresh *storage.RefreshToken
		access  *storage.AccessToken
		plain   *storage.AccessToken
	}
	xs := make([]exchange, codes)
	for i := range xs {
		r, code := e.code(t, "report")
		_, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
		must(t, err)
		rt, a := codeFamily(e, r)
		xs[i] = exchange{r: r, refresh: rt, access: a, plain: &storage.AccessToken{ID: storage.NewID(),
			ClientID: "report", UserID: r.UserID, SessionID: r.SessionID, AuthRequestID: r.ID, ExpiresAt: e.now().Add(time.Hour)}}
	}
	errs := race(2*codes, func(i int) error {
		x := xs[i/2]
		if i%2 == 1 {
			return e.s.RevokeAuthRequestTokens(e.ctx, x.r.ID)
		}
		if _, err := e.s.CreateRefreshToken(e.ctx, x.refresh, x.access); err != nil && !storage.IsReused(err) {
			return err
		}
		if err := e.s.CreateAccessToken(e.ctx, x.plain); err != nil && !storage.IsReused(err) {
			return err
		}
		return nil
	})
	must(t, errors.Join(errs...))
	for i, x := range xs {
		for _, id := range []string{x.access.ID, x.plain.ID} {
			if e.accessLive(t, id) {
				t.Errorf("code %d: access token %s is live after the code's reuse", i, id)
			}
		}
		if r, err := e.s.RefreshTokenByID(e.ctx, x.refresh.ID); err == nil && r.RevokedAt == nil {
			t.Errorf("code %d: refresh token %s is live after the code's reuse", i, x.refresh.ID)
		} else if err != nil && !storage.IsNotFound(err) {
			t.Fatal(err)
		}
	}
}

// codeFamily is the first generation and access token a code exchange would create.
func codeFamily(e *env, r *storage.AuthRequest) (*storage.RefreshToken, *storage.AccessToken) {
	rt := &storage.RefreshToken{ID: storage.NewID(), ClientID: "report", UserID: r.UserID, SessionID: r.SessionID,
		AuthRequestID: r.ID, Scopes: storage.StringList{"openid", "offline_access"}, AuthTime: e.now(),
		ExpiresAt: e.now().Add(time.Hour), FamilyExpiresAt: e.now().Add(24 * time.Hour)}
	a := &storage.AccessToken{ID: storage.NewID(), ClientID: "report", UserID: r.UserID, SessionID: r.SessionID,
		AuthRequestID: r.ID, ExpiresAt: e.now().Add(time.Hour)}
	return rt, a
}

// checkAbsent checks that tokens a refused write offered were not stored, or not live.
func (e *env) checkAbsent(t *testing.T, what string, accessIDs, refreshIDs []string) {
	t.Helper()
	for _, id := range accessIDs {
		if e.accessLive(t, id) {
			t.Errorf("%s: access token %s is live", what, id)
		}
	}
	for _, id := range refreshIDs {
		r, err := e.s.RefreshTokenByID(e.ctx, id)
		if err == nil && r.RevokedAt == nil {
			t.Errorf("%s: refresh token %s is live", what, id)
		} else if err != nil && !storage.IsNotFound(err) {
			t.Fatal(err)
		}
	}
}
