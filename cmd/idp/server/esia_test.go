package server

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/astral/idp/login/gost/gosttest"
	"github.com/astral/idp/login/upstream/esia/esiatest"
	"github.com/astral/idp/storage"
)

// newESIAEnv starts the server with Gosuslugi played by the stand-in, and a clients
// file in which only "signature" is allowed the gosuslugi scope.
func newESIAEnv(t *testing.T, backend string) (*testEnv, *esiatest.Server) {
	t.Helper()
	client := gosttest.Load(t, "esia-client")
	es := esiatest.New(t, client.CertPEM)
	es.LogIn(esiatest.Ivanov)
	certFile, keyFile := gosttest.WriteFiles(t, client)
	dir := t.TempDir()
	tokenCert := filepath.Join(dir, "esia-service.pem")
	clients := filepath.Join(dir, "clients.yaml")
	yaml := fmt.Sprintf(`clients:
  - id: report
    name: "Астрал.Отчет"
    secret: %q
    type: web
    redirect_uris: ["http://127.0.0.1:9/report/cb"]
    grant_types: [authorization_code, refresh_token]
  - id: signature
    name: "Астрал.Подпись"
    secret: %q
    type: web
    redirect_uris: ["http://127.0.0.1:9/signature/cb"]
    grant_types: [authorization_code, refresh_token]
    scopes: [openid, profile, email, phone, gosuslugi]
`, testSecret, testSecret)
	for name, b := range map[string][]byte{tokenCert: es.TokenCertPEM, clients: []byte(yaml)} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e := newTestEnvWith(t, backend, map[string]string{
		"IDP_CLIENTS_FILE": clients, "IDP_ESIA_URL": es.URL, "IDP_ESIA_CLIENT_ID": es.ClientID,
		"IDP_ESIA_KEY_FILE": keyFile, "IDP_ESIA_CERT_FILE": certFile, "IDP_ESIA_TOKEN_CERT_FILE": tokenCert,
	})
	return e, es
}

// esiaWalk follows redirects in browser b through our pages and the stand-in, and
// stops at a page or at a redirect anywhere else (the product, the cabinet).
func (e *testEnv) esiaWalk(b *http.Client, es *esiatest.Server, raw string) upPage {
	e.t.Helper()
	if strings.HasPrefix(raw, "/") {
		raw = e.issuer + raw
	}
	issuer, _ := url.Parse(e.issuer)
	stand, _ := url.Parse(es.URL)
	req, _ := http.NewRequest(http.MethodGet, raw, nil)
	for range 20 {
		resp, err := b.Do(req)
		if err != nil {
			e.t.Fatal(err)
		}
		body := readAll(e.t, resp)
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return upPage{status: resp.StatusCode, url: req.URL, body: body}
		}
		loc, err := resp.Location()
		if err != nil {
			e.t.Fatal(err)
		}
		ours := loc.Host == issuer.Host && !strings.HasPrefix(loc.Path, "/account")
		if !ours && loc.Host != stand.Host {
			return upPage{status: resp.StatusCode, url: req.URL, body: body, stop: loc}
		}
		req, _ = http.NewRequest(http.MethodGet, loc.String(), nil)
	}
	e.t.Fatal("too many redirects")
	return upPage{}
}

func manualBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var esiaButtonRe = regexp.MustCompile(`href="(/upstream/esia/start\?[^"]*)"`)

// esiaButton opens the product's authorization request for scope in b and returns
// the link of the "госуслуги" button of the page it shows (sign-in or registration).
func (e *testEnv) esiaButton(b *http.Client, es *esiatest.Server, clientID, scope, page string) (string, url.Values, string) {
	e.t.Helper()
	q, verifier := codeAuthQuery(clientID, "http://127.0.0.1:9/"+clientID+"/cb", scope)
	p := e.esiaWalk(b, es, e.authURL(q))
	if page == "register" {
		p = e.esiaWalk(b, es, strings.Replace(p.url.String(), "/login", "/register", 1))
	}
	for _, m := range esiaButtonRe.FindAllStringSubmatch(p.body, -1) {
		link := html.UnescapeString(m[1])
		if strings.Contains(link, "mode="+map[string]string{"login": "signin", "register": "register"}[page]) {
			return link, q, verifier
		}
	}
	e.t.Fatalf("no госуслуги button on the %s page %s:\n%s", page, p.url, p.body)
	return "", nil, ""
}

// productCode checks that a walk ended at the product with a code, and returns it.
func productCode(t *testing.T, p upPage, q url.Values, verifier string) authzCode {
	t.Helper()
	if p.stop == nil || p.stop.Query().Get("code") == "" || p.stop.Query().Get("state") != q.Get("state") {
		t.Fatalf("walk ended at %s (%d), want the product with a code:\n%s", p.stop, p.status, p.body)
	}
	return authzCode{clientID: q.Get("client_id"), redirect: q.Get("redirect_uri"), code: p.stop.Query().Get("code"),
		verifier: verifier, nonce: q.Get("nonce")}
}

// TestESIARegisterAndSignIn: registration through Gosuslugi from a product's
// registration page opens an account from the verified data and reaches the product;
// signing in again through Gosuslugi reaches it too, with amr fed and idp esia; the
// product allowed the gosuslugi scope gets the verified claims in its ID token and
// userinfo, another product gets none of them — not even through the claims
// parameter.
func TestESIARegisterAndSignIn(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e, es := newESIAEnv(t, backend)
			b := manualBrowser()

			start, q, v := e.esiaButton(b, es, "signature", "openid profile gosuslugi", "register")
			g := productCode(t, e.esiaWalk(b, es, start), q, v)
			tok := e.mustExchange(viaBasic("signature"), g)
			id := e.idClaims(tok.str("id_token"), g)
			want := map[string]any{"family_name": "Иванов", "given_name": "Иван", "middle_name": "Иванович",
				"birthdate": "1985-03-15", "snils": "112-233-445 95", "gosuslugi_trusted": true, "idp": "esia"}
			for k, v := range want {
				if id[k] != v {
					t.Errorf("ID token %s = %v, want %v", k, id[k], v)
				}
			}
			if amr, _ := id["amr"].([]any); len(amr) != 1 || amr[0] != "fed" {
				t.Errorf("ID token amr %v, want [fed]", id["amr"])
			}
			ui := e.userinfo("get", tok.str("access_token"))
			if ui.json["snils"] != "112-233-445 95" || ui.json["gosuslugi_trusted"] != true || ui.json["birthdate"] != "1985-03-15" {
				t.Errorf("userinfo %s", ui)
			}

			// The account: from the verified data, phone and email confirmed, consents kept.
			ctx := context.Background()
			link, err := e.store.IdentityBySubject(ctx, "esia", "1000404834")
			if err != nil {
				t.Fatal(err)
			}
			u, err := e.store.UserByID(ctx, link.UserID)
			if err != nil {
				t.Fatal(err)
			}
			if u.FamilyName != "Иванов" || u.MiddleName != "Иванович" || u.Phone == nil || *u.Phone != "+79161234567" ||
				!u.PhoneVerified || u.Email == nil || *u.Email != "ivanov@example.ru" || !u.EmailVerified || u.PasswordHash != "" {
				t.Errorf("account %+v", u)
			}
			if cs, err := e.store.UserConsents(ctx, u.ID); err != nil || len(cs) != 2 {
				t.Errorf("consents %v, %v", cs, err)
			}

			// Another product, in a fresh browser, signing in through Gosuslugi: the
			// same account, no verified claims — asked by scope or by name.
			es.LogIn(func() esiatest.Person { p := esiatest.Ivanov; p.SNILS = "112-233-445 96"; return p }())
			b2 := manualBrowser()
			start, q, v = e.esiaButton(b2, es, "report", "openid profile gosuslugi", "login")
			g = productCode(t, e.esiaWalk(b2, es, start), q, v)
			tok = e.mustExchange(viaBasic("report"), g)
			id = e.idClaims(tok.str("id_token"), g)
			if id["sub"] != u.ID || id["idp"] != "esia" {
				t.Errorf("report's ID token sub %v idp %v, want %s esia", id["sub"], id["idp"], u.ID)
			}
			for _, k := range []string{"snils", "birthdate", "gosuslugi_trusted"} {
				if _, ok := id[k]; ok {
					t.Errorf("report's ID token carries %s", k)
				}
			}
			if ui := e.userinfo("get", tok.str("access_token")); ui.json["snils"] != nil || ui.json["gosuslugi_trusted"] != nil {
				t.Errorf("report's userinfo %s", ui)
			}
			// The claims parameter does not open them either.
			q, v = codeAuthQuery("report", "http://127.0.0.1:9/report/cb", "openid")
			q.Set("claims", `{"id_token":{"snils":{"essential":true},"gosuslugi_trusted":null},"userinfo":{"snils":null}}`)
			g = productCode(t, e.esiaWalk(b2, es, e.authURL(q)), q, v)
			tok = e.mustExchange(viaBasic("report"), g)
			id = e.idClaims(tok.str("id_token"), g)
			if id["snils"] != nil || id["gosuslugi_trusted"] != nil {
				t.Errorf("claims parameter released %v", id)
			}
			if ui := e.userinfo("get", tok.str("access_token")); ui.json["snils"] != nil {
				t.Errorf("claims parameter released snils in userinfo %s", ui)
			}

			// The sign-in refreshed the stored claims: signature now reads the new SNILS.
			q, v = codeAuthQuery("signature", "http://127.0.0.1:9/signature/cb", "openid gosuslugi")
			g = productCode(t, e.esiaWalk(b2, es, e.authURL(q)), q, v)
			tok = e.mustExchange(viaBasic("signature"), g)
			if id = e.idClaims(tok.str("id_token"), g); id["snils"] != "112-233-445 96" {
				t.Errorf("after a new sign-in signature reads snils %v", id["snils"])
			}
		})
	}
}

// TestESIARegisterExistingContact: a verified phone that belongs to an account is
// never merged silently — the person is told to sign in to it, and doing so links
// Gosuslugi to that account.
func TestESIARegisterExistingContact(t *testing.T) {
	e, es := newESIAEnv(t, "sqlite")
	p := esiatest.Ivanov
	p.Mobile = "+7(910)5940899" // the harness account's phone
	es.LogIn(p)
	b := manualBrowser()
	start, _, _ := e.esiaButton(b, es, "signature", "openid", "register")
	page := e.esiaWalk(b, es, start)
	if page.status != http.StatusConflict || !strings.Contains(page.body, "У Вас уже есть Личный кабинет") ||
		!strings.Contains(page.body, "номер телефона") {
		t.Fatalf("registration with a taken phone: %d\n%s", page.status, page.body)
	}
	if n, _ := e.store.UserIdentities(context.Background(), e.userID); len(n) != 0 {
		t.Fatalf("identity linked silently: %v", n)
	}
	if _, err := e.store.IdentityBySubject(context.Background(), "esia", "1000404834"); !storage.IsNotFound(err) {
		t.Fatalf("identity stored: %v", err)
	}
}

// TestESIARefusals: a wrong signature, a stale timestamp, a wrong state and a forged
// token each end in a Russian page for the person and a log line with the reason.
func TestESIARefusals(t *testing.T) {
	e, es := newESIAEnv(t, "sqlite")
	var mu sync.Mutex
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	for _, tt := range []struct {
		name  string
		setup func()
		log   string
	}{
		{"wrong signature", func() { es.SetClientKey(gosttest.Load(t, "esia-service").Cert.PublicKey) }, "client_secret does not verify"},
		{"stale timestamp", func() { es.SetNow(gosttest.Now) }, "timestamp outside the window"},
		{"wrong state", func() { es.SetFault(esiatest.WrongState) }, "unknown, expired or used state"},
		{"forged token", func() { es.SetFault(esiatest.ForgedToken) }, "token signature"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			es.Reset()
			tt.setup()
			defer es.Reset()
			b := manualBrowser()
			start, _, _ := e.esiaButton(b, es, "signature", "openid", "login")
			p := e.esiaWalk(b, es, start)
			wantRefusal(t, tt.name, p, http.StatusBadRequest, "Вход через госуслуги не удался")
			mu.Lock()
			out := logs.String()
			logs.Reset()
			mu.Unlock()
			if !strings.Contains(out, "upstream sign-in refused") || !strings.Contains(out, tt.log) {
				t.Errorf("log lacks %q:\n%s", tt.log, out)
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
