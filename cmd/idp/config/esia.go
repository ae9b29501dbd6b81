package config

import (
	"fmt"
	"os"

	"github.com/astral/idp/login/upstream/esia"
)

// ESIA is Gosuslugi sign-in (login/upstream/esia), its files read and checked at
// start so that a wrong one stops the server at once, not the first person.
type ESIA struct {
	URL         string      // IDP_ESIA_URL
	ClientID    string      // IDP_ESIA_CLIENT_ID: our mnemonic
	Signer      esia.Signer // IDP_ESIA_KEY_FILE's key, or IDP_ESIA_SIGN_COMMAND
	Certificate []byte      // IDP_ESIA_CERT_FILE: our certificate, PEM
	TokenCert   []byte      // IDP_ESIA_TOKEN_CERT_FILE: ESIA's token-signing certificate
}

// esiaVars are the variables of Gosuslugi sign-in; any of them set without
// IDP_ESIA_URL is a half-done configuration, not "off".
var esiaVars = []string{"IDP_ESIA_URL", "IDP_ESIA_CLIENT_ID", "IDP_ESIA_KEY_FILE", "IDP_ESIA_CERT_FILE",
	"IDP_ESIA_TOKEN_CERT_FILE", "IDP_ESIA_SIGN_COMMAND"}

// loadESIA reads IDP_ESIA_*: all unset is off; otherwise every missing variable is
// named, and the files are read and parsed.
func loadESIA(get func(name, def string) string) (*ESIA, []error) {
	v := map[string]string{}
	anySet := false
	for _, name := range esiaVars {
		v[name] = get(name, "")
		anySet = anySet || v[name] != ""
	}
	if !anySet {
		return nil, nil
	}
	var problems []error
	for _, name := range []string{"IDP_ESIA_URL", "IDP_ESIA_CLIENT_ID", "IDP_ESIA_CERT_FILE", "IDP_ESIA_TOKEN_CERT_FILE"} {
		if v[name] == "" {
			problems = append(problems, fmt.Errorf("%s is required for Gosuslugi sign-in (IDP_ESIA_* is partly set)", name))
		}
	}
	switch {
	case v["IDP_ESIA_KEY_FILE"] == "" && v["IDP_ESIA_SIGN_COMMAND"] == "":
		problems = append(problems, fmt.Errorf("IDP_ESIA_KEY_FILE (or IDP_ESIA_SIGN_COMMAND) is required for Gosuslugi sign-in"))
	case v["IDP_ESIA_KEY_FILE"] != "" && v["IDP_ESIA_SIGN_COMMAND"] != "":
		problems = append(problems, fmt.Errorf("IDP_ESIA_KEY_FILE and IDP_ESIA_SIGN_COMMAND are both set: set one"))
	}
	e := &ESIA{URL: v["IDP_ESIA_URL"], ClientID: v["IDP_ESIA_CLIENT_ID"]}
	if e.URL != "" {
		if err := checkUpstreamURL(e.URL); err != nil {
			problems = append(problems, fmt.Errorf("IDP_ESIA_URL %q: %w", e.URL, err))
		}
	}
	read := func(name string, parse func([]byte) error) []byte {
		if v[name] == "" {
			return nil
		}
		b, err := os.ReadFile(v[name])
		if err == nil {
			err = parse(b)
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name, err))
			return nil
		}
		return b
	}
	e.Certificate = read("IDP_ESIA_CERT_FILE", func(b []byte) error { _, err := esia.CertificateHash(b); return err })
	e.TokenCert = read("IDP_ESIA_TOKEN_CERT_FILE", esia.CheckTokenCertificate)
	read("IDP_ESIA_KEY_FILE", func(b []byte) error {
		s, err := esia.NewKeySigner(b)
		e.Signer = s
		return err
	})
	if cmd := v["IDP_ESIA_SIGN_COMMAND"]; cmd != "" && v["IDP_ESIA_KEY_FILE"] == "" {
		s, err := esia.NewCommandSigner(cmd, 0)
		if err != nil {
			problems = append(problems, fmt.Errorf("IDP_ESIA_SIGN_COMMAND: %w", err))
		}
		e.Signer = s
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return e, nil
}
