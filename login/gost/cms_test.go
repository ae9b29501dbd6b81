package gost_test

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
)

// TestOpenSSLSignsWeVerify: detached signatures made by `openssl cms -sign`
// with the GOST engine (and plain RSA/ECDSA) verify, with and without
// signed attributes; other content and a flipped signature byte are refused
// with their own reasons.
func TestOpenSSLSignsWeVerify(t *testing.T) {
	content := []byte("challenge: 9c1f0e7a Вход в Астрал.Отчет")
	tests := []struct {
		id, md  string
		noattr  bool
		wantAlg gost.Algorithm
	}{
		{"ivanov", "md_gost12_256", false, gost.AlgGOST256},
		{"ivanov", "md_gost12_256", true, gost.AlgGOST256},
		{"petrov", "md_gost12_512", false, gost.AlgGOST512},
		{"petrov", "md_gost12_512", true, gost.AlgGOST512},
		{"rsa", "sha256", false, gost.AlgRSA},
		{"ecdsa", "sha256", false, gost.AlgECDSA},
		{"ecdsa", "sha384", true, gost.AlgECDSA},
	}
	for _, tt := range tests {
		name := tt.id + "-" + tt.md
		if tt.noattr {
			name += "-noattr"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			id := gosttest.Load(t, tt.id)
			cert, key := gosttest.WriteFiles(t, id)
			writeFile(t, dir, "content", content)
			args := []string{"cms", "-engine", "gost", "-sign", "-binary", "-md", tt.md, "-nosmimecap",
				"-in", "content", "-signer", cert, "-inkey", key, "-outform", "DER"}
			if tt.noattr {
				args = append(args, "-noattr")
			}
			der := openssl(t, dir, args...)
			sd, err := gost.VerifyDetached(der, content)
			if err != nil {
				t.Fatal(err)
			}
			if sd.Signer.Thumbprint != id.Cert.Thumbprint || sd.Signer.PublicKey.Algorithm() != tt.wantAlg {
				t.Fatalf("signer %s %s", sd.Signer.Subject.Owner(), sd.Signer.PublicKey.Algorithm())
			}
			if !tt.noattr && time.Since(sd.SigningTime) > time.Hour {
				t.Errorf("signing time %v", sd.SigningTime)
			}

			_, err = gost.VerifyDetached(der, append(content, '.'))
			want := gost.ErrDigestMismatch
			if tt.noattr {
				want = gost.ErrBadSignature // the signature is over the content itself
			}
			if !errors.Is(err, want) {
				t.Errorf("other content: %v, want %v", err, want)
			}

			tampered := bytes.Clone(der)
			tampered[len(tampered)-5] ^= 0x01 // the signature is the last element
			if _, err := gost.VerifyDetached(tampered, content); !errors.Is(err, gost.ErrBadSignature) {
				t.Errorf("tampered: %v, want ErrBadSignature", err)
			}
			if gost.Explain(err) == "" {
				t.Error("no explanation")
			}
		})
	}
}

// TestWeSignOpenSSLVerifies: SignDetached output passes
// `openssl cms -verify` against the root, and our own VerifyDetached.
func TestWeSignOpenSSLVerifies(t *testing.T) {
	content := []byte("challenge: 4d2a Подпись")
	for _, name := range []string{"ivanov", "petrov", "rsa", "ecdsa", "esia-client"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			id := gosttest.Load(t, name)
			der, err := gost.SignDetached(id.Key, id.Cert, content)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gost.VerifyDetached(der, content); err != nil {
				t.Fatalf("our own signature: %v", err)
			}
			writeFile(t, dir, "content", content)
			writeFile(t, dir, "sig.der", der)
			writeFile(t, dir, "ca.pem", gosttest.File(t, "root.pem"))
			openssl(t, dir, "cms", "-engine", "gost", "-verify", "-binary", "-content", "content",
				"-inform", "DER", "-in", "sig.der", "-CAfile", "ca.pem", "-out", "/dev/null")
		})
	}
	if _, err := gost.SignDetached(gosttest.Load(t, "ivanov").Key, gosttest.Load(t, "petrov").Cert, content); err == nil {
		t.Error("signed with a key that is not the certificate's")
	}
}

// TestParseSignature: every way a person may paste a signature gives the DER.
func TestParseSignature(t *testing.T) {
	id := gosttest.Load(t, "ivanov")
	der, err := gost.SignDetached(id.Key, id.Cert, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	std := base64.StdEncoding.EncodeToString(der)
	wrapped := ""
	for i := 0; i < len(std); i += 64 {
		wrapped += std[i:min(i+64, len(std))] + "\r\n"
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"der", string(der), nil},
		{"base64", std, nil},
		{"base64 wrapped", "  \n" + wrapped + "\n", nil},
		{"base64url", base64.RawURLEncoding.EncodeToString(der), nil},
		{"pem cms", string(pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: der})), nil},
		{"pem pkcs7", string(pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: der})), nil},
		{"pem signed data", string(pem.EncodeToMemory(&pem.Block{Type: "SIGNED DATA", Bytes: der})), nil},
		{"pem certificate", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), gost.ErrMalformed},
		{"empty", " \n", gost.ErrMalformed},
		{"garbage", "not a signature!", gost.ErrMalformed},
		{"too large", strings.Repeat("A", 200<<10), gost.ErrTooLarge},
		{"too large decoded", base64.StdEncoding.EncodeToString(append([]byte{0x30}, make([]byte, gost.MaxInputSize+1)...)), gost.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gost.ParseSignature([]byte(tt.in))
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil || !bytes.Equal(got, der) {
				t.Fatalf("got %d bytes, %v", len(got), err)
			}
		})
	}
}

// TestVerifyDetachedRefusals: inputs that must not verify, each with its reason.
func TestVerifyDetachedRefusals(t *testing.T) {
	ivanov := gosttest.Load(t, "ivanov")
	good, err := gost.SignDetached(ivanov.Key, ivanov.Cert, []byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		der  []byte
		want error
	}{
		{"empty", nil, gost.ErrMalformed},
		{"truncated", good[:len(good)/2], gost.ErrMalformed},
		{"trailing", append(bytes.Clone(good), 0), gost.ErrMalformed},
		{"certificate instead", ivanov.Cert.Raw, gost.ErrMalformed},
		{"too large", make([]byte, gost.MaxInputSize+1), gost.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := gost.VerifyDetached(tt.der, []byte("c")); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
