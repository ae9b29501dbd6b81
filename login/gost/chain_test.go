package gost_test

// Chain and CRL semantics on a small ECDSA PKI made by crypto/x509 at test
// time: the checks are the same for every key type, and x509 lets each test
// set exactly the extension or CRL field it is about.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astral/idp/login/gost"
)

var testNow = time.Date(2027, time.March, 1, 12, 0, 0, 0, time.UTC)

type testCA struct {
	t    testing.TB
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	n    int64
}

var serials atomic.Int64

func newTestKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newTestRoot makes a self-signed root CA named "Тестовый УЦ ECDSA".
func newTestRoot(t testing.TB) *testCA {
	key := newTestKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serials.Add(1)), Subject: pkix.Name{CommonName: "Тестовый УЦ ECDSA"},
		NotBefore: testNow.AddDate(-1, 0, 0), NotAfter: testNow.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{t: t, cert: c, key: key}
}

// issue makes a certificate signed by ca; edit changes the template.
func (ca *testCA) issue(cn string, isCA bool, edit func(*x509.Certificate)) (*gost.Certificate, *testCA) {
	t := ca.t
	key := newTestKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serials.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: testNow.AddDate(0, -1, 0), NotAfter: testNow.AddDate(1, 0, 0),
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if isCA {
		tmpl.IsCA, tmpl.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageCRLSign
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gost.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, &testCA{t: t, cert: c.X509, key: key}
}

// crl makes a PEM CRL of ca listing the serials; edit changes the template.
func (ca *testCA) crl(edit func(*x509.RevocationList), revoked ...*gost.Certificate) []byte {
	ca.n++
	tmpl := &x509.RevocationList{
		Number: big.NewInt(ca.n), ThisUpdate: testNow.Add(-time.Hour), NextUpdate: testNow.Add(24 * time.Hour),
	}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.X509.SerialNumber, RevocationTime: testNow.Add(-2 * time.Hour)})
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return der
}

func (ca *testCA) rootsDir(crls ...[]byte) string {
	dir := ca.t.TempDir()
	writeFile(ca.t, dir, "root.cer", ca.cert.Raw)
	for i, c := range crls {
		writeFile(ca.t, dir, "crl"+string(rune('a'+i))+".crl", c)
	}
	return dir
}

func ext(oid asn1.ObjectIdentifier, critical bool, value []byte) pkix.Extension {
	return pkix.Extension{Id: oid, Critical: critical, Value: value}
}

func mustDER(t *testing.T, v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCriticalExtensions: RFC 5280 §4.2 — a critical extension we do not
// process refuses the certificate; the ones Russian CAs mark critical, and
// subjectSignTool/issuerSignTools even when critical, do not.
func TestCriticalExtensions(t *testing.T) {
	root := newTestRoot(t)
	v, _ := newVerifier(t, root.rootsDir(), func() time.Time { return testNow })
	policies := mustDER(t, []struct{ Policy asn1.ObjectIdentifier }{{asn1.ObjectIdentifier{1, 2, 643, 100, 113, 1}}})
	ekuCodeSigning := mustDER(t, []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 3}})
	ekuClient := mustDER(t, []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 2}, {1, 3, 6, 1, 5, 5, 7, 3, 4}})
	tool := mustDER(t, "СКЗИ \"КриптоПро CSP\" (версия 5.0)")

	withExt := func(e ...pkix.Extension) func(*x509.Certificate) {
		return func(c *x509.Certificate) { c.ExtraExtensions = e }
	}
	nameConstrained, ncKey := root.issue("УЦ с ограничениями имен", true, func(c *x509.Certificate) {
		c.PermittedDNSDomains, c.PermittedDNSDomainsCritical = []string{"example.ru"}, true
	})
	underNC, _ := ncKey.issue("Лист под ограничениями", false, nil)
	unknownCA, unknownCAKey := root.issue("УЦ с неизвестным расширением", true, withExt(ext(asn1.ObjectIdentifier{1, 2, 3, 4}, true, []byte{5, 0})))
	underUnknown, _ := unknownCAKey.issue("Лист под ним", false, nil)

	tests := []struct {
		name  string
		leaf  *gost.Certificate
		inter []*gost.Certificate
		want  error
	}{
		{"unknown critical on the leaf", first(root.issue("Лист", false, withExt(ext(asn1.ObjectIdentifier{1, 2, 3, 4}, true, []byte{5, 0})))), nil, gost.ErrCriticalExtension},
		{"unknown non-critical on the leaf", first(root.issue("Лист", false, withExt(ext(asn1.ObjectIdentifier{1, 2, 3, 4}, false, []byte{5, 0})))), nil, nil},
		{"unknown critical on the intermediate", underUnknown, []*gost.Certificate{unknownCA}, gost.ErrCriticalExtension},
		{"critical name constraints we do not enforce", underNC, []*gost.Certificate{nameConstrained}, gost.ErrCriticalExtension},
		{"critical certificate policies", first(root.issue("Лист", false, withExt(ext(asn1.ObjectIdentifier{2, 5, 29, 32}, true, policies)))), nil, nil},
		{"critical subjectSignTool", first(root.issue("Лист", false, withExt(ext(asn1.ObjectIdentifier{1, 2, 643, 100, 111}, true, tool)))), nil, nil},
		{"critical EKU with client auth", first(root.issue("Лист", false, withExt(ext(asn1.ObjectIdentifier{2, 5, 29, 37}, true, ekuClient)))), nil, nil},
		{"critical EKU code signing only", first(root.issue("Лист", false, withExt(ext(asn1.ObjectIdentifier{2, 5, 29, 37}, true, ekuCodeSigning)))), nil, gost.ErrKeyUsage},
		{"non-critical EKU code signing only", first(root.issue("Лист", false, withExt(ext(asn1.ObjectIdentifier{2, 5, 29, 37}, false, ekuCodeSigning)))), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.leaf, tt.inter)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if s := gost.Explain(gost.ErrCriticalExtension); !strings.Contains(s, "критическое расширение") {
		t.Errorf("explanation %q", s)
	}
}

func first[A, B any](a A, _ B) A { return a }

// TestCRLSemantics: which CRLs from the roots folder may decide a
// certificate's status.
func TestCRLSemantics(t *testing.T) {
	root := newTestRoot(t)
	leaf, _ := root.issue("Лист", false, nil)
	other, _ := root.issue("Другой", false, nil)
	sub, subKey := root.issue("Подчиненный УЦ", true, nil)
	subLeaf, _ := subKey.issue("Лист подчиненного", false, nil)
	older := func(l *x509.RevocationList) { l.ThisUpdate = testNow.Add(-3 * time.Hour) }
	newerWith := func(e ...pkix.Extension) func(*x509.RevocationList) {
		return func(l *x509.RevocationList) { l.ExtraExtensions = e }
	}
	// issuingDistributionPoint values (RFC 5280 §5.2.5), written out.
	idpOnlyCA := []byte{0x30, 0x03, 0x82, 0x01, 0xff}
	idpOnlyUser := []byte{0x30, 0x03, 0x81, 0x01, 0xff}
	idpSomeReasons := []byte{0x30, 0x04, 0x83, 0x02, 0x06, 0x40}
	url := "http://crl.example.ru/ca.crl"
	idpName := append([]byte{0x30, byte(6 + len(url)), 0xa0, byte(4 + len(url)), 0xa0, byte(2 + len(url)), 0x86, byte(len(url))}, url...)
	impostor := &testCA{t: t, cert: root.cert, key: newTestKey(t)} // the root's name, another key

	tests := []struct {
		name  string
		leaf  *gost.Certificate
		inter []*gost.Certificate
		crls  [][]byte
		want  error
		log   string
	}{
		{"complete CRL", leaf, nil, [][]byte{root.crl(nil, leaf)}, gost.ErrRevoked, ""},
		{"revocation dated after now still counts", leaf, nil, [][]byte{root.crl(func(l *x509.RevocationList) {
			l.RevokedCertificateEntries[0].RevocationTime = testNow.Add(time.Hour)
		}, leaf)}, gost.ErrRevoked, ""},
		{"a newer delta CRL is not complete", leaf, nil, [][]byte{root.crl(older, leaf),
			root.crl(newerWith(ext(asn1.ObjectIdentifier{2, 5, 29, 27}, true, []byte{2, 1, 1})), other)}, gost.ErrRevoked, ""},
		{"a newer CRL with an unknown critical extension", leaf, nil, [][]byte{root.crl(older, leaf),
			root.crl(newerWith(ext(asn1.ObjectIdentifier{1, 2, 3, 4}, true, []byte{5, 0})), other)}, gost.ErrRevoked, ""},
		{"a newer CRL of some reasons only", leaf, nil, [][]byte{root.crl(older, leaf),
			root.crl(newerWith(ext(asn1.ObjectIdentifier{2, 5, 29, 28}, true, idpSomeReasons)), other)}, gost.ErrRevoked, ""},
		{"a newer CRL of CA certificates only", leaf, nil, [][]byte{root.crl(older, leaf),
			root.crl(newerWith(ext(asn1.ObjectIdentifier{2, 5, 29, 28}, true, idpOnlyCA)), other)}, gost.ErrRevoked, ""},
		{"a CRL of user certificates covers a leaf", leaf, nil, [][]byte{
			root.crl(newerWith(ext(asn1.ObjectIdentifier{2, 5, 29, 28}, true, idpOnlyUser)), leaf)}, gost.ErrRevoked, ""},
		{"a CRL of user certificates does not cover a CA", subLeaf, []*gost.Certificate{sub}, [][]byte{
			root.crl(newerWith(ext(asn1.ObjectIdentifier{2, 5, 29, 28}, true, idpOnlyUser)), sub)}, nil, "no CRL for certificate"},
		{"a CRL of CA certificates covers a CA", subLeaf, []*gost.Certificate{sub}, [][]byte{
			root.crl(newerWith(ext(asn1.ObjectIdentifier{2, 5, 29, 28}, true, idpOnlyCA)), sub)}, gost.ErrRevoked, ""},
		{"an issuing distribution point that only names itself", leaf, nil, [][]byte{
			root.crl(newerWith(ext(asn1.ObjectIdentifier{2, 5, 29, 28}, true, idpName)), leaf)}, gost.ErrRevoked, ""},
		{"a newer indirect CRL (critical entry extension)", leaf, nil, [][]byte{root.crl(older, leaf),
			root.crl(func(l *x509.RevocationList) {
				l.RevokedCertificateEntries[0].ExtraExtensions = []pkix.Extension{ext(asn1.ObjectIdentifier{2, 5, 29, 29}, true, []byte{0x30, 0})}
			}, other)}, gost.ErrRevoked, ""},
		{"a newer CRL from the future", leaf, nil, [][]byte{root.crl(older, leaf),
			root.crl(func(l *x509.RevocationList) { l.ThisUpdate = testNow.Add(time.Hour) }, other)}, gost.ErrRevoked, ""},
		{"same name, other key", leaf, nil, [][]byte{impostor.crl(nil, leaf)}, nil, "no CRL for certificate"},
		{"stale, no distribution point: used with a warning", leaf, nil, [][]byte{root.crl(func(l *x509.RevocationList) {
			l.ThisUpdate, l.NextUpdate = testNow.Add(-48*time.Hour), testNow.Add(-24*time.Hour)
		}, other)}, nil, "past its nextUpdate"},
		{"stale, no distribution point, listed", leaf, nil, [][]byte{root.crl(func(l *x509.RevocationList) {
			l.ThisUpdate, l.NextUpdate = testNow.Add(-48*time.Hour), testNow.Add(-24*time.Hour)
		}, leaf)}, gost.ErrRevoked, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, logs := newVerifier(t, root.rootsDir(tt.crls...), func() time.Time { return testNow })
			_, err := v.Verify(context.Background(), tt.leaf, tt.inter)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.log != "" && !strings.Contains(logs.String(), tt.log) {
				t.Errorf("no %q in the log:\n%s", tt.log, logs)
			}
		})
	}
}

// TestCRLDistributionPointSemantics: what a distribution point serves must
// be a current, complete CRL of the issuer, or the status is unknown.
func TestCRLDistributionPointSemantics(t *testing.T) {
	root := newTestRoot(t)
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body.Load().([]byte))
	}))
	t.Cleanup(srv.Close)
	leaf, _ := root.issue("Лист", false, func(c *x509.Certificate) { c.CRLDistributionPoints = []string{srv.URL + "/ca.crl"} })
	other, _ := root.issue("Другой", false, nil)
	impostor := &testCA{t: t, cert: root.cert, key: newTestKey(t)}

	tests := []struct {
		name  string
		crl   []byte
		local [][]byte
		want  error
	}{
		{"current complete CRL", root.crl(nil, other), nil, nil},
		{"listed", root.crl(nil, leaf), nil, gost.ErrRevoked},
		{"stale", root.crl(func(l *x509.RevocationList) {
			l.ThisUpdate, l.NextUpdate = testNow.Add(-48*time.Hour), testNow.Add(-time.Hour)
		}, other), nil, gost.ErrRevocationUnknown},
		{"stale in the folder and at the distribution point", root.crl(func(l *x509.RevocationList) {
			l.ThisUpdate, l.NextUpdate = testNow.Add(-48*time.Hour), testNow.Add(-time.Hour)
		}, other), [][]byte{root.crl(func(l *x509.RevocationList) {
			l.ThisUpdate, l.NextUpdate = testNow.Add(-72*time.Hour), testNow.Add(-2*time.Hour)
		}, other)}, gost.ErrRevocationUnknown},
		{"stale folder CRL listing it", root.crl(func(l *x509.RevocationList) {
			l.ThisUpdate, l.NextUpdate = testNow.Add(-48*time.Hour), testNow.Add(-time.Hour)
		}, other), [][]byte{root.crl(func(l *x509.RevocationList) {
			l.ThisUpdate, l.NextUpdate = testNow.Add(-72*time.Hour), testNow.Add(-2*time.Hour)
		}, leaf)}, gost.ErrRevoked},
		{"delta", root.crl(func(l *x509.RevocationList) {
			l.ExtraExtensions = []pkix.Extension{ext(asn1.ObjectIdentifier{2, 5, 29, 27}, true, []byte{2, 1, 1})}
		}, other), nil, gost.ErrRevocationUnknown},
		{"signed by another key", impostor.crl(nil, other), nil, gost.ErrRevocationUnknown},
		{"not a CRL", []byte("<html>maintenance</html>"), nil, gost.ErrRevocationUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body.Store(tt.crl)
			v, _ := newVerifier(t, root.rootsDir(tt.local...), func() time.Time { return testNow })
			_, err := v.Verify(context.Background(), leaf, nil)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
