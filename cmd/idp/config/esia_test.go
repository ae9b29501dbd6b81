package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/astral/idp/login/gost/gosttest"
)

// TestLoadESIA: unset is off; a complete setting loads with its files parsed; a
// partial or wrong one stops the start naming every variable at fault.
func TestLoadESIA(t *testing.T) {
	certFile, keyFile := gosttest.WriteFiles(t, gosttest.Load(t, "esia-client"))
	tokenCert, _ := gosttest.WriteFiles(t, gosttest.Load(t, "esia-service"))
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{"IDP_ESIA_URL": "https://esia.gosuslugi.ru", "IDP_ESIA_CLIENT_ID": "ASTRAL",
		"IDP_ESIA_KEY_FILE": keyFile, "IDP_ESIA_CERT_FILE": certFile, "IDP_ESIA_TOKEN_CERT_FILE": tokenCert}
	with := func(edit map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		for k, v := range edit {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	if c, err := Load(env(nil)); err != nil || c.ESIA != nil {
		t.Fatalf("unset: %+v, %v", c, err)
	}
	c, err := Load(env(full))
	if err != nil || c.ESIA == nil || c.ESIA.Signer == nil || len(c.ESIA.Certificate) == 0 || len(c.ESIA.TokenCert) == 0 {
		t.Fatalf("complete: %+v, %v", c, err)
	}
	if c, err := Load(env(with(map[string]string{"IDP_ESIA_KEY_FILE": "", "IDP_ESIA_SIGN_COMMAND": "/usr/bin/sign --gost"}))); err != nil || c.ESIA.Signer == nil {
		t.Fatalf("sign command: %+v, %v", c, err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"only a client id", map[string]string{"IDP_ESIA_CLIENT_ID": "ASTRAL"},
			[]string{"IDP_ESIA_URL is required", "IDP_ESIA_CERT_FILE is required", "IDP_ESIA_TOKEN_CERT_FILE is required", "IDP_ESIA_KEY_FILE (or IDP_ESIA_SIGN_COMMAND) is required"}},
		{"no signer", with(map[string]string{"IDP_ESIA_KEY_FILE": ""}), []string{"IDP_ESIA_KEY_FILE (or IDP_ESIA_SIGN_COMMAND)"}},
		{"both signers", with(map[string]string{"IDP_ESIA_SIGN_COMMAND": "sign"}), []string{"both set"}},
		{"unreadable certificate", with(map[string]string{"IDP_ESIA_CERT_FILE": garbage}), []string{"IDP_ESIA_CERT_FILE"}},
		{"missing token certificate file", with(map[string]string{"IDP_ESIA_TOKEN_CERT_FILE": "/nonexistent.pem"}), []string{"IDP_ESIA_TOKEN_CERT_FILE"}},
		{"a certificate as the key", with(map[string]string{"IDP_ESIA_KEY_FILE": certFile}), []string{"IDP_ESIA_KEY_FILE"}},
		{"plain http", with(map[string]string{"IDP_ESIA_URL": "http://esia.gosuslugi.ru"}), []string{"IDP_ESIA_URL", "loopback"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(tt.env))
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
