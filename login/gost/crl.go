package gost

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

const (
	// maxCRLSize bounds a CRL file or download; the big Russian CAs publish
	// CRLs of a few MiB.
	maxCRLSize = 32 << 20
	// minCRLCache keeps even a CRL whose nextUpdate has passed for a while,
	// so that a CA that is late to publish is not asked on every sign-in.
	minCRLCache = time.Minute
	// crlClockSkew is how far a CRL's thisUpdate may lie ahead of our clock:
	// a CA whose clock runs a little fast is not refused outright.
	crlClockSkew = 5 * time.Minute
)

// crlInfo is a parsed CRL. Its signature is checked against an issuer when
// it is used, since a CRL in the roots folder comes without one.
type crlInfo struct {
	list    *x509.RevocationList
	tbs     []byte
	sigAlg  asn1.ObjectIdentifier
	sig     []byte
	revoked map[string]bool // serial numbers, as decimal strings

	// incomplete says why the CRL cannot serve as a complete CRL (delta,
	// partial scope, indirect, an unknown critical extension); nil when it can.
	incomplete error
	// onlyUser and onlyCA narrow a complete CRL to end-entity or CA
	// certificates (issuingDistributionPoint).
	onlyUser, onlyCA bool

	mu       sync.Mutex
	verified map[string]error // by issuer thumbprint
}

// parseCRL reads one CRL, PEM ("X509 CRL") or DER.
func parseCRL(b []byte) (*crlInfo, error) {
	if block, _ := pem.Decode(b); block != nil {
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("PEM block %q is not a CRL: %w", block.Type, ErrMalformed)
		}
		b = block.Bytes
	}
	list, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("CRL: %v: %w", err, ErrMalformed)
	}
	tbs, alg, sig, err := splitSigned(list.Raw)
	if err != nil {
		return nil, fmt.Errorf("CRL: %w", err)
	}
	c := &crlInfo{list: list, tbs: tbs, sigAlg: alg, sig: sig, revoked: map[string]bool{}, verified: map[string]error{}}
	for _, e := range list.RevokedCertificateEntries {
		c.revoked[e.SerialNumber.String()] = true
		// RFC 5280 §5.3: a critical entry extension we cannot process (a
		// certificateIssuer of an indirect CRL, say) makes the whole CRL unusable.
		for _, x := range e.Extensions {
			if x.Critical && !x.Id.Equal(oidReasonCode) && !x.Id.Equal(oidInvalidityDate) && c.incomplete == nil {
				c.incomplete = fmt.Errorf("CRL entry with critical extension %s", x.Id)
			}
		}
	}
	for _, x := range list.Extensions {
		var err error
		switch {
		case x.Id.Equal(oidDeltaCRLIndicator):
			err = fmt.Errorf("delta CRL")
		case x.Id.Equal(oidIssuingDistributionPoint):
			err = c.readScope(x.Value)
		case x.Critical && !x.Id.Equal(oidCRLNumber) && !x.Id.Equal(oidAuthorityKeyID):
			// RFC 5280 §5.2: a CRL with a critical extension we cannot
			// process must not be used to learn any certificate's status.
			err = fmt.Errorf("CRL with critical extension %s", x.Id)
		}
		if err != nil && c.incomplete == nil {
			c.incomplete = err
		}
	}
	return c, nil
}

// readScope reads issuingDistributionPoint (RFC 5280 §5.2.5), by hand
// because crypto/x509 does not:
//
//	SEQUENCE { distributionPoint [0] OPTIONAL, onlyContainsUserCerts [1] BOOLEAN,
//	  onlyContainsCACerts [2] BOOLEAN, onlySomeReasons [3] ReasonFlags OPTIONAL,
//	  indirectCRL [4] BOOLEAN, onlyContainsAttributeCerts [5] BOOLEAN }
//
// A CRL limited to some reasons, indirect, or about attribute certificates
// is not a complete CRL for us; one limited to end-entity or CA certificates
// is, for those certificates only. The distribution point name is not
// compared with the certificate's: the issuer's signature and scope suffice
// for a CA that publishes one full CRL.
func (c *crlInfo) readScope(value []byte) error {
	in := cryptobyte.String(value)
	var idp cryptobyte.String
	if !in.ReadASN1(&idp, cbasn1.SEQUENCE) || !in.Empty() {
		return fmt.Errorf("issuingDistributionPoint: %w", ErrMalformed)
	}
	if !idp.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return fmt.Errorf("issuingDistributionPoint name: %w", ErrMalformed)
	}
	flag := func(n uint8) (bool, bool) {
		var v cryptobyte.String
		var present bool
		if !idp.ReadOptionalASN1(&v, &present, cbasn1.Tag(n).ContextSpecific()) || (present && len(v) != 1) {
			return false, false
		}
		return present && v[0] != 0, true
	}
	user, ok1 := flag(1)
	ca, ok2 := flag(2)
	someReasons := idp.PeekASN1Tag(cbasn1.Tag(3).ContextSpecific())
	if someReasons && !idp.SkipASN1(cbasn1.Tag(3).ContextSpecific()) {
		return fmt.Errorf("issuingDistributionPoint reasons: %w", ErrMalformed)
	}
	indirect, ok4 := flag(4)
	attr, ok5 := flag(5)
	if !ok1 || !ok2 || !ok4 || !ok5 || !idp.Empty() {
		return fmt.Errorf("issuingDistributionPoint: %w", ErrMalformed)
	}
	switch {
	case someReasons:
		return fmt.Errorf("CRL for some revocation reasons only")
	case indirect:
		return fmt.Errorf("indirect CRL")
	case attr:
		return fmt.Errorf("CRL of attribute certificates")
	case user && ca:
		return fmt.Errorf("CRL of neither end-entity nor CA certificates")
	}
	c.onlyUser, c.onlyCA = user, ca
	return nil
}

// usableFor tells whether the CRL is a complete CRL whose scope covers cert.
func (c *crlInfo) usableFor(cert *Certificate) error {
	switch {
	case c.incomplete != nil:
		return fmt.Errorf("not a complete CRL: %v", c.incomplete)
	case c.onlyUser && cert.X509.IsCA:
		return fmt.Errorf("CRL of end-entity certificates only, %q is a CA", cert.Subject.Owner())
	case c.onlyCA && !cert.X509.IsCA:
		return fmt.Errorf("CRL of CA certificates only, %q is not a CA", cert.Subject.Owner())
	}
	return nil
}

// verifiedBy checks that issuer issued and signed the CRL; the result is
// remembered per issuer.
func (c *crlInfo) verifiedBy(issuer *Certificate) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err, ok := c.verified[issuer.Thumbprint]; ok {
		return err
	}
	var err error
	if !bytes.Equal(c.list.RawIssuer, issuer.X509.RawSubject) {
		err = fmt.Errorf("CRL issued by another CA than %q: %w", issuer.Subject.CommonName, ErrBadSignature)
	} else if err = verifySigned(c.tbs, c.sigAlg, c.sig, issuer.PublicKey); err != nil {
		err = fmt.Errorf("CRL of %q: %w", issuer.Subject.CommonName, err)
	}
	c.verified[issuer.Thumbprint] = err
	return err
}

// issued tells whether the CRL's thisUpdate has come (within crlClockSkew):
// a CRL from the future is not evidence of anything yet.
func (c *crlInfo) issued(now time.Time) bool {
	return !c.list.ThisUpdate.After(now.Add(crlClockSkew))
}

// current tells whether the CRL is still within its nextUpdate (a CRL
// without one never goes stale).
func (c *crlInfo) current(now time.Time) bool {
	return c.list.NextUpdate.IsZero() || now.Before(c.list.NextUpdate)
}

// fetchedCRL is the cache slot of one distribution point.
type fetchedCRL struct {
	mu    sync.Mutex // one fetch at a time per URL
	crl   *crlInfo
	until time.Time
}

// crlFromFolder returns the freshest CRL from the roots folder that issuer
// signed, that is complete for cert and already issued, or nil. It may be
// past its nextUpdate.
func (v *Verifier) crlFromFolder(cert, issuer *Certificate, now time.Time) *crlInfo {
	var best *crlInfo
	for _, c := range v.crls {
		if !bytes.Equal(c.list.RawIssuer, issuer.X509.RawSubject) || c.verifiedBy(issuer) != nil ||
			c.usableFor(cert) != nil || !c.issued(now) {
			continue
		}
		if best == nil || c.list.ThisUpdate.After(best.list.ThisUpdate) {
			best = c
		}
	}
	return best
}

// distributionPoints returns the certificate's CRL URLs we can fetch.
func distributionPoints(c *Certificate) []string {
	var urls []string
	for _, u := range c.X509.CRLDistributionPoints {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			urls = append(urls, u)
		}
	}
	return urls
}

// checkRevocation looks cert up in its issuer's CRL. The CRL must be signed
// by the issuer (its name and its key), be a complete CRL whose scope covers
// cert, and be current: thisUpdate has come and nextUpdate has not.
//
// A current CRL from the roots folder is used first; else one from the
// certificate's distribution points (cached until its nextUpdate). When no
// current CRL can be had from them, the status is unknown
// (ErrRevocationUnknown) — a stale CRL is not used silently. Only a
// certificate without distribution points falls back to a stale folder CRL,
// with a warning, or, with no CRL at all, passes with a warning.
//
// A listed serial is revoked whatever the revocation date says: we verify at
// sign-in, not as of the signing time (which the signer claims itself), so a
// certificate revoked even after the signature was made proves nothing now.
func (v *Verifier) checkRevocation(ctx context.Context, cert, issuer *Certificate, now time.Time) error {
	local := v.crlFromFolder(cert, issuer, now)
	if local != nil && local.lists(cert) {
		return revokedError(cert)
	}
	if local != nil && local.current(now) {
		return nil
	}
	urls := distributionPoints(cert)
	if len(urls) == 0 {
		if local == nil {
			v.log.Warn("gost: no CRL for certificate, accepted without a revocation check",
				"subject", cert.Subject.Owner(), "issuer", issuer.Subject.CommonName, "thumbprint", cert.Thumbprint)
		} else {
			v.log.Warn("gost: CRL is past its nextUpdate and the certificate names no distribution point, used anyway",
				"issuer", issuer.Subject.CommonName, "next_update", local.list.NextUpdate)
		}
		return nil
	}
	var errs []string
	for _, u := range urls {
		crl, err := v.fetchCRL(ctx, u, cert, issuer, now)
		if err == nil {
			if crl.lists(cert) {
				return revokedError(cert)
			}
			return nil
		}
		v.log.Error("gost: CRL fetch failed", "url", u, "issuer", issuer.Subject.CommonName, "err", err)
		errs = append(errs, err.Error())
	}
	return fmt.Errorf("certificate %q: no current CRL (%s): %w", cert.Subject.Owner(), strings.Join(errs, "; "), ErrRevocationUnknown)
}

// lists tells whether cert's serial is on the CRL.
func (c *crlInfo) lists(cert *Certificate) bool {
	return c.revoked[cert.X509.SerialNumber.String()]
}

func revokedError(cert *Certificate) error {
	return fmt.Errorf("certificate %q (serial %s): %w", cert.Subject.Owner(), cert.X509.SerialNumber, ErrRevoked)
}

// fetchCRL returns the CRL at url, from the cache while it is current.
// It returns an error unless the CRL is signed by issuer, complete for cert
// and current; a stale or premature one is kept for minCRLCache only.
func (v *Verifier) fetchCRL(ctx context.Context, url string, cert, issuer *Certificate, now time.Time) (*crlInfo, error) {
	v.mu.Lock()
	slot := v.fetched[url]
	if slot == nil {
		slot = &fetchedCRL{}
		v.fetched[url] = slot
	}
	v.mu.Unlock()

	slot.mu.Lock()
	defer slot.mu.Unlock()
	if slot.crl != nil && now.Before(slot.until) {
		if err := slot.crl.verifiedBy(issuer); err == nil {
			return slot.crl, slot.crl.usable(cert, now)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("CRL request: %w", err)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("CRL fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CRL fetch: HTTP %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCRLSize+1))
	if err != nil {
		return nil, fmt.Errorf("CRL fetch: %w", err)
	}
	if len(body) > maxCRLSize {
		return nil, fmt.Errorf("CRL over %d bytes: %w", maxCRLSize, ErrTooLarge)
	}
	crl, err := parseCRL(body)
	if err != nil {
		return nil, err
	}
	if err := crl.verifiedBy(issuer); err != nil {
		return nil, err
	}
	slot.crl = crl
	slot.until = crl.list.NextUpdate
	if crl.list.NextUpdate.IsZero() || crl.list.NextUpdate.Before(now.Add(minCRLCache)) || !crl.issued(now) {
		slot.until = now.Add(minCRLCache)
	}
	v.log.Info("gost: CRL fetched", "url", url, "issuer", issuer.Subject.CommonName,
		"entries", len(crl.revoked), "this_update", crl.list.ThisUpdate, "next_update", crl.list.NextUpdate)
	return crl, crl.usable(cert, now)
}

// usable tells whether a CRL signed by cert's issuer may decide cert's status now.
func (c *crlInfo) usable(cert *Certificate, now time.Time) error {
	if err := c.usableFor(cert); err != nil {
		return err
	}
	if !c.issued(now) {
		return fmt.Errorf("CRL issued %s, in the future", c.list.ThisUpdate.Format(time.RFC3339))
	}
	if !c.current(now) {
		return fmt.Errorf("CRL is past its nextUpdate %s", c.list.NextUpdate.Format(time.RFC3339))
	}
	return nil
}
