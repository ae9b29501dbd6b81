package gost

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
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

func nameFrom(p pkix.Name) Name {
	var n Name
	for _, a := range p.Names {
		s, ok := a.Value.(string)
		if !ok {
			continue
		}
		s = strings.TrimSpace(s)
		t := a.Type
		switch {
		case t.Equal(asn1.ObjectIdentifier{2, 5, 4, 3}):
			n.CommonName = s
		case t.Equal(asn1.ObjectIdentifier{2, 5, 4, 4}):
			n.Surname = s
		case t.Equal(asn1.ObjectIdentifier{2, 5, 4, 42}):
			n.GivenName = s
		case t.Equal(asn1.ObjectIdentifier{2, 5, 4, 10}):
			n.Organization = s
		case t.Equal(asn1.ObjectIdentifier{2, 5, 4, 12}):
			n.Title = s
		case t.Equal(oidSNILS):
			n.SNILS = s
		case t.Equal(oidINN):
			n.INN = s
		case t.Equal(oidINNLE):
			n.INNLE = s
		case t.Equal(oidOGRN):
			n.OGRN = s
		case t.Equal(oidOGRNIP):
			n.OGRNIP = s
		case t.Equal(oidEmail):
			n.Email = s
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
	rest := pemOrDER
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
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

// verifySigned checks a certificate's or CRL's outer signature with the
// issuer's key. GOST is done here; RSA and ECDSA through PublicKey too, so
// that a GOST CA can issue RSA certificates and the reverse.
func verifySigned(tbs []byte, alg asn1.ObjectIdentifier, sig []byte, issuer *PublicKey) error {
	var digest []byte
	switch {
	case alg.Equal(oidGOST256Sig):
		if issuer.alg != AlgGOST256 {
			return fmt.Errorf("GOST-256 signature by a %s key: %w", issuer.alg, ErrBadSignature)
		}
		digest = Streebog256(tbs)
	case alg.Equal(oidGOST512Sig):
		if issuer.alg != AlgGOST512 {
			return fmt.Errorf("GOST-512 signature by a %s key: %w", issuer.alg, ErrBadSignature)
		}
		digest = Streebog512(tbs)
	case alg.Equal(oidSHA256RSA), alg.Equal(oidECDSASHA256):
		digest = hashOf(crypto.SHA256, tbs)
	case alg.Equal(oidSHA384RSA), alg.Equal(oidECDSASHA384):
		digest = hashOf(crypto.SHA384, tbs)
	case alg.Equal(oidSHA512RSA), alg.Equal(oidECDSASHA512):
		digest = hashOf(crypto.SHA512, tbs)
	default:
		return fmt.Errorf("signature algorithm %s: %w", alg, ErrUnsupported)
	}
	isRSA := alg.Equal(oidSHA256RSA) || alg.Equal(oidSHA384RSA) || alg.Equal(oidSHA512RSA)
	isEC := alg.Equal(oidECDSASHA256) || alg.Equal(oidECDSASHA384) || alg.Equal(oidECDSASHA512)
	if (isRSA && issuer.alg != AlgRSA) || (isEC && issuer.alg != AlgECDSA) {
		return fmt.Errorf("signature algorithm %s by a %s key: %w", alg, issuer.alg, ErrBadSignature)
	}
	return issuer.VerifyDigest(digest, sig)
}

func hashOf(h crypto.Hash, data []byte) []byte {
	w := h.New()
	w.Write(data)
	return w.Sum(nil)
}

// CheckSignatureFrom checks that parent's key signed c. It checks nothing
// else; Verifier.Verify does the rest of a chain's checks.
func (c *Certificate) CheckSignatureFrom(parent *Certificate) error {
	if err := verifySigned(c.X509.RawTBSCertificate, c.sigAlg, c.sig, parent.PublicKey); err != nil {
		return fmt.Errorf("certificate %q signed by %q: %w", c.Subject.CommonName, parent.Subject.CommonName, err)
	}
	return nil
}
