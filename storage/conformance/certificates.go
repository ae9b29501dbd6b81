package conformance

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

// Linked e-signature certificates (storage/certificates.go).
func certificateTests() []test {
	return []test{
		{"link and load", testCertificateLinkLoad},
		{"linked twice is a conflict and writes nothing", testCertificateConflict},
		{"by SNILS", testCertificatesBySNILS},
		{"unlink removes the certificate", testCertificateUnlink},
		{"create account with certificate", testCreateUserWithCertificate},
		{"create account: a taken contact or certificate writes nothing", testCreateUserWithCertificateConflict},
		{"race link one certificate", testCertificateRaceLink},
	}
}

var thumbprints atomic.Int64

// cert is a certificate of the person snils, with a fresh thumbprint.
func (e *env) cert(snils string) *storage.Certificate {
	n := thumbprints.Add(1)
	return &storage.Certificate{
		Thumbprint: fmt.Sprintf("%040x", n), Owner: "Иванов Иван Иванович", Organization: "ООО «Ромашка»",
		SNILS: snils, INN: "500100732259", INNLE: "7707083893", OGRN: "1027700132195",
		Issuer: "Тестовый УЦ", Serial: fmt.Sprintf("%x", n),
		NotBefore: e.now().Add(-time.Hour), NotAfter: e.now().Add(365 * 24 * time.Hour), DER: []byte{0x30, 0x03, 0x02, 0x01, byte(n)},
	}
}

func testCertificateLinkLoad(t *testing.T, e *env) {
	u := e.user(t)
	c := e.cert("11223344595")
	id := &storage.Identity{UserID: u.ID, DisplayName: "Иванов Иван Иванович"}
	must(t, e.s.LinkCertificate(e.ctx, id, c))
	if id.ID == "" || id.Connector != storage.ConnectorCertificate || id.Subject != c.Thumbprint {
		t.Fatalf("identity after LinkCertificate: %+v; want an id, connector %q and the thumbprint as subject",
			id, storage.ConnectorCertificate)
	}
	got, err := e.s.CertificateByThumbprint(e.ctx, c.Thumbprint)
	must(t, err)
	if got.IdentityID != id.ID || got.UserID != u.ID || got.Owner != c.Owner || got.SNILS != "11223344595" ||
		got.INN != c.INN || got.INNLE != c.INNLE || got.OGRN != c.OGRN || got.Issuer != c.Issuer ||
		!got.NotAfter.Equal(c.NotAfter) || string(got.DER) != string(c.DER) {
		t.Errorf("loaded %+v; want %+v", got, c)
	}
	linked, err := e.s.IdentityBySubject(e.ctx, storage.ConnectorCertificate, c.Thumbprint)
	must(t, err)
	if linked.ID != id.ID || linked.UserID != u.ID {
		t.Errorf("identity by thumbprint %+v; want %+v", linked, id)
	}
	list, err := e.s.UserCertificates(e.ctx, u.ID)
	must(t, err)
	if len(list) != 1 || list[0].Thumbprint != c.Thumbprint {
		t.Errorf("account's certificates: %+v; want the one linked", list)
	}
	_, err = e.s.CertificateByThumbprint(e.ctx, "absent")
	wantNotFound(t, err, "an unknown thumbprint")
}

func testCertificateConflict(t *testing.T, e *env) {
	u, other := e.user(t), e.user(t)
	c := e.cert("11223344595")
	must(t, e.s.LinkCertificate(e.ctx, &storage.Identity{UserID: u.ID}, c))
	again := *c
	err := e.s.LinkCertificate(e.ctx, &storage.Identity{UserID: other.ID}, &again)
	wantConflict(t, err, "the same certificate linked to another account")
	ids, err := e.s.UserIdentities(e.ctx, other.ID)
	must(t, err)
	if len(ids) != 0 {
		t.Errorf("a refused link left identities %+v", ids)
	}
	got, err := e.s.CertificateByThumbprint(e.ctx, c.Thumbprint)
	must(t, err)
	if got.UserID != u.ID {
		t.Errorf("after a refused link the certificate belongs to %q; want %q", got.UserID, u.ID)
	}
}

func testCertificatesBySNILS(t *testing.T, e *env) {
	u, other := e.user(t), e.user(t)
	old, renewed, stranger := e.cert("11223344595"), e.cert("11223344595"), e.cert("98765432100")
	must(t, e.s.LinkCertificate(e.ctx, &storage.Identity{UserID: u.ID}, old))
	e.advance(time.Minute)
	must(t, e.s.LinkCertificate(e.ctx, &storage.Identity{UserID: u.ID}, renewed))
	must(t, e.s.LinkCertificate(e.ctx, &storage.Identity{UserID: other.ID}, stranger))
	got, err := e.s.CertificatesBySNILS(e.ctx, "11223344595")
	must(t, err)
	if len(got) != 2 || got[0].Thumbprint != old.Thumbprint || got[1].Thumbprint != renewed.Thumbprint {
		t.Errorf("by SNILS: %+v; want the two certificates of the person, oldest first", got)
	}
	none, err := e.s.CertificatesBySNILS(e.ctx, "")
	must(t, err)
	if len(none) != 0 {
		t.Errorf("an empty SNILS matched %d certificates; want none", len(none))
	}
}

func testCertificateUnlink(t *testing.T, e *env) {
	u := e.user(t)
	c := e.cert("11223344595")
	id := &storage.Identity{UserID: u.ID}
	must(t, e.s.LinkCertificate(e.ctx, id, c))
	must(t, e.s.UnlinkIdentity(e.ctx, u.ID, id.ID))
	_, err := e.s.CertificateByThumbprint(e.ctx, c.Thumbprint)
	wantNotFound(t, err, "a certificate after its identity was unlinked")
	// Linked again, by another account: nothing of the old link stands in the way.
	other := e.user(t)
	again := *c
	must(t, e.s.LinkCertificate(e.ctx, &storage.Identity{UserID: other.ID}, &again))
}

func testCreateUserWithCertificate(t *testing.T, e *env) {
	u := &storage.User{Email: ptr("cert@example.ru"), EmailVerified: true, FamilyName: "Иванов", GivenName: "Иван", MiddleName: "Иванович"}
	c := e.cert("11223344595")
	consents := []storage.Consent{{Document: "license-agreement", Version: "2021-01", AcceptedAt: e.now()}}
	must(t, e.s.CreateUserWithCertificate(e.ctx, u, consents, &storage.Identity{DisplayName: "Иванов"}, c))
	got, err := e.s.CertificateByThumbprint(e.ctx, c.Thumbprint)
	must(t, err)
	if u.ID == "" || got.UserID != u.ID {
		t.Fatalf("certificate of the new account belongs to %q; want %q", got.UserID, u.ID)
	}
	stored, err := e.s.UserConsents(e.ctx, u.ID)
	must(t, err)
	if len(stored) != 1 {
		t.Errorf("consents of the new account: %+v; want one", stored)
	}
}

func testCreateUserWithCertificateConflict(t *testing.T, e *env) {
	taken := e.user(t)
	linked := e.cert("11223344595")
	must(t, e.s.LinkCertificate(e.ctx, &storage.Identity{UserID: taken.ID}, linked))
	cases := []struct {
		name string
		user *storage.User
		cert *storage.Certificate
	}{
		{"taken phone", &storage.User{Phone: taken.Phone, PhoneVerified: true}, e.cert("11223344595")},
		{"taken certificate", &storage.User{Email: ptr("new@example.ru"), EmailVerified: true}, func() *storage.Certificate {
			c := *linked
			return &c
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.s.CreateUserWithCertificate(e.ctx, tc.user, nil, &storage.Identity{}, tc.cert)
			wantConflict(t, err, tc.name)
			if _, err := e.s.UserByID(e.ctx, tc.user.ID); !storage.IsNotFound(err) {
				t.Errorf("a refused registration left the account %q (load: %v)", tc.user.ID, err)
			}
			if got, err := e.s.CertificateByThumbprint(e.ctx, tc.cert.Thumbprint); err == nil && got.UserID != taken.ID {
				t.Errorf("a refused registration left the certificate linked to %q", got.UserID)
			}
		})
	}
}

func testCertificateRaceLink(t *testing.T, e *env) {
	users := make([]*storage.User, racers)
	for i := range users {
		users[i] = e.user(t)
	}
	c := e.cert("11223344595")
	errs := race(racers, func(i int) error {
		mine := *c
		return e.s.LinkCertificate(e.ctx, &storage.Identity{UserID: users[i].ID}, &mine)
	})
	winner := oneWinner(t, errs, storage.IsConflict, "a conflict")
	got, err := e.s.CertificateByThumbprint(e.ctx, c.Thumbprint)
	must(t, err)
	if got.UserID != users[winner].ID {
		t.Errorf("the certificate belongs to %q; want the winner %q", got.UserID, users[winner].ID)
	}
}
