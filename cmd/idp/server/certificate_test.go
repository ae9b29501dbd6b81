package server

import (
	"context"
	"encoding/base64"
	"html"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/astral/idp/cmd/idp/config"
	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
	"github.com/astral/idp/storage"
)

// newCertEnv starts the server with certificate sign-in on: the GOST test CA as
// IDP_CERT_ROOTS. The fixtures are valid from 2025 to 2049, so the real clock does.
func newCertEnv(t *testing.T, backend string) *testEnv {
	t.Helper()
	return newTestEnvWith(t, backend, map[string]string{"IDP_CERT_ROOTS": gosttest.RootsDir(t)})
}

// linkCert links the fixture's certificate to the account userID in storage.
func (e *testEnv) linkCert(userID, name string) {
	e.t.Helper()
	c := gosttest.Load(e.t, name).Cert
	err := e.store.LinkCertificate(context.Background(), &storage.Identity{UserID: userID, DisplayName: c.Subject.Owner()},
		&storage.Certificate{Thumbprint: c.Thumbprint, Owner: c.Subject.Owner(), SNILS: c.Subject.SNILS, DER: c.Raw})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) certOwner(name string) string {
	e.t.Helper()
	c, err := e.store.CertificateByThumbprint(context.Background(), gosttest.Load(e.t, name).Cert.Thumbprint)
	if storage.IsNotFound(err) {
		return ""
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return c.UserID
}

var (
	certChallengeRe = regexp.MustCompile(`id="cert-challenge"[^>]*>([^<]+)</textarea>`)
	certIDRe        = regexp.MustCompile(`name="challenge" value="([^"]+)"`)
)

// signCertPage signs the challenge of the certificate page p with the fixture's key,
// as the agent or a crypto provider would, and posts the form.
func (b *upBrowser) signCertPage(p upPage, name string) upPage {
	b.t.Helper()
	text, id := certChallengeRe.FindStringSubmatch(p.body), certIDRe.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || text == nil || id == nil {
		b.t.Fatalf("not a certificate page: %d %s\n%s", p.status, p.url, p.body)
	}
	who := gosttest.Load(b.t, name)
	cms, err := gost.SignDetached(who.Key, who.Cert, []byte(html.UnescapeString(text[1])))
	if err != nil {
		b.t.Fatal(err)
	}
	return b.post("/certificate", url.Values{"_csrf": {csrfRe.FindStringSubmatch(p.body)[1]},
		"challenge": {id[1]}, "signature": {base64.StdEncoding.EncodeToString(cms)}})
}

// certButton opens the product's sign-in page and presses "Сертификат".
func (b *upBrowser) certButton(rp *upProduct) upPage {
	b.t.Helper()
	login := b.get(rp.authURL())
	if login.status != http.StatusOK || login.url.Path != "/login" {
		b.t.Fatalf("want the sign-in page, got %d %s", login.status, login.url)
	}
	href := login.href(b.t, "Сертификат")
	if !strings.HasPrefix(href, "/certificate?") || !strings.Contains(href, "authRequestID=") {
		b.t.Fatalf("the Сертификат button goes to %q", href)
	}
	return b.get(href)
}

// TestCertificateSignIn is the journey: a product's authorization request, the
// "Сертификат" button, a signed challenge, the product's code, and tokens with amr
// ["swk"] for the account the certificate is linked to.
func TestCertificateSignIn(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newCertEnv(t, backend)
			e.linkCert(e.userID, "ivanov")
			b := e.upBrowser(nil)
			rp := e.upProduct("report")
			page := b.certButton(rp)
			if !strings.Contains(page.body, "Вход в Астрал.Отчет") || !strings.Contains(page.body, "Отсутствует соединение с Astral.Toolbox") {
				t.Fatalf("certificate page:\n%s", page.body)
			}
			claims := rp.tokens(t, b.signCertPage(page, "ivanov"))
			if claims.Subject != e.userID || len(claims.AMR) != 1 || claims.AMR[0] != "swk" {
				t.Errorf("ID token: sub %q amr %v; want %q with [swk]", claims.Subject, claims.AMR, e.userID)
			}
		})
	}
}

// TestCertificateCSP: the page's script may call the agent, and nothing else new.
func TestCertificateCSP(t *testing.T) {
	e := newCertEnv(t, "sqlite")
	resp, err := http.Get(e.issuer + "/certificate")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "connect-src 'self' http://127.0.0.1:24321;") || !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("CSP %q; want the agent's origin in connect-src only", csp)
	}
}

// TestCertificateRenewed: a renewed certificate (same SNILS) is offered, not linked;
// the password sign-in that follows links it and reaches the product.
func TestCertificateRenewed(t *testing.T) {
	e := newCertEnv(t, "sqlite")
	e.linkCert(e.userID, "ivanov")
	b := e.upBrowser(nil)
	rp := e.upProduct("report")
	offer := b.signCertPage(b.certButton(rp), "ivanov-renewed")
	if offer.status != http.StatusOK || !strings.Contains(offer.body, "Этот сертификат еще не привязан") {
		t.Fatalf("renewed certificate: %d\n%s", offer.status, offer.body)
	}
	if got := e.certOwner("ivanov-renewed"); got != "" {
		t.Fatalf("the renewed certificate was linked to %q before any sign-in", got)
	}
	login := b.get(offer.href(t, "Войти и привязать сертификат"))
	if !strings.Contains(login.body, "Войдите, и сертификат Иванов Иван Иванович будет привязан к Личному кабинету.") {
		t.Errorf("the sign-in page does not say which certificate it will link:\n%s", login.body)
	}
	claims := rp.tokens(t, b.signInWithPassword(login, e.phone, e.password))
	if claims.Subject != e.userID || claims.AMR[0] != "pwd" {
		t.Errorf("after the password: %+v", claims)
	}
	if got := e.certOwner("ivanov-renewed"); got != e.userID {
		t.Errorf("after the password sign-in the renewed certificate belongs to %q; want %q", got, e.userID)
	}
}

// TestCertificateRegister: registration through "Сертификат" up to the product —
// the certificate, a phone confirmed by the code from the outbox, tokens with amr
// ["swk"] for the new account named after the certificate's owner.
func TestCertificateRegister(t *testing.T) {
	e := newCertEnv(t, "sqlite")
	b := e.upBrowser(nil)
	rp := e.upProduct("report")
	login := b.get(rp.authURL())
	reg := b.get(login.href(t, "Регистрация"))
	href := reg.href(t, "Сертификат")
	if !strings.HasPrefix(href, "/certificate?mode=register") && !strings.Contains(href, "mode=register") {
		t.Fatalf("the registration page's Сертификат goes to %q", href)
	}
	contact := b.signCertPage(b.get(href), "petrov")
	if contact.status != http.StatusOK || !strings.Contains(contact.body, "Петров Петр Петрович") {
		t.Fatalf("after signing: %d %s\n%s", contact.status, contact.url, contact.body)
	}
	phone := "+79161112233"
	flow := regexp.MustCompile(`name="flow" value="([^"]+)"`).FindStringSubmatch(contact.body)[1]
	confirm := b.post("/certificate/register", url.Values{"_csrf": {csrfRe.FindStringSubmatch(contact.body)[1]},
		"flow": {flow}, "mode": {"phone"}, "login": {"9161112233"}})
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, "Подтвердите телефон") {
		t.Fatalf("contact step: %d\n%s", confirm.status, confirm.body)
	}
	if _, err := e.store.UserByPhone(context.Background(), phone); !storage.IsNotFound(err) {
		t.Fatalf("an account exists before the code: %v", err)
	}
	codeFlow := regexp.MustCompile(`name="flow" value="([^"]+)"`).FindStringSubmatch(confirm.body)[1]
	done := b.post("/certificate/register/confirm", url.Values{"_csrf": {csrfRe.FindStringSubmatch(confirm.body)[1]},
		"flow": {codeFlow}, "code": {e.sent.lastCode(t, phone)}})
	if done.status != http.StatusOK || !strings.Contains(done.body, "Телефон подтвержден!") {
		t.Fatalf("confirm: %d\n%s", done.status, done.body)
	}
	u, err := e.store.UserByPhone(context.Background(), phone)
	if err != nil {
		t.Fatal(err)
	}
	if u.FamilyName != "Петров" || u.GivenName != "Петр" || u.MiddleName != "Петрович" || e.certOwner("petrov") != u.ID {
		t.Errorf("new account %+v, certificate of %q", u, e.certOwner("petrov"))
	}
	claims := rp.tokens(t, b.get(done.href(t, "Перейти в Астрал.Отчет")))
	if claims.Subject != u.ID || len(claims.AMR) != 1 || claims.AMR[0] != "swk" {
		t.Errorf("ID token: sub %q amr %v; want the new account with [swk]", claims.Subject, claims.AMR)
	}
}

// TestCertificateConfig: off without IDP_CERT_ROOTS (no button, no page), and a
// roots folder without a CA certificate stops the start, naming the folder.
func TestCertificateConfig(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		e := newTestEnv(t, "sqlite")
		b := e.upBrowser(nil)
		for _, p := range []string{"/login", "/register"} {
			if page := b.get(p); strings.Contains(page.body, ">Сертификат<") || strings.Contains(page.body, "/certificate") {
				t.Errorf("%s offers certificate sign-in while it is off", p)
			}
		}
		if page := b.get("/certificate"); page.status != http.StatusNotFound {
			t.Errorf("/certificate answered %d while off; want 404", page.status)
		}
	})
	t.Run("empty roots", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "readme.txt"), []byte("no certificates"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := loadTestConfig(t, map[string]string{"IDP_CERT_ROOTS": dir})
		_, err := New(context.Background(), cfg, DefaultOptions())
		if err == nil || !strings.Contains(err.Error(), "IDP_CERT_ROOTS") || !strings.Contains(err.Error(), dir) {
			t.Errorf("start with an empty roots folder: %v; want an error naming IDP_CERT_ROOTS and %s", err, dir)
		}
	})
}

// loadTestConfig is a configuration over a fresh SQLite file with one product and
// extra variables.
func loadTestConfig(t *testing.T, extra map[string]string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	clients := filepath.Join(dir, "clients.yaml")
	yaml := "clients:\n  - id: poa\n    name: \"Астрал. Доверенность\"\n    type: spa\n    redirect_uris: [\"http://127.0.0.1:9/poa/cb\"]\n    grant_types: [authorization_code]\n"
	if err := os.WriteFile(clients, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"IDP_ISSUER": "http://127.0.0.1:1", "IDP_DATABASE_URL": "sqlite://" + filepath.Join(dir, "idp.db"),
		"IDP_CLIENTS_FILE": clients, "IDP_MASTER_KEY": base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))}
	maps.Copy(env, extra)
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCertificateVariables: IDP_CERT_* are checked together, each problem naming its
// variable.
func TestCertificateVariables(t *testing.T) {
	roots := gosttest.RootsDir(t)
	cases := []struct {
		name string
		env  map[string]string
		want string // in the error; empty: loads
	}{
		{"off", map[string]string{}, ""},
		{"on with defaults", map[string]string{"IDP_CERT_ROOTS": roots}, ""},
		{"proxy", map[string]string{"IDP_CERT_ROOTS": roots, "IDP_CERT_PROXY_HEADER": "X-SSL-Client-Cert",
			"IDP_CERT_PROXY_FROM": "10.0.0.0/8, 192.0.2.1"}, ""},
		{"missing folder", map[string]string{"IDP_CERT_ROOTS": filepath.Join(roots, "absent")}, "IDP_CERT_ROOTS"},
		{"agent with a path", map[string]string{"IDP_CERT_ROOTS": roots, "IDP_CERT_AGENT_URL": "http://127.0.0.1:24321/x"}, "IDP_CERT_AGENT_URL"},
		{"agent not http", map[string]string{"IDP_CERT_ROOTS": roots, "IDP_CERT_AGENT_URL": "ftp://127.0.0.1"}, "IDP_CERT_AGENT_URL"},
		{"header without proxies", map[string]string{"IDP_CERT_ROOTS": roots, "IDP_CERT_PROXY_HEADER": "X-SSL-Client-Cert"}, "IDP_CERT_PROXY_FROM is required"},
		{"proxies without header", map[string]string{"IDP_CERT_ROOTS": roots, "IDP_CERT_PROXY_FROM": "10.0.0.1"}, "IDP_CERT_PROXY_HEADER is required"},
		{"bad CIDR", map[string]string{"IDP_CERT_ROOTS": roots, "IDP_CERT_PROXY_HEADER": "X-C", "IDP_CERT_PROXY_FROM": "10.0.0.0/40"}, "IDP_CERT_PROXY_FROM"},
		{"bad header name", map[string]string{"IDP_CERT_ROOTS": roots, "IDP_CERT_PROXY_HEADER": "X SSL", "IDP_CERT_PROXY_FROM": "10.0.0.1"}, "IDP_CERT_PROXY_HEADER"},
		{"proxy without roots", map[string]string{"IDP_CERT_PROXY_HEADER": "X-C", "IDP_CERT_PROXY_FROM": "10.0.0.1"}, "need IDP_CERT_ROOTS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"IDP_ISSUER": "http://127.0.0.1:1"}
			maps.Copy(env, tc.env)
			cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tc.want == "" && (cfg.Certificate != nil) != (tc.env["IDP_CERT_ROOTS"] != ""):
				t.Errorf("certificate sign-in %+v; want it on exactly when IDP_CERT_ROOTS is set", cfg.Certificate)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Load: %v; want an error with %q", err, tc.want)
			}
		})
	}
}
