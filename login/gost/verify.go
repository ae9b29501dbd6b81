package gost

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// maxChainLength bounds a chain, leaf and root included.
	maxChainLength = 8
	// maxChains bounds the candidate chains tried for one leaf, so that a
	// crafted set of cross-certificates cannot make verification explode.
	maxChains = 16
	// maxRootsFile bounds one file in the roots folder (CRLs may be large).
	maxRootsFile = maxCRLSize
)

// VerifierConfig configures a Verifier. Only RootsDir is required.
type VerifierConfig struct {
	// RootsDir is the folder of trusted CA certificates (IDP_CERT_ROOTS):
	// every file, PEM or DER. Self-signed certificates are the trust
	// anchors; the others there serve as intermediates. CRLs (*.crl, PEM or
	// DER, or "X509 CRL" PEM blocks in any file) are loaded too.
	RootsDir string
	// Client fetches CRLs from distribution points; default: 15 s timeout.
	Client *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives CRL fetches, their failures and revocation warnings;
	// default slog.Default().
	Logger *slog.Logger
}

// Verifier checks certificate chains against the trusted roots. It is safe
// for concurrent use.
type Verifier struct {
	roots         []*Certificate
	intermediates []*Certificate
	crls          []*crlInfo
	client        *http.Client
	now           func() time.Time
	log           *slog.Logger

	mu      sync.Mutex
	fetched map[string]*fetchedCRL
}

// NewVerifier loads the roots folder. A folder without a self-signed
// certificate is an error naming the folder.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	v := &Verifier{client: cfg.Client, now: cfg.Now, log: cfg.Logger, fetched: map[string]*fetchedCRL{}}
	if v.client == nil {
		v.client = &http.Client{Timeout: 15 * time.Second}
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	if cfg.RootsDir == "" {
		return nil, errors.New("gost: no roots folder configured")
	}
	entries, err := os.ReadDir(cfg.RootsDir)
	if err != nil {
		return nil, fmt.Errorf("gost: roots folder: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(cfg.RootsDir, e.Name())
		if err := v.loadFile(path); err != nil {
			return nil, fmt.Errorf("gost: roots folder: %s: %w", path, err)
		}
	}
	if len(v.roots) == 0 {
		return nil, fmt.Errorf("gost: roots folder %s has no self-signed CA certificate", cfg.RootsDir)
	}
	v.log.Info("gost: trusted roots loaded", "dir", cfg.RootsDir, "roots", len(v.roots),
		"intermediates", len(v.intermediates), "crls", len(v.crls))
	return v, nil
}

// loadFile reads certificates and CRLs from one file of the roots folder.
func (v *Verifier) loadFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.Size() > maxRootsFile {
		return fmt.Errorf("file of %d bytes: %w", info.Size(), ErrTooLarge)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var certs []*Certificate
	newCRLs := len(v.crls)
	if bytes.Contains(b, []byte("-----BEGIN ")) {
		for block := range pemBlocks(b) {
			switch block.Type {
			case "CERTIFICATE":
				c, err := ParseCertificate(block.Bytes)
				if err != nil {
					return err
				}
				certs = append(certs, c)
			case "X509 CRL":
				crl, err := parseCRL(block.Bytes)
				if err != nil {
					return err
				}
				v.crls = append(v.crls, crl)
			}
		}
	} else if strings.EqualFold(filepath.Ext(path), ".crl") {
		crl, err := parseCRL(b)
		if err != nil {
			return err
		}
		v.crls = append(v.crls, crl)
	} else if c, err := ParseCertificate(b); err == nil {
		certs = append(certs, c)
	} else if crl, crlErr := parseCRL(b); crlErr == nil {
		v.crls = append(v.crls, crl)
	} else {
		v.log.Warn("gost: roots folder: file is neither a certificate nor a CRL, skipped", "file", path, "err", err)
	}
	for _, crl := range v.crls[newCRLs:] {
		if crl.incomplete != nil {
			v.log.Warn("gost: roots folder: CRL is not a complete CRL and is not used", "file", path,
				"issuer", crl.list.Issuer.String(), "why", crl.incomplete.Error())
		}
	}
	for _, c := range certs {
		if isSelfSigned(c) {
			v.roots = append(v.roots, c)
		} else {
			v.intermediates = append(v.intermediates, c)
		}
	}
	return nil
}

func isSelfSigned(c *Certificate) bool {
	return bytes.Equal(c.X509.RawSubject, c.X509.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

// Roots returns the trust anchors loaded from the folder.
func (v *Verifier) Roots() []*Certificate { return append([]*Certificate(nil), v.roots...) }

// Verify builds a chain from leaf through intermediates (and those in the
// roots folder) to a trusted root, checking each certificate's signature by
// hand (GOST, RSA, ECDSA), and then the chain: validity dates at Now, CA:true
// and keyCertSign on every issuer with its path length, digitalSignature on
// the leaf when it has a key usage extension, no critical extension we do
// not process (ErrCriticalExtension; the root, a trust anchor, is exempt),
// and revocation by CRL of every certificate but the root (see
// checkRevocation). It returns the chain, leaf first, root last.
//
// When several chains are possible the first that passes wins; when none
// does, the error is the first chain's (ErrExpired, ErrRevoked…), or
// ErrUntrusted when no chain reaches a root.
func (v *Verifier) Verify(ctx context.Context, leaf *Certificate, intermediates []*Certificate) ([]*Certificate, error) {
	if leaf == nil {
		return nil, fmt.Errorf("no certificate: %w", ErrMalformed)
	}
	if len(intermediates) > maxCertificates {
		return nil, fmt.Errorf("%d intermediate certificates: %w", len(intermediates), ErrTooLarge)
	}
	pool := make([]*Certificate, 0, len(intermediates)+len(v.intermediates))
	for _, c := range intermediates {
		if c != nil {
			pool = append(pool, c)
		}
	}
	pool = append(pool, v.intermediates...)

	chains := v.buildChains(leaf, pool)
	if len(chains) == 0 {
		return nil, fmt.Errorf("certificate %q issued by %q: %w", leaf.Subject.Owner(), leaf.Issuer.CommonName, ErrUntrusted)
	}
	now := v.now()
	var firstErr error
	for _, chain := range chains {
		err := v.checkChain(ctx, chain, now)
		if err == nil {
			return chain, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// buildChains finds chains leaf → … → root by issuer name, key identifiers
// and signature, depth first, within maxChainLength and maxChains.
func (v *Verifier) buildChains(leaf *Certificate, pool []*Certificate) [][]*Certificate {
	var chains [][]*Certificate
	var walk func(chain []*Certificate)
	walk = func(chain []*Certificate) {
		if len(chains) >= maxChains {
			return
		}
		c := chain[len(chain)-1]
		for _, r := range v.roots {
			if issuedBy(c, r) {
				if bytes.Equal(c.Raw, r.Raw) {
					chains = append(chains, append([]*Certificate(nil), chain...))
				} else {
					chains = append(chains, append(append([]*Certificate(nil), chain...), r))
				}
			}
		}
		if len(chain) >= maxChainLength-1 {
			return
		}
		for _, p := range pool {
			if inChain(chain, p) || !issuedBy(c, p) {
				continue
			}
			walk(append(chain, p))
		}
	}
	walk([]*Certificate{leaf})
	return chains
}

func inChain(chain []*Certificate, c *Certificate) bool {
	for _, x := range chain {
		if bytes.Equal(x.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// issuedBy: the names match, the key identifiers (when both are present)
// match, and the issuer's key verifies the signature.
func issuedBy(c, issuer *Certificate) bool {
	if !bytes.Equal(c.X509.RawIssuer, issuer.X509.RawSubject) {
		return false
	}
	if len(c.X509.AuthorityKeyId) > 0 && len(issuer.X509.SubjectKeyId) > 0 &&
		!bytes.Equal(c.X509.AuthorityKeyId, issuer.X509.SubjectKeyId) {
		return false
	}
	return c.CheckSignatureFrom(issuer) == nil
}

// checkChain applies dates, constraints, key usage and revocation.
func (v *Verifier) checkChain(ctx context.Context, chain []*Certificate, now time.Time) error {
	for i, c := range chain {
		who := c.Subject.Owner()
		if now.Before(c.NotBefore) {
			return fmt.Errorf("certificate %q valid from %s: %w", who, c.NotBefore.Format(time.DateOnly), ErrNotYetValid)
		}
		if now.After(c.NotAfter) {
			return fmt.Errorf("certificate %q valid until %s: %w", who, c.NotAfter.Format(time.DateOnly), ErrExpired)
		}
		x := c.X509
		// The trust anchor is the administrator's choice, not path input
		// (RFC 5280 §6.1.1): its extensions are not checked.
		if i < len(chain)-1 || len(chain) == 1 {
			if err := checkCriticalExtensions(c); err != nil {
				return err
			}
		}
		if i == 0 {
			if x.KeyUsage != 0 && x.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
				return fmt.Errorf("certificate %q: %w", who, ErrKeyUsage)
			}
			continue
		}
		if !x.BasicConstraintsValid || !x.IsCA {
			return fmt.Errorf("issuer %q has no CA:true: %w", who, ErrNotCA)
		}
		if x.KeyUsage != 0 && x.KeyUsage&x509.KeyUsageCertSign == 0 {
			return fmt.Errorf("issuer %q lacks keyCertSign: %w", who, ErrNotCA)
		}
		// i-1 CA certificates stand between this issuer and the leaf.
		if (x.MaxPathLen > 0 || x.MaxPathLenZero) && i-1 > x.MaxPathLen {
			return fmt.Errorf("issuer %q allows a path of %d: %w", who, x.MaxPathLen, ErrNotCA)
		}
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := v.checkRevocation(ctx, chain[i], chain[i+1], now); err != nil {
			return err
		}
	}
	return nil
}

// handledCritical lists the extensions a certificate may mark critical, by
// OID: the ones this verifier checks, and the ones that restrict nothing we
// rely on. Russian qualified certificates (Приказ ФСБ № 795) mark key usage
// and basic constraints critical, sometimes certificate policies; the
// subjectSignTool and issuerSignTools extensions are normally non-critical
// but only describe the crypto tools used, so they are accepted either way.
//
// Not here, although crypto/x509 parses them, because this verifier does not
// enforce them: name constraints, policy constraints, policy mappings and
// inhibitAnyPolicy. A certificate that marks one of them critical is refused.
var handledCritical = map[string]bool{
	"2.5.29.15":       true, // keyUsage: checked in checkChain
	"2.5.29.19":       true, // basicConstraints: checked in checkChain
	"2.5.29.37":       true, // extKeyUsage: checked below when critical
	"2.5.29.32":       true, // certificatePolicies: any policy is acceptable to us
	"2.5.29.14":       true, // subjectKeyIdentifier: chain building
	"2.5.29.35":       true, // authorityKeyIdentifier: chain building
	"2.5.29.31":       true, // cRLDistributionPoints: revocation
	"2.5.29.17":       true, // subjectAltName: a name; we identify by certificate
	"1.2.643.100.111": true, // subjectSignTool: descriptive
	"1.2.643.100.112": true, // issuerSignTools: descriptive
}

// checkCriticalExtensions refuses a certificate with a critical extension
// we do not handle (RFC 5280 §4.2: it "MUST reject" it), and one whose
// critical extended key usage leaves out what a sign-in does: client
// authentication, e-mail protection (the usual pair in Russian qualified
// certificates) or any purpose.
func checkCriticalExtensions(c *Certificate) error {
	for _, e := range c.X509.Extensions {
		if e.Critical && !handledCritical[e.Id.String()] {
			return fmt.Errorf("certificate %q: critical extension %s: %w", c.Subject.Owner(), e.Id, ErrCriticalExtension)
		}
		if e.Critical && e.Id.Equal(oidExtKeyUsage) && !slices.ContainsFunc(c.X509.ExtKeyUsage, func(u x509.ExtKeyUsage) bool {
			return u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageEmailProtection || u == x509.ExtKeyUsageAny
		}) {
			return fmt.Errorf("certificate %q: critical extended key usage without client authentication: %w", c.Subject.Owner(), ErrKeyUsage)
		}
	}
	return nil
}
