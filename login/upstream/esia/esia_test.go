package esia_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
	"github.com/astral/idp/login/upstream"
	"github.com/astral/idp/login/upstream/esia"
	"github.com/astral/idp/login/upstream/esia/esiatest"
)

const redirectURI = "http://127.0.0.1:9/upstream/esia/callback"

// TestMain lets the test binary play an external signing command: with
// ESIATEST_SIGN_KEY set it signs stdin with that key file and exits.
func TestMain(m *testing.M) {
	if keyFile := os.Getenv("ESIATEST_SIGN_KEY"); keyFile != "" {
		os.Exit(signCommand(keyFile, os.Getenv("ESIATEST_SIGN_OUTPUT")))
	}
	os.Exit(m.Run())
}

func signCommand(keyFile, output string) int {
	pemKey, err := os.ReadFile(keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	k, err := gost.ParsePrivateKeyPEM(pemKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	data, _ := io.ReadAll(os.Stdin)
	sig, err := k.Sign(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	switch output {
	case "base64":
		fmt.Println(base64.StdEncoding.EncodeToString(sig))
	case "fail":
		fmt.Fprintln(os.Stderr, "token not inserted")
		return 1
	case "short":
		os.Stdout.Write(sig[:10])
	default:
		os.Stdout.Write(sig)
	}
	return 0
}

func keySigner(t *testing.T, name string) esia.Signer {
	t.Helper()
	s, err := esia.NewKeySigner(gosttest.Load(t, name).KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// setup is a stand-in and a connector, both on the fixtures' pinned clock.
func setup(t *testing.T, edit func(*esia.Config)) (*esiatest.Server, *esia.Connector) {
	t.Helper()
	client := gosttest.Load(t, "esia-client")
	es := esiatest.New(t, client.CertPEM)
	es.SetNow(gosttest.Now)
	es.LogIn(esiatest.Ivanov)
	cfg := esia.Config{URL: es.URL, ClientID: es.ClientID, Signer: keySigner(t, "esia-client"),
		Certificate: client.CertPEM, TokenCertificate: es.TokenCertPEM, Now: gosttest.Now}
	if edit != nil {
		edit(&cfg)
	}
	c, err := esia.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return es, c
}

func newStart() upstream.Start {
	return upstream.Start{State: upstream.NewUUID(), RedirectURI: redirectURI}
}

// authorize follows the login URL to the stand-in and returns the callback request
// it sends the browser back with.
func authorize(t *testing.T, c *esia.Connector, s upstream.Start) *http.Request {
	t.Helper()
	dest, err := c.LoginURL(s)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(dest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorization endpoint answered %d", resp.StatusCode)
	}
	loc, _ := resp.Location()
	return httptest.NewRequest(http.MethodGet, loc.String(), nil)
}

func TestSignIn(t *testing.T) {
	_, c := setup(t, nil)
	s := newStart()
	r := authorize(t, c, s)
	if e := r.URL.Query().Get("error_description"); e != "" {
		t.Fatalf("stand-in refused the authorization request: %s", e)
	}
	id, err := c.HandleCallback(context.Background(), s, r)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"family_name": "Иванов", "given_name": "Иван", "middle_name": "Иванович",
		"birthdate": "1985-03-15", "snils": "112-233-445 95", "gosuslugi_trusted": true,
		"phone_number": "+79161234567", "email": "ivanov@example.ru"}
	if id.Subject != "1000404834" || id.DisplayName != "Иванов Иван Иванович" || id.Phone != "+79161234567" ||
		id.Email != "ivanov@example.ru" || len(id.Claims) != len(want) {
		t.Fatalf("identity %+v", id)
	}
	for k, v := range want {
		if id.Claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, id.Claims[k], v)
		}
	}
	p := c.Profile(id)
	if p != (upstream.Profile{FamilyName: "Иванов", GivenName: "Иван", MiddleName: "Иванович", Phone: "+79161234567",
		Email: "ivanov@example.ru"}) {
		t.Fatalf("profile %+v", p)
	}
}

// TestUnverifiedContacts: a contact ESIA has not verified is not taken, nor an
// unconfirmed account's trust.
func TestUnverifiedContacts(t *testing.T) {
	es, c := setup(t, nil)
	p := esiatest.Ivanov
	p.OID, p.Trusted, p.MobileOK, p.EmailOK, p.ExtraUnverifiedEmail = 1000404835, false, false, false, "x@example.ru"
	es.LogIn(p)
	s := newStart()
	id, err := c.HandleCallback(context.Background(), s, authorize(t, c, s))
	if err != nil {
		t.Fatal(err)
	}
	if id.Phone != "" || id.Email != "" || id.Claims["phone_number"] != nil || id.Claims["email"] != nil ||
		id.Claims["gosuslugi_trusted"] != false {
		t.Fatalf("identity %+v", id)
	}
}

// TestLoginURL pins the wire format of v2/ac, independently of the stand-in.
func TestLoginURL(t *testing.T) {
	_, c := setup(t, nil)
	s := newStart()
	dest, err := c.LoginURL(s)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dest)
	q := u.Query()
	client := gosttest.Load(t, "esia-client")
	wantHash := strings.ToUpper(fmt.Sprintf("%x", gost.Streebog256(client.Cert.Raw)))
	if u.Path != "/aas/oauth2/v2/ac" || q.Get("client_id") != esiatest.ClientID || q.Get("state") != s.State ||
		q.Get("timestamp") != "2027.01.15 12:00:00 +0000" || q.Get("client_certificate_hash") != wantHash ||
		q.Get("redirect_uri") != redirectURI || q.Get("response_type") != "code" || q.Get("access_type") != "online" ||
		q.Get("scope") != "openid fullname birthdate snils contacts mobile email" {
		t.Fatalf("login URL %s", dest)
	}
	sig, err := base64.RawURLEncoding.DecodeString(q.Get("client_secret"))
	if err != nil || len(sig) != 64 {
		t.Fatalf("client_secret %q: %v", q.Get("client_secret"), err)
	}
	msg := esiatest.ClientID + q.Get("scope") + "" + "2027.01.15 12:00:00 +0000" + s.State + redirectURI
	if err := client.Cert.PublicKey.Verify([]byte(msg), sig); err != nil {
		t.Fatalf("client_secret over %q: %v", msg, err)
	}
}

func TestRefusals(t *testing.T) {
	for _, tt := range []struct {
		name    string
		fault   esiatest.Fault
		edit    func(*esia.Config)
		atESIA  string // the stand-in refuses the authorization request with this reason
		want    string // or HandleCallback fails with this
		offline bool   // as upstream.ErrUnavailable
	}{
		{name: "wrong signature", edit: func(c *esia.Config) { c.Signer = keySigner(t, "esia-service") },
			atESIA: "client_secret does not verify"},
		{name: "stale timestamp", edit: func(c *esia.Config) {
			c.Now = func() time.Time { return gosttest.Now().Add(-time.Hour) }
		}, atESIA: "timestamp outside the window"},
		{name: "certificate hash of another certificate", edit: func(c *esia.Config) {
			c.Certificate = gosttest.Load(t, "esia-service").CertPEM
		}, atESIA: "client_certificate_hash"},
		{name: "wrong state", fault: esiatest.WrongState, want: "state"},
		{name: "wrong state at the token endpoint", fault: esiatest.WrongTokenState, want: "another state"},
		{name: "forged token", fault: esiatest.ForgedToken, want: "signature"},
		{name: "expired token", fault: esiatest.ExpiredToken, want: "expired"},
		{name: "token for another client", fault: esiatest.WrongAudience, want: "another client"},
		{name: "token endpoint down", fault: esiatest.Down, want: "503", offline: true},
		{name: "token signed by an unexpected key", edit: func(c *esia.Config) {
			c.TokenCertificate = gosttest.Load(t, "esia-client").CertPEM
		}, want: "signature"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			es, c := setup(t, tt.edit)
			es.SetFault(tt.fault)
			s := newStart()
			r := authorize(t, c, s)
			if tt.atESIA != "" {
				if r.URL.Query().Get("error") != "invalid_request" || !strings.Contains(r.URL.Query().Get("error_description"), tt.atESIA) ||
					r.URL.Query().Get("code") != "" {
					t.Fatalf("callback %s, want a refusal about %q", r.URL, tt.atESIA)
				}
				if !slices.ContainsFunc(es.Refusals(), func(s string) bool { return strings.Contains(s, tt.atESIA) }) {
					t.Fatalf("stand-in refusals %q", es.Refusals())
				}
				return
			}
			_, err := c.HandleCallback(context.Background(), s, r)
			if err == nil || errors.Is(err, upstream.ErrUnavailable) != tt.offline || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("HandleCallback: %v, want a refusal about %q (unavailable %v)", err, tt.want, tt.offline)
			}
		})
	}
	t.Run("replayed code", func(t *testing.T) {
		es, c := setup(t, nil)
		s := newStart()
		r := authorize(t, c, s)
		if _, err := c.HandleCallback(context.Background(), s, r); err != nil {
			t.Fatal(err)
		}
		if _, err := c.HandleCallback(context.Background(), s, r); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("replayed code: %v", err)
		}
		if es.Issued() != 1 {
			t.Fatalf("%d token answers, want 1", es.Issued())
		}
	})
	t.Run("unreachable ESIA", func(t *testing.T) {
		es, c := setup(t, nil)
		s := newStart()
		r := authorize(t, c, s)
		dead, _ := esia.New(esia.Config{URL: "http://127.0.0.1:1", ClientID: esiatest.ClientID, Signer: keySigner(t, "esia-client"),
			Certificate: gosttest.Load(t, "esia-client").CertPEM, TokenCertificate: es.TokenCertPEM, Now: gosttest.Now})
		if _, err := dead.HandleCallback(context.Background(), s, r); !errors.Is(err, upstream.ErrUnavailable) {
			t.Fatalf("unreachable ESIA: %v, want ErrUnavailable", err)
		}
	})
}

// TestCommandSigner: an external program signs, its answer raw or base64; a failing
// one fails the signature.
func TestCommandSigner(t *testing.T) {
	_, keyFile := gosttest.WriteFiles(t, gosttest.Load(t, "esia-client"))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ESIATEST_SIGN_KEY", keyFile)
	pub := gosttest.Load(t, "esia-client").Cert.PublicKey
	for _, tt := range []struct{ output, wantErr string }{
		{"raw", ""}, {"base64", ""}, {"fail", "exit status 1"}, {"short", "neither"},
	} {
		t.Run(tt.output, func(t *testing.T) {
			t.Setenv("ESIATEST_SIGN_OUTPUT", tt.output)
			s, err := esia.NewCommandSigner(exe+" -test.run=^$", 0)
			if err != nil {
				t.Fatal(err)
			}
			data := []byte("ASTRAL_IDPopenid2027.01.15 12:00:00 +0000")
			sig, err := s.Sign(context.Background(), data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Sign: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Verify(data, sig); err != nil {
				t.Fatalf("command's signature: %v", err)
			}
		})
	}
	t.Run("whole flow", func(t *testing.T) {
		t.Setenv("ESIATEST_SIGN_OUTPUT", "base64")
		signInWithCommand(t, exe+" -test.run=^$")
	})
}

// TestOpenSSLSigner: OpenSSL's GOST engine as the external command — the byte order
// `openssl dgst -sign` writes is the one ESIA (and the stand-in) take.
func TestOpenSSLSigner(t *testing.T) {
	openssl := gosttest.OpenSSL(t)
	_, keyFile := gosttest.WriteFiles(t, gosttest.Load(t, "esia-client"))
	script := filepath.Join(t.TempDir(), "sign.sh")
	body := fmt.Sprintf("#!/bin/sh\nexec %s dgst -engine gost -md_gost12_256 -sign %s\n", openssl, keyFile)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	signInWithCommand(t, script)
}

// signInWithCommand goes through a whole sign-in with command as the signer.
func signInWithCommand(t *testing.T, command string) {
	t.Helper()
	cmd, err := esia.NewCommandSigner(command, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, c := setup(t, func(cfg *esia.Config) { cfg.Signer = cmd })
	s := newStart()
	if _, err := c.HandleCallback(context.Background(), s, authorize(t, c, s)); err != nil {
		t.Fatal(err)
	}
}

func TestNewChecks(t *testing.T) {
	if _, err := esia.New(esia.Config{URL: "https://esia.gosuslugi.ru"}); err == nil ||
		!strings.Contains(err.Error(), "ClientID, Signer, Certificate, TokenCertificate") {
		t.Fatalf("New without settings: %v", err)
	}
	if _, err := esia.NewKeySigner(gosttest.Load(t, "petrov").KeyPEM); err == nil || !strings.Contains(err.Error(), "256-bit") {
		t.Fatalf("a 512-bit key: %v", err)
	}
	if _, err := esia.NewKeySigner([]byte("not a key")); err == nil {
		t.Fatal("garbage accepted as a key")
	}
	if _, err := esia.NewCommandSigner("  ", 0); err == nil {
		t.Fatal("empty command accepted")
	}
	if h, err := esia.CertificateHash(gosttest.Load(t, "esia-client").CertPEM); err != nil || len(h) != 64 || h != strings.ToUpper(h) {
		t.Fatalf("certificate hash %q, %v", h, err)
	}
}
