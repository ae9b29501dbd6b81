package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/astral/idp/cmd/idp/config"
	"github.com/astral/idp/login/notify"
	"github.com/astral/idp/login/password"
	"github.com/astral/idp/storage"
	"github.com/astral/idp/storage/pgtest"
)

// testSecret is the confidential test clients' secret.
const testSecret = "test-secret-0123456789-0123456789-abcdef"

// testEnv is a running identity provider with two products and one account.
type testEnv struct {
	t        *testing.T
	srv      *Server
	http     *httptest.Server
	issuer   string
	store    *storage.Store
	rp       *httptest.Server // a product's back-channel logout endpoint
	logouts  chan url.Values
	phone    string
	password string
	userID   string
	sent     *outbox // every SMS and email the server sent
}

// outbox reads the IDP_OUTBOX file the server appends every SMS and email to.
type outbox struct{ path string }

func (o *outbox) entries(t *testing.T) []notify.OutboxEntry {
	t.Helper()
	entries, err := notify.ReadOutbox(o.path)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return entries
}

// lastCode returns the last code sent to to.
func (o *outbox) lastCode(t *testing.T, to string) string {
	t.Helper()
	entries := o.entries(t)
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].To == to {
			return entries[i].Code
		}
	}
	t.Fatalf("no message was sent to %s", to)
	return ""
}

// count returns how many messages went to to.
func (o *outbox) count(t *testing.T, to string) int {
	t.Helper()
	n := 0
	for _, e := range o.entries(t) {
		if e.To == to {
			n++
		}
	}
	return n
}

// newTestEnv starts the server on SQLite (backend "sqlite") or PostgreSQL ("postgres").
func newTestEnv(t *testing.T, backend string) *testEnv {
	t.Helper()
	return newTestEnvWith(t, backend, nil)
}

// newTestEnvWith is newTestEnv with more configuration variables (config.Load), e.g.
// IDP_TELEGRAM_*; they override the harness's own.
func newTestEnvWith(t *testing.T, backend string, extraEnv map[string]string) *testEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "idp.db")
	if backend == "postgres" {
		dbURL = pgtest.URL(t)
	}
	env := &testEnv{t: t, logouts: make(chan url.Values, 16), phone: "+79105940899", password: "correct horse battery"}
	env.rp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		env.logouts <- r.PostForm
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(env.rp.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.issuer = "http://" + ln.Addr().String()
	clients := fmt.Sprintf(`clients:
  - id: report
    name: "Астрал.Отчет"
    secret: %q
    type: web
    redirect_uris: ["http://127.0.0.1:9/report/cb"]
    post_logout_redirect_uris: ["http://127.0.0.1:9/report/bye"]
    grant_types: [authorization_code, refresh_token]
    backchannel_logout_uri: %q
  - id: signature
    name: "Астрал.Подпись"
    secret: %q
    type: web
    redirect_uris: ["http://127.0.0.1:9/signature/cb"]
    grant_types: [authorization_code, refresh_token, client_credentials]
  - id: poa
    name: "Астрал. Доверенность"
    type: spa
    redirect_uris: ["http://127.0.0.1:9/poa/cb"]
    grant_types: [authorization_code, refresh_token]
`, testSecret, env.rp.URL+"/bcl", testSecret)
	clientsFile := filepath.Join(dir, "clients.yaml")
	if err := os.WriteFile(clientsFile, []byte(clients), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(func(k string) (string, bool) {
		m := map[string]string{
			"IDP_ISSUER": env.issuer, "IDP_DATABASE_URL": dbURL, "IDP_CLIENTS_FILE": clientsFile,
			"IDP_MASTER_KEY": base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
		}
		maps.Copy(m, extraEnv)
		v, ok := m[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.PasswordParams = password.Params{Memory: 1024, Time: 1, Threads: 1} // fast in tests
	opts.LogoutPoll = 50 * time.Millisecond
	// Codes go through the real senders: log, and the IDP_OUTBOX file the tests read.
	env.sent = &outbox{path: filepath.Join(dir, "outbox.jsonl")}
	opts.LookupEnv = func(k string) (string, bool) {
		if k == "IDP_OUTBOX" {
			return env.sent.path, true
		}
		return "", false
	}
	srv, err := New(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	env.srv, env.store = srv, srv.Store
	env.http = httptest.NewUnstartedServer(srv.Handler())
	env.http.Listener.Close()
	env.http.Listener = ln
	env.http.Start()
	bg, stop := context.WithCancel(ctx)
	wg := srv.RunBackground(bg)
	t.Cleanup(func() {
		stop()
		wg.Wait()
		env.http.Close()
		_ = srv.Close()
	})
	hash, err := password.NewHasher(opts.PasswordParams).Hash(env.password)
	if err != nil {
		t.Fatal(err)
	}
	u := &storage.User{Phone: &env.phone, PhoneVerified: true, PasswordHash: hash, FamilyName: "Иванов", GivenName: "Иван"}
	if err := env.store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	env.userID = u.ID
	return env
}

// browser is an HTTP client with cookies that stops at redirects leaving the issuer,
// like a browser whose product callback we only read.
func (e *testEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme+"://"+req.URL.Host != e.issuer {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)

// signIn follows an authorization URL in browser b, fills the form with phone and
// password when it appears, and returns the final redirect to the product.
func (e *testEnv) signIn(b *http.Client, authURL, login, pw string) *url.URL {
	e.t.Helper()
	resp, err := b.Get(authURL)
	if err != nil {
		e.t.Fatal(err)
	}
	body := readAll(e.t, resp)
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
		u, _ := url.Parse(loc)
		return u // single sign-on: no form
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", authURL, resp.StatusCode, body)
	}
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("no CSRF token on the sign-in page: %s", body)
	}
	form := url.Values{"_csrf": {m[1]}, "mode": {"phone"}, "login": {login}, "password": {pw}}
	resp, err = b.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		e.t.Fatal(err)
	}
	body = readAll(e.t, resp)
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign-in answered %d: %s", resp.StatusCode, body)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
