package gost

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/ddulesov/gogost/gost3410"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Algorithm names a key's signature algorithm family.
type Algorithm string

// The algorithms this package signs and verifies with.
const (
	AlgGOST256 Algorithm = "GOST3410_2012_256"
	AlgGOST512 Algorithm = "GOST3410_2012_512"
	AlgRSA     Algorithm = "RSA"
	AlgECDSA   Algorithm = "ECDSA"
)

// maxKeySize bounds a PEM or DER key input; the biggest real key (RSA 8192
// in PKCS#8) is under 5 KiB.
const maxKeySize = 16 << 10

// PrivateKey is a GOST R 34.10-2012 (256 or 512), RSA or ECDSA private key.
// It is safe for concurrent use.
type PrivateKey struct {
	alg    Algorithm
	params *paramSet     // GOST only
	scalar []byte        // GOST only: the private scalar, little-endian, as PKCS#8 carries it
	std    crypto.Signer // RSA and ECDSA
	pub    *PublicKey
}

// PublicKey is a GOST R 34.10-2012 (256 or 512), RSA or ECDSA public key.
// It is safe for concurrent use.
type PublicKey struct {
	alg    Algorithm
	params *paramSet        // GOST only
	point  []byte           // GOST only: X || Y, each little-endian, as SubjectPublicKeyInfo carries it
	std    crypto.PublicKey // *rsa.PublicKey or *ecdsa.PublicKey
}

// ParsePrivateKeyPEM reads a private key: "PRIVATE KEY" (PKCS#8) with a GOST
// key as `openssl genpkey -engine gost` writes it or an RSA/EC key, or the
// older "RSA PRIVATE KEY" and "EC PRIVATE KEY" forms. A DER PKCS#8 key
// without PEM armour is accepted too. Encrypted keys are not.
func ParsePrivateKeyPEM(pemBytes []byte) (*PrivateKey, error) {
	if len(pemBytes) > maxKeySize {
		return nil, fmt.Errorf("private key of %d bytes: %w", len(pemBytes), ErrTooLarge)
	}
	for block := range pemBlocks(pemBytes) {
		switch block.Type {
		case "PRIVATE KEY":
			return parsePKCS8(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("RSA private key: %v: %w", err, ErrMalformed)
			}
			return newStdPrivateKey(k)
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("EC private key: %v: %w", err, ErrMalformed)
			}
			return newStdPrivateKey(k)
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("encrypted private key: decrypt it first (openssl pkey): %w", ErrUnsupported)
		}
	}
	if len(pemBytes) > 0 && pemBytes[0] == 0x30 {
		return parsePKCS8(pemBytes)
	}
	return nil, fmt.Errorf("no private key in PEM input: %w", ErrMalformed)
}

// parsePKCS8 reads a PrivateKeyInfo (RFC 5208). GOST keys are read by hand:
// crypto/x509 does not know them.
func parsePKCS8(der []byte) (*PrivateKey, error) {
	var version int64
	var algID, params cryptobyte.String
	var keyOID asn1.ObjectIdentifier
	var keyBytes cryptobyte.String
	in := cryptobyte.String(der)
	var info cryptobyte.String
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) ||
		!info.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) ||
		!info.ReadASN1(&algID, cbasn1.SEQUENCE) ||
		!algID.ReadASN1ObjectIdentifier(&keyOID) {
		return nil, fmt.Errorf("PKCS#8 private key: %w", ErrMalformed)
	}
	alg := gostAlgorithm(keyOID)
	if alg == "" {
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("PKCS#8 private key: %v: %w", err, ErrMalformed)
		}
		return newStdPrivateKey(k)
	}
	if !algID.ReadASN1(&params, cbasn1.SEQUENCE) || !info.ReadASN1(&keyBytes, cbasn1.OCTET_STRING) {
		return nil, fmt.Errorf("GOST PKCS#8 private key: %w", ErrMalformed)
	}
	ps, err := readGOSTParams(alg, params)
	if err != nil {
		return nil, err
	}
	scalar, err := gostScalar(keyBytes, int(ps.mode))
	if err != nil {
		return nil, err
	}
	return newGOSTPrivateKey(alg, ps, scalar)
}

// gostScalar finds the little-endian private scalar in PKCS#8 privateKey:
// current engines write the bare bytes, older ones an OCTET STRING around
// them, and some tools a big-endian INTEGER.
func gostScalar(b cryptobyte.String, size int) ([]byte, error) {
	if len(b) == size {
		return append([]byte(nil), b...), nil
	}
	in := b
	var inner cryptobyte.String
	if in.ReadASN1(&inner, cbasn1.OCTET_STRING) && in.Empty() && len(inner) == size {
		return append([]byte(nil), inner...), nil
	}
	in = b
	n := new(big.Int)
	if in.ReadASN1Integer(n) && in.Empty() && n.Sign() > 0 && n.BitLen() <= size*8 {
		be := n.FillBytes(make([]byte, size))
		return reversed(be), nil
	}
	return nil, fmt.Errorf("GOST private key of %d bytes (masked or unknown form): %w", len(b), ErrUnsupported)
}

func newGOSTPrivateKey(alg Algorithm, ps *paramSet, scalar []byte) (*PrivateKey, error) {
	c := ps.curve()
	k := new(big.Int).SetBytes(reversed(scalar))
	if k.Sign() <= 0 || k.Cmp(c.Q) >= 0 {
		return nil, fmt.Errorf("GOST private key out of range: %w", ErrMalformed)
	}
	prv, err := gost3410.NewPrivateKey(c, ps.mode, scalar)
	if err != nil {
		return nil, fmt.Errorf("GOST private key: %v: %w", err, ErrMalformed)
	}
	pub, err := prv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("GOST public key: %v: %w", err, ErrMalformed)
	}
	return &PrivateKey{
		alg:    alg,
		params: ps,
		scalar: scalar,
		pub:    &PublicKey{alg: alg, params: ps, point: pub.Raw()},
	}, nil
}

func newStdPrivateKey(k any) (*PrivateKey, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return &PrivateKey{alg: AlgRSA, std: k, pub: &PublicKey{alg: AlgRSA, std: &k.PublicKey}}, nil
	case *ecdsa.PrivateKey:
		return &PrivateKey{alg: AlgECDSA, std: k, pub: &PublicKey{alg: AlgECDSA, std: &k.PublicKey}}, nil
	default:
		return nil, fmt.Errorf("private key of type %T: %w", k, ErrUnsupported)
	}
}

// GenerateKey makes a new key: GOST keys on the tc26 256 paramSet A or the
// 512 paramSet A curve, RSA 2048, ECDSA P-256. Tests and tools use it.
func GenerateKey(alg Algorithm) (*PrivateKey, error) {
	switch alg {
	case AlgGOST256, AlgGOST512:
		ps := paramSets[0]
		if alg == AlgGOST512 {
			ps = findParamSet(asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 2, 1})
		}
		for {
			scalar := make([]byte, int(ps.mode))
			if _, err := rand.Read(scalar); err != nil {
				return nil, fmt.Errorf("generate GOST key: %w", err)
			}
			k, err := newGOSTPrivateKey(alg, ps, scalar)
			if err == nil {
				return k, nil
			}
		}
	case AlgRSA:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate RSA key: %w", err)
		}
		return newStdPrivateKey(k)
	case AlgECDSA:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ECDSA key: %w", err)
		}
		return newStdPrivateKey(k)
	}
	return nil, fmt.Errorf("generate %q key: %w", alg, ErrUnsupported)
}

// Algorithm tells which family the key belongs to.
func (k *PrivateKey) Algorithm() Algorithm { return k.alg }

// Public returns the key's public half.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// Sign hashes data and signs the digest: Streebog-256 or -512 (by key size)
// for GOST, SHA-256 for RSA (PKCS #1 v1.5) and ECDSA (ASN.1 DER r, s).
//
// A GOST signature is s || r, each big-endian and as long as the key
// (64 or 128 bytes in all): the byte string OpenSSL writes into a CMS
// SignerInfo.signature and an X.509 signatureValue. The ESIA client_secret is
// this string, base64url-encoded.
func (k *PrivateKey) Sign(data []byte) ([]byte, error) {
	h := newHash(k.alg)
	h.Write(data)
	return k.SignDigest(h.Sum(nil))
}

// SignDigest signs a digest the caller made: a Streebog digest as Streebog256
// or Streebog512 return it for GOST keys, a SHA-256/384/512 digest for RSA
// and ECDSA. The output is in the same format as Sign's.
func (k *PrivateKey) SignDigest(digest []byte) ([]byte, error) {
	switch k.alg {
	case AlgGOST256, AlgGOST512:
		if len(digest) != int(k.params.mode) {
			return nil, fmt.Errorf("sign a %d-byte digest with a %d-byte GOST key: %w", len(digest), k.params.mode, ErrUnsupported)
		}
		prv, err := gost3410.NewPrivateKey(k.params.curve(), k.params.mode, k.scalar)
		if err != nil {
			return nil, fmt.Errorf("GOST sign: %w", err)
		}
		sig, err := prv.SignDigest(reversed(digest), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("GOST sign: %w", err)
		}
		return sig, nil
	case AlgRSA, AlgECDSA:
		h, err := hashForDigest(digest)
		if err != nil {
			return nil, err
		}
		sig, err := k.std.Sign(rand.Reader, digest, h)
		if err != nil {
			return nil, fmt.Errorf("%s sign: %w", k.alg, err)
		}
		return sig, nil
	}
	return nil, fmt.Errorf("sign with %q: %w", k.alg, ErrUnsupported)
}

// hashForDigest tells a SHA-2 digest's function by its length.
func hashForDigest(digest []byte) (crypto.Hash, error) {
	switch len(digest) {
	case sha256.Size:
		return crypto.SHA256, nil
	case sha512.Size384:
		return crypto.SHA384, nil
	case sha512.Size:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("digest of %d bytes: %w", len(digest), ErrUnsupported)
}

// ParsePublicKey reads a DER SubjectPublicKeyInfo with a GOST, RSA or EC key.
func ParsePublicKey(spki []byte) (*PublicKey, error) {
	if len(spki) > maxKeySize {
		return nil, fmt.Errorf("public key of %d bytes: %w", len(spki), ErrTooLarge)
	}
	in := cryptobyte.String(spki)
	var info, algID, params cryptobyte.String
	var oid asn1.ObjectIdentifier
	var bits asn1.BitString
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !in.Empty() ||
		!info.ReadASN1(&algID, cbasn1.SEQUENCE) ||
		!algID.ReadASN1ObjectIdentifier(&oid) {
		return nil, fmt.Errorf("public key info: %w", ErrMalformed)
	}
	alg := gostAlgorithm(oid)
	if alg == "" {
		k, err := x509.ParsePKIXPublicKey(spki)
		if err != nil {
			return nil, fmt.Errorf("public key: %v: %w", err, ErrUnsupported)
		}
		switch k := k.(type) {
		case *rsa.PublicKey:
			return &PublicKey{alg: AlgRSA, std: k}, nil
		case *ecdsa.PublicKey:
			return &PublicKey{alg: AlgECDSA, std: k}, nil
		}
		return nil, fmt.Errorf("public key of type %T: %w", k, ErrUnsupported)
	}
	if !algID.ReadASN1(&params, cbasn1.SEQUENCE) || !info.ReadASN1BitString(&bits) || !info.Empty() || bits.BitLength%8 != 0 {
		return nil, fmt.Errorf("GOST public key info: %w", ErrMalformed)
	}
	ps, err := readGOSTParams(alg, params)
	if err != nil {
		return nil, err
	}
	// The BIT STRING holds an OCTET STRING with X || Y, little-endian.
	raw := cryptobyte.String(bits.Bytes)
	var point cryptobyte.String
	if !raw.ReadASN1(&point, cbasn1.OCTET_STRING) || !raw.Empty() || len(point) != 2*int(ps.mode) {
		return nil, fmt.Errorf("GOST public key point: %w", ErrMalformed)
	}
	pub := &PublicKey{alg: alg, params: ps, point: append([]byte(nil), point...)}
	if !pub.onCurve() {
		return nil, fmt.Errorf("GOST public key is not on curve %s: %w", ps.name, ErrMalformed)
	}
	return pub, nil
}

// gostAlgorithm maps a GOST key OID to its Algorithm, or "" for others.
func gostAlgorithm(oid asn1.ObjectIdentifier) Algorithm {
	switch {
	case oid.Equal(oidGOST256Key):
		return AlgGOST256
	case oid.Equal(oidGOST512Key):
		return AlgGOST512
	}
	return ""
}

// readGOSTParams reads GostR3410-2012-PublicKeyParameters: the curve's OID
// and, optionally, a digest OID (which, for 2012 keys, only repeats what the
// key size says, so it is not checked).
func readGOSTParams(alg Algorithm, params cryptobyte.String) (*paramSet, error) {
	var curveOID asn1.ObjectIdentifier
	if !params.ReadASN1ObjectIdentifier(&curveOID) {
		return nil, fmt.Errorf("GOST key parameters: %w", ErrMalformed)
	}
	ps := findParamSet(curveOID)
	if ps == nil {
		return nil, fmt.Errorf("GOST curve %s: %w", curveOID, ErrUnsupported)
	}
	if (alg == AlgGOST256) != (ps.mode == gost3410.Mode2001) {
		return nil, fmt.Errorf("GOST curve %s with a %s key: %w", ps.name, alg, ErrMalformed)
	}
	return ps, nil
}

// xy returns the point's coordinates as integers.
func (p *PublicKey) xy() (x, y *big.Int) {
	n := int(p.params.mode)
	return new(big.Int).SetBytes(reversed(p.point[:n])), new(big.Int).SetBytes(reversed(p.point[n:]))
}

// onCurve checks y² = x³ + ax + b (mod p) in the canonical Weierstrass form
// gogost computes in, so that arithmetic never meets a foreign point.
func (p *PublicKey) onCurve() bool {
	c := p.params.curve()
	x, y := p.xy()
	if x.Cmp(c.P) >= 0 || y.Cmp(c.P) >= 0 {
		return false
	}
	l := new(big.Int).Mul(y, y)
	l.Mod(l, c.P)
	r := new(big.Int).Mul(x, x)
	r.Add(r, c.A)
	r.Mul(r, x)
	r.Add(r, c.B)
	r.Mod(r, c.P)
	return l.Cmp(r) == 0
}

// Algorithm tells which family the key belongs to.
func (p *PublicKey) Algorithm() Algorithm { return p.alg }

// Equal reports whether both keys are the same key.
func (p *PublicKey) Equal(o *PublicKey) bool {
	if p == nil || o == nil || p.alg != o.alg {
		return false
	}
	switch p.alg {
	case AlgGOST256, AlgGOST512:
		return p.params.mode == o.params.mode && bytes.Equal(p.point, o.point) && p.curveEqual(o)
	case AlgRSA:
		return p.std.(*rsa.PublicKey).Equal(o.std)
	case AlgECDSA:
		return p.std.(*ecdsa.PublicKey).Equal(o.std)
	}
	return false
}

// curveEqual compares curves by their numbers: tc26 B and CryptoPro A are
// one curve under two OIDs.
func (p *PublicKey) curveEqual(o *PublicKey) bool {
	a, b := p.params.curve(), o.params.curve()
	return a.P.Cmp(b.P) == 0 && a.Q.Cmp(b.Q) == 0 && a.X.Cmp(b.X) == 0
}

// Verify checks sig, in the format Sign writes, over data. It returns an
// error wrapping ErrBadSignature when the signature is wrong.
func (p *PublicKey) Verify(data, sig []byte) error {
	h := newHash(p.alg)
	h.Write(data)
	return p.VerifyDigest(h.Sum(nil), sig)
}

// VerifyDigest checks sig over a digest the caller made (Streebog for GOST
// keys, as Streebog256/512 return it; SHA-256/384/512 for RSA and ECDSA).
func (p *PublicKey) VerifyDigest(digest, sig []byte) error {
	switch p.alg {
	case AlgGOST256, AlgGOST512:
		n := int(p.params.mode)
		if len(digest) != n {
			return fmt.Errorf("a %d-byte digest for a %d-byte GOST key: %w", len(digest), n, ErrBadSignature)
		}
		if len(sig) != 2*n {
			return fmt.Errorf("GOST signature of %d bytes, want %d: %w", len(sig), 2*n, ErrBadSignature)
		}
		x, y := p.xy()
		pub := &gost3410.PublicKey{C: p.params.curve(), Mode: p.params.mode, X: x, Y: y}
		ok, err := pub.VerifyDigest(reversed(digest), sig)
		if err != nil || !ok {
			return fmt.Errorf("GOST R 34.10-2012 signature does not verify: %w", ErrBadSignature)
		}
		return nil
	case AlgRSA:
		h, err := hashForDigest(digest)
		if err != nil {
			return fmt.Errorf("RSA: %v: %w", err, ErrBadSignature)
		}
		if err := rsa.VerifyPKCS1v15(p.std.(*rsa.PublicKey), h, digest, sig); err != nil {
			return fmt.Errorf("RSA signature does not verify: %w", ErrBadSignature)
		}
		return nil
	case AlgECDSA:
		if !ecdsa.VerifyASN1(p.std.(*ecdsa.PublicKey), digest, sig) {
			return fmt.Errorf("ECDSA signature does not verify: %w", ErrBadSignature)
		}
		return nil
	}
	return fmt.Errorf("verify with %q: %w", p.alg, ErrUnsupported)
}
