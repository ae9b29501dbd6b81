package gost_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
)

// openssl runs the GOST-capable openssl in dir and returns its stdout.
func openssl(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(gosttest.OpenSSL(t), args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStreebogMatchesOpenSSL: our digests are byte for byte what
// `openssl dgst -md_gost12_256/512` prints.
func TestStreebogMatchesOpenSSL(t *testing.T) {
	dir := t.TempDir()
	inputs := map[string][]byte{
		"empty": {},
		"abc":   []byte("abc"),
		"long":  bytes.Repeat([]byte("Подпись "), 1000),
	}
	for name, in := range inputs {
		for _, md := range []struct {
			flag string
			f    func([]byte) []byte
		}{{"-md_gost12_256", gost.Streebog256}, {"-md_gost12_512", gost.Streebog512}} {
			t.Run(name+md.flag, func(t *testing.T) {
				writeFile(t, dir, "in", in)
				out := openssl(t, dir, "dgst", "-engine", "gost", md.flag, "-r", "in")
				want := strings.Fields(string(out))[0]
				if got := hex.EncodeToString(md.f(in)); got != want {
					t.Errorf("got %s, openssl %s", got, want)
				}
			})
		}
	}
}

// TestOpenSSLKeys: keys on every curve genpkey makes parse; what we sign
// openssl verifies, and what openssl signs we verify.
func TestOpenSSLKeys(t *testing.T) {
	tests := []struct {
		alg, paramset, md string
		want              gost.Algorithm
	}{
		{"gost2012_256", "TCA", "-md_gost12_256", gost.AlgGOST256},
		{"gost2012_256", "A", "-md_gost12_256", gost.AlgGOST256},
		{"gost2012_256", "B", "-md_gost12_256", gost.AlgGOST256},
		{"gost2012_256", "C", "-md_gost12_256", gost.AlgGOST256},
		{"gost2012_256", "XA", "-md_gost12_256", gost.AlgGOST256},
		{"gost2012_256", "XB", "-md_gost12_256", gost.AlgGOST256},
		{"gost2012_512", "A", "-md_gost12_512", gost.AlgGOST512},
		{"gost2012_512", "B", "-md_gost12_512", gost.AlgGOST512},
		{"gost2012_512", "C", "-md_gost12_512", gost.AlgGOST512},
	}
	data := []byte("Вход в Астрал.Отчет: 0f3a")
	for _, tt := range tests {
		t.Run(tt.alg+"-"+tt.paramset, func(t *testing.T) {
			dir := t.TempDir()
			keyPEM := openssl(t, dir, "genpkey", "-engine", "gost", "-algorithm", tt.alg, "-pkeyopt", "paramset:"+tt.paramset)
			writeFile(t, dir, "key.pem", keyPEM)
			writeFile(t, dir, "data", data)
			openssl(t, dir, "pkey", "-engine", "gost", "-in", "key.pem", "-pubout", "-out", "pub.pem")
			k, err := gost.ParsePrivateKeyPEM(keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != tt.want {
				t.Fatalf("algorithm %s", k.Algorithm())
			}
			pubDER := openssl(t, dir, "pkey", "-engine", "gost", "-pubin", "-in", "pub.pem", "-outform", "DER")
			pub, err := gost.ParsePublicKey(pubDER)
			if err != nil {
				t.Fatal(err)
			}
			if !pub.Equal(k.Public()) {
				t.Fatal("public key derived from the private key differs from openssl's")
			}

			// Go signs, openssl verifies.
			sig, err := k.Sign(data)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, "sig", sig)
			openssl(t, dir, "dgst", "-engine", "gost", tt.md, "-verify", "pub.pem", "-signature", "sig", "data")

			// openssl signs, Go verifies.
			osig := openssl(t, dir, "dgst", "-engine", "gost", tt.md, "-sign", "key.pem", "data")
			if err := pub.Verify(data, osig); err != nil {
				t.Fatalf("openssl's signature: %v", err)
			}
			if err := pub.Verify(append(data, '!'), osig); err == nil {
				t.Fatal("openssl's signature verified over other data")
			}
		})
	}
}

// TestStdKeys: RSA and EC keys in every PEM form sign and verify.
func TestStdKeys(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want gost.Algorithm
	}{
		{"rsa-pkcs8", []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"}, gost.AlgRSA},
		{"ec-pkcs8", []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, gost.AlgECDSA},
		{"rsa-pkcs1", []string{"genrsa", "-traditional", "2048"}, gost.AlgRSA},
		{"ec-sec1", []string{"ecparam", "-name", "prime256v1", "-genkey"}, gost.AlgECDSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			k, err := gost.ParsePrivateKeyPEM(openssl(t, dir, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != tt.want {
				t.Fatalf("algorithm %s", k.Algorithm())
			}
			sig, err := k.Sign([]byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Public().Verify([]byte("x"), sig); err != nil {
				t.Fatal(err)
			}
			if err := k.Public().VerifyDigest(gost.Streebog256([]byte("x")), sig); err == nil {
				t.Fatal("verified a wrong digest")
			}
		})
	}
}
