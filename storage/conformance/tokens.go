package conformance

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

func tokenTests() []test {
	return append([]test{
		{"access token create, load and revoke", testAccessToken},
		{"access token expiry", testAccessTokenExpiry},
		{"deny an access token without a row", testDenyAccessToken},
		{"refresh family round trip, token stored hashed", testRefreshHashed},
		{"what is not the live token is not found", testRefreshNotAToken},
		{"new families get ids of their own", testRefreshFamilyIDs},
		{"rotation moves the family to its next generation", testRefreshRotate},
		{"replay revokes the family and no other", testRefreshReplay},
		{"only the family's product replays", testReplayOnlyByItsProduct},
		{"rotating a stale copy is a replay", testRefreshRotateStale},
		{"idle expiry", testRefreshIdleExpiry},
		{"family expiry", testRefreshFamilyExpiry},
		{"expiry in any time zone", testRefreshExpiryZones},
		{"revoked is not found", testRefreshRevoked},
		{"revoke a family's access tokens", testRevokeFamilyAccess},
		{"race rotate", testRefreshRaceRotate},
		{"rotate by token", testRotateByToken},
		{"race rotate by token", testRaceRotateByToken},
		{"reads see the write just before", testReadYourWrites},
		{"race reads see their own writes", testRaceReadYourWrites},
	}, tokenRaceTests()...)
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

// A product's own access token has no row; revoking it writes one that denies it.
func testDenyAccessToken(t *testing.T, e *env) {
	denied := func(id string) bool {
		t.Helper()
		d, err := e.s.AccessTokenDenied(e.ctx, id)
		must(t, err)
		return d
	}
	id, other := "m-"+storage.NewID(), "m-"+storage.NewID()
	if denied(id) {
		t.Fatal("a token nobody denied is denied")
	}
	must(t, e.s.DenyAccessToken(e.ctx, id, "report", e.now().Add(time.Hour)))
	if !denied(id) {
		t.Error("a denied token is not denied")
	}
	// The revocation endpoint may be called twice for one token (RFC 7009).
	must(t, e.s.DenyAccessToken(e.ctx, id, "report", e.now().Add(2*time.Hour)))
	if !denied(id) {
		t.Error("a token denied twice is not denied")
	}
	if denied(other) {
		t.Error("denying one token denied another")
	}
	// The denial is a revoked row, never a live token.
	_, err := e.s.AccessTokenByID(e.ctx, id)
	wantNotFound(t, err, "AccessTokenByID of a denied token")
	// A live token with a row is not denied.
	live := e.access(t, storage.AccessToken{ClientID: "report", UserID: "u1"})
	if denied(live.ID) {
		t.Error("a live access token with a row is denied")
	}
	// Revocations by account do not touch a denial, which names no account, and
	// leave it denied.
	must(t, e.s.RevokeUserTokens(e.ctx, "u1"))
	if !denied(id) {
		t.Error("a revocation by account lifted a denial")
	}
}

// testRefreshHashed stores a family with every field set and reads it back through
// every read: each field must round-trip, and the store must keep only the hash of
// the token it hands out.
func testRefreshHashed(t *testing.T, e *env) {
	authTime := e.now().Add(-10 * time.Minute)
	want := storage.RefreshFamily{
		ClientID: "report", UserID: "u1", SessionID: "s1", AuthRequestID: "ar1",
		Scopes: storage.StringList{"openid", "offline_access", "profile"}, Audience: storage.StringList{"report", "api"},
		AuthTime: authTime, AMR: storage.StringList{"pwd", "otp"}, ACR: "2", IDP: "esia",
		Claims:    `{"userinfo":{"phone_number":{"essential":true}}}`,
		ExpiresAt: e.now().Add(time.Hour), FamilyExpiresAt: e.now().Add(24 * time.Hour),
		AccessExpiresAt: e.now().Add(15 * time.Minute),
	}
	f := want
	raw, err := e.s.CreateRefreshFamily(e.ctx, &f)
	must(t, err)
	if f.ID == "" || f.AccessID == "" || f.Generation != 1 || !f.CreatedAt.Equal(e.now()) || !f.RotatedAt.Equal(e.now()) {
		t.Errorf("CreateRefreshFamily left id %q, access id %q, generation %d, created %v, rotated %v; "+
			"want ids, generation 1, created and rotated now", f.ID, f.AccessID, f.Generation, f.CreatedAt, f.RotatedAt)
	}
	// The token names its family and generation, then a secret of 256 bits.
	if parts := strings.Split(raw, "."); len(parts) != 3 || parts[0] != f.ID || parts[1] != "1" || len(parts[2]) != 43 {
		t.Errorf("raw refresh token %q; want %q.1.<43 characters>", raw, f.ID)
	}
	if f.TokenHash != storage.HashSecret(raw) || strings.Contains(f.TokenHash, raw) {
		t.Errorf("token hash %q; want only the hash of the raw token", f.TokenHash)
	}
	want.ID, want.AccessID, want.Generation, want.TokenHash = f.ID, f.AccessID, 1, storage.HashSecret(raw)
	want.CreatedAt, want.RotatedAt = e.now(), e.now()

	reads := []struct {
		name string
		read func() (*storage.RefreshFamily, error)
	}{
		{"RefreshFamilyByToken", func() (*storage.RefreshFamily, error) { return e.s.RefreshFamilyByToken(e.ctx, raw, "report") }},
		{"RefreshFamilyByID", func() (*storage.RefreshFamily, error) { return e.s.RefreshFamilyByID(e.ctx, f.ID) }},
		{"RefreshFamilyByAccessID", func() (*storage.RefreshFamily, error) { return e.s.RefreshFamilyByAccessID(e.ctx, f.AccessID) }},
		{"FindRefreshFamily", func() (*storage.RefreshFamily, error) { return e.s.FindRefreshFamily(e.ctx, raw) }},
	}
	for _, r := range reads {
		got, err := r.read()
		if err != nil {
			t.Errorf("%s: %v", r.name, err)
			continue
		}
		sameFamily(t, r.name, got, &want)
	}
	_, err = e.s.RefreshFamilyByID(e.ctx, "absent")
	wantNotFound(t, err, "RefreshFamilyByID of an unknown id")
	_, err = e.s.RefreshFamilyByAccessID(e.ctx, "absent")
	wantNotFound(t, err, "RefreshFamilyByAccessID of an unknown id")
	// The access id is shown to every API the product calls; the family's id, half
	// of its refresh token, must not be found through it, nor the other way round.
	_, err = e.s.RefreshFamilyByAccessID(e.ctx, f.ID)
	wantNotFound(t, err, "RefreshFamilyByAccessID of the family's id")
	_, err = e.s.RefreshFamilyByID(e.ctx, f.AccessID)
	wantNotFound(t, err, "RefreshFamilyByID of the family's access id")
	_, err = e.s.RotateRefreshFamily(e.ctx, &storage.RefreshFamily{ID: "absent", Generation: 1},
		e.now().Add(time.Hour), e.now().Add(time.Hour))
	wantNotFound(t, err, "RotateRefreshFamily of an unknown family")
}

// sameFamily compares every field of two families.
func sameFamily(t *testing.T, what string, got, want *storage.RefreshFamily) {
	t.Helper()
	sameTime := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
	if got.ID != want.ID || got.AccessID != want.AccessID || got.Generation != want.Generation ||
		got.TokenHash != want.TokenHash || got.AccessRevokedThrough != want.AccessRevokedThrough ||
		got.ClientID != want.ClientID || got.UserID != want.UserID || got.SessionID != want.SessionID ||
		got.AuthRequestID != want.AuthRequestID || !slices.Equal(got.Scopes, want.Scopes) ||
		!slices.Equal(got.Audience, want.Audience) || !got.AuthTime.Equal(want.AuthTime) ||
		!slices.Equal(got.AMR, want.AMR) || got.ACR != want.ACR || got.IDP != want.IDP || got.Claims != want.Claims ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.RotatedAt.Equal(want.RotatedAt) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.FamilyExpiresAt.Equal(want.FamilyExpiresAt) ||
		!got.AccessExpiresAt.Equal(want.AccessExpiresAt) || !sameTime(got.RevokedAt, want.RevokedAt) {
		t.Errorf("%s returned\n%+v; want\n%+v", what, got, want)
	}
}

// Anything but the live token, or an earlier generation's number, finds nothing and
// takes nothing away: the holder of the live token keeps it.
func testRefreshNotAToken(t *testing.T, e *env) {
	f, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1"})
	raw2 := e.rotate(t, f) // the live generation is 2; a token of generation 1 would be a replay
	secret := raw2[strings.LastIndexByte(raw2, '.')+1:]
	prefix := f.ID + "." + strconv.FormatInt(f.Generation, 10) + "."
	for _, c := range []struct{ name, raw string }{
		{"empty", ""},
		{"the stored hash", storage.HashSecret(raw2)},
		{"a bare secret", storage.NewSecret()},
		{"the family's id alone", f.ID},
		{"the family's id and generation", strings.TrimSuffix(prefix, ".")},
		{"the live generation with a wrong secret", prefix + storage.NewSecret()},
		{"the next generation, not yet issued", f.ID + "." + strconv.FormatInt(f.Generation+1, 10) + "." + secret},
		{"generation 0", f.ID + ".0." + secret},
		{"a negative generation", f.ID + ".-1." + secret},
		{"the live token with a character more", raw2 + "A"},
		{"the live token cut short", raw2[:len(raw2)-1]},
		{"an unknown family", storage.NewID() + ".1." + secret},
		{"the access id in place of the family's", f.AccessID + "." + strconv.FormatInt(f.Generation, 10) + "." + secret},
	} {
		_, err := e.s.RefreshFamilyByToken(e.ctx, c.raw, "report")
		wantNotFound(t, err, "RefreshFamilyByToken of "+c.name)
		_, err = e.s.FindRefreshFamily(e.ctx, c.raw)
		wantNotFound(t, err, "FindRefreshFamily of "+c.name)
	}
	got, err := e.s.RefreshFamilyByToken(e.ctx, raw2, "report")
	if err != nil {
		t.Fatalf("the live token after the wrong ones: %v", err)
	}
	if got.RevokedAt != nil || got.Generation != 2 {
		t.Errorf("after the wrong tokens the family is at generation %d, revoked %v; want 2, live", got.Generation, got.RevokedAt)
	}
}

// testRefreshFamilyIDs leaves the ids to the store: every new family must get its
// own, or a replay in one family would revoke the others, and its access tokens'
// identifier must be neither its id nor another family's.
func testRefreshFamilyIDs(t *testing.T, e *env) {
	const n = 20
	seen := map[string]bool{}
	fams := make([]*storage.RefreshFamily, n)
	raws := make([]string, n)
	for i := range n {
		fams[i], raws[i] = e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1"})
		for _, id := range []string{fams[i].ID, fams[i].AccessID} {
			if id == "" || seen[id] {
				t.Fatalf("family %d got id %q and access id %q; want non-empty ids no family has", i, fams[i].ID, fams[i].AccessID)
			}
			seen[id] = true
		}
	}
	e.rotate(t, fams[0])
	_, err := e.s.RefreshFamilyByToken(e.ctx, raws[0], "report")
	wantReused(t, err, "replay")
	if !e.familyRevoked(t, fams[0].ID) {
		t.Error("the replayed family is live")
	}
	if _, err := e.s.RefreshFamilyByToken(e.ctx, raws[1], "report"); err != nil {
		t.Errorf("a replay in one family revoked another family: %v", err)
	}
}

func testRefreshRotate(t *testing.T, e *env) {
	f, raw1 := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1", SessionID: "s1", AuthRequestID: "ar1",
		AMR: storage.StringList{"pwd"}, ACR: "1", Claims: `{"id_token":{"acr":null}}`})
	before := *f
	e.advance(30 * time.Minute)
	expires, accessExpires := e.now().Add(time.Hour), e.now().Add(15*time.Minute)
	raw2, err := e.s.RotateRefreshFamily(e.ctx, f, expires, accessExpires)
	must(t, err)
	if !strings.HasPrefix(raw2, f.ID+".2.") {
		t.Errorf("the next token %q does not name generation 2 of family %s", raw2, f.ID)
	}
	// f is the next generation now, and so is the stored row; the rest of the family
	// (its ids, account, session, code, grant and absolute expiry) stays.
	want := before
	want.Generation, want.TokenHash = 2, storage.HashSecret(raw2)
	want.RotatedAt, want.ExpiresAt, want.AccessExpiresAt = e.now(), expires, accessExpires
	sameFamily(t, "RotateRefreshFamily's f", f, &want)
	got, err := e.s.RefreshFamilyByToken(e.ctx, raw2, "report")
	must(t, err)
	sameFamily(t, "RefreshFamilyByToken of the next token", got, &want)
	if got.TokenHash == before.TokenHash {
		t.Error("rotation kept the token hash")
	}
	// Revocation finds the family by a spent token without treating it as a replay.
	found, err := e.s.FindRefreshFamily(e.ctx, raw1)
	if err != nil || found.ID != f.ID {
		t.Errorf("FindRefreshFamily of the spent token: %+v, %v; want the family", found, err)
	}
	if e.familyRevoked(t, f.ID) {
		t.Fatal("FindRefreshFamily of a spent token revoked the family")
	}
	e.advance(time.Minute)
	raw3 := e.rotate(t, f)
	if got, err := e.s.RefreshFamilyByToken(e.ctx, raw3, "report"); err != nil || got.Generation != 3 ||
		!got.FamilyExpiresAt.Equal(before.FamilyExpiresAt) || !got.CreatedAt.Equal(before.CreatedAt) {
		t.Errorf("after a second rotation: %+v, %v; want generation 3 with the family's creation and absolute expiry", got, err)
	}
	// The spent token is now a replay.
	_, err = e.s.RefreshFamilyByToken(e.ctx, raw2, "report")
	wantReused(t, err, "RefreshFamilyByToken of a rotated token")
}

func testRefreshReplay(t *testing.T, e *env) {
	// Which spent token comes back: the first generation's, or the one just before
	// the live one.
	for _, replayed := range []int{0, 1} {
		t.Run(fmt.Sprintf("generation %d", replayed+1), func(t *testing.T) {
			u := e.user(t)
			f, raw1 := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, SessionID: "s1"})
			raw2 := e.rotate(t, f)
			raw3 := e.rotate(t, f)
			other, otherRaw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, SessionID: "s1"})

			_, err := e.s.RefreshFamilyByToken(e.ctx, []string{raw1, raw2}[replayed], "report")
			wantReused(t, err, "RefreshFamilyByToken of a spent token")
			if !e.familyRevoked(t, f.ID) {
				t.Error("a replay left its family live")
			}
			_, err = e.s.RefreshFamilyByToken(e.ctx, raw3, "report")
			wantNotFound(t, err, "the live token of a replayed family")
			for _, raw := range []string{raw1, raw2} {
				if _, err := e.s.RefreshFamilyByToken(e.ctx, raw, "report"); err == nil {
					t.Error("a spent token works after its family was revoked")
				}
			}
			_, err = e.s.RotateRefreshFamily(e.ctx, f, e.now().Add(time.Hour), e.now().Add(time.Hour))
			wantNotFound(t, err, "rotating a replayed family")

			if _, err := e.s.RefreshFamilyByToken(e.ctx, otherRaw, "report"); err != nil {
				t.Errorf("a replay revoked another family of the same account, product and session: %v", err)
			}
			e.checkTokens(t, "another family", true, nil, []string{other.ID})
			e.rotate(t, other)
		})
	}
}

// The provider rotates the family it read; another request may have rotated it since.
// The stale copy's rotation is a replay, and writes no generation.
func testRefreshRotateStale(t *testing.T, e *env) {
	f, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1"})
	stale := *f
	raw2 := e.rotate(t, f)
	_, err := e.s.RotateRefreshFamily(e.ctx, &stale, e.now().Add(time.Hour), e.now().Add(time.Hour))
	wantReused(t, err, "RotateRefreshFamily of a stale copy")
	if stale.Generation != 1 {
		t.Errorf("a refused rotation moved its copy to generation %d", stale.Generation)
	}
	got, err := e.s.RefreshFamilyByID(e.ctx, f.ID)
	must(t, err)
	if got.RevokedAt == nil || got.Generation != 2 || got.TokenHash != storage.HashSecret(raw2) {
		t.Errorf("after a stale rotation the family is at generation %d, revoked %v; want generation 2 kept, revoked",
			got.Generation, got.RevokedAt)
	}
	_, err = e.s.RefreshFamilyByToken(e.ctx, raw2, "report")
	wantNotFound(t, err, "the winner's token after a stale rotation")
}

func testRefreshIdleExpiry(t *testing.T, e *env) {
	f, raw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1"}) // idle hour
	e.advance(time.Hour - time.Second)
	if _, err := e.s.RefreshFamilyByToken(e.ctx, raw, "report"); err != nil {
		t.Fatalf("a second before idle expiry: %v", err)
	}
	e.advance(time.Second)
	_, err := e.s.RefreshFamilyByToken(e.ctx, raw, "report")
	wantNotFound(t, err, "RefreshFamilyByToken at idle expiry")
	// Revocation still finds it.
	if _, err := e.s.FindRefreshFamily(e.ctx, raw); err != nil {
		t.Errorf("FindRefreshFamily of an expired family: %v", err)
	}
	// The provider read it a moment before it expired.
	_, err = e.s.RotateRefreshFamily(e.ctx, f, e.now().Add(time.Hour), e.now().Add(time.Hour))
	wantNotFound(t, err, "RotateRefreshFamily at idle expiry")
	if !e.familyRevoked(t, f.ID) {
		t.Error("a refused rotation left the family unrevoked")
	}
}

func testRefreshFamilyExpiry(t *testing.T, e *env) {
	// Idle expiry an hour, absolute expiry three hours: refreshing every 50 minutes
	// keeps the family alive until its absolute expiry and no longer.
	end := start.Add(3 * time.Hour)
	f, raw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1", FamilyExpiresAt: end})
	for e.now().Add(50 * time.Minute).Before(end) {
		e.advance(50 * time.Minute)
		raw = e.rotate(t, f)
	}
	// The last rotation asked for an idle expiry past the family's: it is capped.
	if !f.ExpiresAt.Equal(end) || !f.FamilyExpiresAt.Equal(end) {
		t.Fatalf("the live generation's idle expiry is %v; want the family's %v", f.ExpiresAt, f.FamilyExpiresAt)
	}
	e.advance(end.Sub(e.now()) - time.Second)
	if _, err := e.s.RefreshFamilyByToken(e.ctx, raw, "report"); err != nil {
		t.Fatalf("a second before the family's expiry: %v", err)
	}
	e.advance(time.Second)
	_, err := e.s.RefreshFamilyByToken(e.ctx, raw, "report")
	wantNotFound(t, err, "RefreshFamilyByToken at the family's absolute expiry")
	_, err = e.s.RotateRefreshFamily(e.ctx, f, e.now().Add(time.Hour), e.now().Add(time.Hour))
	wantNotFound(t, err, "RotateRefreshFamily at the family's absolute expiry")
}

// testRefreshExpiryZones stores expiry instants written in other time zones (the
// caller's local time): the rotation compares them in SQL, where they must compare as
// instants, not as wall-clock text.
func testRefreshExpiryZones(t *testing.T, e *env) {
	for _, zone := range []*time.Location{
		time.FixedZone("MSK", 3*3600), time.FixedZone("EST", -5*3600), time.FixedZone("NPT", 5*3600+45*60),
	} {
		for _, which := range []string{"idle", "absolute"} {
			t.Run(zone.String()+" "+which, func(t *testing.T) {
				soon, later := e.now().Add(time.Hour).In(zone), e.now().Add(48*time.Hour).In(zone)
				f := storage.RefreshFamily{ClientID: "report", UserID: "u1", ExpiresAt: soon, FamilyExpiresAt: later}
				if which == "absolute" {
					f.ExpiresAt, f.FamilyExpiresAt = later, soon
				}
				before, _ := e.family(t, f)
				at, _ := e.family(t, f)
				e.advance(time.Hour - time.Second)
				_, err := e.s.RotateRefreshFamily(e.ctx, before, e.now().Add(time.Hour).In(zone), e.now().Add(time.Hour).In(zone))
				if err != nil {
					t.Errorf("rotating a second before the %s expiry: %v", which, err)
				}
				e.advance(time.Second)
				_, err = e.s.RotateRefreshFamily(e.ctx, at, e.now().Add(time.Hour).In(zone), e.now().Add(time.Hour).In(zone))
				wantNotFound(t, err, "rotating at the "+which+" expiry")
			})
		}
	}
}

func testRefreshRevoked(t *testing.T, e *env) {
	// revoke gets the family, rotated once, and an access token with a row issued
	// with the same account, product and code; rows says whether that revocation
	// takes the row too (a family's revocation is of the family alone).
	cases := []struct {
		name   string
		rows   bool
		revoke func(f *storage.RefreshFamily) error
	}{
		{"family", false, func(f *storage.RefreshFamily) error { return e.s.RevokeRefreshFamily(e.ctx, f.ID) }},
		{"user and client", true, func(f *storage.RefreshFamily) error {
			return e.s.RevokeUserClientTokens(e.ctx, f.UserID, f.ClientID)
		}},
		{"user", true, func(f *storage.RefreshFamily) error { return e.s.RevokeUserTokens(e.ctx, f.UserID) }},
		{"auth request", true, func(f *storage.RefreshFamily) error { return e.s.RevokeAuthRequestTokens(e.ctx, f.AuthRequestID) }},
		{"session", true, func(f *storage.RefreshFamily) error {
			_, err := e.s.EndSession(e.ctx, f.SessionID)
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := e.user(t)
			sess, _ := e.session(t, u.ID)
			keys := storage.RefreshFamily{ClientID: "report", UserID: u.ID, SessionID: sess.ID, AuthRequestID: storage.NewID()}
			f, _ := e.family(t, keys)
			raw2 := e.rotate(t, f)
			row := e.access(t, storage.AccessToken{ClientID: keys.ClientID, UserID: keys.UserID, SessionID: keys.SessionID,
				AuthRequestID: keys.AuthRequestID})
			// Another product of the account (of another account where the whole
			// account's tokens go), in another session, from another code.
			keepUser := u
			if c.name == "user" {
				keepUser = e.user(t)
			}
			otherSess, _ := e.session(t, keepUser.ID)
			keep, keepRaw := e.family(t, storage.RefreshFamily{ClientID: "sign", UserID: keepUser.ID, SessionID: otherSess.ID,
				AuthRequestID: storage.NewID()})
			e.advance(time.Minute)
			must(t, c.revoke(f))
			_, err := e.s.RefreshFamilyByToken(e.ctx, raw2, "report")
			wantNotFound(t, err, "the live token of a revoked family")
			got, err := e.s.RefreshFamilyByID(e.ctx, f.ID)
			must(t, err)
			if got.RevokedAt == nil || !got.RevokedAt.Equal(e.now()) {
				t.Errorf("the family's revoked_at is %v; want now", got.RevokedAt)
			}
			_, err = e.s.RotateRefreshFamily(e.ctx, f, e.now().Add(time.Hour), e.now().Add(time.Hour))
			wantNotFound(t, err, "rotating a revoked family")
			if e.accessLive(t, row.ID) == c.rows {
				t.Errorf("the access token row with the same keys: live %v; want %v", c.rows, !c.rows)
			}
			if _, err := e.s.RefreshFamilyByToken(e.ctx, keepRaw, "report"); err != nil {
				t.Errorf("an unrelated family: %v", err)
			}
			e.checkTokens(t, "unrelated", true, nil, []string{keep.ID})

			// Revoking again keeps the first revocation's time.
			e.advance(time.Minute)
			must(t, e.s.RevokeRefreshFamily(e.ctx, f.ID))
			if again, err := e.s.RefreshFamilyByID(e.ctx, f.ID); err != nil || !again.RevokedAt.Equal(*got.RevokedAt) {
				t.Errorf("revoking a revoked family: %+v, %v; want revoked_at %v kept", again, err, got.RevokedAt)
			}
		})
	}
	must(t, e.s.RevokeRefreshFamily(e.ctx, "absent")) // RFC 7009: not an error
}

// RFC 7009 on one of a family's access tokens: it and the earlier ones end, the family
// and its later access tokens do not.
func testRevokeFamilyAccess(t *testing.T, e *env) {
	through := func(f *storage.RefreshFamily) (int64, *time.Time) {
		t.Helper()
		got, err := e.s.RefreshFamilyByAccessID(e.ctx, f.AccessID)
		must(t, err)
		return got.AccessRevokedThrough, got.RevokedAt
	}
	f, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1"})
	other, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1"})
	if n, _ := through(f); n != 0 {
		t.Fatalf("a new family has access tokens revoked through %d; want 0", n)
	}
	e.rotate(t, f)
	raw3 := e.rotate(t, f)
	for _, step := range []struct {
		generation, want int64
		why              string
	}{
		{2, 2, "revoking generation 2"},
		{1, 2, "an earlier generation afterwards lowers nothing"},
		{2, 2, "the same again"},
		{3, 3, "the live generation"},
	} {
		must(t, e.s.RevokeFamilyAccess(e.ctx, f.ID, step.generation))
		n, revoked := through(f)
		if n != step.want || revoked != nil {
			t.Errorf("%s: access revoked through %d, family revoked %v; want %d, family live", step.why, n, revoked, step.want)
		}
	}
	// The family itself goes on: its live token works and it rotates, keeping the mark.
	got, err := e.s.RefreshFamilyByToken(e.ctx, raw3, "report")
	must(t, err)
	if got.AccessRevokedThrough != 3 {
		t.Errorf("RefreshFamilyByToken: access revoked through %d; want 3", got.AccessRevokedThrough)
	}
	e.rotate(t, got)
	if n, _ := through(f); n != 3 {
		t.Errorf("after a rotation access tokens are revoked through %d; want 3 kept", n)
	}
	must(t, e.s.RevokeFamilyAccess(e.ctx, f.ID, 4))
	if n, _ := through(f); n != 4 {
		t.Errorf("revoking the new generation's access token: through %d; want 4", n)
	}
	if n, _ := through(other); n != 0 {
		t.Errorf("another family's access tokens are revoked through %d; want 0", n)
	}
	must(t, e.s.RevokeFamilyAccess(e.ctx, "absent", 1)) // RFC 7009: not an error
}

func testRefreshRaceRotate(t *testing.T, e *env) {
	f, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1"})
	// Each racer rotates its own copy of the family as read, as concurrent requests
	// presenting the same token do.
	copies := make([]*storage.RefreshFamily, racers)
	raws := make([]string, racers)
	for i := range copies {
		c := *f
		copies[i] = &c
	}
	errs := race(racers, func(i int) error {
		var err error
		raws[i], err = e.s.RotateRefreshFamily(e.ctx, copies[i], e.now().Add(time.Hour), e.now().Add(time.Hour))
		return err
	})
	winner := oneWinner(t, errs, storage.IsReused, "IsReused")
	got, err := e.s.RefreshFamilyByID(e.ctx, f.ID)
	must(t, err)
	// One rotation was applied, the winner's; a losing racer is a replay of the spent
	// generation, and revokes the family.
	if got.Generation != 2 || got.TokenHash != storage.HashSecret(raws[winner]) {
		t.Errorf("after the race the family is at generation %d with hash %q; want the winner's generation 2", got.Generation, got.TokenHash)
	}
	if got.RevokedAt == nil {
		t.Error("racing rotations left the family live")
	}
	for i, c := range copies {
		if i != winner && (c.Generation != 1 || raws[i] != "") {
			t.Errorf("racer %d lost but its copy moved to generation %d, token %q", i, c.Generation, raws[i])
		}
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
		denied := "m-" + storage.NewID()
		must(t, e.s.DenyAccessToken(e.ctx, denied, "report", e.now().Add(time.Hour)))
		if d, err := e.s.AccessTokenDenied(e.ctx, denied); err != nil || !d {
			t.Fatalf("round %d: a denied access token right after the denial: denied %v, %v", i, d, err)
		}

		f, raw1 := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
		if _, err := e.s.RefreshFamilyByToken(e.ctx, raw1, "report"); err != nil {
			t.Fatalf("round %d: a new refresh token: %v", i, err)
		}
		if _, err := e.s.RefreshFamilyByAccessID(e.ctx, f.AccessID); err != nil {
			t.Fatalf("round %d: a new family by its access id: %v", i, err)
		}
		raw2 := e.rotate(t, f)
		if got, err := e.s.RefreshFamilyByToken(e.ctx, raw2, "report"); err != nil || got.Generation != 2 {
			t.Fatalf("round %d: the next token right after rotation: %+v, %v", i, got, err)
		}
		if got, err := e.s.RefreshFamilyByAccessID(e.ctx, f.AccessID); err != nil || got.Generation != 2 {
			t.Fatalf("round %d: the family by its access id right after rotation: %+v, %v", i, got, err)
		}
		must(t, e.s.RevokeFamilyAccess(e.ctx, f.ID, 2))
		if got, err := e.s.RefreshFamilyByAccessID(e.ctx, f.AccessID); err != nil || got.AccessRevokedThrough != 2 {
			t.Fatalf("round %d: the family's access tokens right after their revocation: %+v, %v", i, got, err)
		}
		_, err := e.s.RefreshFamilyByToken(e.ctx, raw1, "report")
		wantReused(t, err, "the spent token right after rotation")
		if _, err := e.s.RefreshFamilyByToken(e.ctx, raw2, "report"); !storage.IsNotFound(err) {
			t.Fatalf("round %d: the family's live token right after a replay revoked it: %v", i, err)
		}
		if got, err := e.s.RefreshFamilyByAccessID(e.ctx, f.AccessID); err != nil || got.RevokedAt == nil {
			t.Fatalf("round %d: the family by its access id right after a replay revoked it: %+v, %v", i, got, err)
		}

		g, graw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
		must(t, e.s.RevokeRefreshFamily(e.ctx, g.ID))
		if _, err := e.s.RefreshFamilyByToken(e.ctx, graw, "report"); !storage.IsNotFound(err) {
			t.Fatalf("round %d: a refresh token right after its family was revoked: %v", i, err)
		}
		if got, err := e.s.RefreshFamilyByAccessID(e.ctx, g.AccessID); err != nil || got.RevokedAt == nil {
			t.Fatalf("round %d: a family by its access id right after it was revoked: %+v, %v", i, got, err)
		}
	}
	f, raw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
	_, err := e.s.SetUserBlocked(e.ctx, u.ID, true)
	must(t, err)
	got, err := e.s.UserByID(e.ctx, u.ID)
	must(t, err)
	if !got.Blocked {
		t.Error("an account read right after it was blocked is not blocked")
	}
	if _, err := e.s.RefreshFamilyByToken(e.ctx, raw, "report"); !storage.IsNotFound(err) {
		t.Errorf("a refresh token right after its account was blocked: %v", err)
	}
	if got, err := e.s.RefreshFamilyByAccessID(e.ctx, f.AccessID); err != nil || got.RevokedAt == nil {
		t.Errorf("a family by its access id right after its account was blocked: %+v, %v", got, err)
	}
}

// The same, with many requests writing and reading at once.
func testRaceReadYourWrites(t *testing.T, e *env) {
	errs := race(racers, func(i int) error {
		for range 10 {
			// Not e.family: it fails the test, which only the test's goroutine may do.
			f := &storage.RefreshFamily{ClientID: "report", UserID: "u1"}
			e.familyDefaults(f)
			raw1, err := e.s.CreateRefreshFamily(e.ctx, f)
			if err != nil {
				return err
			}
			if _, err := e.s.RefreshFamilyByToken(e.ctx, raw1, "report"); err != nil {
				return fmt.Errorf("racer %d: refresh token right after it was created: %w", i, err)
			}
			if _, err := e.s.RefreshFamilyByAccessID(e.ctx, f.AccessID); err != nil {
				return fmt.Errorf("racer %d: family by its access id right after it was created: %w", i, err)
			}
			raw2, err := e.s.RotateRefreshFamily(e.ctx, f, e.now().Add(time.Hour), e.now().Add(time.Hour))
			if err != nil {
				return fmt.Errorf("racer %d: rotate: %w", i, err)
			}
			if _, err := e.s.RefreshFamilyByToken(e.ctx, raw2, "report"); err != nil {
				return fmt.Errorf("racer %d: next token right after rotation: %w", i, err)
			}
			if err := e.s.RevokeFamilyAccess(e.ctx, f.ID, f.Generation); err != nil {
				return err
			}
			if got, err := e.s.RefreshFamilyByAccessID(e.ctx, f.AccessID); err != nil || got.AccessRevokedThrough != f.Generation {
				return fmt.Errorf("racer %d: family's access tokens right after their revocation: %+v, %v", i, got, err)
			}
			if err := e.s.RevokeRefreshFamily(e.ctx, f.ID); err != nil {
				return err
			}
			if _, err := e.s.RefreshFamilyByToken(e.ctx, raw2, "report"); !storage.IsNotFound(err) {
				return fmt.Errorf("racer %d: refresh token right after its family was revoked: %v", i, err)
			}
			if got, err := e.s.RefreshFamilyByAccessID(e.ctx, f.AccessID); err != nil || got.RevokedAt == nil {
				return fmt.Errorf("racer %d: family by its access id right after it was revoked: %+v, %v", i, got, err)
			}
			denied := "m-" + storage.NewID()
			if err := e.s.DenyAccessToken(e.ctx, denied, "report", e.now().Add(time.Hour)); err != nil {
				return err
			}
			if d, err := e.s.AccessTokenDenied(e.ctx, denied); err != nil || !d {
				return fmt.Errorf("racer %d: access token right after its denial: denied %v, %v", i, d, err)
			}
		}
		return nil
	})
	must(t, errors.Join(errs...))
}

// testRotateByToken: the refresh's one statement rotates the live token of a live
// family for its own product, and anything else it leaves exactly as it was (the
// provider then reads the family to tell why, which handles a replay).
func testRotateByToken(t *testing.T, e *env) {
	u := e.user(t)
	f, raw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID, FamilyExpiresAt: e.now().Add(90 * time.Minute)})
	e.advance(time.Minute)
	idle, access := e.now().Add(time.Hour), e.now().Add(15*time.Minute)
	got, next, err := e.s.RotateRefreshFamilyByToken(e.ctx, raw, "report", idle, access)
	must(t, err)
	want := *f
	want.Generation, want.TokenHash, want.RotatedAt, want.ExpiresAt, want.AccessExpiresAt = 2, storage.HashSecret(next), e.now(), idle, access
	sameFamily(t, "RotateRefreshFamilyByToken", got, &want)
	stored, err := e.s.RefreshFamilyByToken(e.ctx, next, "report")
	must(t, err)
	sameFamily(t, "the family read after RotateRefreshFamilyByToken", stored, &want)

	// The idle expiry never passes the absolute one.
	e.advance(time.Minute)
	got, next, err = e.s.RotateRefreshFamilyByToken(e.ctx, next, "report", e.now().Add(2*time.Hour), access)
	must(t, err)
	if !got.ExpiresAt.Equal(f.FamilyExpiresAt) {
		t.Errorf("idle expiry %v, asked for two hours 88 minutes before the family's expiry %v; want the family's", got.ExpiresAt, f.FamilyExpiresAt)
	}

	unchanged := func(what string) {
		t.Helper()
		now, err := e.s.RefreshFamilyByID(e.ctx, f.ID)
		must(t, err)
		if now.Generation != got.Generation || now.TokenHash != got.TokenHash || now.RevokedAt != nil {
			t.Errorf("%s changed the family: generation %d, revoked %v", what, now.Generation, now.RevokedAt)
		}
	}
	secret := next[strings.LastIndexByte(next, '.')+1:]
	for _, c := range []struct{ name, raw, client string }{
		{"another product", next, "sign"},
		{"a wrong secret", f.ID + ".3." + storage.NewSecret(), "report"},
		{"an earlier generation", f.ID + ".2." + secret, "report"},
		{"the spent token", raw, "report"},
		{"a generation not yet issued", f.ID + ".4." + secret, "report"},
		{"not a token", "garbage", "report"},
	} {
		_, _, err := e.s.RotateRefreshFamilyByToken(e.ctx, c.raw, c.client, e.now().Add(time.Hour), access)
		wantNotFound(t, err, "RotateRefreshFamilyByToken of "+c.name)
		unchanged(c.name)
	}

	// A blocked account's family, a revoked one, an expired one: refused, and left
	// for the read that follows to deal with.
	_, err = e.s.UpdateUser(e.ctx, u.ID, func(u *storage.User) error { u.Blocked = true; return nil })
	must(t, err)
	_, _, err = e.s.RotateRefreshFamilyByToken(e.ctx, next, "report", e.now().Add(time.Hour), access)
	wantNotFound(t, err, "RotateRefreshFamilyByToken of a blocked account's family")
	unchanged("a blocked account")
	_, err = e.s.UpdateUser(e.ctx, u.ID, func(u *storage.User) error { u.Blocked = false; return nil })
	must(t, err)
	e.advance(f.FamilyExpiresAt.Sub(e.now()))
	_, _, err = e.s.RotateRefreshFamilyByToken(e.ctx, next, "report", e.now().Add(time.Hour), access)
	wantNotFound(t, err, "RotateRefreshFamilyByToken of an expired family")
	revoked, revokedRaw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: u.ID})
	must(t, e.s.RevokeRefreshFamily(e.ctx, revoked.ID))
	_, _, err = e.s.RotateRefreshFamilyByToken(e.ctx, revokedRaw, "report", e.now().Add(time.Hour), access)
	wantNotFound(t, err, "RotateRefreshFamilyByToken of a revoked family")
}

// testRaceRotateByToken: requests presenting one token at once; exactly one rotates,
// the others find nothing to rotate and change nothing.
func testRaceRotateByToken(t *testing.T, e *env) {
	f, raw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1"})
	nexts := make([]string, racers)
	errs := race(racers, func(i int) error {
		var err error
		_, nexts[i], err = e.s.RotateRefreshFamilyByToken(e.ctx, raw, "report", e.now().Add(time.Hour), e.now().Add(time.Hour))
		return err
	})
	winner := oneWinner(t, errs, storage.IsNotFound, "IsNotFound")
	got, err := e.s.RefreshFamilyByToken(e.ctx, nexts[winner], "report")
	must(t, err)
	if got.Generation != 2 {
		t.Errorf("after the race the family is at generation %d; want 2", got.Generation)
	}
	// The losers' requests go on to read the token they presented: now a replay.
	_, err = e.s.RefreshFamilyByToken(e.ctx, raw, "report")
	wantReused(t, err, "the raced token read after the race")
	if !e.familyRevoked(t, f.ID) {
		t.Error("the replayed family is live")
	}
}

// testReplayOnlyByItsProduct: an earlier generation is recognised by its number (its
// secret is no longer stored), so only the family's own product presenting it is a
// replay; from another product, or with the product unknown, it finds nothing and
// takes nothing away.
func testReplayOnlyByItsProduct(t *testing.T, e *env) {
	f, raw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: "u1"})
	live := e.rotate(t, f)
	forged := f.ID + ".1." + storage.NewSecret() // the id part of any of its tokens, and a guess
	for _, client := range []string{"sign", ""} {
		for _, token := range []string{raw, forged} {
			_, err := e.s.RefreshFamilyByToken(e.ctx, token, client)
			wantNotFound(t, err, "an earlier generation presented by product "+strconv.Quote(client))
		}
	}
	if e.familyRevoked(t, f.ID) {
		t.Fatal("another product's presentation of an earlier generation revoked the family")
	}
	if _, err := e.s.RefreshFamilyByToken(e.ctx, live, "report"); err != nil {
		t.Fatalf("the live token after another product presented an earlier one: %v", err)
	}
	_, err := e.s.RefreshFamilyByToken(e.ctx, raw, "report")
	wantReused(t, err, "the family's own product presenting an earlier generation")
	if !e.familyRevoked(t, f.ID) {
		t.Error("the family's own replay left it live")
	}
}
