package conformance

import (
	"errors"
	"fmt"
	"runtime"
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
		{"a code's late tokens are refused after a block or logout", testCodeSignInEndedBeforeTokens},
		{"race code tokens and reuse", testRaceCodeTokensReuse},
	}
}

// A block that commits after the provider read the account and before the rotation:
// the rotation itself must see it. The account is blocked here without SetUserBlocked,
// whose revocation would refuse the rotation anyway, so that the rotation's own check
// is what is tested.
func testRotateRefusesBlocked(t *testing.T, e *env) {
	u := e.user(t)
	f, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
	_, err := e.s.UpdateUser(e.ctx, u.ID, func(u *storage.User) error { u.Blocked = true; return nil })
	must(t, err)
	_, err = e.s.RotateRefreshFamily(e.ctx, f, e.now().Add(time.Hour), e.now().Add(time.Hour))
	wantNotFound(t, err, "rotating a blocked account's family")
	e.checkRefused(t, "a blocked account's family", f.ID, 1)

	// Unblocked, the account's other families rotate again; the refused one stays
	// revoked.
	_, err = e.s.UpdateUser(e.ctx, u.ID, func(u *storage.User) error { u.Blocked = false; return nil })
	must(t, err)
	other, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
	e.rotate(t, other)
	if !e.familyRevoked(t, f.ID) {
		t.Error("unblocking the account revived a refused family")
	}
}

// checkRefused checks that a refused rotation wrote no generation and revoked the
// family: the provider had read it as live, and it must not stay so.
func (e *env) checkRefused(t *testing.T, what, id string, generation int64) {
	t.Helper()
	got, err := e.s.RefreshFamilyByID(e.ctx, id)
	must(t, err)
	if got.Generation != generation || got.RevokedAt == nil {
		t.Errorf("%s: after a refused rotation the family is at generation %d, revoked %v; want generation %d, revoked",
			what, got.Generation, got.RevokedAt, generation)
	}
}

// The same for a session that ended: its tokens must not outlive it.
func testRotateRefusesEndedSession(t *testing.T, e *env) {
	u := e.user(t)
	ended := &storage.Session{UserID: u.ID, AuthTime: e.now(), ExpiresAt: e.now().Add(24 * time.Hour), EndedAt: ptr(e.now())}
	must(t, e.s.CreateSession(e.ctx, ended, storage.NewSecret()))
	f, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, SessionID: ended.ID})
	_, err := e.s.RotateRefreshFamily(e.ctx, f, e.now().Add(time.Hour), e.now().Add(time.Hour))
	wantNotFound(t, err, "rotating a family of an ended session")
	e.checkRefused(t, "a family of an ended session", f.ID, 1)

	// A live session's family, one with no session, and one whose session expired
	// without being ended (offline access outlives the browser's session) still rotate.
	live, _ := e.session(t, u.ID)
	withSession, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, SessionID: live.ID})
	e.rotate(t, withSession)
	noSession, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
	e.rotate(t, noSession)
	expiring := &storage.Session{UserID: u.ID, AuthTime: e.now(), ExpiresAt: e.now().Add(time.Minute)}
	must(t, e.s.CreateSession(e.ctx, expiring, storage.NewSecret()))
	offline, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, SessionID: expiring.ID})
	e.advance(2 * time.Minute)
	e.rotate(t, offline)
}

// testRaceRotateRevoke refreshes families over and over while something takes them
// away. Whatever the interleaving, every family must end up revoked, and no rotation
// may succeed once the revocation has returned but the one already under way: a
// rotation that committed just before the revocation is caught by it, one that
// comes after is refused. A rotation updates the family's row in place, so on
// PostgreSQL (READ COMMITTED) the revoking UPDATE waits for its row lock and must
// then revoke the row as rotated, which is what this looks for.
func testRaceRotateRevoke(t *testing.T, e *env) {
	cases := []struct {
		name        string
		withSession bool
		revoke      func(u *storage.User, sess *storage.Session, families []string) error
	}{
		{"block", true, func(u *storage.User, _ *storage.Session, _ []string) error {
			_, err := e.s.SetUserBlocked(e.ctx, u.ID, true)
			return err
		}},
		{"logout", true, func(_ *storage.User, sess *storage.Session, _ []string) error {
			_, err := e.s.EndSession(e.ctx, sess.ID)
			return err
		}},
		// A password reset; the families have no session, so only the revocation by
		// account stands between them and the next refresh.
		{"password reset", false, func(u *storage.User, _ *storage.Session, _ []string) error {
			if _, err := e.s.EndUserSessions(e.ctx, u.ID, ""); err != nil {
				return err
			}
			return e.s.RevokeUserTokens(e.ctx, u.ID)
		}},
		{"revoke family", false, func(_ *storage.User, _ *storage.Session, families []string) error {
			for _, id := range families {
				if err := e.s.RevokeRefreshFamily(e.ctx, id); err != nil {
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
				families := make([]*storage.RefreshFamily, racers-1)
				ids := make([]string, len(families)) // read by the revoker while the racers rotate
				for i := range families {
					f := storage.RefreshFamily{ClientID: "report", UserID: u.ID}
					if c.withSession {
						f.SessionID = sess.ID
					}
					families[i], _ = e.family(t, f)
					ids[i] = families[i].ID
				}
				var revoked atomic.Bool
				var rotations atomic.Int64
				errs := race(racers, func(i int) error {
					if i == racers-1 {
						runtime.Gosched() // let the rotations get going
						defer revoked.Store(true)
						return c.revoke(u, sess, ids)
					}
					f := families[i]
					// Rotate until refused. Once the revocation has returned, at most one
					// more rotation may report success (one that committed before it and
					// returned after); the next must be refused.
					for after := 0; after < 2; {
						if revoked.Load() {
							after++
						}
						_, err := e.s.RotateRefreshFamily(e.ctx, f, e.now().Add(time.Hour), e.now().Add(time.Hour))
						if storage.IsReused(err) || storage.IsNotFound(err) {
							return nil // taken away: the race is over for this family
						}
						if err != nil {
							return fmt.Errorf("racer %d: rotate: %w", i, err)
						}
						rotations.Add(1)
					}
					return fmt.Errorf("racer %d: the family still rotates after the revocation returned", i)
				})
				if err := errors.Join(errs...); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				for i, id := range ids {
					if !e.familyRevoked(t, id) {
						t.Errorf("round %d: family %d (%s), rotated while the revocation ran, is live", round, i, id)
					}
				}
				t.Logf("round %d: %d rotations raced the revocation", round, rotations.Load())
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

	f := codeFamily(e, r)
	raw, err := e.s.CreateRefreshFamily(e.ctx, f)
	wantReused(t, err, "CreateRefreshFamily of a reused code")
	if raw != "" {
		t.Errorf("a refused CreateRefreshFamily returned token %q", raw)
	}
	plain := codeAccess(e, r)
	wantReused(t, e.s.CreateAccessToken(e.ctx, plain), "CreateAccessToken of a reused code")
	// Refused before anything was written: not even a revoked row.
	if stored, err := e.s.AccessTokenDenied(e.ctx, plain.ID); err != nil || stored {
		t.Errorf("the refused access token left a revoked row (%v, %v)", stored, err)
	}
	if f.ID != "" {
		_, err = e.s.RefreshFamilyByID(e.ctx, f.ID)
		wantNotFound(t, err, "the refused family")
	}

	// Another code of the same account and session is untouched.
	other, otherCode := e.code(t, "report")
	_, err = e.s.ExchangeCode(e.ctx, otherCode, time.Hour)
	must(t, err)
	of := codeFamily(e, other)
	oraw, err := e.s.CreateRefreshFamily(e.ctx, of)
	must(t, err)
	if _, err := e.s.RefreshFamilyByToken(e.ctx, oraw, "report"); err != nil {
		t.Errorf("the refresh token of another code: %v", err)
	}
	must(t, e.s.CreateAccessToken(e.ctx, codeAccess(e, other)))
}

// A block or a logout that commits between a code's spend and the creation of its
// tokens revokes nothing of them (they do not exist yet), so the creation itself is
// refused; a code spent after its session ended is not spent at all.
func testCodeSignInEndedBeforeTokens(t *testing.T, e *env) {
	for _, end := range []struct {
		name string
		do   func(r *storage.AuthRequest) error
	}{
		{"account blocked", func(r *storage.AuthRequest) error {
			_, err := e.s.SetUserBlocked(e.ctx, r.UserID, true)
			return err
		}},
		{"session ended", func(r *storage.AuthRequest) error {
			_, err := e.s.EndSession(e.ctx, r.SessionID)
			return err
		}},
	} {
		t.Run(end.name, func(t *testing.T) {
			r, code := e.code(t, "report")
			_, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
			must(t, err)
			must(t, end.do(r))

			f := codeFamily(e, r)
			raw, err := e.s.CreateRefreshFamily(e.ctx, f)
			wantReused(t, err, "CreateRefreshFamily after the sign-in ended")
			if raw != "" {
				t.Errorf("a refused CreateRefreshFamily returned token %q", raw)
			}
			if f.ID != "" {
				_, err = e.s.RefreshFamilyByID(e.ctx, f.ID)
				wantNotFound(t, err, "the refused family")
			}
			plain := codeAccess(e, r)
			wantReused(t, e.s.CreateAccessToken(e.ctx, plain), "CreateAccessToken after the sign-in ended")
			if _, err := e.s.AccessTokenByID(e.ctx, plain.ID); !storage.IsNotFound(err) {
				t.Errorf("the refused access token: %v; want no row", err)
			}
		})
	}
	t.Run("code of an ended session", func(t *testing.T) {
		r, code := e.code(t, "report")
		_, err := e.s.EndSession(e.ctx, r.SessionID)
		must(t, err)
		got, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
		wantNotFound(t, err, "ExchangeCode of a code whose session ended")
		if got != nil {
			t.Errorf("ExchangeCode of a code whose session ended returned %+v", got)
		}
	})
}

// The winner's token creation racing the loser's revocation: either the creation is
// refused or its tokens are revoked.
func testRaceCodeTokensReuse(t *testing.T, e *env) {
	const codes = 24
	type exchange struct {
		r      *storage.AuthRequest
		family *storage.RefreshFamily
		plain  *storage.AccessToken
	}
	xs := make([]exchange, codes)
	for i := range xs {
		r, code := e.code(t, "report")
		_, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
		must(t, err)
		xs[i] = exchange{r: r, family: codeFamily(e, r), plain: codeAccess(e, r)}
	}
	var created atomic.Int64
	errs := race(2*codes, func(i int) error {
		x := xs[i/2]
		if i%2 == 1 {
			return e.s.RevokeAuthRequestTokens(e.ctx, x.r.ID)
		}
		if _, err := e.s.CreateRefreshFamily(e.ctx, x.family); err == nil {
			created.Add(1)
		} else if !storage.IsReused(err) {
			return err
		}
		if err := e.s.CreateAccessToken(e.ctx, x.plain); err != nil && !storage.IsReused(err) {
			return err
		}
		return nil
	})
	must(t, errors.Join(errs...))
	for i, x := range xs {
		e.checkAbsent(t, fmt.Sprintf("code %d after its reuse", i), []string{x.plain.ID}, []string{x.family.ID})
	}
	t.Logf("%d of %d families were created before the reuse and revoked by it", created.Load(), codes)
}

// codeFamily is the family a code exchange would create; the store gives its ids.
func codeFamily(e *env, r *storage.AuthRequest) *storage.RefreshFamily {
	f := &storage.RefreshFamily{ClientID: "report", UserID: r.UserID, SessionID: r.SessionID, AuthRequestID: r.ID,
		FamilyExpiresAt: e.now().Add(24 * time.Hour)}
	e.familyDefaults(f)
	return f
}

// codeAccess is the access token with a row a code exchange without a refresh token
// would create.
func codeAccess(e *env, r *storage.AuthRequest) *storage.AccessToken {
	return &storage.AccessToken{ID: storage.NewID(), ClientID: "report", UserID: r.UserID, SessionID: r.SessionID,
		AuthRequestID: r.ID, ExpiresAt: e.now().Add(time.Hour)}
}

// checkAbsent checks that the tokens a refused write offered were not stored, or are
// not live: no live access token row, and no family that is not revoked.
func (e *env) checkAbsent(t *testing.T, what string, accessIDs, familyIDs []string) {
	t.Helper()
	for _, id := range accessIDs {
		if e.accessLive(t, id) {
			t.Errorf("%s: access token %s is live", what, id)
		}
	}
	for _, id := range familyIDs {
		if id == "" {
			continue // the store refused it before giving it an id
		}
		f, err := e.s.RefreshFamilyByID(e.ctx, id)
		if err == nil && f.RevokedAt == nil {
			t.Errorf("%s: refresh family %s is live", what, id)
		} else if err != nil && !storage.IsNotFound(err) {
			t.Fatal(err)
		}
	}
}
