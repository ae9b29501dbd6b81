package gost_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
)

// logBuffer is a concurrency-safe log sink for checking log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newVerifier(t *testing.T, dir string, now func() time.Time) (*gost.Verifier, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	v, err := gost.NewVerifier(gost.VerifierConfig{
		RootsDir: dir, Now: now,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v, logs
}

// TestVerifierFixtures: every fixture gets the verdict its name promises,
// each refusal with its own reason and its own sentence for a person.
func TestVerifierFixtures(t *testing.T) {
	v, _ := newVerifier(t, gosttest.RootsDir(t), gosttest.Now)
	noca := gosttest.Load(t, "noca-issuer").Cert
	tests := []struct {
		name          string
		intermediates []*gost.Certificate
		want          error
	}{
		{"ivanov", nil, nil},
		{"ivanov-renewed", nil, nil},
		{"petrov", nil, nil},
		{"rsa", nil, nil},
		{"ecdsa", nil, nil},
		{"esia-client", nil, nil},
		{"esia-service", nil, nil},
		{"expired", nil, gost.ErrExpired},
		{"future", nil, gost.ErrNotYetValid},
		{"untrusted", nil, gost.ErrUntrusted},
		{"revoked", nil, gost.ErrRevoked},
		{"nodigsig", nil, gost.ErrKeyUsage},
		{"noca-leaf", []*gost.Certificate{noca}, gost.ErrNotCA},
		{"noca-leaf", nil, gost.ErrUntrusted},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%d", tt.name, len(tt.intermediates)), func(t *testing.T) {
			leaf := gosttest.Load(t, tt.name).Cert
			chain, err := v.Verify(context.Background(), leaf, tt.intermediates)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(chain) != 2 || chain[0] != leaf || chain[1].Subject.CommonName != "Тестовый УЦ" {
					t.Fatalf("chain %v", chain)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if gost.Explain(err) == gost.Explain(errors.New("other")) {
				t.Errorf("no specific explanation for %v", err)
			}
		})
	}
}

// TestVerifierWithoutCRL: with no CRL and no distribution point the
// certificate passes, and a warning says that revocation was not checked.
func TestVerifierWithoutCRL(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "root.pem", gosttest.File(t, "root.pem"))
	v, logs := newVerifier(t, dir, gosttest.Now)
	if _, err := v.Verify(context.Background(), gosttest.Load(t, "revoked").Cert, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "no CRL for certificate") {
		t.Errorf("no warning logged:\n%s", logs)
	}
}

// TestNewVerifierFolder: the roots folder takes PEM and DER, skips files
// that are neither, and refuses a folder without a root by name.
func TestNewVerifierFolder(t *testing.T) {
	empty := t.TempDir()
	writeFile(t, empty, "README.txt", []byte("not a certificate"))
	_, err := gost.NewVerifier(gost.VerifierConfig{RootsDir: empty, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), empty) {
		t.Fatalf("empty folder: %v", err)
	}

	dir := t.TempDir()
	block, _ := pem.Decode(gosttest.File(t, "root.pem"))
	writeFile(t, dir, "root.cer", block.Bytes)
	crl, _ := pem.Decode(gosttest.File(t, "root.crl"))
	writeFile(t, dir, "root.crl", crl.Bytes)
	writeFile(t, dir, "notes.txt", []byte("hello"))
	// An intermediate placed in the folder is not a trust anchor.
	writeFile(t, dir, "noca.pem", gosttest.Load(t, "noca-issuer").CertPEM)
	v, _ := newVerifier(t, dir, gosttest.Now)
	if n := len(v.Roots()); n != 1 {
		t.Fatalf("%d roots", n)
	}
	if _, err := v.Verify(context.Background(), gosttest.Load(t, "revoked").Cert, nil); !errors.Is(err, gost.ErrRevoked) {
		t.Fatalf("DER CRL not used: %v", err)
	}
	if _, err := v.Verify(context.Background(), gosttest.Load(t, "noca-leaf").Cert, nil); !errors.Is(err, gost.ErrNotCA) {
		t.Fatalf("folder intermediate: %v", err)
	}
}

// crlServer serves one CRL file, counts the requests and can be made to fail.
type crlServer struct {
	*httptest.Server
	dir  string
	hits atomic.Int32
	fail atomic.Bool
}

func newCRLServer(t *testing.T, dir string) *crlServer {
	s := &crlServer{dir: dir}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if s.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		http.ServeFile(w, r, filepath.Join(s.dir, "ca.crl"))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestCRLDistributionPoint: certificates made now by openssl, with a CRL
// distribution point on an httptest server: the CRL is fetched once, cached
// until nextUpdate, fetched again after it; a revoked certificate is
// refused; a fetch failure is ErrRevocationUnknown with a log line.
func TestCRLDistributionPoint(t *testing.T) {
	dir := t.TempDir()
	srv := newCRLServer(t, dir)
	root := gosttest.Load(t, "root")
	rootCert, rootKey := gosttest.WriteFiles(t, root)
	caDir := filepath.Join(dir, "ca")
	if err := os.MkdirAll(filepath.Join(caDir, "new"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, caDir, "index.txt", nil)
	writeFile(t, caDir, "serial", []byte("2000\n"))
	writeFile(t, caDir, "crlnumber", []byte("2000\n"))
	writeFile(t, dir, "ca.cnf", []byte(fmt.Sprintf(`[ ca ]
default_ca = this
[ this ]
dir = %[1]s
database = %[1]s/index.txt
new_certs_dir = %[1]s/new
serial = %[1]s/serial
crlnumber = %[1]s/crlnumber
default_md = default
policy = anything
unique_subject = no
default_days = 365
[ anything ]
commonName = supplied
[ leaf ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature
crlDistributionPoints = URI:%[2]s/ca.crl
[ req ]
distinguished_name = dn
[ dn ]
`, caDir, srv.URL)))
	issue := func(name string) *gost.Certificate {
		openssl(t, dir, "genpkey", "-engine", "gost", "-algorithm", "gost2012_256", "-pkeyopt", "paramset:A", "-out", name+".key")
		openssl(t, dir, "req", "-engine", "gost", "-new", "-key", name+".key", "-subj", "/CN="+name, "-config", "ca.cnf", "-out", name+".csr")
		openssl(t, dir, "ca", "-engine", "gost", "-batch", "-notext", "-config", "ca.cnf", "-cert", rootCert, "-keyfile", rootKey,
			"-in", name+".csr", "-extensions", "leaf", "-out", name+".pem")
		b, err := os.ReadFile(filepath.Join(dir, name+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		certs, err := gost.ParseCertificates(b)
		if err != nil {
			t.Fatal(err)
		}
		return certs[0]
	}
	good, bad := issue("good"), issue("bad")
	if len(good.X509.CRLDistributionPoints) != 1 {
		t.Fatalf("CDP %v", good.X509.CRLDistributionPoints)
	}
	openssl(t, dir, "ca", "-engine", "gost", "-batch", "-config", "ca.cnf", "-cert", rootCert, "-keyfile", rootKey, "-revoke", "bad.pem")
	// publish makes the CA issue a CRL valid from this until next.
	publish := func(this, next time.Time) {
		openssl(t, dir, "ca", "-engine", "gost", "-batch", "-config", "ca.cnf", "-cert", rootCert, "-keyfile", rootKey, "-gencrl",
			"-crl_lastupdate", this.Format("20060102150405Z"), "-crl_nextupdate", next.Format("20060102150405Z"), "-out", "ca.crl")
	}
	start := time.Now().UTC().Truncate(time.Second)
	next := start.Add(24 * time.Hour)
	publish(start, next)

	roots := t.TempDir() // the root without its CRL: the distribution point is the only source
	writeFile(t, roots, "root.pem", root.CertPEM)
	var mu sync.Mutex
	now := start.Add(time.Minute)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setClock := func(t time.Time) { mu.Lock(); defer mu.Unlock(); now = t }
	v, logs := newVerifier(t, roots, clock)
	ctx := context.Background()

	steps := []struct {
		name     string
		cert     *gost.Certificate
		at       time.Time
		fail     bool
		publish  time.Time // when set, a CRL valid from it for a day is published first
		want     error
		wantHits int32
	}{
		{"first use fetches", good, start.Add(time.Minute), false, time.Time{}, nil, 1},
		{"revoked from the cache", bad, start.Add(time.Hour), false, time.Time{}, gost.ErrRevoked, 1},
		{"still cached", good, next.Add(-time.Minute), false, time.Time{}, nil, 1},
		// The distribution point still serves the stale CRL: it is not used.
		{"stale after nextUpdate", good, next.Add(time.Minute), false, time.Time{}, gost.ErrRevocationUnknown, 2},
		{"stale kept a minute, not refetched", good, next.Add(time.Minute + 30*time.Second), false, time.Time{}, gost.ErrRevocationUnknown, 2},
		{"fresh CRL published", good, next.Add(3 * time.Minute), false, next.Add(2 * time.Minute), nil, 3},
		{"fetch fails", good, next.Add(25 * time.Hour), true, time.Time{}, gost.ErrRevocationUnknown, 4},
		{"revoked again after recovery", bad, next.Add(26 * time.Hour), false, next.Add(26 * time.Hour), gost.ErrRevoked, 5},
		// A CRL dated in the future is not evidence yet.
		{"CRL from the future", good, next.Add(50 * time.Hour), false, next.Add(60 * time.Hour), gost.ErrRevocationUnknown, 6},
	}
	for _, st := range steps {
		setClock(st.at)
		srv.fail.Store(st.fail)
		if !st.publish.IsZero() {
			publish(st.publish, st.publish.Add(24*time.Hour))
		}
		_, err := v.Verify(ctx, st.cert, nil)
		if !errors.Is(err, st.want) || (st.want == nil && err != nil) {
			t.Fatalf("%s: got %v, want %v", st.name, err, st.want)
		}
		if got := srv.hits.Load(); got != st.wantHits {
			t.Fatalf("%s: %d fetches, want %d", st.name, got, st.wantHits)
		}
	}
	if !strings.Contains(logs.String(), "CRL fetch failed") {
		t.Errorf("fetch failure not logged:\n%s", logs)
	}
}

func TestExplain(t *testing.T) {
	errs := []error{gost.ErrMalformed, gost.ErrTooLarge, gost.ErrUnsupported, gost.ErrBadSignature,
		gost.ErrDigestMismatch, gost.ErrExpired, gost.ErrNotYetValid, gost.ErrUntrusted, gost.ErrNotCA,
		gost.ErrKeyUsage, gost.ErrRevoked, gost.ErrRevocationUnknown}
	seen := map[string]bool{}
	for _, e := range errs {
		s := gost.Explain(fmt.Errorf("context: %w", e))
		if s == "" || seen[s] || !strings.HasSuffix(s, ".") {
			t.Errorf("%v: %q", e, s)
		}
		seen[s] = true
	}
	if gost.Explain(gost.ErrExpired) != "Срок действия сертификата истек." ||
		gost.Explain(gost.ErrRevoked) != "Сертификат отозван удостоверяющим центром." ||
		gost.Explain(gost.ErrBadSignature) != "Подпись не соответствует данным." ||
		gost.Explain(gost.ErrUntrusted) != "Сертификат выдан удостоверяющим центром, которому мы не доверяем." {
		t.Error("the fixed sentences changed")
	}
	if gost.Explain(nil) != "" {
		t.Error("nil")
	}
}

// TestVerifierConcurrent: one Verifier and one key serve many goroutines
// (run with -race).
func TestVerifierConcurrent(t *testing.T) {
	v, _ := newVerifier(t, gosttest.RootsDir(t), gosttest.Now)
	ivanov, revoked := gosttest.Load(t, "ivanov"), gosttest.Load(t, "revoked")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), ivanov.Cert, nil); err != nil {
				errs <- err
			}
			if _, err := v.Verify(context.Background(), revoked.Cert, nil); !errors.Is(err, gost.ErrRevoked) {
				errs <- fmt.Errorf("revoked: %v", err)
			}
			sig, err := ivanov.Key.Sign([]byte("x"))
			if err == nil {
				err = ivanov.Cert.PublicKey.Verify([]byte("x"), sig)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
