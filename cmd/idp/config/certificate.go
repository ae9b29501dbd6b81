package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"github.com/astral/idp/login/certificate"
)

// Certificate is e-signature certificate sign-in (login/certificate), on when
// IDP_CERT_ROOTS is set.
type Certificate struct {
	RootsDir string // IDP_CERT_ROOTS: trusted CA certificates and CRLs
	AgentURL string // IDP_CERT_AGENT_URL: the signing agent the page's script calls
	// ProxyHeader and ProxyFrom: a client certificate verified by a TLS-terminating
	// proxy (IDP_CERT_PROXY_HEADER), read only from these peers (IDP_CERT_PROXY_FROM).
	ProxyHeader string
	ProxyFrom   []netip.Prefix
}

// DefaultCertAgentURL is where the reference agent (cmd/certagent) listens.
const DefaultCertAgentURL = "http://127.0.0.1:24321"

// loadCertificate reads IDP_CERT_*. Without IDP_CERT_ROOTS certificate sign-in is off
// and the other variables must not be set, so a half-made configuration is noticed.
func loadCertificate(get func(name, def string) string) (*Certificate, []error) {
	c := &Certificate{
		RootsDir: get("IDP_CERT_ROOTS", ""), AgentURL: strings.TrimSuffix(get("IDP_CERT_AGENT_URL", DefaultCertAgentURL), "/"),
		ProxyHeader: get("IDP_CERT_PROXY_HEADER", ""),
	}
	from := get("IDP_CERT_PROXY_FROM", "")
	var problems []error
	if c.RootsDir == "" {
		if c.ProxyHeader != "" || from != "" {
			problems = append(problems, errors.New("IDP_CERT_PROXY_HEADER and IDP_CERT_PROXY_FROM need IDP_CERT_ROOTS "+
				"(the CAs to verify the certificates with)"))
		}
		return nil, problems
	}
	if info, err := os.Stat(c.RootsDir); err != nil || !info.IsDir() {
		problems = append(problems, fmt.Errorf("IDP_CERT_ROOTS %q: want a folder of trusted CA certificates (PEM or DER)", c.RootsDir))
	}
	if u, err := url.Parse(c.AgentURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		problems = append(problems, fmt.Errorf("IDP_CERT_AGENT_URL %q: want the agent's origin, such as %s", c.AgentURL, DefaultCertAgentURL))
	}
	if c.ProxyHeader != "" && !validHeaderName(c.ProxyHeader) {
		problems = append(problems, fmt.Errorf("IDP_CERT_PROXY_HEADER %q: want a header name such as X-SSL-Client-Cert", c.ProxyHeader))
	}
	pfx, err := certificate.ParseProxyFrom(from)
	if err != nil {
		problems = append(problems, fmt.Errorf("IDP_CERT_PROXY_FROM: %w", err))
	}
	c.ProxyFrom = pfx
	switch {
	case c.ProxyHeader != "" && len(c.ProxyFrom) == 0 && err == nil:
		problems = append(problems, errors.New("IDP_CERT_PROXY_FROM is required when IDP_CERT_PROXY_HEADER is set: "+
			"the addresses of the proxies allowed to pass a client certificate"))
	case c.ProxyHeader == "" && from != "":
		problems = append(problems, errors.New("IDP_CERT_PROXY_HEADER is required when IDP_CERT_PROXY_FROM is set"))
	}
	return c, problems
}

// validHeaderName accepts an HTTP header name (RFC 9110 token characters).
func validHeaderName(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return s != ""
}
