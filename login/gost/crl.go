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
)

const (
	// maxCRLSize bounds a CRL file or download; the big Russian CAs publish
	// CRLs of a few MiB.
	maxCRLSize = 32 << 20
	// minCRLCache keeps even a CRL whose nextUpdate has passed for a while,
	// so that a CA that is late to publish is not asked on every sign-in.
	minCRLCache = time.Minute
)

// crlInfo is a parsed CRL. Its signature is checked against an issuer when
// it is used, since a CRL in the roots folder comes without one.
type crlInfo struct {
	list    *x509.RevocationList
	tbs     []byte
	sigAlg  asn1.ObjectIdentifier
	sig     []byte
	revoked map[string]bool // serial numbers, as decimal strings

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
	}
	return c, nil
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
// signed, or nil.
func (v *Verifier) crlFromFolder(issuer *Certificate) *crlInfo {
	var best *crlInfo
	for _, c := range v.crls {
		if !bytes.Equal(c.list.RawIssuer, issuer.X509.RawSubject) || c.verifiedBy(issuer) != nil {
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

// checkRevocation looks cert up in its issuer's CRL: a current CRL from the
// roots folder, else one fetched from the certificate's distribution points
// (cached until its nextUpdate), else a stale folder CRL with a warning.
// A certificate with no CRL anywhere passes with a warning; a distribution
// point that cannot be read is ErrRevocationUnknown.
func (v *Verifier) checkRevocation(ctx context.Context, cert, issuer *Certificate, now time.Time) error {
	local := v.crlFromFolder(issuer)
	crl := local
	if local == nil || !local.current(now) {
		if urls := distributionPoints(cert); len(urls) > 0 {
			var errs []string
			crl = nil
			for _, u := range urls {
				c, err := v.fetchCRL(ctx, u, issuer, now)
				if err == nil {
					crl = c
					break
				}
				v.log.Error("gost: CRL fetch failed", "url", u, "issuer", issuer.Subject.CommonName, "err", err)
				errs = append(errs, err.Error())
			}
			if crl == nil {
				return fmt.Errorf("certificate %q: CRL unavailable (%s): %w", cert.Subject.Owner(), strings.Join(errs, "; "), ErrRevocationUnknown)
			}
		}
	}
	if crl == nil {
		v.log.Warn("gost: no CRL for certificate, accepted without a revocation check",
			"subject", cert.Subject.Owner(), "issuer", issuer.Subject.CommonName, "thumbprint", cert.Thumbprint)
		return nil
	}
	if !crl.current(now) {
		v.log.Warn("gost: CRL is past its nextUpdate, used anyway",
			"issuer", issuer.Subject.CommonName, "next_update", crl.list.NextUpdate)
	}
	if crl.revoked[cert.X509.SerialNumber.String()] {
		return fmt.Errorf("certificate %q (serial %s): %w", cert.Subject.Owner(), cert.X509.SerialNumber, ErrRevoked)
	}
	return nil
}

// fetchCRL returns the CRL at url, from the cache while it is current.
func (v *Verifier) fetchCRL(ctx context.Context, url string, issuer *Certificate, now time.Time) (*crlInfo, error) {
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
			return slot.crl, nil
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
	if crl.list.NextUpdate.IsZero() || crl.list.NextUpdate.Before(now.Add(minCRLCache)) {
		slot.until = now.Add(minCRLCache)
	}
	v.log.Info("gost: CRL fetched", "url", url, "issuer", issuer.Subject.CommonName,
		"entries", len(crl.revoked), "next_update", crl.list.NextUpdate)
	return crl, nil
}
