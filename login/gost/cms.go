package gost

// The CMS SignedData (RFC 5652) reader and writer are written by hand: no
// maintained Go CMS package handles GOST algorithms, and the parts we need —
// one detached SignedData, signed attributes, certificates — are small
// enough to read with cryptobyte under our own limits.

import (
	"bytes"
	"crypto"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

const (
	maxSigners    = 4  // SignerInfos read from one SignedData (one is verified)
	maxAttributes = 32 // signed attributes in one SignerInfo
)

// SignedData is what a verified detached signature tells.
type SignedData struct {
	// Signer made the signature. Its chain is not checked here:
	// pass it to Verifier.Verify with Certificates as intermediates.
	Signer *Certificate
	// Certificates are all the certificates the SignedData carries.
	Certificates []*Certificate
	// SigningTime is the signer's claim from the signed attributes; zero when absent.
	SigningTime time.Time
}

// signerInfo is one parsed SignerInfo.
type signerInfo struct {
	issuer      []byte   // IssuerAndSerialNumber, or
	serial      *big.Int //
	ski         []byte   // SubjectKeyIdentifier
	digestAlg   asn1.ObjectIdentifier
	signedAttrs []byte // the [0] IMPLICIT element as it came, nil when absent
	sigAlg      asn1.ObjectIdentifier
	signature   []byte
}

// digestFor returns the hash a digest OID names.
func digestFor(oid asn1.ObjectIdentifier) (func([]byte) []byte, bool) {
	switch {
	case oid.Equal(oidStreebog256):
		return Streebog256, true
	case oid.Equal(oidStreebog512):
		return Streebog512, true
	case oid.Equal(oidSHA256):
		return func(b []byte) []byte { return hashOf(crypto.SHA256, b) }, true
	case oid.Equal(oidSHA384):
		return func(b []byte) []byte { return hashOf(crypto.SHA384, b) }, true
	case oid.Equal(oidSHA512):
		return func(b []byte) []byte { return hashOf(crypto.SHA512, b) }, true
	}
	return nil, false
}

// VerifyDetached checks a detached CMS SignedData over content: the one
// SignerInfo's signature with its certificate from the SignedData — over the
// signed attributes, whose contentType must be id-data and whose
// messageDigest must be the content's digest, or over the content itself
// when there are none. GOST R 34.10-2012 256/512 with Streebog of the key's
// size, RSA and ECDSA with SHA-2 are accepted. The signer may be named by
// issuer and serial number or by subject key identifier; its certificate
// must be among the SignedData's certificates.
//
// The input may be DER or BER (indefinite lengths, chunked content, as
// CryptoPro CSP writes it): it is brought to DER first.
//
// Exactly one SignerInfo is accepted: a sign-in names one person, and a
// SignedData with co-signers would leave open whose identity it proves.
//
// It does not check the certificates' chain, dates or revocation: pass
// SignedData.Signer to Verifier.Verify for that.
//
// A SignedData that carries the content (attached) is accepted when that
// content equals content.
func VerifyDetached(cmsDER, content []byte) (*SignedData, error) {
	if len(cmsDER) > MaxInputSize {
		return nil, fmt.Errorf("CMS of %d bytes: %w", len(cmsDER), ErrTooLarge)
	}
	der, err := berToDER(cmsDER)
	if err != nil {
		return nil, fmt.Errorf("CMS: %w", err)
	}
	sd, signers, eContent, err := parseSignedData(der)
	if err != nil {
		return nil, err
	}
	if len(signers) != 1 {
		return nil, fmt.Errorf("CMS with %d signers, one expected: %w", len(signers), ErrUnsupported)
	}
	if eContent != nil && !bytes.Equal(eContent, content) {
		return nil, fmt.Errorf("CMS carries other content than the one given: %w", ErrDigestMismatch)
	}
	si := signers[0]
	cert := findSigner(sd.Certificates, si)
	if cert == nil {
		return nil, fmt.Errorf("CMS signer's certificate is not included: %w", ErrMalformed)
	}
	signingTime, err := verifySignerInfo(si, cert, content)
	if err != nil {
		return nil, fmt.Errorf("CMS signer %q: %w", cert.Subject.Owner(), err)
	}
	sd.Signer = cert
	sd.SigningTime = signingTime
	return sd, nil
}

// parseSignedData reads ContentInfo { signedData, [0] SignedData }.
func parseSignedData(der []byte) (*SignedData, []signerInfo, []byte, error) {
	malformed := func(what string) error { return fmt.Errorf("CMS %s: %w", what, ErrMalformed) }
	in := cryptobyte.String(der)
	var ci, explicit, sd cryptobyte.String
	var ctype asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, nil, nil, malformed("ContentInfo (DER expected)")
	}
	if !ci.ReadASN1ObjectIdentifier(&ctype) {
		return nil, nil, nil, malformed("content type")
	}
	if !ctype.Equal(oidSignedData) {
		return nil, nil, nil, fmt.Errorf("CMS content type %s is not SignedData: %w", ctype, ErrUnsupported)
	}
	if !ci.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() ||
		!explicit.ReadASN1(&sd, cbasn1.SEQUENCE) || !explicit.Empty() {
		return nil, nil, nil, malformed("SignedData")
	}
	var version int64
	var digestAlgs, encap, signerSet cryptobyte.String
	var eType asn1.ObjectIdentifier
	if !sd.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) ||
		!sd.ReadASN1(&digestAlgs, cbasn1.SET) ||
		!sd.ReadASN1(&encap, cbasn1.SEQUENCE) ||
		!encap.ReadASN1ObjectIdentifier(&eType) {
		return nil, nil, nil, malformed("SignedData header")
	}
	var eContent []byte
	if encap.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var wrap, octets cryptobyte.String
		if !encap.ReadASN1(&wrap, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
			!wrap.ReadASN1(&octets, cbasn1.OCTET_STRING) || !wrap.Empty() {
			return nil, nil, nil, malformed("encapsulated content")
		}
		eContent = []byte(octets)
		if eContent == nil {
			eContent = []byte{}
		}
	}
	if !encap.Empty() {
		return nil, nil, nil, malformed("EncapsulatedContentInfo")
	}
	// RFC 5652 §5.3: with signed attributes, the contentType attribute must
	// equal eContentType; we sign in with plain data only.
	if !eType.Equal(oidData) {
		return nil, nil, nil, fmt.Errorf("CMS encapsulated content type %s is not data: %w", eType, ErrUnsupported)
	}
	out := &SignedData{}
	if sd.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var certs cryptobyte.String
		if !sd.ReadASN1(&certs, cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return nil, nil, nil, malformed("certificates")
		}
		for !certs.Empty() {
			var raw cryptobyte.String
			var tag cbasn1.Tag
			if !certs.ReadAnyASN1Element(&raw, &tag) {
				return nil, nil, nil, malformed("certificate set")
			}
			if tag != cbasn1.SEQUENCE {
				continue // attribute certificates and other choices are not ours to read
			}
			if len(out.Certificates) == maxCertificates {
				return nil, nil, nil, fmt.Errorf("CMS with more than %d certificates: %w", maxCertificates, ErrTooLarge)
			}
			c, err := ParseCertificate(raw)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("CMS certificate: %w", err)
			}
			out.Certificates = append(out.Certificates, c)
		}
	}
	if sd.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		if !sd.SkipASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) {
			return nil, nil, nil, malformed("crls")
		}
	}
	if !sd.ReadASN1(&signerSet, cbasn1.SET) || !sd.Empty() {
		return nil, nil, nil, malformed("signerInfos")
	}
	var signers []signerInfo
	for !signerSet.Empty() {
		if len(signers) == maxSigners {
			return nil, nil, nil, fmt.Errorf("CMS with more than %d signers: %w", maxSigners, ErrTooLarge)
		}
		si, err := parseSignerInfo(&signerSet)
		if err != nil {
			return nil, nil, nil, err
		}
		signers = append(signers, si)
	}
	if len(signers) == 0 {
		return nil, nil, nil, fmt.Errorf("CMS without signers: %w", ErrMalformed)
	}
	return out, signers, eContent, nil
}

func parseSignerInfo(set *cryptobyte.String) (signerInfo, error) {
	var si signerInfo
	malformed := func(what string) error { return fmt.Errorf("CMS SignerInfo %s: %w", what, ErrMalformed) }
	var s, digestAlg, sigAlg, sig cryptobyte.String
	var version int64
	if !set.ReadASN1(&s, cbasn1.SEQUENCE) || !s.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) {
		return si, malformed("header")
	}
	switch {
	case s.PeekASN1Tag(cbasn1.SEQUENCE):
		var ias, issuer cryptobyte.String
		si.serial = new(big.Int)
		if !s.ReadASN1(&ias, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(si.serial) || !ias.Empty() {
			return si, malformed("issuerAndSerialNumber")
		}
		si.issuer = issuer
	case s.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific()):
		var ski cryptobyte.String
		if !s.ReadASN1(&ski, cbasn1.Tag(0).ContextSpecific()) {
			return si, malformed("subjectKeyIdentifier")
		}
		si.ski = ski
	default:
		return si, malformed("signer identifier")
	}
	if !s.ReadASN1(&digestAlg, cbasn1.SEQUENCE) || !digestAlg.ReadASN1ObjectIdentifier(&si.digestAlg) {
		return si, malformed("digestAlgorithm")
	}
	if s.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var attrs cryptobyte.String
		if !s.ReadASN1Element(&attrs, cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return si, malformed("signedAttrs")
		}
		si.signedAttrs = attrs
	}
	if !s.ReadASN1(&sigAlg, cbasn1.SEQUENCE) || !sigAlg.ReadASN1ObjectIdentifier(&si.sigAlg) ||
		!s.ReadASN1(&sig, cbasn1.OCTET_STRING) {
		return si, malformed("signature")
	}
	si.signature = sig
	if s.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()) && !s.SkipASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return si, malformed("unsignedAttrs")
	}
	if !s.Empty() {
		return si, malformed("trailing data")
	}
	return si, nil
}

func findSigner(certs []*Certificate, si signerInfo) *Certificate {
	for _, c := range certs {
		if si.serial != nil {
			if bytes.Equal(c.X509.RawIssuer, si.issuer) && c.X509.SerialNumber.Cmp(si.serial) == 0 {
				return c
			}
		} else if len(si.ski) > 0 && bytes.Equal(c.X509.SubjectKeyId, si.ski) {
			return c
		}
	}
	return nil
}

// checkAlgorithms refuses a digest or signature algorithm that does not fit
// the signer's key: GOST-256 signs Streebog-256, GOST-512 Streebog-512.
func checkAlgorithms(si signerInfo, key *PublicKey) error {
	d, s := si.digestAlg, si.sigAlg
	for _, a := range signatureAlgorithms {
		if a.key == key.alg && d.Equal(a.digest) && (s.Equal(a.oid) || s.Equal(a.keyOID)) {
			return nil
		}
	}
	return fmt.Errorf("digest %s with signature %s for a %s key: %w", d, s, key.alg, ErrUnsupported)
}

// verifySignerInfo checks one signature and returns its signing time.
func verifySignerInfo(si signerInfo, cert *Certificate, content []byte) (time.Time, error) {
	if err := checkAlgorithms(si, cert.PublicKey); err != nil {
		return time.Time{}, err
	}
	hash, _ := digestFor(si.digestAlg) // known: checkAlgorithms passed
	contentDigest := hash(content)
	if si.signedAttrs == nil {
		// RFC 5652 §5.4: without signed attributes the signature is over
		// the content itself, so wrong content shows as a bad signature.
		if err := cert.PublicKey.VerifyDigest(contentDigest, si.signature); err != nil {
			return time.Time{}, err
		}
		return time.Time{}, nil
	}
	attrs, err := parseAttributes(si.signedAttrs)
	if err != nil {
		return time.Time{}, err
	}
	// RFC 5652 §5.4: the signature covers the DER of the attributes with
	// the EXPLICIT SET OF tag, not the [0] IMPLICIT tag they are sent with.
	tbs := append([]byte{0x31}, si.signedAttrs[1:]...)
	if err := cert.PublicKey.VerifyDigest(hash(tbs), si.signature); err != nil {
		return time.Time{}, err
	}
	// RFC 5652 §5.3: signed attributes must hold contentType and messageDigest.
	if attrs.messageDigest == nil {
		return time.Time{}, fmt.Errorf("signed attributes without messageDigest: %w", ErrMalformed)
	}
	if attrs.contentType == nil {
		return time.Time{}, fmt.Errorf("signed attributes without contentType: %w", ErrMalformed)
	}
	if !attrs.contentType.Equal(oidData) {
		return time.Time{}, fmt.Errorf("signed content type %s: %w", attrs.contentType, ErrUnsupported)
	}
	if !bytes.Equal(attrs.messageDigest, contentDigest) {
		return time.Time{}, fmt.Errorf("messageDigest differs from the content's digest: %w", ErrDigestMismatch)
	}
	return attrs.signingTime, nil
}

type signedAttributes struct {
	contentType   asn1.ObjectIdentifier
	messageDigest []byte
	signingTime   time.Time
}

// parseAttributes reads the attributes we act on; the others (CAdES
// signingCertificateV2 and the like) are covered by the signature but not
// interpreted. Each attribute we read must appear once with one value.
func parseAttributes(raw []byte) (signedAttributes, error) {
	var a signedAttributes
	malformed := func(what string) error { return fmt.Errorf("signed attribute %s: %w", what, ErrMalformed) }
	in := cryptobyte.String(raw)
	var set cryptobyte.String
	if !in.ReadASN1(&set, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return a, malformed("set")
	}
	seen := map[string]bool{}
	for n := 0; !set.Empty(); n++ {
		if n == maxAttributes {
			return a, fmt.Errorf("more than %d signed attributes: %w", maxAttributes, ErrTooLarge)
		}
		var attr, values, value cryptobyte.String
		var oid asn1.ObjectIdentifier
		var tag cbasn1.Tag
		if !set.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) ||
			!attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return a, malformed("syntax")
		}
		if seen[oid.String()] {
			return a, malformed(oid.String() + " repeated")
		}
		seen[oid.String()] = true
		known := oid.Equal(oidContentType) || oid.Equal(oidMessageDigest) || oid.Equal(oidSigningTime)
		if !known {
			continue
		}
		if !values.ReadAnyASN1Element(&value, &tag) || !values.Empty() {
			return a, malformed(oid.String() + " must have one value")
		}
		switch {
		case oid.Equal(oidContentType):
			if _, err := asn1.Unmarshal(value, &a.contentType); err != nil {
				return a, malformed("contentType")
			}
		case oid.Equal(oidMessageDigest):
			var d cryptobyte.String = value
			var octets cryptobyte.String
			if !d.ReadASN1(&octets, cbasn1.OCTET_STRING) || !d.Empty() {
				return a, malformed("messageDigest")
			}
			a.messageDigest = append([]byte{}, octets...)
		case oid.Equal(oidSigningTime):
			if rest, err := asn1.Unmarshal(value, &a.signingTime); err != nil || len(rest) != 0 {
				return a, malformed("signingTime")
			}
		}
	}
	return a, nil
}

// SignDetached makes a detached CMS SignedData (DER) over content with k,
// as `openssl cms -sign -binary -nosmimecap` would: signed attributes
// contentType (id-data), signingTime (now) and messageDigest, the signer
// identified by issuer and serial number, and cert included. GOST keys use
// Streebog of their size; RSA and ECDSA use SHA-256.
func SignDetached(k *PrivateKey, cert *Certificate, content []byte) ([]byte, error) {
	return signDetached(k, cert, content, signOptions{})
}

// signOptions vary SignDetached's output, for tests of the verifier; the
// zero value is SignDetached.
type signOptions struct {
	attrs func(digest []byte) ([]byte, error) // the signed attributes as a DER SET OF
	eType asn1.ObjectIdentifier               // eContentType instead of id-data
	ski   bool                                // name the signer by subjectKeyIdentifier
}

func signDetached(k *PrivateKey, cert *Certificate, content []byte, o signOptions) ([]byte, error) {
	if k == nil || cert == nil {
		return nil, fmt.Errorf("sign CMS: no key or certificate: %w", ErrMalformed)
	}
	if !k.Public().Equal(cert.PublicKey) {
		return nil, fmt.Errorf("sign CMS: the key is not the certificate's: %w", ErrMalformed)
	}
	var digestOID, sigOID asn1.ObjectIdentifier
	nullParams := true
	switch k.alg {
	case AlgGOST256:
		digestOID, sigOID = oidStreebog256, oidGOST256Key
	case AlgGOST512:
		digestOID, sigOID = oidStreebog512, oidGOST512Key
	case AlgRSA:
		digestOID, sigOID = oidSHA256, oidRSA
	case AlgECDSA:
		digestOID, sigOID, nullParams = oidSHA256, oidECDSASHA256, false
	default:
		return nil, fmt.Errorf("sign CMS with %q: %w", k.alg, ErrUnsupported)
	}
	hash, _ := digestFor(digestOID)

	makeAttrs := o.attrs
	if makeAttrs == nil {
		makeAttrs = func(digest []byte) ([]byte, error) { return signedAttrs(digest, time.Now()) }
	}
	if o.eType == nil {
		o.eType = oidData
	}
	attrs, err := makeAttrs(hash(content))
	if err != nil {
		return nil, err
	}
	sig, err := k.SignDigest(hash(attrs))
	if err != nil {
		return nil, fmt.Errorf("sign CMS: %w", err)
	}
	attrs[0] = 0xa0 // sent as [0] IMPLICIT, signed as SET OF

	algID := func(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, null bool) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			if null {
				b.AddASN1NULL()
			}
		})
	}
	digestNull := k.alg == AlgGOST256 || k.alg == AlgGOST512 // as OpenSSL writes them
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { algID(b, digestOID, digestNull) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(o.eType) })
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(cert.Raw) })
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						if o.ski {
							b.AddASN1Int64(3) // RFC 5652 §5.3: version 3 with a subjectKeyIdentifier
							b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(cert.X509.SubjectKeyId) })
						} else {
							b.AddASN1Int64(1)
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddBytes(cert.X509.RawIssuer)
								b.AddASN1BigInt(cert.X509.SerialNumber)
							})
						}
						algID(b, digestOID, digestNull)
						b.AddBytes(attrs)
						algID(b, sigOID, nullParams)
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("sign CMS: encode: %w", err)
	}
	return der, nil
}

// signedAttrs encodes contentType, signingTime and messageDigest as a DER
// SET OF (tag 0x31), sorted as DER requires.
func signedAttrs(digest []byte, now time.Time) ([]byte, error) {
	var encoded [][]byte
	add := func(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) error {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.SET, value)
		})
		e, err := b.Bytes()
		if err != nil {
			return fmt.Errorf("sign CMS: attribute %s: %w", oid, err)
		}
		encoded = append(encoded, e)
		return nil
	}
	now = now.UTC().Truncate(time.Second)
	if err := add(oidContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) }); err != nil {
		return nil, err
	}
	if err := add(oidSigningTime, func(b *cryptobyte.Builder) {
		if now.Year() >= 1950 && now.Year() < 2050 {
			b.AddASN1UTCTime(now)
		} else {
			b.AddASN1GeneralizedTime(now)
		}
	}); err != nil {
		return nil, err
	}
	if err := add(oidMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) }); err != nil {
		return nil, err
	}
	slices.SortFunc(encoded, bytes.Compare)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, e := range encoded {
			b.AddBytes(e)
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("sign CMS: attributes: %w", err)
	}
	return out, nil
}
