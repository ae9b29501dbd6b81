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
	"net"
	"net/url"
	"os"
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
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return c, nil
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
