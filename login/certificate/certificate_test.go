package certificate_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login"
	"github.com/astral/idp/login/certificate"
	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
	"github.com/astral/idp/login/notify"
	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/login/page"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

const proxyHeader = "X-SSL-Client-Cert"

// clock is the store's and the verifier's pinned clock, moved by the tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// host is the login app as the part sees it: real pages and sessions; FinishSignIn
// records who signed in and how.
type host struct {
	pages    *page.Pages
	sessions *session.Manager
	requests map[string]*provider.PendingRequest
	events   *storage.Store // Record writes here, as the login app does

	mu     sync.Mutex
	signed []signedIn
}

type signedIn struct {
	user, authRequestID string
	proof               session.Proof
}

func (h *host) Pages() *page.Pages         { return h.pages }
func (h *host) Sessions() *session.Manager { return h.sessions }
func (h *host) Kick()                      {}
func (h *host) Record(c echo.Context, e *storage.AuditEvent) {
	e.IP, e.UserAgent = c.RealIP(), c.Request().UserAgent()
	if err := h.events.RecordEvent(c.Request().Context(), e); err != nil {
		panic(err)
	}
}

// The login app's buttons: its own part's (filtered out on its page) and another's.
func (h *host) SignInButtons(id string) []web.UpstreamLink {
	return []web.UpstreamLink{{Name: certificate.Title, URL: "/certificate"}, {Name: "госуслуги", URL: "/upstream/esia/start?mode=signin"}}
}
func (h *host) RegisterButtons(id string) []web.UpstreamLink {
	return []web.UpstreamLink{{Name: certificate.Title, URL: "/certificate?mode=register"}, {Name: "госуслуги", URL: "/upstream/esia/start?mode=register"}}
}
func (h *host) PendingRequest(_ context.Context, id string) *provider.PendingRequest {
	return h.requests[id]
}
func (h *host) FinishSignIn(c echo.Context, u *storage.User, proof session.Proof, authRequestID, _ string) error {
	h.mu.Lock()
	h.signed = append(h.signed, signedIn{user: u.ID, authRequestID: authRequestID, proof: proof})
	h.mu.Unlock()
	return c.Redirect(http.StatusSeeOther, "/signed-in")
}

func (h *host) last() *signedIn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.signed) == 0 {
		return nil
	}
	s := h.signed[len(h.signed)-1]
	return &s
}

// sender keeps the codes sent.
type sender struct {
	mu   sync.Mutex
	sent map[string]string
}

func (s *sender) Send(_ context.Context, m notify.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent[m.To] = m.Code
	return nil
}

func (s *sender) code(to string) string { s.mu.Lock(); defer s.mu.Unlock(); return s.sent[to] }

// env is the part mounted on echo over a real SQLite store and the GOST test roots.
type env struct {
	t     *testing.T
	e     *echo.Echo
	store *storage.Store
	clock *clock
	host  *host
	part  *certificate.Part
	sent  *sender
	alice *storage.User // has a password and a phone
	bob   *storage.User
}

func newEnv(t *testing.T, tune func(*certificate.Config)) *env {
	t.Helper()
	store, err := storage.Open(t.Context(), "sqlite://"+t.TempDir()+"/idp.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	clk := &clock{now: gosttest.Now()}
	store.SetClock(clk.Now)
	v, err := gost.NewVerifier(gost.VerifierConfig{RootsDir: gosttest.RootsDir(t), Now: clk.Now,
		Client: &http.Client{Transport: noNetwork{}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := web.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	sent := &sender{sent: map[string]string{}}
	h := &host{pages: page.New(r), sessions: session.NewManager(store, session.DefaultPolicy, false), events: store,
		requests: map[string]*provider.PendingRequest{"req1": {ID: "req1", ClientID: "report", ClientName: "Астрал.Отчет"}}}
	cfg := certificate.Config{
		Store: store, Verifier: v, Codes: otp.New(store, sent, []byte("0123456789abcdef0123456789abcdef"), otp.DefaultPolicy),
		Issuer: "https://id.example.ru", AgentURL: "http://127.0.0.1:24321/", ProxyHeader: proxyHeader,
		ProxyFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}
	if tune != nil {
		tune(&cfg)
	}
	p, err := certificate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.IPExtractor = echo.ExtractIPDirect()
	p.Register(e.Group(""), h)
	en := &env{t: t, e: e, store: store, clock: clk, host: h, part: p, sent: sent}
	en.alice = en.user("+79105940899")
	en.bob = en.user("+79105940800")
	return en
}

// noNetwork refuses every CRL fetch: the tests use the CRL in the roots folder.
type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, &url.Error{Op: "GET", URL: "crl", Err: context.DeadlineExceeded}
}

func (e *env) user(phone string) *storage.User {
	u := &storage.User{Phone: &phone, PhoneVerified: true, PasswordHash: "x", FamilyName: "Тест"}
	if err := e.store.CreateUser(e.t.Context(), u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// linkTo links the fixture name's certificate to u directly in storage.
func (e *env) linkTo(u *storage.User, name string) {
	c := gosttest.Load(e.t, name).Cert
	err := e.store.LinkCertificate(e.t.Context(), &storage.Identity{UserID: u.ID},
		&storage.Certificate{Thumbprint: c.Thumbprint, Owner: c.Subject.Owner(), SNILS: c.Subject.SNILS, DER: c.Raw})
	if err != nil {
		e.t.Fatal(err)
	}
}

// browser keeps cookies, as one browser on one address does.
type browser struct {
	e       *env
	addr    string
	cookies map[string]*http.Cookie
}

func (e *env) browser() *browser {
	return &browser{e: e, addr: "192.0.2.10:5000", cookies: map[string]*http.Cookie{}}
}

type answer struct {
	status int
	loc    string
	body   string
}

func (b *browser) do(req *http.Request) answer {
	req.RemoteAddr = b.addr
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.e.e.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		b.cookies[c.Name] = c
	}
	return answer{status: rec.Code, loc: rec.Header().Get("Location"), body: rec.Body.String()}
}

func (b *browser) get(u string) answer { return b.do(httptest.NewRequest(http.MethodGet, u, nil)) }

func (b *browser) post(u string, form url.Values) answer {
	req := httptest.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	challengeIDRe   = regexp.MustCompile(`name="challenge" value="([^"]+)"`)
	challengeTextRe = regexp.MustCompile(`id="cert-challenge"[^>]*>([^<]+)</textarea>`)
)

// page is a certificate page's challenge.
type challengePage struct {
	id, text string
	body     string
}

func (b *browser) open(u string) challengePage {
	b.e.t.Helper()
	a := b.get(u)
	if a.status != http.StatusOK {
		b.e.t.Fatalf("GET %s: %d %s", u, a.status, a.body)
	}
	return parseChallenge(b.e.t, a.body)
}

func parseChallenge(t *testing.T, body string) challengePage {
	t.Helper()
	id, text := challengeIDRe.FindStringSubmatch(body), challengeTextRe.FindStringSubmatch(body)
	if id == nil || text == nil {
		t.Fatalf("no challenge on the page:\n%s", body)
	}
	return challengePage{id: id[1], text: html.UnescapeString(text[1]), body: body}
}

// sign makes the detached CMS the agent or a crypto provider would, base64.
func sign(t *testing.T, name string, content string) string {
	t.Helper()
	id := gosttest.Load(t, name)
	cms, err := gost.SignDetached(id.Key, id.Cert, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(cms)
}

func (b *browser) submit(p challengePage, signature string) answer {
	return b.post(certificate.Path, url.Values{"challenge": {p.id}, "signature": {signature}})
}

// signedIn starts a session of u in b, as a password sign-in would.
func (b *browser) signedIn(u *storage.User) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if _, err := b.e.host.sessions.Start(b.e.t.Context(), rec, req, u.ID, session.Proof{AMR: []string{"pwd"}}); err != nil {
		b.e.t.Fatal(err)
	}
	for _, c := range rec.Result().Cookies() {
		b.cookies[c.Name] = c
	}
}

func (e *env) linkedTo(name string) string {
	c, err := e.store.CertificateByThumbprint(e.t.Context(), gosttest.Load(e.t, name).Cert.Thumbprint)
	if storage.IsNotFound(err) {
		return ""
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return c.UserID
}

func wantText(t *testing.T, what string, a answer, status int, texts ...string) {
	t.Helper()
	if a.status != status {
		t.Errorf("%s: status %d; want %d\n%s", what, a.status, status, a.body)
		return
	}
	for _, s := range texts {
		if !strings.Contains(a.body, html.EscapeString(s)) && !strings.Contains(a.body, s) {
			t.Errorf("%s: the page lacks %q\n%s", what, s, a.body)
		}
	}
}

// TestPage: the page for every mode, with what the script needs and what works
// without it — the agent's messages, the challenge and the signature field.
func TestPage(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		url     string
		heading string
		more    []string
	}{
		{"/certificate", "Вход в Личный кабинет", []string{"или авторизуйтесь через", "Email / Тел", `href="/login"`, "госуслуги", `href="/upstream/esia/start?mode=signin"`}},
		{"/certificate?authRequestID=req1", "Вход в Астрал.Отчет", []string{`href="/login?authRequestID=req1"`}},
		{"/certificate?mode=register", "Регистрация", []string{"или зарегистрируйтесь через", `href="/register"`}},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			a := e.browser().get(tc.url)
			wantText(t, tc.url, a, http.StatusOK, append([]string{
				"<h1 class=\"card-title\">" + tc.heading + "</h1>",
				"Отсутствует соединение с Astral.Toolbox", "Обновить", "Выберите необходимый сертификат",
				`data-agent-url="http://127.0.0.1:24321"`, `<label for="signature">Подпись</label>`,
				`<label for="cert-challenge">Текст для подписи</label>`, "/static/certificate.js",
			}, tc.more...)...)
			p := parseChallenge(t, a.body)
			if !strings.HasPrefix(p.text, "https://id.example.ru certificate sign-in ") {
				t.Errorf("challenge %q does not name the issuer", p.text)
			}
			if strings.Contains(a.body, "<script>") {
				t.Error("the page has an inline script; the CSP forbids it")
			}
		})
	}
	t.Run("stale request", func(t *testing.T) {
		wantText(t, "unknown authRequestID", e.browser().get("/certificate?authRequestID=gone"), http.StatusBadRequest, "Ссылка для входа устарела")
	})
	t.Run("link without a session", func(t *testing.T) {
		if a := e.browser().get(certificate.LinkURL); a.status != http.StatusFound || a.loc != login.PathLogin {
			t.Errorf("link without a session: %d %s; want a redirect to the sign-in page", a.status, a.loc)
		}
	})
	t.Run("two challenges differ", func(t *testing.T) {
		b := e.browser()
		first, second := b.open("/certificate").text, b.open("/certificate").text
		if first == second {
			t.Error("two pages got the same challenge")
		}
	})
}

// TestDescribe: the list the page shows, from the certificates the agent returned.
func TestDescribe(t *testing.T) {
	e := newEnv(t, nil)
	form := url.Values{"der": {
		base64.StdEncoding.EncodeToString(gosttest.Load(t, "ivanov").Cert.Raw),
		base64.StdEncoding.EncodeToString(gosttest.Load(t, "expired").Cert.Raw),
		"bm90IGEgY2VydGlmaWNhdGU=",
	}}
	a := e.browser().post("/certificate/describe", form)
	var got []struct {
		Owner, Organization, Issuer string
		NotAfter                    string `json:"not_after"`
		Expired                     bool
	}
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &got) != nil || len(got) != 3 {
		t.Fatalf("describe: %d %s", a.status, a.body)
	}
	if got[0].Owner != "Иванов Иван Иванович" || got[0].Organization != "ООО «Ромашка»" || got[0].Issuer == "" ||
		got[0].NotAfter == "" || got[0].Expired {
		t.Errorf("ivanov described as %+v", got[0])
	}
	if !got[1].Expired {
		t.Errorf("the expired certificate described as %+v", got[1])
	}
	if got[2].Owner != "Сертификат не распознан" {
		t.Errorf("garbage described as %+v", got[2])
	}
}

// TestSignIn is every outcome of a posted signature in sign-in mode.
func TestSignIn(t *testing.T) {
	type outcome struct {
		status int
		texts  []string
		signed bool
	}
	refused := func(texts ...string) outcome { return outcome{status: http.StatusBadRequest, texts: texts} }
	cases := []struct {
		name string
		// post signs p's challenge (or not) and posts it from b.
		post func(e *env, b *browser, p challengePage) answer
		want outcome
	}{
		{"good signature", func(e *env, b *browser, p challengePage) answer {
			return b.submit(p, sign(e.t, "ivanov", p.text))
		}, outcome{status: http.StatusSeeOther, signed: true}},
		{"pasted PEM with line breaks", func(e *env, b *browser, p challengePage) answer {
			der, _ := base64.StdEncoding.DecodeString(sign(e.t, "ivanov", p.text))
			return b.submit(p, string(pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: der})))
		}, outcome{status: http.StatusSeeOther, signed: true}},
		{"tampered", func(e *env, b *browser, p challengePage) answer {
			der, _ := base64.StdEncoding.DecodeString(sign(e.t, "ivanov", p.text))
			der[len(der)-1] ^= 0x01 // the last byte of the signature value
			return b.submit(p, base64.StdEncoding.EncodeToString(der))
		}, refused(gost.Explain(gost.ErrBadSignature))},
		{"wrong challenge", func(e *env, b *browser, p challengePage) answer {
			return b.submit(p, sign(e.t, "ivanov", p.text+" "))
		}, refused("Подпись сделана для других данных.")},
		{"not a signature", func(e *env, b *browser, p challengePage) answer {
			return b.submit(p, "hello")
		}, refused(gost.Explain(gost.ErrMalformed))},
		{"empty", func(e *env, b *browser, p challengePage) answer {
			return b.submit(p, " ")
		}, refused("Вставьте подпись или выберите сертификат.")},
		{"reused challenge", func(e *env, b *browser, p challengePage) answer {
			sig := sign(e.t, "ivanov", p.text)
			if a := b.submit(p, sig); a.status != http.StatusSeeOther {
				e.t.Fatalf("first use: %d %s", a.status, a.body)
			}
			e.host.signed = nil
			return b.submit(p, sig)
		}, refused("Запрос на подпись устарел или уже использован")},
		{"expired challenge", func(e *env, b *browser, p challengePage) answer {
			e.clock.advance(certificate.DefaultChallengeTTL + time.Second)
			return b.submit(p, sign(e.t, "ivanov", p.text))
		}, refused("Запрос на подпись устарел или уже использован")},
		{"unknown challenge", func(e *env, b *browser, p challengePage) answer {
			p.id = storage.NewSecret()
			return b.submit(p, sign(e.t, "ivanov", p.text))
		}, refused("Запрос на подпись устарел или уже использован")},
		{"other browser", func(e *env, b *browser, p challengePage) answer {
			return e.browser().submit(p, sign(e.t, "ivanov", p.text))
		}, refused("в другом браузере")},
		{"expired certificate", func(e *env, b *browser, p challengePage) answer {
			return b.submit(p, sign(e.t, "expired", p.text))
		}, refused("Срок действия сертификата истек.")},
		{"revoked certificate", func(e *env, b *browser, p challengePage) answer {
			return b.submit(p, sign(e.t, "revoked", p.text))
		}, refused("Сертификат отозван удостоверяющим центром.")},
		{"untrusted CA", func(e *env, b *browser, p challengePage) answer {
			return b.submit(p, sign(e.t, "untrusted", p.text))
		}, refused("которому мы не доверяем")},
		{"not linked", func(e *env, b *browser, p challengePage) answer {
			return b.submit(p, sign(e.t, "petrov", p.text))
		}, outcome{status: http.StatusOK, texts: []string{"Сертификат не привязан к Личному кабинету",
			"Способы входа", "Войти другим способом", "Зарегистрироваться с сертификатом"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.linkTo(e.alice, "ivanov")
			b := e.browser()
			p := b.open("/certificate?authRequestID=req1")
			a := tc.post(e, b, p)
			wantText(t, tc.name, a, tc.want.status, tc.want.texts...)
			s := e.host.last()
			if !tc.want.signed {
				if s != nil {
					t.Errorf("signed %s in; want no sign-in", s.user)
				}
				if tc.want.status == http.StatusBadRequest {
					// A refusal shows the page again with a fresh challenge to sign.
					if q := parseChallenge(t, a.body); q.id == p.id {
						t.Error("the refused page offers the used challenge again")
					}
				}
				return
			}
			if s == nil || s.user != e.alice.ID || s.authRequestID != "req1" ||
				len(s.proof.AMR) != 1 || s.proof.AMR[0] != "swk" || s.proof.ACR != provider.ACR {
				t.Errorf("signed in %+v; want alice with amr [swk] for req1", s)
			}
		})
	}
}

// TestSignInLimit: signatures checked per address are bounded.
func TestSignInLimit(t *testing.T) {
	e := newEnv(t, func(c *certificate.Config) { c.VerifyLimit = 2 })
	b := e.browser()
	for i := range 3 {
		p := b.open("/certificate")
		a := b.submit(p, "garbage")
		if i < 2 && a.status != http.StatusBadRequest {
			t.Fatalf("attempt %d: %d", i+1, a.status)
		}
		if i == 2 {
			wantText(t, "third attempt", a, http.StatusTooManyRequests, "Слишком много попыток")
		}
	}
}

// TestBlocked: a blocked account is not signed in with its certificate.
func TestBlocked(t *testing.T) {
	e := newEnv(t, nil)
	e.linkTo(e.alice, "ivanov")
	if _, err := e.store.SetUserBlocked(t.Context(), e.alice.ID, true); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	p := b.open("/certificate")
	wantText(t, "blocked", b.submit(p, sign(t, "ivanov", p.text)), http.StatusForbidden, "Учетная запись заблокирована")
	if s := e.host.last(); s != nil {
		t.Errorf("a blocked account signed in: %+v", s)
	}
}

// TestLink: linking in the cabinet, and a certificate linked to another account.
func TestLink(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	b.signedIn(e.alice)
	p := b.open(certificate.LinkURL)
	if !strings.Contains(p.body, "Привязка сертификата") {
		t.Errorf("link page heading missing:\n%s", p.body)
	}
	a := b.submit(p, sign(t, "ivanov", p.text))
	if a.status != http.StatusSeeOther || a.loc != login.PathMethods {
		t.Fatalf("link: %d %s; want a redirect to %s\n%s", a.status, a.loc, login.PathMethods, a.body)
	}
	if got := e.linkedTo("ivanov"); got != e.alice.ID {
		t.Fatalf("ivanov linked to %q; want alice", got)
	}
	ids, err := e.store.UserIdentities(t.Context(), e.alice.ID)
	if err != nil || len(ids) != 1 || ids[0].Connector != "certificate" || !strings.Contains(ids[0].DisplayName, "Иванов Иван Иванович") {
		t.Errorf("alice's identities: %+v (%v); want the certificate with its owner", ids, err)
	}
	// Again by alice: fine, nothing changes.
	p = b.open(certificate.LinkURL)
	if a := b.submit(p, sign(t, "ivanov", p.text)); a.status != http.StatusSeeOther {
		t.Errorf("linking it again: %d %s", a.status, a.body)
	}
	// Bob tries the same certificate.
	bob := e.browser()
	bob.signedIn(e.bob)
	p = bob.open(certificate.LinkURL)
	wantText(t, "linked elsewhere", bob.submit(p, sign(t, "ivanov", p.text)), http.StatusConflict,
		"Этот сертификат уже привязан к другому Личному кабинету")
	if got := e.linkedTo("ivanov"); got != e.alice.ID {
		t.Errorf("after bob's attempt ivanov is linked to %q; want alice", got)
	}
	// The session that asked ended before the signature came.
	carol := e.browser()
	carol.signedIn(e.bob)
	p = carol.open(certificate.LinkURL)
	delete(carol.cookies, session.CookieName)
	wantText(t, "no session", carol.submit(p, sign(t, "petrov", p.text)), http.StatusUnauthorized, "Войдите в Личный кабинет")
	if got := e.linkedTo("petrov"); got != "" {
		t.Errorf("petrov linked to %q without a session", got)
	}
}

// TestRenewed: a new certificate of a person whose old one is linked is offered for
// linking after another sign-in — and never linked by the certificate sign-in itself.
func TestRenewed(t *testing.T) {
	e := newEnv(t, nil)
	e.linkTo(e.alice, "ivanov")
	b := e.browser()
	p := b.open("/certificate?authRequestID=req1")
	a := b.submit(p, sign(t, "ivanov-renewed", p.text))
	wantText(t, "renewed", a, http.StatusOK, "Этот сертификат еще не привязан к Личному кабинету",
		"Войти и привязать сертификат", "Войти без привязки")
	if s := e.host.last(); s != nil {
		t.Fatalf("a renewed certificate signed in %+v", s)
	}
	if got := e.linkedTo("ivanov-renewed"); got != "" {
		t.Fatalf("the renewed certificate was linked to %q silently", got)
	}
	m := regexp.MustCompile(`href="/login\?([^"]+)"`).FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no sign-in link:\n%s", a.body)
	}
	q, _ := url.ParseQuery(html.UnescapeString(m[1]))
	flow := q.Get("link")
	if flow == "" || q.Get("authRequestID") != "req1" {
		t.Fatalf("sign-in link %q; want link= and the request", m[1])
	}
	ctx := func(br *browser) echo.Context {
		req := httptest.NewRequest(http.MethodPost, "/login", nil)
		for _, c := range br.cookies {
			req.AddCookie(c)
		}
		return e.e.NewContext(req, httptest.NewRecorder())
	}
	if _, ok := e.part.PendingLink(ctx(e.browser()), flow); ok {
		t.Error("another browser sees the pending link")
	}
	title, ok := e.part.PendingLink(ctx(b), flow)
	if !ok || title != "сертификат Иванов Иван Иванович" {
		t.Fatalf("PendingLink: %q %v", title, ok)
	}
	// The person signs in with the password (the sign-in page calls LinkPending).
	if err := e.part.LinkPending(ctx(b), flow, e.alice); err != nil {
		t.Fatal(err)
	}
	if got := e.linkedTo("ivanov-renewed"); got != e.alice.ID {
		t.Errorf("after the sign-in the renewed certificate is linked to %q; want alice", got)
	}
	if err := e.part.LinkPending(ctx(b), flow, e.alice); err == nil {
		t.Error("a pending link was used twice")
	}
}

// TestRegisterRenewed: registering with the renewed certificate of a person who has
// an account (same SNILS) opens no second account: the certificate is offered for
// linking after a sign-in, as on the sign-in page.
func TestRegisterRenewed(t *testing.T) {
	e := newEnv(t, nil)
	e.linkTo(e.alice, "ivanov")
	b := e.browser()
	p := b.open("/certificate?mode=register&authRequestID=req1")
	a := b.submit(p, sign(t, "ivanov-renewed", p.text))
	wantText(t, "renewed registration", a, http.StatusOK, "Этот сертификат еще не привязан к Личному кабинету",
		"Войти и привязать сертификат")
	if strings.Contains(a.loc, "/certificate/register") || strings.Contains(a.body, "Зарегистрироваться с сертификатом") {
		t.Fatalf("a renewed certificate may register a second account: %d %s\n%s", a.status, a.loc, a.body)
	}
	if got := e.linkedTo("ivanov-renewed"); got != "" {
		t.Fatalf("the renewed certificate was linked to %q silently", got)
	}
}

// TestRegister: registration with a certificate, up to the account, and a contact
// that belongs to an account already.
func TestRegister(t *testing.T) {
	register := func(e *env, b *browser, name, phone string) answer {
		t.Helper()
		p := b.open("/certificate?mode=register&authRequestID=req1")
		a := b.submit(p, sign(t, name, p.text))
		if a.status != http.StatusSeeOther || !strings.HasPrefix(a.loc, "/certificate/register?flow=") {
			t.Fatalf("signed registration: %d %s\n%s", a.status, a.loc, a.body)
		}
		form := b.get(a.loc)
		wantText(t, "contact form", form, http.StatusOK, "Регистрация", "Иванов Иван Иванович", "Создать аккаунт", `<label for="login">Телефон`)
		flow := regexp.MustCompile(`name="flow" value="([^"]+)"`).FindStringSubmatch(form.body)[1]
		a = b.post("/certificate/register", url.Values{"flow": {flow}, "mode": {"phone"}, "login": {phone}})
		if a.status != http.StatusSeeOther || !strings.HasPrefix(a.loc, "/certificate/register/confirm?flow=") {
			t.Fatalf("contact: %d %s\n%s", a.status, a.loc, a.body)
		}
		confirm := b.get(a.loc)
		wantText(t, "confirm page", confirm, http.StatusOK, "Подтвердите телефон", "Код подтверждения", "Вернуться к началу регистрации")
		codeFlow, _ := url.ParseQuery(strings.TrimPrefix(a.loc, "/certificate/register/confirm?"))
		bad := "000000"
		if e.sent.code(phone) == bad {
			bad = "111111"
		}
		wrong := b.post("/certificate/register/confirm", url.Values{"flow": {codeFlow.Get("flow")}, "code": {bad}})
		wantText(t, "wrong code", wrong, http.StatusBadRequest, "Неверный код")
		if _, err := e.store.UserByPhone(t.Context(), phone); err == nil && phone != *e.alice.Phone {
			t.Error("an account exists before the code was confirmed")
		}
		return b.post("/certificate/register/confirm", url.Values{"flow": {codeFlow.Get("flow")}, "code": {e.sent.code(phone)}})
	}
	t.Run("new account", func(t *testing.T) {
		e := newEnv(t, nil)
		b := e.browser()
		a := register(e, b, "ivanov", "+79161234567")
		wantText(t, "done", a, http.StatusOK, "Телефон подтвержден!", "Перейти в Астрал.Отчет")
		u, err := e.store.UserByPhone(t.Context(), "+79161234567")
		if err != nil {
			t.Fatal(err)
		}
		if u.FamilyName != "Иванов" || u.GivenName != "Иван" || u.MiddleName != "Иванович" || !u.PhoneVerified || u.PasswordHash != "" {
			t.Errorf("new account %+v; want the owner's names and the confirmed phone", u)
		}
		if got := e.linkedTo("ivanov"); got != u.ID {
			t.Errorf("the certificate is linked to %q; want the new account", got)
		}
		sess, cur, err := e.host.sessions.Current(t.Context(), func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, c := range b.cookies {
				r.AddCookie(c)
			}
			return r
		}())
		if err != nil || sess == nil || cur.ID != u.ID || len(sess.AMR) != 1 || sess.AMR[0] != "swk" {
			t.Errorf("session after registration: %+v (%v); want the new account with amr [swk]", sess, err)
		}
	})
	t.Run("contact of another account", func(t *testing.T) {
		e := newEnv(t, nil)
		a := register(e, e.browser(), "ivanov", *e.alice.Phone)
		wantText(t, "taken phone", a, http.StatusConflict, "Аккаунт уже существует", "привяжите сертификат")
		if got := e.linkedTo("ivanov"); got != "" {
			t.Errorf("the certificate was linked to %q; want nothing merged", got)
		}
	})
	t.Run("certificate of an account", func(t *testing.T) {
		e := newEnv(t, nil)
		e.linkTo(e.alice, "ivanov")
		b := e.browser()
		p := b.open("/certificate?mode=register")
		wantText(t, "linked certificate", b.submit(p, sign(t, "ivanov", p.text)), http.StatusConflict,
			"Сертификат уже привязан к Личному кабинету", "Войти с сертификатом")
	})
	t.Run("registration of another browser", func(t *testing.T) {
		e := newEnv(t, nil)
		b := e.browser()
		p := b.open("/certificate?mode=register")
		a := b.submit(p, sign(t, "petrov", p.text))
		wantText(t, "another browser", e.browser().get(a.loc), http.StatusGone, "Регистрация устарела")
	})
}

// TestProxy: a client certificate from a trusted proxy signs a linked account in;
// the header from any other address is ignored.
func TestProxy(t *testing.T) {
	ivanov := gosttest.Load(t, "ivanov")
	escaped := url.PathEscape(string(ivanov.CertPEM))
	cases := []struct {
		name   string
		addr   string
		header string
		status int
		signed bool
		text   string
	}{
		{"trusted proxy, escaped PEM", "10.1.2.3:40000", escaped, http.StatusSeeOther, true, ""},
		{"trusted proxy, base64 DER", "10.1.2.3:40000", base64.StdEncoding.EncodeToString(ivanov.Cert.Raw), http.StatusSeeOther, true, ""},
		{"untrusted address", "192.0.2.10:5000", escaped, http.StatusUnauthorized, false, "Сертификат не предъявлен"},
		{"trusted proxy, no header", "10.1.2.3:40000", "", http.StatusUnauthorized, false, "Сертификат не предъявлен"},
		{"trusted proxy, revoked", "10.1.2.3:40000", url.PathEscape(string(gosttest.Load(t, "revoked").CertPEM)), http.StatusForbidden, false, "Сертификат отозван"},
		{"trusted proxy, garbage", "10.1.2.3:40000", "%%%", http.StatusForbidden, false, "Сертификат не принят"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.linkTo(e.alice, "ivanov")
			e.linkTo(e.bob, "revoked")
			b := e.browser()
			b.addr = tc.addr
			req := httptest.NewRequest(http.MethodGet, "/certificate/proxy?authRequestID=req1", nil)
			req.Header.Set("X-Forwarded-For", "10.1.2.3") // never trusted
			if tc.header != "" {
				req.Header.Set(proxyHeader, tc.header)
			}
			a := b.do(req)
			if tc.text != "" {
				wantText(t, tc.name, a, tc.status, tc.text)
			} else if a.status != tc.status {
				t.Errorf("%d; want %d\n%s", a.status, tc.status, a.body)
			}
			s := e.host.last()
			if tc.signed != (s != nil) {
				t.Fatalf("signed in: %+v; want %v", s, tc.signed)
			}
			if s != nil && (s.user != e.alice.ID || s.proof.AMR[0] != "swk") {
				t.Errorf("signed in %+v; want alice with amr swk", s)
			}
		})
	}
}

// TestParseProxyFrom reads IDP_CERT_PROXY_FROM.
func TestParseProxyFrom(t *testing.T) {
	got, err := certificate.ParseProxyFrom(" 10.0.0.0/8, 192.0.2.7 ,::1 ")
	if err != nil || len(got) != 3 || got[1].String() != "192.0.2.7/32" || got[2].String() != "::1/128" {
		t.Errorf("parsed %v, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.local", "10.0.0"} {
		if _, err := certificate.ParseProxyFrom(bad); err == nil {
			t.Errorf("%q parsed; want an error", bad)
		}
	}
}
