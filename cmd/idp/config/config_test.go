package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.Issuer != "http://localhost:8080" || c.DatabaseURL != "sqlite://idp.db" ||
		c.ClientsFile != "clients.yaml" || c.SigningAlg != "RS256" || !c.Dev {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestLoadProblems(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"http non-loopback issuer", map[string]string{"IDP_ISSUER": "http://id.astral.ru", "IDP_MASTER_KEY": key},
			[]string{"IDP_ISSUER", "loopback"}},
		{"https needs master key", map[string]string{"IDP_ISSUER": "https://id.astral.ru"}, []string{"IDP_MASTER_KEY is required"}},
		{"short master key", map[string]string{"IDP_MASTER_KEY": base64.StdEncoding.EncodeToString([]byte("short"))},
			[]string{"IDP_MASTER_KEY", "32 bytes"}},
		{"bad alg", map[string]string{"IDP_SIGNING_ALG": "HS256"}, []string{"IDP_SIGNING_ALG"}},
		{"bad database", map[string]string{"IDP_DATABASE_URL": "mysql://x"}, []string{"IDP_DATABASE_URL"}},
		{"bad addr", map[string]string{"IDP_ADDR": "8080"}, []string{"IDP_ADDR"}},
		{"all at once", map[string]string{"IDP_ADDR": "x", "IDP_SIGNING_ALG": "none", "IDP_ISSUER": "ftp://x"},
			[]string{"IDP_ADDR", "IDP_SIGNING_ALG", "IDP_ISSUER"}},
		{"issuer with query", map[string]string{"IDP_ISSUER": "https://id.astral.ru/?a=1", "IDP_MASTER_KEY": key},
			[]string{"no query"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(tt.env))
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadHTTPSWithKey(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	c, err := Load(env(map[string]string{"IDP_ISSUER": "https://id.astral.ru/", "IDP_MASTER_KEY": key, "IDP_SIGNING_ALG": "ES256"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Dev || c.Issuer != "https://id.astral.ru" || string(c.MasterKey) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("config = %+v", c)
	}
}

func TestEnsureDevMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), DevMasterKeyFile)
	c := &Config{Dev: true}
	if err := c.EnsureDevMasterKey(path); err != nil {
		t.Fatal(err)
	}
	first := c.MasterKey
	if len(first) != 32 {
		t.Fatalf("key length %d", len(first))
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	c2 := &Config{Dev: true}
	if err := c2.EnsureDevMasterKey(path); err != nil {
		t.Fatal(err)
	}
	if string(c2.MasterKey) != string(first) {
		t.Fatal("second start read a different key")
	}
}
