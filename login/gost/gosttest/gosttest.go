// Package gosttest gives tests ready GOST identities: certificates and keys
// made by OpenSSL with the GOST engine (testdata/make.sh made them; run it to
// make them anew), a roots folder with the test CA and its CRL, a pinned
// clock, and the path of a GOST-capable openssl for interop tests.
//
// Every certificate is issued by the GOST-256 root "Тестовый УЦ" (valid
// 2025–2049), except "untrusted" (another root, kept out of RootsDir) and
// "noca-leaf" (issued by "noca-issuer", which is not a CA).
package gosttest

import (
	"embed"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/astral/idp/login/gost"
)

//go:embed testdata/*.pem testdata/*.key testdata/*.crl testdata/*.p7s testdata/*.txt testdata/other-root.pem.untrusted
var fixtures embed.FS

// Identity is a certificate with its private key.
type Identity struct {
	Name    string
	Cert    *gost.Certificate
	Key     *gost.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// Names lists every identity Load knows:
//
//	ivanov          GOST-256 leaf: Иванов Иван Иванович, ООО «Ромашка», SNILS 11223344595, INN 771234567890, OGRN 1027700132195
//	ivanov-renewed  the same person and SNILS, a new key, notBefore 2026-01-01
//	petrov          GOST-512 leaf: Петров Петр Петрович, SNILS 12345678964, OGRNIP
//	revoked         GOST-256 leaf listed in the root's CRL
//	expired         GOST-256 leaf valid 2019–2020
//	future          GOST-256 leaf valid from 2048 (not yet valid at Now)
//	nodigsig        GOST-256 leaf whose key usage is keyEncipherment only
//	untrusted       GOST-256 leaf of another root, not in RootsDir
//	rsa, ecdsa      RSA-2048 and P-256 leaves issued by the GOST root
//	esia-client     our GOST-256 key and certificate for Gosuslugi
//	esia-service    Gosuslugi's GOST-256 token-signing key and certificate
//	noca-issuer     a GOST-256 certificate with CA:false (but keyCertSign)
//	noca-leaf       a leaf issued by noca-issuer
//	root            the trusted root "Тестовый УЦ" with its key
var Names = []string{
	"ivanov", "ivanov-renewed", "petrov", "revoked", "expired", "future", "nodigsig",
	"untrusted", "rsa", "ecdsa", "esia-client", "esia-service", "noca-issuer", "noca-leaf", "root",
}

// Now is a fixed instant inside every fixture's validity except "expired"
// and "future", for pinned clocks.
func Now() time.Time { return time.Date(2027, time.January, 15, 12, 0, 0, 0, time.UTC) }

// File returns a fixture file's bytes, e.g. "root.pem", "root.crl",
// "other-root.pem.untrusted", or "ivanov-ber.p7s": ivanov's signature in BER
// with indefinite lengths (openssl cms -sign -stream), carrying
// "ber-content.txt" as its content.
func File(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fixtures.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("gosttest: fixture %s: %v", name, err)
	}
	return b
}

var (
	cacheMu sync.Mutex
	cache   = map[string]Identity{}
)

// Load returns the identity called name (see Names); an unknown name fails the test.
func Load(t testing.TB, name string) Identity {
	t.Helper()
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if id, ok := cache[name]; ok {
		return id
	}
	certPEM := File(t, name+".pem")
	keyPEM := File(t, name+".key")
	certs, err := gost.ParseCertificates(certPEM)
	if err != nil {
		t.Fatalf("gosttest: %s certificate: %v", name, err)
	}
	key, err := gost.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatalf("gosttest: %s key: %v", name, err)
	}
	id := Identity{Name: name, Cert: certs[0], Key: key, CertPEM: certPEM, KeyPEM: keyPEM}
	cache[name] = id
	return id
}

// RootsDir returns a fresh temporary folder with the trusted root
// (root.pem) and its CRL (root.crl), as IDP_CERT_ROOTS would hold them.
func RootsDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"root.pem", "root.crl"} {
		if err := os.WriteFile(filepath.Join(dir, f), File(t, f), 0o600); err != nil {
			t.Fatalf("gosttest: %v", err)
		}
	}
	return dir
}

// WriteFiles writes the identity's certificate and key as PEM files in a
// temporary folder, for code that takes file paths.
func WriteFiles(t testing.TB, id Identity) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile = filepath.Join(dir, id.Name+".pem")
	keyFile = filepath.Join(dir, id.Name+".key")
	if err := os.WriteFile(certFile, id.CertPEM, 0o600); err != nil {
		t.Fatalf("gosttest: %v", err)
	}
	if err := os.WriteFile(keyFile, id.KeyPEM, 0o600); err != nil {
		t.Fatalf("gosttest: %v", err)
	}
	return certFile, keyFile
}

var (
	opensslOnce sync.Once
	opensslPath string
	opensslWhy  string
)

// OpenSSL returns the path of an openssl whose GOST engine works (Debian:
// apt-get install openssl libengine-gost-openssl). Without one the test is
// skipped with a message saying so, or failed when CI=true, so that CI never
// passes by skipping the interop tests.
func OpenSSL(t testing.TB) string {
	t.Helper()
	opensslOnce.Do(func() {
		p, err := exec.LookPath("openssl")
		if err != nil {
			opensslWhy = "openssl not found in PATH"
			return
		}
		out, err := exec.Command(p, "genpkey", "-engine", "gost", "-algorithm", "gost2012_256", "-pkeyopt", "paramset:A").CombinedOutput()
		if err != nil {
			opensslWhy = "openssl has no working GOST engine (install libengine-gost-openssl): " + string(out)
			return
		}
		opensslPath = p
	})
	if opensslPath == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("gosttest: %s", opensslWhy)
		}
		t.Skipf("gosttest: skipping OpenSSL interop: %s", opensslWhy)
	}
	return opensslPath
}
