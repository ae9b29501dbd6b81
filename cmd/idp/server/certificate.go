package server

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/astral/idp/cmd/idp/config"
	"github.com/astral/idp/login/certificate"
	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/storage"
)

// newCertificate builds certificate sign-in, or nil when IDP_CERT_ROOTS is unset (no
// button anywhere then). A roots folder without a CA certificate stops the start.
func newCertificate(cfg *config.Config, store *storage.Store, codes *otp.Service, secure bool) (*certificate.Part, error) {
	cc := cfg.Certificate
	if cc == nil {
		return nil, nil
	}
	v, err := gost.NewVerifier(gost.VerifierConfig{RootsDir: cc.RootsDir, Now: store.Now, Logger: slog.Default()})
	if err != nil {
		return nil, fmt.Errorf("IDP_CERT_ROOTS %s: %w", cc.RootsDir, err)
	}
	return certificate.New(certificate.Config{
		Store: store, Verifier: v, Codes: codes, Issuer: cfg.Issuer, AgentURL: cc.AgentURL, Secure: secure,
		ProxyHeader: cc.ProxyHeader, ProxyFrom: cc.ProxyFrom,
	})
}

// contentSecurityPolicyFor is the CSP: contentSecurityPolicy, and with certificate
// sign-in on, the signing agent's origin for the page's script to call.
func contentSecurityPolicyFor(cfg *config.Config) string {
	if cfg == nil || cfg.Certificate == nil {
		return contentSecurityPolicy
	}
	u, err := url.Parse(cfg.Certificate.AgentURL)
	if err != nil || u.Host == "" {
		return contentSecurityPolicy // config.Load refused it already
	}
	return strings.Replace(contentSecurityPolicy, "connect-src 'self'", "connect-src 'self' "+u.Scheme+"://"+u.Host, 1)
}
