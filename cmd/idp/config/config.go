// Package config reads the server's configuration from the environment. Every
// variable has a working default, so `go run ./cmd/idp` starts with no setup; Load
// reports every problem at once, each naming its variable.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
)

// Config is the server's configuration.
type Config struct {
	Addr        string // IDP_ADDR
	Issuer      string // IDP_ISSUER
	DatabaseURL string // IDP_DATABASE_URL
	ClientsFile string // IDP_CLIENTS_FILE
	SigningAlg  string // IDP_SIGNING_ALG
	MasterKey   []byte // IDP_MASTER_KEY, or the dev key file
	// Dev is true for a plain-http loopback issuer: a generated master key is allowed,
	// logs are text, cookies are not Secure.
	Dev bool
	// MasterKeyFile is the file the dev master key was read from or written to.
	MasterKeyFile string
	// Upstreams are the OpenID Connect upstream sign-ins the environment switches on
	// (IDP_TELEGRAM_*), by connector id.
	Upstreams []Upstream
	// ESIA is Gosuslugi sign-in (IDP_ESIA_*), or nil when IDP_ESIA_URL is unset.
	ESIA *ESIA
	// Certificate is e-signature certificate sign-in (IDP_CERT_*), or nil when
	// IDP_CERT_ROOTS is unset.
	Certificate *Certificate
}

// Upstream is an OpenID Connect upstream sign-in (login/upstream/oidc).
type Upstream struct {
	ID           string // connector id, the idp claim: "telegram"
	Title        string // the button: "Telegram"
	Scopes       []string
	Issuer       string // PREFIX_URL
	ClientID     string // PREFIX_CLIENT_ID
	ClientSecret string // PREFIX_CLIENT_SECRET
}

// OIDCUpstream is an entry of the registry of OpenID Connect upstreams.
type OIDCUpstream struct {
	Title  string
	Scopes []string
	Prefix string // of the variables PREFIX_CLIENT_ID, PREFIX_CLIENT_SECRET, PREFIX_URL
	Issuer string // PREFIX_URL's default
}

// OIDCUpstreams is the registry of OpenID Connect upstream sign-ins, by connector id.
// Each is off until its client id and secret are set. Another OpenID Connect
// provider is one more entry (and its variables in the README).
var OIDCUpstreams = map[string]OIDCUpstream{
	"telegram": {Title: "Telegram", Scopes: []string{"openid", "profile", "phone"},
		Prefix: "IDP_TELEGRAM", Issuer: "https://oauth.telegram.org"},
}

// DevMasterKeyFile is where a dev-mode master key is kept between runs.
const DevMasterKeyFile = "idp-master.key"

// Lookup reads one environment variable.
type Lookup func(string) (string, bool)

// Load reads the configuration. Outside dev mode IDP_MASTER_KEY is required; in dev
// mode a key is generated into DevMasterKeyFile once, with a warning.
func Load(env Lookup) (*Config, error) {
	get := func(name, def string) string {
		if v, ok := env(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	c := &Config{
		Addr:        get("IDP_ADDR", ":8080"),
		Issuer:      strings.TrimSuffix(get("IDP_ISSUER", "http://localhost:8080"), "/"),
		DatabaseURL: get("IDP_DATABASE_URL", "sqlite://idp.db"),
		ClientsFile: get("IDP_CLIENTS_FILE", "clients.yaml"),
		SigningAlg:  get("IDP_SIGNING_ALG", "RS256"),
	}
	var problems []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		problems = append(problems, fmt.Errorf("IDP_ADDR %q: want host:port, e.g. :8080", c.Addr))
	}
	dev, err := checkIssuer(c.Issuer)
	if err != nil {
		problems = append(problems, err)
	}
	c.Dev = dev
	if !strings.HasPrefix(c.DatabaseURL, "sqlite://") && !strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		problems = append(problems, errors.New("IDP_DATABASE_URL: want sqlite://PATH or postgres://USER:PASSWORD@HOST/DB"))
	}
	if c.SigningAlg != "RS256" && c.SigningAlg != "ES256" {
		problems = append(problems, fmt.Errorf("IDP_SIGNING_ALG %q: want RS256 or ES256", c.SigningAlg))
	}
	if raw, ok := env("IDP_MASTER_KEY"); ok && strings.TrimSpace(raw) != "" {
		key, err := decodeKey(strings.TrimSpace(raw))
		if err != nil {
			problems = append(problems, fmt.Errorf("IDP_MASTER_KEY: %w", err))
		}
		c.MasterKey = key
	} else if !c.Dev {
		problems = append(problems, errors.New("IDP_MASTER_KEY is required when the issuer is not a local http address: "+
			"generate one with `openssl rand -base64 32` and keep it secret"))
	}
	ups, upProblems := loadUpstreams(get)
	c.Upstreams, problems = ups, append(problems, upProblems...)
	esiaCfg, esiaProblems := loadESIA(get)
	c.ESIA, problems = esiaCfg, append(problems, esiaProblems...)
	certCfg, certProblems := loadCertificate(get)
	c.Certificate, problems = certCfg, append(problems, certProblems...)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return c, nil
}

// loadUpstreams reads the variables of every registered OpenID Connect upstream, in
// the order of their ids: a client id needs its secret and the reverse.
func loadUpstreams(get func(name, def string) string) ([]Upstream, []error) {
	var out []Upstream
	var problems []error
	for _, id := range slices.Sorted(maps.Keys(OIDCUpstreams)) {
		r := OIDCUpstreams[id]
		idVar, secretVar, urlVar := r.Prefix+"_CLIENT_ID", r.Prefix+"_CLIENT_SECRET", r.Prefix+"_URL"
		u := Upstream{ID: id, Title: r.Title, Scopes: slices.Clone(r.Scopes),
			Issuer: get(urlVar, r.Issuer), ClientID: get(idVar, ""), ClientSecret: get(secretVar, "")}
		switch {
		case u.ClientID == "" && u.ClientSecret == "":
			continue // off
		case u.ClientSecret == "":
			problems = append(problems, fmt.Errorf("%s is required when %s is set (%s sign-in)", secretVar, idVar, r.Title))
			continue
		case u.ClientID == "":
			problems = append(problems, fmt.Errorf("%s is required when %s is set (%s sign-in)", idVar, secretVar, r.Title))
			continue
		}
		if err := checkUpstreamURL(u.Issuer); err != nil {
			problems = append(problems, fmt.Errorf("%s %q: %w", urlVar, u.Issuer, err))
			continue
		}
		out = append(out, u)
	}
	return out, problems
}

// checkUpstreamURL allows an https issuer, and plain http only on a loopback host
// (a test provider).
func checkUpstreamURL(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want the issuer's https URL, such as https://oauth.telegram.org")
	}
	if host := u.Hostname(); u.Scheme == "http" && host != "localhost" && !net.ParseIP(host).IsLoopback() {
		return errors.New("plain http is allowed only for a loopback host; use https")
	}
	return nil
}

// checkIssuer allows https anywhere and http only on a loopback host (dev mode).
func checkIssuer(issuer string) (dev bool, err error) {
	u, perr := url.Parse(issuer)
	if perr != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false, fmt.Errorf("IDP_ISSUER %q: want an absolute http(s) URL such as https://id.astral.ru", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return false, fmt.Errorf("IDP_ISSUER %q: an issuer has no query or fragment", issuer)
	}
	if u.Scheme == "https" {
		return false, nil
	}
	host := u.Hostname()
	if host == "localhost" || net.ParseIP(host).IsLoopback() {
		return true, nil
	}
	return false, fmt.Errorf("IDP_ISSUER %q: plain http is allowed only for a loopback host (localhost, 127.0.0.1, [::1]); "+
		"use https for %s", issuer, host)
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != 32 {
				return nil, fmt.Errorf("want 32 bytes in base64, got %d bytes", len(key))
			}
			return key, nil
		}
	}
	return nil, errors.New("not valid base64")
}

// EnsureDevMasterKey reads the dev master key file, creating it with a fresh key the
// first time. It is called only in dev mode without IDP_MASTER_KEY.
func (c *Config) EnsureDevMasterKey(path string) error {
	if c.MasterKey != nil {
		return nil
	}
	c.MasterKeyFile = path
	if raw, err := os.ReadFile(path); err == nil {
		key, err := decodeKey(strings.TrimSpace(string(raw)))
		if err != nil {
			return fmt.Errorf("dev master key file %s: %w", path, err)
		}
		c.MasterKey = key
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read dev master key file: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate dev master key: %w", err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write dev master key file: %w", err)
	}
	slog.Warn("dev mode: generated a master key into a local file; set IDP_MASTER_KEY outside development",
		"file", path)
	c.MasterKey = key
	return nil
}
