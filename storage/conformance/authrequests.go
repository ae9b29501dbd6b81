package conformance

import (
	"slices"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

func authRequestTests() []test {
	return []test{
		{"create and load", testAuthRequestCreateLoad},
		{"absent is not found", testAuthRequestAbsent},
		{"expired is not found", testAuthRequestExpiry},
		{"complete once", testAuthRequestComplete},
		{"delete", testAuthRequestDelete},
		{"race complete", testAuthRequestRaceComplete},
	}
}

func codeTests() []test {
	return []test{
		{"save only on a completed request", testCodeSaveCompleted},
		{"exchange once", testCodeExchangeOnce},
		{"stored hashed", testCodeHashed},
		{"expired code is not found", testCodeExpiry},
		{"used code is remembered for the retention", testCodeRetain},
		{"reuse revokes the code's tokens", testCodeReuseRevokes},
		{"race exchange", testCodeRaceExchange},
	}
}

func testAuthRequestCreateLoad(t *testing.T, e *env) {
	r := &storage.AuthRequest{
		ClientID: "report", RedirectURI: "https://online.astral.ru/oidc/callback",
		State: "xyz", Nonce: "n-0S6_WzA2Mj", Scopes: storage.StringList{"openid", "profile", "phone"},
		ResponseType: "code", ResponseMode: "query", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256", Prompt: storage.StringList{"login", "consent"}, MaxAge: ptr(int64(600)),
		LoginHint: "+79105940899", UILocales: storage.StringList{"ru"}, ACRValues: storage.StringList{"2"},
		Claims: `{"id_token":{"given_name":{"essential":true}}}`, HintSubject: "sub-1",
		ExpiresAt: e.now().Add(30 * time.Minute),
	}
	must(t, e.s.CreateAuthRequest(e.ctx, r))
	if r.ID == "" {
		t.Fatal("CreateAuthRequest left the id empty")
	}
	got, err := e.s.AuthRequestByID(e.ctx, r.ID)
	must(t, err)
	if got.ClientID != r.ClientID || got.RedirectURI != r.RedirectURI || got.State != r.State ||
		got.Nonce != r.Nonce || !slices.Equal(got.Scopes, r.Scopes) || got.ResponseType != "code" ||
		got.ResponseMode != "query" || got.CodeChallenge != r.CodeChallenge || got.CodeChallengeMethod != "S256" ||
		!slices.Equal(got.Prompt, r.Prompt) || got.MaxAge == nil || *got.MaxAge != 600 ||
		got.LoginHint != r.LoginHint || !slices.Equal(got.UILocales, r.UILocales) ||
		!slices.Equal(got.ACRValues, r.ACRValues) || got.Claims != r.Claims || got.HintSubject != "sub-1" ||
		got.Done || got.UserID != "" || got.CodeHash != nil || got.CodeUsedAt != nil ||
		!got.ExpiresAt.Equal(r.ExpiresAt) {
		t.Errorf("AuthRequestByID returned\n%+v\nwant\n%+v", got, r)
	}
	plain := &storage.AuthRequest{ClientID: "sign", ExpiresAt: e.now().Add(time.Minute)}
	must(t, e.s.CreateAuthRequest(e.ctx, plain))
	got, err = e.s.AuthRequestByID(e.ctx, plain.ID)
	must(t, err)
	if got.MaxAge != nil {
		t.Errorf("a request without max_age loaded with MaxAge %d", *got.MaxAge)
	}
}

func testAuthRequestAbsent(t *testing.T, e *env) {
	e.authRequest(t, "report")
	_, err := e.s.AuthRequestByID(e.ctx, "absent")
	wantNotFound(t, err, "AuthRequestByID")
	err = e.s.CompleteAuthRequest(e.ctx, "absent", storage.Authentication{UserID: "u", AuthTime: e.now()})
	wantNotFound(t, err, "CompleteAuthRequest")
	wantNotFound(t, e.s.SaveAuthCode(e.ctx, "absent", storage.NewSecret(), time.Minute), "SaveAuthCode")
	r, err := e.s.ExchangeCode(e.ctx, storage.NewSecret(), time.Hour)
	wantNotFound(t, err, "ExchangeCode of an unknown code")
	if r != nil {
		t.Errorf("ExchangeCode of an unknown code returned a request %+v", r)
	}
}

func testAuthRequestExpiry(t *testing.T, e *env) {
	r := e.authRequest(t, "report") // 30 minutes
	e.advance(30*time.Minute - time.Second)
	if _, err := e.s.AuthRequestByID(e.ctx, r.ID); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	e.advance(time.Second)
	_, err := e.s.AuthRequestByID(e.ctx, r.ID)
	wantNotFound(t, err, "AuthRequestByID at expiry")
	err = e.s.CompleteAuthRequest(e.ctx, r.ID, storage.Authentication{UserID: "u", AuthTime: e.now()})
	wantNotFound(t, err, "CompleteAuthRequest of an expired request")
}

func testAuthRequestComplete(t *testing.T, e *env) {
	u := e.user(t)
	sess, _ := e.session(t, u.ID)
	r := e.authRequest(t, "report")
	e.advance(time.Minute)
	a := storage.Authentication{
		UserID: u.ID, SessionID: sess.ID, AuthTime: e.now().In(time.FixedZone("MSK", 3*3600)),
		AMR: []string{"fed"}, ACR: "2", IDP: "esia",
	}
	must(t, e.s.CompleteAuthRequest(e.ctx, r.ID, a))
	got, err := e.s.AuthRequestByID(e.ctx, r.ID)
	must(t, err)
	if !got.Done || got.UserID != u.ID || got.SessionID != sess.ID || !got.AuthTime.Equal(e.now()) ||
		!slices.Equal(got.AMR, []string{"fed"}) || got.ACR != "2" || got.IDP != "esia" {
		t.Errorf("completed request %+v", got)
	}
	clients, err := e.s.SessionClients(e.ctx, sess.ID)
	must(t, err)
	if !slices.Equal(clients, []string{"report"}) {
		t.Errorf("the session's clients are %v; want [report]", clients)
	}

	again := a
	again.UserID = e.user(t).ID
	wantReused(t, e.s.CompleteAuthRequest(e.ctx, r.ID, again), "CompleteAuthRequest a second time")
	got, err = e.s.AuthRequestByID(e.ctx, r.ID)
	must(t, err)
	if got.UserID != u.ID {
		t.Errorf("a second completion changed the account to %s", got.UserID)
	}

	// A request completed without a browser session (no SSO) records no session client.
	bare := e.authRequest(t, "sign")
	must(t, e.s.CompleteAuthRequest(e.ctx, bare.ID, storage.Authentication{UserID: u.ID, AuthTime: e.now(), AMR: []string{"pwd"}}))
	clients, err = e.s.SessionClients(e.ctx, "")
	must(t, err)
	if len(clients) != 0 {
		t.Errorf("a request without a session recorded session clients %v", clients)
	}
}

func testAuthRequestDelete(t *testing.T, e *env) {
	r := e.authRequest(t, "report")
	kept := e.authRequest(t, "report")
	must(t, e.s.DeleteAuthRequest(e.ctx, r.ID))
	_, err := e.s.AuthRequestByID(e.ctx, r.ID)
	wantNotFound(t, err, "AuthRequestByID after DeleteAuthRequest")
	if _, err := e.s.AuthRequestByID(e.ctx, kept.ID); err != nil {
		t.Errorf("deleting one request removed another: %v", err)
	}
}

func testAuthRequestRaceComplete(t *testing.T, e *env) {
	r := e.authRequest(t, "report")
	users := make([]string, racers)
	for i := range users {
		users[i] = e.user(t).ID
	}
	errs := race(racers, func(i int) error {
		return e.s.CompleteAuthRequest(e.ctx, r.ID, storage.Authentication{UserID: users[i], AuthTime: e.now(), AMR: []string{"pwd"}})
	})
	winner := oneWinner(t, errs, storage.IsReused, "IsReused")
	got, err := e.s.AuthRequestByID(e.ctx, r.ID)
	must(t, err)
	if got.UserID != users[winner] {
		t.Errorf("the request belongs to %s; want the winner %s", got.UserID, users[winner])
	}
}

func testCodeSaveCompleted(t *testing.T, e *env) {
	r := e.authRequest(t, "report")
	code := storage.NewSecret()
	wantNotFound(t, e.s.SaveAuthCode(e.ctx, r.ID, code, time.Minute), "SaveAuthCode on a pending request")
	_, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
	wantNotFound(t, err, "ExchangeCode of a code refused by SaveAuthCode")

	u := e.user(t)
	e.signIn(t, r, u.ID, "")
	must(t, e.s.SaveAuthCode(e.ctx, r.ID, code, time.Minute))
	wantNotFound(t, e.s.SaveAuthCode(e.ctx, r.ID, storage.NewSecret(), time.Minute),
		"SaveAuthCode a second time (a request has one code)")
	got, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
	must(t, err)
	if got.ID != r.ID {
		t.Errorf("the code redeems request %s; want %s", got.ID, r.ID)
	}
}

func testCodeExchangeOnce(t *testing.T, e *env) {
	r, code := e.code(t, "report")
	e.advance(30 * time.Second)
	got, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
	must(t, err)
	if got.ID != r.ID || got.ClientID != "report" || got.UserID != r.UserID || got.SessionID != r.SessionID ||
		!got.Done || got.CodeChallenge != r.CodeChallenge || got.Nonce != r.Nonce ||
		!slices.Equal(got.Scopes, r.Scopes) || got.CodeUsedAt == nil || !got.CodeUsedAt.Equal(e.now()) {
		t.Errorf("ExchangeCode returned %+v; want request %s, used now", got, r.ID)
	}
	e.advance(time.Second)
	again, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
	wantReused(t, err, "ExchangeCode a second time")
	if again == nil || again.ID != r.ID || again.UserID != r.UserID {
		t.Errorf("a reused code returned request %+v; want request %s so its tokens can be revoked", again, r.ID)
	}
}

func testCodeHashed(t *testing.T, e *env) {
	r, code := e.code(t, "report")
	got, err := e.s.AuthRequestByID(e.ctx, r.ID)
	must(t, err)
	if got.CodeHash == nil || *got.CodeHash != storage.HashSecret(code) {
		t.Errorf("stored code %v; want only the hash of the code", got.CodeHash)
	}
	_, err = e.s.ExchangeCode(e.ctx, storage.HashSecret(code), time.Hour)
	wantNotFound(t, err, "ExchangeCode with the stored hash instead of the code")
}

func testCodeExpiry(t *testing.T, e *env) {
	_, code := e.code(t, "report") // a minute
	e.advance(time.Minute)
	r, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
	wantNotFound(t, err, "ExchangeCode at the code's expiry")
	if r != nil {
		t.Errorf("an expired code returned request %+v", r)
	}

	_, code = e.code(t, "report")
	e.advance(time.Minute - time.Second)
	_, err = e.s.ExchangeCode(e.ctx, code, time.Hour)
	must(t, err)
}

func testCodeRetain(t *testing.T, e *env) {
	_, code := e.code(t, "report")
	_, err := e.s.ExchangeCode(e.ctx, code, 10*time.Minute)
	must(t, err)
	e.advance(10*time.Minute - time.Second)
	_, err = e.s.ExchangeCode(e.ctx, code, 10*time.Minute)
	wantReused(t, err, "ExchangeCode within the retention")
	e.advance(time.Second)
	counts, err := e.s.DeleteExpired(e.ctx, storage.DefaultRetention)
	must(t, err)
	if counts["auth_requests"] != 1 {
		t.Errorf("DeleteExpired removed %d auth requests; want the exchanged one after its retention", counts["auth_requests"])
	}
	_, err = e.s.ExchangeCode(e.ctx, code, 10*time.Minute)
	wantNotFound(t, err, "ExchangeCode after the retention and cleanup")
}

func testCodeReuseRevokes(t *testing.T, e *env) {
	r, code := e.code(t, "report")
	_, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
	must(t, err)
	// The exchange issues an access token with a row and a refresh family; the family
	// is then refreshed twice, and must still be found by its code.
	plain := e.access(t, storage.AccessToken{ClientID: "report", UserID: r.UserID, SessionID: r.SessionID, AuthRequestID: r.ID})
	f, _ := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: r.UserID, SessionID: r.SessionID, AuthRequestID: r.ID})
	e.rotate(t, f)
	raw3 := e.rotate(t, f)
	// Tokens of another code of the same account and session stay.
	other := e.authRequest(t, "report")
	e.signIn(t, other, r.UserID, r.SessionID)
	otherAccess := e.access(t, storage.AccessToken{ClientID: "report", UserID: r.UserID, SessionID: r.SessionID, AuthRequestID: other.ID})
	otherFamily, otherRaw := e.family(t, storage.RefreshFamily{ClientID: "report", UserID: r.UserID, SessionID: r.SessionID, AuthRequestID: other.ID})

	again, err := e.s.ExchangeCode(e.ctx, code, time.Hour)
	wantReused(t, err, "ExchangeCode a second time")
	if again == nil {
		t.Fatal("a reused code returned no request")
	}
	must(t, e.s.RevokeAuthRequestTokens(e.ctx, again.ID))
	e.checkTokens(t, "tokens of a reused code", false, []string{plain.ID}, []string{f.ID})
	_, err = e.s.RefreshFamilyByToken(e.ctx, raw3, "report")
	wantNotFound(t, err, "the live refresh token of a reused code")
	e.checkTokens(t, "tokens of another code", true, []string{otherAccess.ID}, []string{otherFamily.ID})
	if _, err := e.s.RefreshFamilyByToken(e.ctx, otherRaw, "report"); err != nil {
		t.Errorf("the refresh token of another code: %v", err)
	}
}

func testCodeRaceExchange(t *testing.T, e *env) {
	r, code := e.code(t, "report")
	got := make([]*storage.AuthRequest, racers)
	errs := race(racers, func(i int) error {
		var err error
		got[i], err = e.s.ExchangeCode(e.ctx, code, time.Hour)
		return err
	})
	winner := oneWinner(t, errs, storage.IsReused, "IsReused")
	if got[winner].ID != r.ID {
		t.Errorf("the winner redeemed request %s; want %s", got[winner].ID, r.ID)
	}
	for i, g := range got {
		if i != winner && (g == nil || g.ID != r.ID) {
			t.Errorf("racer %d lost but got request %+v; want %s so its tokens can be revoked", i, g, r.ID)
		}
	}
}
