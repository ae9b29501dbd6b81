package conformance

import (
	"testing"

	"github.com/astral/idp/storage"
)

func identityTests() []test {
	return []test{
		{"registration through an upstream is one transaction", testCreateUserWithIdentity},
		{"a sign-in refreshes the identity's claims", testRefreshIdentity},
	}
}

// testCreateUserWithIdentity: the account, its consents and its identity appear
// together; a taken phone or a linked identity writes nothing.
func testCreateUserWithIdentity(t *testing.T, e *env) {
	phone := "+79995550101"
	u := &storage.User{Phone: &phone, PhoneVerified: true, FamilyName: "Иванов"}
	consents := []storage.Consent{{Document: "license-agreement", Version: "1", AcceptedAt: e.now()}}
	must(t, e.s.CreateUserWithIdentity(e.ctx, u, consents, &storage.Identity{Connector: "esia", Subject: "1000404834", Claims: `{"snils":"1"}`}))
	id, err := e.s.IdentityBySubject(e.ctx, "esia", "1000404834")
	must(t, err)
	if id.UserID != u.ID || id.Claims != `{"snils":"1"}` {
		t.Fatalf("identity %+v of account %s", id, u.ID)
	}
	if cs, err := e.s.UserConsents(e.ctx, u.ID); err != nil || len(cs) != 1 {
		t.Fatalf("consents %v, %v", cs, err)
	}
	// The same phone: nothing written, not even the new identity.
	other := &storage.User{Phone: &phone}
	err = e.s.CreateUserWithIdentity(e.ctx, other, nil, &storage.Identity{Connector: "esia", Subject: "1000404835"})
	if !storage.IsConflict(err) {
		t.Fatalf("taken phone: %v, want a conflict", err)
	}
	if _, err := e.s.IdentityBySubject(e.ctx, "esia", "1000404835"); !storage.IsNotFound(err) {
		t.Fatalf("identity of a refused registration: %v", err)
	}
	// A linked identity: no second account.
	email := "new@example.ru"
	third := &storage.User{Email: &email}
	if err := e.s.CreateUserWithIdentity(e.ctx, third, nil, &storage.Identity{Connector: "esia", Subject: "1000404834"}); !storage.IsConflict(err) {
		t.Fatalf("linked identity: %v, want a conflict", err)
	}
	if _, err := e.s.UserByEmail(e.ctx, email); !storage.IsNotFound(err) {
		t.Fatalf("account of a refused registration: %v", err)
	}
}

func testRefreshIdentity(t *testing.T, e *env) {
	u := e.user(t)
	id := &storage.Identity{UserID: u.ID, Connector: "esia", Subject: "1000404836", DisplayName: "Старое", Claims: `{"snils":"old"}`}
	must(t, e.s.LinkIdentity(e.ctx, id))
	must(t, e.s.RefreshIdentity(e.ctx, id.ID, "Новое \xff", `{"snils":"new"}`))
	got, err := e.s.IdentityBySubject(e.ctx, "esia", "1000404836")
	must(t, err)
	if got.Claims != `{"snils":"new"}` || got.DisplayName == "Старое" || got.LastUsedAt == nil {
		t.Fatalf("refreshed identity %+v", got)
	}
}
