package gost_test

import (
	"errors"
	"testing"

	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
)

// TestFixturesParse: every fixture certificate and key made by OpenSSL parses,
// the key matches the certificate, signs and verifies, and the root's GOST
// signature on the certificate checks out (or, for untrusted, does not).
func TestFixturesParse(t *testing.T) {
	root := gosttest.Load(t, "root")
	noca := gosttest.Load(t, "noca-issuer")
	for _, name := range gosttest.Names {
		t.Run(name, func(t *testing.T) {
			id := gosttest.Load(t, name)
			if !id.Key.Public().Equal(id.Cert.PublicKey) {
				t.Fatal("key does not match certificate")
			}
			sig, err := id.Key.Sign([]byte("challenge"))
			if err != nil {
				t.Fatal(err)
			}
			if err := id.Cert.PublicKey.Verify([]byte("challenge"), sig); err != nil {
				t.Fatalf("own signature: %v", err)
			}
			if err := id.Cert.PublicKey.Verify([]byte("challengE"), sig); !errors.Is(err, gost.ErrBadSignature) {
				t.Fatalf("wrong data: got %v, want ErrBadSignature", err)
			}
			issuer := root.Cert
			if name == "noca-leaf" {
				issuer = noca.Cert
			}
			err = id.Cert.CheckSignatureFrom(issuer)
			if name == "untrusted" {
				if !errors.Is(err, gost.ErrBadSignature) {
					t.Fatalf("untrusted checked against our root: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name  string
		owner string
		want  gost.Name
	}{
		{"ivanov", "Иванов Иван Иванович", gost.Name{
			CommonName: "Иванов Иван Иванович", Surname: "Иванов", GivenName: "Иван Иванович",
			Organization: "ООО «Ромашка»", Title: "Генеральный директор", SNILS: "11223344595",
			INN: "771234567890", INNLE: "7701234567", OGRN: "1027700132195", Email: "ivanov@example.ru",
		}},
		{"petrov", "Петров Петр Петрович", gost.Name{
			CommonName: "Петров Петр Петрович", Surname: "Петров", GivenName: "Петр Петрович",
			SNILS: "12345678964", INN: "500100732259", OGRNIP: "304500116000157",
		}},
		{"esia-client", "ИС Астрал ID", gost.Name{
			CommonName: "ИС Астрал ID", Organization: "АО «Калуга Астрал»", INNLE: "4029017981", OGRN: "1024001434049",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := gosttest.Load(t, tt.name).Cert
			if c.Subject != tt.want {
				t.Errorf("subject\n got %+v\nwant %+v", c.Subject, tt.want)
			}
			if got := c.Subject.Owner(); got != tt.owner {
				t.Errorf("owner %q, want %q", got, tt.owner)
			}
			if c.Issuer.CommonName != "Тестовый УЦ" {
				t.Errorf("issuer %q", c.Issuer.CommonName)
			}
			if len(c.Thumbprint) != 40 {
				t.Errorf("thumbprint %q", c.Thumbprint)
			}
		})
	}
	if a, b := gosttest.Load(t, "ivanov").Cert, gosttest.Load(t, "ivanov-renewed").Cert; a.Subject.SNILS != b.Subject.SNILS || !b.NotBefore.After(a.NotBefore) || a.PublicKey.Equal(b.PublicKey) {
		t.Error("ivanov-renewed is not a renewal of ivanov")
	}
	if alg := gosttest.Load(t, "petrov").Cert.PublicKey.Algorithm(); alg != gost.AlgGOST512 {
		t.Errorf("petrov key %s", alg)
	}
}
