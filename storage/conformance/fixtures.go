package conformance

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

// phones makes every fixture account's phone number unique.
var phones atomic.Int64

// user creates an account with a phone number of its own.
func (e *env) user(t *testing.T) *storage.User {
	t.Helper()
	u := &storage.User{
		Phone:        ptr(fmt.Sprintf("+7910%07d", phones.Add(1))),
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA",
		GivenName:    "Иван",
		FamilyName:   "Петров",
	}
	must(t, e.s.CreateUser(e.ctx, u))
	return u
}

// client registers a product; logoutURI may be empty.
func (e *env) client(t *testing.T, id, logoutURI string) *storage.Client {
	t.Helper()
	c := newClient(id)
	c.BackchannelLogoutURI = logoutURI
	must(t, e.s.CreateClient(e.ctx, &c))
	return &c
}

func newClient(id string) storage.Client {
	return storage.Client{
		ID:                     id,
		Name:                   "Астрал.Отчет " + id,
		SecretHash:             "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Type:                   "web",
		RedirectURIs:           storage.StringList{"https://" + id + ".example.ru/oidc/callback"},
		PostLogoutRedirectURIs: storage.StringList{"https://" + id + ".example.ru/"},
		GrantTypes:             storage.StringList{"authorization_code", "refresh_token"},
		Scopes:                 storage.StringList{"openid", "profile", "phone", "offline_access"},
		HomeURL:                "https://" + id + ".example.ru/",
		Source:                 "cli",
	}
}

// session signs userID in for a day and returns the session and its raw cookie value.
func (e *env) session(t *testing.T, userID string) (*storage.Session, string) {
	t.Helper()
	raw := storage.NewSecret()
	sess := &storage.Session{
		UserID:    userID,
		AuthTime:  e.now(),
		AMR:       storage.StringList{"pwd"},
		UserAgent: "Mozilla/5.0",
		IP:        "203.0.113.7",
		ExpiresAt: e.now().Add(24 * time.Hour),
	}
	must(t, e.s.CreateSession(e.ctx, sess, raw))
	return sess, raw
}

// access records an access token like a, valid for an hour unless a says otherwise.
func (e *env) access(t *testing.T, a storage.AccessToken) *storage.AccessToken {
	t.Helper()
	if a.ID == "" {
		a.ID = storage.NewID()
	}
	if a.ExpiresAt.IsZero() {
		a.ExpiresAt = e.now().Add(time.Hour)
	}
	if a.Scopes == nil {
		a.Scopes = storage.StringList{"openid"}
	}
	must(t, e.s.CreateAccessToken(e.ctx, &a))
	return &a
}

// family starts a refresh family like f (idle expiry an hour, absolute expiry thirty
// days, its first access token's expiry an hour, unless f says otherwise), leaving the
// ids to the store as the provider does. It returns the family at its first generation
// and the raw refresh token.
func (e *env) family(t *testing.T, f storage.RefreshFamily) (*storage.RefreshFamily, string) {
	t.Helper()
	e.familyDefaults(&f)
	raw, err := e.s.CreateRefreshFamily(e.ctx, &f)
	must(t, err)
	return &f, raw
}

// familyDefaults fills what family leaves to its defaults; it fails nothing, so
// goroutines of a race may use it.
func (e *env) familyDefaults(f *storage.RefreshFamily) {
	if f.ExpiresAt.IsZero() {
		f.ExpiresAt = e.now().Add(time.Hour)
	}
	if f.FamilyExpiresAt.IsZero() {
		f.FamilyExpiresAt = e.now().Add(30 * 24 * time.Hour)
	}
	if f.AccessExpiresAt.IsZero() {
		f.AccessExpiresAt = e.now().Add(time.Hour)
	}
	if f.Scopes == nil {
		f.Scopes = storage.StringList{"openid", "offline_access"}
	}
	if f.AuthTime.IsZero() {
		f.AuthTime = e.now()
	}
}

// rotate moves f to its next generation, as a refresh does (a fresh idle expiry and
// access token, each an hour), and returns the new raw refresh token. f is updated in
// place: a test that wants the generation before keeps a copy.
func (e *env) rotate(t *testing.T, f *storage.RefreshFamily) string {
	t.Helper()
	raw, err := e.s.RotateRefreshFamily(e.ctx, f, e.now().Add(time.Hour), e.now().Add(time.Hour))
	must(t, err)
	return raw
}

// accessLive reports whether an access token row is live; any error other than not
// found fails the test.
func (e *env) accessLive(t *testing.T, id string) bool {
	t.Helper()
	_, err := e.s.AccessTokenByID(e.ctx, id)
	if err != nil && !storage.IsNotFound(err) {
		t.Fatalf("load access token %s: %v", id, err)
	}
	return err == nil
}

// familyRevoked reports whether a refresh family is marked revoked, without
// presenting any of its tokens (which could count as a replay). The family's access
// tokens have no rows: they end with it.
func (e *env) familyRevoked(t *testing.T, id string) bool {
	t.Helper()
	f, err := e.s.RefreshFamilyByID(e.ctx, id)
	must(t, err)
	return f.RevokedAt != nil
}

// authRequest stores a pending authorization request of clientID, valid for 30 minutes.
func (e *env) authRequest(t *testing.T, clientID string) *storage.AuthRequest {
	t.Helper()
	r := &storage.AuthRequest{
		ClientID:            clientID,
		RedirectURI:         "https://" + clientID + ".example.ru/oidc/callback",
		State:               "state-" + storage.NewID(),
		Nonce:               "nonce-" + storage.NewID(),
		Scopes:              storage.StringList{"openid", "profile", "offline_access"},
		ResponseType:        "code",
		ResponseMode:        "query",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		ExpiresAt:           e.now().Add(30 * time.Minute),
	}
	must(t, e.s.CreateAuthRequest(e.ctx, r))
	return r
}

// signIn completes r for userID in sessionID with a password sign-in.
func (e *env) signIn(t *testing.T, r *storage.AuthRequest, userID, sessionID string) {
	t.Helper()
	must(t, e.s.CompleteAuthRequest(e.ctx, r.ID, storage.Authentication{
		UserID: userID, SessionID: sessionID, AuthTime: e.now(), AMR: []string{"pwd"},
	}))
}

// code completes a new request of clientID for a new account and session and
// attaches a code valid for a minute; it returns the request and the raw code.
func (e *env) code(t *testing.T, clientID string) (*storage.AuthRequest, string) {
	t.Helper()
	u := e.user(t)
	sess, _ := e.session(t, u.ID)
	r := e.authRequest(t, clientID)
	e.signIn(t, r, u.ID, sess.ID)
	code := storage.NewSecret()
	must(t, e.s.SaveAuthCode(e.ctx, r.ID, code, time.Minute))
	r.UserID, r.SessionID = u.ID, sess.ID
	return r, code
}

// deliveries ends n sessions of one account, each shared with a product that has a
// back-channel logout URI, and returns the n deliveries that queues.
func (e *env) deliveries(t *testing.T, n int) []storage.LogoutDelivery {
	t.Helper()
	e.client(t, "report", "https://report.example.ru/oidc/backchannel-logout")
	u := e.user(t)
	var out []storage.LogoutDelivery
	for range n {
		sess, _ := e.session(t, u.ID)
		must(t, e.s.AddSessionClient(e.ctx, sess.ID, "report"))
		_, err := e.s.EndSession(e.ctx, sess.ID)
		must(t, err)
		ds, err := e.s.LogoutDeliveries(e.ctx, sess.ID)
		must(t, err)
		if len(ds) != 1 {
			t.Fatalf("ending session %s queued %d deliveries; want 1", sess.ID, len(ds))
		}
		out = append(out, ds[0])
	}
	return out
}
