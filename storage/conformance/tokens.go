package conformance

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

func tokenTests() []test {
	return append([]test{
		{"access token create, load and revoke", testAccessToken},
		{"access token expiry", testAccessTokenExpiry},
		{"refresh token stored hashed", testRefreshHashed},
		{"new families get ids of their own", testRefreshFamilyIDs},
		{"rotation spends the old generation", testRefreshRotate},
		{"replay revokes the family", testRefreshReplay},
		{"rotating a spent generation is a replay", testRefreshRotateSpent},
		{"idle expiry", testRefreshIdleExpiry},
		{"family expiry", testRefreshFamilyExpiry},
		{"revoked is not found", testRefreshRevoked},
		{"race rotate", testRefreshRaceRotate},
		{"rotation keeps the family and its expiry", testRefreshRotateKeepsFamily},
		{"a family from a code needs its access token", testRefreshNeedsAccess},
		{"reads see the write just before", testReadYourWrites},
		{"race reads see their own writes", testRaceReadYourWrites},
	}, tokenRaceTests()...)
}

func testRefreshRotateKeepsFamily(t *testing.T, e *env) {
	r1, _, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: "u1"})
	e.advance(time.Minute)
	r2, raw2, a2 := e.rotate(t, r1)
	got, err := e.s.RefreshTokenByToken(e.ctx, raw2)
	must(t, err)
	if got.FamilyID != r1.FamilyID || a2.FamilyID != r1.FamilyID || got.ID != r2.ID {
		t.Errorf("next generation %s (access token's family %q) is not of family %q", got.FamilyID, a2.FamilyID, r1.FamilyID)
	}
	if !got.FamilyExpiresAt.Equal(r1.FamilyExpiresAt) || !r2.FamilyExpiresAt.Equal(r1.FamilyExpiresAt) {
		t.Errorf("family expiry moved from %v to %v on rotation", r1.FamilyExpiresAt, got.FamilyExpiresAt)
	}
	_, _, _ = e.rotate(t, got)
}

func testRefreshNeedsAccess(t *testing.T, e *env) {
	r := &storage.RefreshToken{ClientID: "report", UserID: "u1", AuthRequestID: "ar1",
		ExpiresAt: e.now().Add(time.Hour), FamilyExpiresAt: e.now().Add(24 * time.Hour)}
	if _, err := e.s.CreateRefreshToken(e.ctx, r, nil); err == nil {
		t.Error("CreateRefreshToken of a code's family without its access token succeeded; a reused code could not revoke it")
	}
}

// Reads may be answered by other connections than the writes (SQLite's read pool):
// a read right after a write must still see it, and every revocation must take effect
// for the very next read.
func testReadYourWrites(t *testing.T, e *env) {
	u := e.user(t)
	for i := range 20 {
		a := e.access(t, storage.AccessToken{ClientID: "report", UserID: u.ID})
		if !e.accessLive(t, a.ID) {
			t.Fatalf("round %d: an access token is not found right after it was created", i)
		}
		must(t, e.s.RevokeAccessToken(e.ctx, a.ID))
		if e.accessLive(t, a.ID) {
			t.Fatalf("round %d: an access token is live right after it was revoked", i)
		}
		r1, raw1, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: u.ID})
		if _, err := e.s.RefreshTokenByToken(e.ctx, raw1); err != nil {
			t.Fatalf("round %d: a new refresh token: %v", i, err)
		}
		r2, raw2, a2 := e.rotate(t, r1)
		if _, err := e.s.RefreshTokenByToken(e.ctx, raw2); err != nil {
			t.Fatalf("round %d: the next generation right after rotation: %v", i, err)
		}
		_, err := e.s.RefreshTokenByToken(e.ctx, raw1)
		wantReused(t, err, "the spent generation right after rotation")
		if _, err := e.s.RefreshTokenByToken(e.ctx, raw2); !storage.IsNotFound(err) {
			t.Fatalf("round %d: the family's live generation right after a replay revoked it: %v", i, err)
		}
		if e.accessLive(t, a2.ID) || !e.refreshRevoked(t, r2.ID) {
			t.Fatalf("round %d: the family's tokens are live right after a replay revoked it", i)
		}
	}
	_, err := e.s.SetUserBlocked(e.ctx, u.ID, true)
	must(t, err)
	got, err := e.s.UserByID(e.ctx, u.ID)
	must(t, err)
	if !got.Blocked {
		t.Error("an account read right after it was blocked is not blocked")
	}
}

// The same, with many requests writing and reading at once.
func testRaceReadYourWrites(t *testing.T, e *env) {
	errs := race(racers, func(i int) error {
		for range 10 {
			// Not e.family: it fails the test, which only the test's goroutine may do.
			r1 := &storage.RefreshToken{ClientID: "report", UserID: "u1",
				ExpiresAt: e.now().Add(time.Hour), FamilyExpiresAt: e.now().Add(24 * time.Hour)}
			a1 := &storage.AccessToken{ClientID: "report", UserID: "u1", ExpiresAt: e.now().Add(time.Hour)}
			raw1, err := e.s.CreateRefreshToken(e.ctx, r1, a1)
			if err != nil {
				return err
			}
			if _, err := e.s.AccessTokenByID(e.ctx, a1.ID); err != nil {
				return fmt.Errorf("racer %d: access token right after it was created: %w", i, err)
			}
			if _, err := e.s.RefreshTokenByToken(e.ctx, raw1); err != nil {
				return fmt.Errorf("racer %d: refresh token right after it was created: %w", i, err)
			}
			n, _ := e.next(r1)
			raw2, err := e.s.RotateRefreshToken(e.ctx, r1.ID, n, nil)
			if err != nil {
				return fmt.Errorf("racer %d: rotate: %w", i, err)
			}
			if _, err := e.s.RefreshTokenByToken(e.ctx, raw2); err != nil {
				return fmt.Errorf("racer %d: next generation right after rotation: %w", i, err)
			}
			if err := e.s.RevokeRefreshFamily(e.ctx, r1.FamilyID); err != nil {
				return err
			}
			if _, err := e.s.AccessTokenByID(e.ctx, a1.ID); !storage.IsNotFound(err) {
				return fmt.Errorf("racer %d: access token right after its family was revoked: %v", i, err)
			}
		}
		return nil
	})
	must(t, errors.Join(errs...))
}

func testAccessToken(t *testing.T, e *env) {
	a := e.access(t, storage.AccessToken{
		ClientID: "report", UserID: "u1", SessionID: "s1", AuthRequestID: "ar1",
		Scopes: storage.StringList{"openid", "profile"}, Audience: storage.StringList{"report", "api"},
	})
	other := e.access(t, storage.AccessToken{ClientID: "report", UserID: "u1"})
	got, err := e.s.AccessTokenByID(e.ctx, a.ID)
	must(t, err)
	if got.ClientID != "report" || got.UserID != "u1" || got.SessionID != "s1" || got.AuthRequestID != "ar1" ||
		!slices.Equal(got.Scopes, a.Scopes) || !slices.Equal(got.Audience, a.Audience) || !got.ExpiresAt.Equal(a.ExpiresAt) {
		t.Errorf("AccessTokenByID returned %+v; want %+v", got, a)
	}
	_, err = e.s.AccessTokenByID(e.ctx, "absent")
	wantNotFound(t, err, "AccessTokenByID of an unknown id")
	wantConflict(t, e.s.CreateAccessToken(e.ctx, &storage.AccessToken{ID: a.ID, ExpiresAt: e.now().Add(time.Hour)}),
		"CreateAccessToken with a taken id")

	must(t, e.s.RevokeAccessToken(e.ctx, a.ID))
	_, err = e.s.AccessTokenByID(e.ctx, a.ID)
	wantNotFound(t, err, "AccessTokenByID of a revoked token")
	must(t, e.s.RevokeAccessToken(e.ctx, a.ID))
	must(t, e.s.RevokeAccessToken(e.ctx, "absent")) // RFC 7009: not an error
	if !e.accessLive(t, other.ID) {
		t.Error("revoking one access token revoked another")
	}
}

func testAccessTokenExpiry(t *testing.T, e *env) {
	a := e.access(t, storage.AccessToken{ClientID: "report", UserID: "u1"}) // an hour
	e.advance(time.Hour - time.Second)
	if !e.accessLive(t, a.ID) {
		t.Fatal("a second before expiry the access token is not found")
	}
	e.advance(time.Second)
	if e.accessLive(t, a.ID) {
		t.Error("an expired access token is found")
	}
}

func testRefreshHashed(t *testing.T, e *env) {
	r, raw, _ := e.family(t, storage.RefreshToken{
		ClientID: "report", UserID: "u1", SessionID: "s1", AuthRequestID: "ar1",
		Audience: storage.StringList{"report"}, AMR: storage.StringList{"pwd"}, ACR: "1", IDP: "",
	})
	got, err := e.s.RefreshTokenByToken(e.ctx, raw)
	must(t, err)
	if got.ID != r.ID || got.FamilyID != r.FamilyID || got.ClientID != "report" || got.UserID != "u1" ||
		got.SessionID != "s1" || got.AuthRequestID != "ar1" || !slices.Equal(got.Scopes, r.Scopes) ||
		!slices.Equal(got.AMR, []string{"pwd"}) || got.ACR != "1" || !got.AuthTime.Equal(r.AuthTime) ||
		!got.ExpiresAt.Equal(r.ExpiresAt) || !got.FamilyExpiresAt.Equal(r.FamilyExpiresAt) ||
		got.SpentAt != nil || got.RevokedAt != nil {
		t.Errorf("RefreshTokenByToken returned %+v; want %+v", got, r)
	}
	if got.TokenHash != storage.HashSecret(raw) || got.TokenHash == raw {
		t.Errorf("stored token %q; want only the hash of the raw token", got.TokenHash)
	}
	_, err = e.s.RefreshTokenByToken(e.ctx, storage.HashSecret(raw))
	wantNotFound(t, err, "RefreshTokenByToken with the stored hash")
	_, err = e.s.RefreshTokenByToken(e.ctx, storage.NewSecret())
	wantNotFound(t, err, "RefreshTokenByToken of an unknown token")
	id, _, _ := strings.Cut(raw, ".")
	_, err = e.s.RefreshTokenByToken(e.ctx, id+"."+storage.NewSecret())
	wantNotFound(t, err, "RefreshTokenByToken of a real generation with a wrong secret")
	_, err = e.s.RefreshTokenByToken(e.ctx, id)
	wantNotFound(t, err, "RefreshTokenByToken of a generation's id alone")
	if _, err := e.s.RefreshTokenByToken(e.ctx, raw); err != nil {
		t.Errorf("a wrong secret took the generation away: %v", err)
	}
	_, err = e.s.RefreshTokenByID(e.ctx, "absent")
	wantNotFound(t, err, "RefreshTokenByID of an unknown id")
	n, na := e.next(r)
	_, err = e.s.RotateRefreshToken(e.ctx, "absent", n, na)
	wantNotFound(t, err, "RotateRefreshToken of an unknown id")
}

// testRefreshFamilyIDs leaves the ids to the store: every new family must get its
// own, or a replay in one family would revoke the others.
func testRefreshFamilyIDs(t *testing.T, e *env) {
	var gens []*storage.RefreshToken
	var raws []string
	var along []*storage.AccessToken
	for range 2 {
		r := &storage.RefreshToken{ClientID: "report", UserID: "u1", ExpiresAt: e.now().Add(time.Hour), FamilyExpiresAt: e.now().Add(24 * time.Hour)}
		a := &storage.AccessToken{ID: storage.NewID(), ClientID: "report", UserID: "u1", ExpiresAt: e.now().Add(time.Hour)}
		raw, err := e.s.CreateRefreshToken(e.ctx, r, a)
		must(t, err)
		gens, raws, along = append(gens, r), append(raws, raw), append(along, a)
	}
	if gens[0].ID == "" || gens[0].FamilyID == "" || gens[0].ID == gens[1].ID || gens[0].FamilyID == gens[1].FamilyID {
		t.Fatalf("two new families got ids %q/%q and %q/%q; want distinct, non-empty ones",
			gens[0].ID, gens[0].FamilyID, gens[1].ID, gens[1].FamilyID)
	}
	e.rotate(t, gens[0])
	_, err := e.s.RefreshTokenByToken(e.ctx, raws[0])
	wantReused(t, err, "replay")
	if e.accessLive(t, along[0].ID) {
		t.Error("the replayed family's first access token is live")
	}
	if _, err := e.s.RefreshTokenByToken(e.ctx, raws[1]); err != nil || !e.accessLive(t, along[1].ID) {
		t.Errorf("a replay in one family revoked another family: %v", err)
	}
}

func testRefreshRotate(t *testing.T, e *env) {
	r1, _, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: "u1", SessionID: "s1"})
	e.advance(30 * time.Minute)
	r2, raw2, a2 := e.rotate(t, r1)
	got, err := e.s.RefreshTokenByToken(e.ctx, raw2)
	must(t, err)
	if got.ID != r2.ID || got.FamilyID != r1.FamilyID || !got.FamilyExpiresAt.Equal(r1.FamilyExpiresAt) ||
		!got.ExpiresAt.Equal(e.now().Add(time.Hour)) || got.TokenHash != storage.HashSecret(raw2) {
		t.Errorf("the next generation is %+v; want family %s with its absolute expiry %v", got, r1.FamilyID, r1.FamilyExpiresAt)
	}
	if r2.FamilyID != r1.FamilyID || a2.FamilyID != r1.FamilyID {
		t.Errorf("RotateRefreshToken set family %q on the generation and %q on its access token; want %q",
			r2.FamilyID, a2.FamilyID, r1.FamilyID)
	}
	old, err := e.s.RefreshTokenByID(e.ctx, r1.ID)
	must(t, err)
	if old.SpentAt == nil || !old.SpentAt.Equal(e.now()) || old.RevokedAt != nil {
		t.Errorf("the rotated generation has spent_at %v, revoked_at %v; want spent now, not revoked", old.SpentAt, old.RevokedAt)
	}
	if !e.accessLive(t, a2.ID) {
		t.Error("the access token issued with the rotation is not live")
	}
}

func testRefreshReplay(t *testing.T, e *env) {
	r1, raw1, a1 := e.family(t, storage.RefreshToken{ClientID: "report", UserID: "u1", SessionID: "s1"})
	r2, _, a2 := e.rotate(t, r1)
	r3, raw3, a3 := e.rotate(t, r2)
	other, otherRaw, otherAlong := e.family(t, storage.RefreshToken{ClientID: "report", UserID: "u1", SessionID: "s1"})

	_, err := e.s.RefreshTokenByToken(e.ctx, raw1)
	wantReused(t, err, "RefreshTokenByToken of a spent generation")
	e.checkTokens(t, "the replayed family", false, []string{a1.ID, a2.ID, a3.ID}, []string{r1.ID, r2.ID, r3.ID})
	_, err = e.s.RefreshTokenByToken(e.ctx, raw3)
	wantNotFound(t, err, "the live generation of a revoked family")
	if _, err := e.s.RefreshTokenByToken(e.ctx, raw1); err == nil {
		t.Error("the replayed token works after its family was revoked")
	}
	n, na := e.next(r3)
	if _, err := e.s.RotateRefreshToken(e.ctx, r3.ID, n, na); err == nil {
		t.Error("a generation of a revoked family rotates")
	}

	if _, err := e.s.RefreshTokenByToken(e.ctx, otherRaw); err != nil {
		t.Errorf("a replay revoked another family: %v", err)
	}
	e.checkTokens(t, "another family", true, []string{otherAlong.ID}, []string{other.ID})
}

func testRefreshRotateSpent(t *testing.T, e *env) {
	r1, _, a1 := e.family(t, storage.RefreshToken{ClientID: "report", UserID: "u1"})
	r2, _, a2 := e.rotate(t, r1)
	n, a := e.next(r1)
	_, err := e.s.RotateRefreshToken(e.ctx, r1.ID, n, a)
	wantReused(t, err, "RotateRefreshToken of a spent generation")
	e.checkTokens(t, "the replayed family", false, []string{a1.ID, a2.ID}, []string{r1.ID, r2.ID})
	_, err = e.s.RefreshTokenByID(e.ctx, n.ID)
	wantNotFound(t, err, "the generation a refused rotation offered")
	if e.accessLive(t, a.ID) {
		t.Error("the access token a refused rotation offered is live")
	}
}

func testRefreshIdleExpiry(t *testing.T, e *env) {
	_, raw, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: "u1"}) // idle hour
	e.advance(time.Hour - time.Second)
	if _, err := e.s.RefreshTokenByToken(e.ctx, raw); err != nil {
		t.Fatalf("a second before idle expiry: %v", err)
	}
	e.advance(time.Second)
	_, err := e.s.RefreshTokenByToken(e.ctx, raw)
	wantNotFound(t, err, "RefreshTokenByToken at idle expiry")
}

func testRefreshFamilyExpiry(t *testing.T, e *env) {
	// Idle expiry an hour, absolute expiry three hours: refreshing every 50 minutes
	// keeps the family alive until its absolute expiry and no longer.
	r, raw, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: "u1", FamilyExpiresAt: e.now().Add(3 * time.Hour)})
	for e.now().Add(50 * time.Minute).Before(start.Add(3 * time.Hour)) {
		e.advance(50 * time.Minute)
		r, raw, _ = e.rotate(t, r)
	}
	if !r.ExpiresAt.After(start.Add(3 * time.Hour)) {
		t.Fatalf("the test wants a live generation whose idle expiry %v passes the family's", r.ExpiresAt)
	}
	e.advance(start.Add(3*time.Hour).Sub(e.now()) - time.Second)
	if _, err := e.s.RefreshTokenByToken(e.ctx, raw); err != nil {
		t.Fatalf("a second before the family's expiry: %v", err)
	}
	e.advance(time.Second)
	_, err := e.s.RefreshTokenByToken(e.ctx, raw)
	wantNotFound(t, err, "RefreshTokenByToken at the family's absolute expiry")
}

func testRefreshRevoked(t *testing.T, e *env) {
	// revoke gets the first generation; the second must go with it.
	cases := []struct {
		name   string
		revoke func(first *storage.RefreshToken) error
	}{
		{"family", func(r *storage.RefreshToken) error { return e.s.RevokeRefreshFamily(e.ctx, r.FamilyID) }},
		{"user and client", func(r *storage.RefreshToken) error {
			return e.s.RevokeUserClientTokens(e.ctx, r.UserID, r.ClientID)
		}},
		{"user", func(r *storage.RefreshToken) error { return e.s.RevokeUserTokens(e.ctx, r.UserID) }},
		{"auth request", func(r *storage.RefreshToken) error { return e.s.RevokeAuthRequestTokens(e.ctx, r.AuthRequestID) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user := "user-" + storage.NewID()
			r1, _, a1 := e.family(t, storage.RefreshToken{ClientID: "report", UserID: user, AuthRequestID: storage.NewID()})
			r2, raw2, a2 := e.rotate(t, r1)
			keep, keepRaw, keepAlong := e.family(t, storage.RefreshToken{ClientID: "sign", UserID: "someone-else", AuthRequestID: storage.NewID()})
			must(t, c.revoke(r1))
			_, err := e.s.RefreshTokenByToken(e.ctx, raw2)
			wantNotFound(t, err, "a revoked refresh token")
			e.checkTokens(t, "revoked", false, []string{a1.ID, a2.ID}, []string{r1.ID, r2.ID})
			if _, err := e.s.RefreshTokenByToken(e.ctx, keepRaw); err != nil {
				t.Errorf("an unrelated family: %v", err)
			}
			e.checkTokens(t, "unrelated", true, []string{keepAlong.ID}, []string{keep.ID})
		})
	}
}

func testRefreshRaceRotate(t *testing.T, e *env) {
	r1, _, _ := e.family(t, storage.RefreshToken{ClientID: "report", UserID: "u1"})
	nexts := make([]*storage.RefreshToken, racers)
	alongs := make([]*storage.AccessToken, racers)
	for i := range racers {
		nexts[i], alongs[i] = e.next(r1)
	}
	errs := race(racers, func(i int) error {
		_, err := e.s.RotateRefreshToken(e.ctx, r1.ID, nexts[i], alongs[i])
		return err
	})
	winner := oneWinner(t, errs, storage.IsReused, "IsReused")
	for i := range racers {
		_, err := e.s.RefreshTokenByID(e.ctx, nexts[i].ID)
		if i == winner {
			must(t, err)
			continue
		}
		wantNotFound(t, err, "a losing racer's generation (its transaction must roll back)")
		if e.accessLive(t, alongs[i].ID) {
			t.Errorf("racer %d lost but its access token is live", i)
		}
	}
	// A losing racer is a replay of the spent generation: the family is revoked.
	e.checkTokens(t, "the raced family", false, []string{alongs[winner].ID}, []string{r1.ID, nexts[winner].ID})
}
