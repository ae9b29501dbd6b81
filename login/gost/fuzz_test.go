package gost_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"testing"

	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
)

// The parsers meet untrusted bytes from the page and the signing agent:
// they must never panic and must stay within their limits.

func FuzzParseCertificate(f *testing.F) {
	for _, name := range gosttest.Names {
		f.Add(gosttest.Load(f, name).Cert.Raw)
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := gost.ParseCertificate(der)
		if err != nil {
			return
		}
		_ = c.Subject.Owner()
		_ = c.CheckSignatureFrom(c)
		_ = c.PublicKey.Verify([]byte("x"), make([]byte, 64))
	})
}

func FuzzVerifyDetached(f *testing.F) {
	content := []byte("challenge")
	for _, name := range []string{"ivanov", "petrov", "rsa", "ecdsa"} {
		id := gosttest.Load(f, name)
		der, err := gost.SignDetached(id.Key, id.Cert, content)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x03, 0x06, 0x01, 0x00})
	f.Add(gosttest.File(f, "ivanov-ber.p7s"))
	f.Fuzz(func(t *testing.T, der []byte) {
		sd, err := gost.VerifyDetached(der, content)
		if err == nil && sd.Signer == nil {
			t.Fatal("verified without a signer")
		}
	})
}

// FuzzBERToDER: the converter never panics, never grows its input, and its
// output is DER it leaves alone.
func FuzzBERToDER(f *testing.F) {
	f.Add(gosttest.File(f, "ivanov-ber.p7s"))
	f.Add(gosttest.Load(f, "petrov").Cert.Raw)
	f.Add([]byte{0x24, 0x80, 0x04, 0x01, 0xaa, 0x24, 0x03, 0x04, 0x01, 0xbb, 0x00, 0x00})
	f.Add([]byte{0xbf, 0x81, 0x00, 0x80, 0x05, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, ber []byte) {
		der, err := gost.BERToDER(ber)
		if err != nil {
			return
		}
		if len(der) > len(ber) {
			t.Fatalf("%d bytes grew to %d", len(ber), len(der))
		}
		again, err := gost.BERToDER(der)
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("not a fixed point: %x -> %x, %v", der, again, err)
		}
	})
}

// FuzzParseCRL: CRLs come from distribution points on the network.
func FuzzParseCRL(f *testing.F) {
	block, _ := pem.Decode(gosttest.File(f, "root.crl"))
	f.Add(block.Bytes)
	root := newTestRoot(f)
	for _, idp := range [][]byte{{0x30, 0x03, 0x81, 0x01, 0xff}, {0x30, 0x04, 0x83, 0x02, 0x06, 0x40}, {0x30, 0x03, 0x84, 0x01, 0xff}} {
		f.Add(root.crl(func(l *x509.RevocationList) {
			l.ExtraExtensions = []pkix.Extension{ext(asn1.ObjectIdentifier{2, 5, 29, 28}, true, idp)}
		}))
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		_, _ = gost.ParseCRL(der)
	})
}

func FuzzParseSignature(f *testing.F) {
	id := gosttest.Load(f, "ivanov")
	der, err := gost.SignDetached(id.Key, id.Cert, []byte("x"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(der)
	f.Add([]byte(base64.StdEncoding.EncodeToString(der)))
	f.Add([]byte(base64.RawURLEncoding.EncodeToString(der)))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: der}))
	f.Add([]byte("-----BEGIN PKCS7-----\n-----END PKCS7-----\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		out, err := gost.ParseSignature(text)
		if err != nil {
			return
		}
		if len(out) > gost.MaxInputSize || len(out) < 2 || out[0] != 0x30 {
			t.Fatalf("accepted %d bytes starting %x", len(out), out[:min(len(out), 2)])
		}
	})
}

func BenchmarkVerifyDetached(b *testing.B) {
	content := []byte("challenge: 4d2a")
	for _, name := range []string{"ivanov", "petrov", "rsa", "ecdsa"} {
		id := gosttest.Load(b, name)
		der, err := gost.SignDetached(id.Key, id.Cert, content)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(id.Key.Algorithm()), func(b *testing.B) {
			for b.Loop() {
				if _, err := gost.VerifyDetached(der, content); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	for _, name := range []string{"ivanov", "petrov"} {
		id := gosttest.Load(b, name)
		b.Run(string(id.Key.Algorithm()), func(b *testing.B) {
			for b.Loop() {
				if _, err := id.Key.Sign([]byte("x")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
