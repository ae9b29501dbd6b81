package gost_test

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
)

// oidData is id-data, DER, followed by the [0] of an indefinite eContent.
var idDataIndefinite = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x80}

// detachBER cuts the eContent ([0] indefinite with a chunked OCTET STRING,
// as openssl -stream writes it) out of an attached BER SignedData. Every
// enclosing length is indefinite, so nothing else changes: the result is a
// detached BER signature as CryptoPro CSP makes it.
func detachBER(t *testing.T, ber []byte) []byte {
	t.Helper()
	i := bytes.Index(ber, idDataIndefinite)
	if i < 0 {
		t.Fatal("no indefinite eContent")
	}
	start := i + len(idDataIndefinite) - 2
	j := start + 2
	if ber[j] != 0x24 || ber[j+1] != 0x80 {
		t.Fatalf("eContent starts %x", ber[j:j+2])
	}
	for j += 2; ber[j] == 0x04; {
		switch l := ber[j+1]; {
		case l < 0x80:
			j += 2 + int(l)
		case l == 0x81:
			j += 3 + int(ber[j+2])
		case l == 0x82:
			j += 4 + int(ber[j+2])<<8 | int(ber[j+3])
		default:
			t.Fatalf("chunk length %x", l)
		}
	}
	if !bytes.Equal(ber[j:j+4], []byte{0, 0, 0, 0}) {
		t.Fatalf("eContent ends %x", ber[j:j+4])
	}
	return append(bytes.Clone(ber[:start]), ber[j+4:]...)
}

// TestBERSignature: a signature in BER with indefinite lengths, as
// `openssl cms -sign -stream` (and CryptoPro CSP) write it, verifies —
// attached and detached — and still refuses other content and a tampered
// signature.
func TestBERSignature(t *testing.T) {
	ber := gosttest.File(t, "ivanov-ber.p7s")
	content := gosttest.File(t, "ber-content.txt")
	if ber[1] != 0x80 {
		t.Fatal("the fixture is not BER with an indefinite length")
	}
	detached := detachBER(t, ber)
	ivanov := gosttest.Load(t, "ivanov")
	for name, sig := range map[string][]byte{"attached": ber, "detached": detached} {
		t.Run(name, func(t *testing.T) {
			sd, err := gost.VerifyDetached(sig, content)
			if err != nil {
				t.Fatal(err)
			}
			if sd.Signer.Thumbprint != ivanov.Cert.Thumbprint || sd.SigningTime.IsZero() {
				t.Fatalf("signer %s at %v", sd.Signer.Subject.Owner(), sd.SigningTime)
			}
			if _, err := gost.VerifyDetached(sig, append(bytes.Clone(content), '!')); !errors.Is(err, gost.ErrDigestMismatch) {
				t.Errorf("other content: %v", err)
			}
			tampered := bytes.Clone(sig)
			tampered[len(tampered)-10] ^= 1 // in the signature, before three end-of-contents
			if _, err := gost.VerifyDetached(tampered, content); !errors.Is(err, gost.ErrBadSignature) {
				t.Errorf("tampered: %v", err)
			}
			for _, pasted := range []string{base64.StdEncoding.EncodeToString(sig), string(pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: sig}))} {
				der, err := gost.ParseSignature([]byte(pasted))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := gost.VerifyDetached(der, content); err != nil {
					t.Fatalf("pasted: %v", err)
				}
			}
		})
	}
}

// TestOpenSSLBER: fresh BER signatures from openssl, GOST-256 and -512.
func TestOpenSSLBER(t *testing.T) {
	content := []byte("challenge: 51ab Подпись в потоке")
	for _, tt := range []struct{ id, md string }{{"ivanov", "md_gost12_256"}, {"petrov", "md_gost12_512"}} {
		t.Run(tt.id, func(t *testing.T) {
			dir := t.TempDir()
			cert, key := gosttest.WriteFiles(t, gosttest.Load(t, tt.id))
			writeFile(t, dir, "content", content)
			ber := openssl(t, dir, "cms", "-engine", "gost", "-sign", "-binary", "-stream", "-md", tt.md, "-nosmimecap",
				"-in", "content", "-signer", cert, "-inkey", key, "-outform", "DER")
			for _, sig := range [][]byte{ber, detachBER(t, ber)} {
				if _, err := gost.VerifyDetached(sig, content); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestBERToDER(t *testing.T) {
	ivanov := gosttest.Load(t, "ivanov")
	der, err := gost.SignDetached(ivanov.Key, ivanov.Cert, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	h := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	deep := append(bytes.Repeat([]byte{0x30, 0x80}, 34), bytes.Repeat([]byte{0, 0}, 34)...)
	tests := []struct {
		name string
		in   []byte
		want []byte
		err  error
	}{
		{"DER unchanged", der, der, nil},
		{"certificate unchanged", ivanov.Cert.Raw, ivanov.Cert.Raw, nil},
		{"indefinite", h("30 80 02 01 05 30 80 00 00 00 00"), h("30 05 02 01 05 30 00"), nil},
		{"long form not minimal", h("04 84 00 00 00 02 aa bb"), h("04 02 aa bb"), nil},
		{"chunked octets", h("24 80 04 01 aa 04 02 bb cc 00 00"), h("04 03 aa bb cc"), nil},
		{"nested chunks", h("a0 80 24 80 24 04 04 02 aa bb 04 01 cc 00 00 00 00"), h("a0 05 04 03 aa bb cc"), nil},
		{"high tag number", h("bf 81 00 80 05 00 00 00"), h("bf 81 00 02 05 00"), nil},
		{"primitive indefinite", h("04 80 aa 00 00"), nil, gost.ErrMalformed},
		{"no end-of-contents", h("30 80 02 01 05"), nil, gost.ErrMalformed},
		{"end-of-contents in definite", h("30 02 00 00"), nil, gost.ErrMalformed},
		{"trailing", h("30 00 00"), nil, gost.ErrMalformed},
		{"past the end", h("30 05 02 01"), nil, gost.ErrMalformed},
		{"huge length", h("30 84 ff ff ff ff 00"), nil, gost.ErrMalformed},
		{"length of 5 bytes", h("30 85 00 00 00 00 01 00"), nil, gost.ErrMalformed},
		{"chunk of another type", h("24 80 02 01 05 00 00"), nil, gost.ErrMalformed},
		{"tag not minimal", h("9f 80 01 00"), nil, gost.ErrMalformed},
		{"too deep", deep, nil, gost.ErrTooLarge},
		{"too large", append([]byte{0x04, 0x83, 0x01, 0x00, 0x00}, make([]byte, 1<<16)...), nil, gost.ErrTooLarge},
		{"empty", nil, nil, gost.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gost.BERToDER(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %x, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("got %x, %v; want %x", got, err, tt.want)
			}
		})
	}
}

// attrsWithout makes the DER SET OF signed attributes with messageDigest and,
// when ct is not nil, contentType ct.
func attrsWith(ct asn1.ObjectIdentifier) func(digest []byte) ([]byte, error) {
	return func(digest []byte) ([]byte, error) {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			if ct != nil {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3})
					b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(ct) })
				})
			}
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) })
			})
		})
		return b.Bytes()
	}
}

// TestSignedDataChecks: the signer forms, attributes and algorithms a
// SignedData must have, each refused with its reason.
func TestSignedDataChecks(t *testing.T) {
	content := []byte("challenge: 0c1d")
	ivanov, petrov, ecdsa := gosttest.Load(t, "ivanov"), gosttest.Load(t, "petrov"), gosttest.Load(t, "ecdsa")
	sha256 := asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	sha384 := asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	signedData := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	data := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	variant := func(id gosttest.Identity, v gost.Variant) []byte {
		der, err := gost.SignVariant(id.Key, id.Cert, content, v)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	// swapOID rewrites every DER OID from into to (same length).
	swapOID := func(der []byte, from, to asn1.ObjectIdentifier) []byte {
		f, _ := asn1.Marshal(from)
		g, _ := asn1.Marshal(to)
		if !bytes.Contains(der, f) {
			t.Fatalf("no %s", from)
		}
		return bytes.ReplaceAll(bytes.Clone(der), f, g)
	}
	streebog256 := asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 2, 2}
	streebog512 := asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 2, 3}
	tests := []struct {
		name string
		der  []byte
		want error
	}{
		{"issuer and serial", variant(ivanov, gost.Variant{}), nil},
		{"subject key identifier", variant(ivanov, gost.Variant{SKI: true}), nil},
		{"attributes without contentType", variant(ivanov, gost.Variant{Attrs: attrsWith(nil)}), gost.ErrMalformed},
		{"contentType id-data", variant(ivanov, gost.Variant{Attrs: attrsWith(data)}), nil},
		{"contentType not id-data", variant(ivanov, gost.Variant{Attrs: attrsWith(signedData)}), gost.ErrUnsupported},
		{"eContentType not id-data", variant(ivanov, gost.Variant{EContentType: signedData}), gost.ErrUnsupported},
		{"Streebog-512 with a 256-bit key", swapOID(variant(ivanov, gost.Variant{}), streebog256, streebog512), gost.ErrUnsupported},
		{"Streebog-256 with a 512-bit key", swapOID(variant(petrov, gost.Variant{}), streebog512, streebog256), gost.ErrUnsupported},
		{"SHA-384 digest with ecdsa-with-SHA256", swapOID(variant(ecdsa, gost.Variant{}), sha256, sha384), gost.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd, err := gost.VerifyDetached(tt.der, content)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if sd.Signer == nil {
					t.Fatal("no signer")
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestOpenSSLSignerForms: openssl's -keyid (subjectKeyIdentifier) verifies;
// -nocerts (the signer's certificate left out) and two signers are refused.
func TestOpenSSLSignerForms(t *testing.T) {
	content := []byte("challenge: 77aa")
	dir := t.TempDir()
	writeFile(t, dir, "content", content)
	iCert, iKey := gosttest.WriteFiles(t, gosttest.Load(t, "ivanov"))
	pCert, pKey := gosttest.WriteFiles(t, gosttest.Load(t, "petrov"))
	sign := func(extra ...string) []byte {
		args := append([]string{"cms", "-engine", "gost", "-sign", "-binary", "-nosmimecap", "-in", "content", "-outform", "DER"}, extra...)
		return openssl(t, dir, args...)
	}
	if sd, err := gost.VerifyDetached(sign("-keyid", "-signer", iCert, "-inkey", iKey), content); err != nil || sd.Signer.Subject.SNILS != "11223344595" {
		t.Errorf("keyid: %v", err)
	}
	_, err := gost.VerifyDetached(sign("-nocerts", "-signer", iCert, "-inkey", iKey), content)
	if !errors.Is(err, gost.ErrMalformed) || !strings.Contains(err.Error(), "not included") {
		t.Errorf("nocerts: %v", err)
	}
	_, err = gost.VerifyDetached(sign("-signer", iCert, "-inkey", iKey, "-signer", pCert, "-inkey", pKey), content)
	if !errors.Is(err, gost.ErrUnsupported) || !strings.Contains(err.Error(), "2 signers") {
		t.Errorf("two signers: %v", err)
	}
}

// TestUnknownCurve: a GOST key on a curve we do not know is unsupported,
// alone and inside a SignedData.
func TestUnknownCurve(t *testing.T) {
	ivanov := gosttest.Load(t, "ivanov")
	cryptoProA, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 643, 2, 2, 35, 1})
	unknown, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 643, 2, 2, 35, 9})
	if !bytes.Contains(ivanov.Cert.Raw, cryptoProA) {
		t.Fatal("ivanov's key is not on CryptoPro-A")
	}
	raw := bytes.ReplaceAll(bytes.Clone(ivanov.Cert.Raw), cryptoProA, unknown)
	if _, err := gost.ParseCertificate(raw); !errors.Is(err, gost.ErrUnsupported) {
		t.Fatalf("certificate: %v", err)
	}
	der, err := gost.SignDetached(ivanov.Key, ivanov.Cert, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	der = bytes.ReplaceAll(der, cryptoProA, unknown)
	if _, err := gost.VerifyDetached(der, []byte("x")); !errors.Is(err, gost.ErrUnsupported) {
		t.Fatalf("CMS: %v", err)
	}
}
