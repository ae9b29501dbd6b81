package gost

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"iter"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Limits on untrusted input. A real certificate is 1–3 KiB and a detached
// signature with its chain under 16 KiB.
const (
	// MaxInputSize bounds a certificate, a CMS SignedData or a pasted signature.
	MaxInputSize = 64 << 10
	// maxCertificates bounds the certificates in one input (a SignedData or a PEM bundle).
	maxCertificates = 10
)

// Name is a certificate subject or issuer with the attributes Russian
// qualified certificates carry (Приказ ФСБ № 795). Empty when absent.
type Name struct {
	CommonName   string
	Surname      string // SN: фамилия
	GivenName    string // G: имя и отчество
	Organization string
	Title        string
	SNILS        string
	INN          string // ИНН физического лица
	INNLE        string // ИНН юридического лица
	OGRN         string
	OGRNIP       string
	Email        string
}

// Owner returns "Фамилия Имя Отчество" from SN and G when both are present,
// else the common name.
func (n Name) Owner() string {
	if n.Surname != "" && n.GivenName != "" {
		return n.Surname + " " + n.GivenName
	}
	return n.CommonName
}

var oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// nameFields maps the attribute types we read to the Name field each fills.
var nameFields = []struct {
	oid   asn1.ObjectIdentifier
	field func(*Name) *string
}{
	{asn1.ObjectIdentifier{2, 5, 4, 3}, func(n *Name) *string { return &n.CommonName }},
	{asn1.ObjectIdentifier{2, 5, 4, 4}, func(n *Name) *string { return &n.Surname }},
	{asn1.ObjectIdentifier{2, 5, 4, 42}, func(n *Name) *string { return &n.GivenName }},
	{asn1.ObjectIdentifier{2, 5, 4, 10}, func(n *Name) *string { return &n.Organization }},
	{asn1.ObjectIdentifier{2, 5, 4, 12}, func(n *Name) *string { return &n.Title }},
	{oidSNILS, func(n *Name) *string { return &n.SNILS }},
	{oidINN, func(n *Name) *string { return &n.INN }},
	{oidINNLE, func(n *Name) *string { return &n.INNLE }},
	{oidOGRN, func(n *Name) *string { return &n.OGRN }},
	{oidOGRNIP, func(n *Name) *string { return &n.OGRNIP }},
	{oidEmail, func(n *Name) *string { return &n.Email }},
}

func nameFrom(p pkix.Name) Name {
	var n Name
	for _, a := range p.Names {
		s, ok := a.Value.(string)
		if !ok {
			continue
		}
		for _, f := range nameFields {
			if a.Type.Equal(f.oid) {
				*f.field(&n) = strings.TrimSpace(s)
				break
			}
		}
	}
	return n
}

// Certificate is a parsed X.509 certificate with any of our key types.
type Certificate struct {
	Raw []byte
	// X509 is the standard library's view: extensions, key usage, names.
	// Its PublicKey is nil for GOST keys; use PublicKey.
	X509       *x509.Certificate
	PublicKey  *PublicKey
	Subject    Name
	Issuer     Name
	NotBefore  time.Time
	NotAfter   time.Time
	Thumbprint string // SHA-1 of the DER, lower-case hex, as crypto providers show it

	// The outer signature, split out by hand because crypto/x509 does not
	// know the GOST signature OIDs.
	sigAlg asn1.ObjectIdentifier
	sig    []byte
}

// ParseCertificate reads one DER certificate.
func ParseCertificate(der []byte) (*Certificate, error) {
	if len(der) > MaxInputSize {
		return nil, fmt.Errorf("certificate of %d bytes: %w", len(der), ErrTooLarge)
	}
	// Parse a copy: crypto/x509 keeps slices of its input, and the caller
	// may reuse der.
	raw := append([]byte(nil), der...)
	xc, err := x509.ParseCertificate(raw)
	if err != nil {
		return nil, fmt.Errorf("certificate: %v: %w", err, ErrMalformed)
	}
	_, sigAlg, sig, err := splitSigned(raw)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	pub, err := ParsePublicKey(xc.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, fmt.Errorf("certificate %q key: %w", xc.Subject.CommonName, err)
	}
	sum := sha1.Sum(raw)
	return &Certificate{
		Raw:        raw,
		X509:       xc,
		PublicKey:  pub,
		Subject:    nameFrom(xc.Subject),
		Issuer:     nameFrom(xc.Issuer),
		NotBefore:  xc.NotBefore,
		NotAfter:   xc.NotAfter,
		Thumbprint: hex.EncodeToString(sum[:]),
		sigAlg:     sigAlg,
		sig:        sig,
	}, nil
}

// ParseCertificates reads certificates from PEM ("CERTIFICATE" blocks; other
// blocks are skipped) or from one DER certificate.
func ParseCertificates(pemOrDER []byte) ([]*Certificate, error) {
	if len(pemOrDER) > MaxInputSize {
		return nil, fmt.Errorf("certificates of %d bytes: %w", len(pemOrDER), ErrTooLarge)
	}
	trimmed := bytes.TrimSpace(pemOrDER)
	if len(trimmed) > 0 && trimmed[0] == 0x30 {
		c, err := ParseCertificate(pemOrDER)
		if err != nil {
			return nil, err
		}
		return []*Certificate{c}, nil
	}
	var out []*Certificate
	for block := range pemBlocks(pemOrDER) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		if len(out) == maxCertificates {
			return nil, fmt.Errorf("more than %d certificates: %w", maxCertificates, ErrTooLarge)
		}
		c, err := ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no certificate found: %w", ErrMalformed)
	}
	return out, nil
}

// pemBlocks yields the PEM blocks of b in order, skipping text between them.
func pemBlocks(b []byte) iter.Seq[*pem.Block] {
	return func(yield func(*pem.Block) bool) {
		for {
			block, rest := pem.Decode(b)
			if block == nil || !yield(block) {
				return
			}
			b = rest
		}
	}
}

// splitSigned splits a signed X.509 structure (certificate or CRL):
// SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }.
func splitSigned(der []byte) (tbs []byte, alg asn1.ObjectIdentifier, sig []byte, err error) {
	in := cryptobyte.String(der)
	var outer, algID cryptobyte.String
	var rawTBS cryptobyte.String
	var bits asn1.BitString
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) ||
		!outer.ReadASN1Element(&rawTBS, cbasn1.SEQUENCE) ||
		!outer.ReadASN1(&algID, cbasn1.SEQUENCE) ||
		!algID.ReadASN1ObjectIdentifier(&alg) ||
		!outer.ReadASN1BitString(&bits) ||
		bits.BitLength%8 != 0 {
		return nil, nil, nil, fmt.Errorf("signed structure: %w", ErrMalformed)
	}
	return rawTBS, alg, bits.Bytes, nil
}

// signatureAlgorithms are the signature algorithms we verify: the combined
// OID a certificate or CRL names, the key family that signs with it, the
// digest it signs, and the bare key OID that a CMS SignerInfo may name
// instead, leaving the hash to its digestAlgorithm.
var signatureAlgorithms = []struct {
	oid, keyOID, digest asn1.ObjectIdentifier
	key                 Algorithm
}{
	{oidGOST256Sig, oidGOST256Key, oidStreebog256, AlgGOST256},
	{oidGOST512Sig, oidGOST512Key, oidStreebog512, AlgGOST512},
	{oidSHA256RSA, oidRSA, oidSHA256, AlgRSA},
	{oidSHA384RSA, oidRSA, oidSHA384, AlgRSA},
	{oidSHA512RSA, oidRSA, oidSHA512, AlgRSA},
	{oidECDSASHA256, oidECPublicKey, oidSHA256, AlgECDSA},
	{oidECDSASHA384, oidECPublicKey, oidSHA384, AlgECDSA},
	{oidECDSASHA512, oidECPublicKey, oidSHA512, AlgECDSA},
}

// verifySigned checks a certificate's or CRL's outer signature with the
// issuer's key. GOST is done here; RSA and ECDSA through PublicKey too, so
// that a GOST CA can issue RSA certificates and the reverse.
func verifySigned(tbs []byte, alg asn1.ObjectIdentifier, sig []byte, issuer *PublicKey) error {
	for _, a := range signatureAlgorithms {
		if !a.oid.Equal(alg) {
			continue
		}
		if issuer.alg != a.key {
			return fmt.Errorf("signature algorithm %s by a %s key: %w", alg, issuer.alg, ErrBadSignature)
		}
		hash, _ := digestFor(a.digest)
		return issuer.VerifyDigest(hash(tbs), sig)
	}
	return fmt.Errorf("signature algorithm %s: %w", alg, ErrUnsupported)
}

// CheckSignatureFrom checks that parent's key signed c. It checks nothing
// else; Verifier.Verify does the rest of a chain's checks.
func (c *Certificate) CheckSignatureFrom(parent *Certificate) error {
	if err := verifySigned(c.X509.RawTBSCertificate, c.sigAlg, c.sig, parent.PublicKey); err != nil {
		return fmt.Errorf("certificate %q signed by %q: %w", c.Subject.CommonName, parent.Subject.CommonName, err)
	}
	return nil
}
