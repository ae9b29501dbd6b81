package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/astral/idp/cmd/certagent/agent"
	"github.com/astral/idp/login/browsertest"
	"github.com/astral/idp/login/gost/gosttest"
)

// certAgent is the reference signing agent (cmd/certagent) in-process. It listens
// before the identity provider starts (IDP_CERT_AGENT_URL must name it) and learns
// the provider's origin afterwards.
type certAgent struct {
	srv     *httptest.Server
	handler atomic.Pointer[agent.Agent]
}

func newCertAgent(t *testing.T) *certAgent {
	t.Helper()
	a := &certAgent{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := a.handler.Load()
		if h == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// serve starts answering for origin with the fixtures' keys, loaded from files as
// `certagent --cert --key` does.
func (a *certAgent) serve(t *testing.T, origin string, names ...string) {
	t.Helper()
	keys := make([]agent.Key, 0, len(names))
	for _, n := range names {
		certFile, keyFile := gosttest.WriteFiles(t, gosttest.Load(t, n))
		k, err := agent.Load(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	h, err := agent.New(origin, keys, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	a.handler.Store(h)
}

// waitVisible waits for css to be shown, within browserQueryTimeout.
func waitVisible(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	if _, err := browserLook(ctx, chromedp.WaitVisible(chromedp.CSS(css))); err != nil {
		p := readShownPage(t, ctx)
		t.Fatalf("%s not shown on %s: %v\n%s", css, p.URL, err, p.Text)
	}
}

// chooseCertificate waits for the agent's list and presses the certificate of owner;
// the page signs the challenge through the agent and posts the form.
func chooseCertificate(t *testing.T, ctx context.Context, owner string) {
	t.Helper()
	waitVisible(t, ctx, "#cert-list .cert-item")
	if got := pageText(t, ctx, "#cert-choose h2"); got != "Выберите необходимый сертификат" {
		t.Errorf("list heading %q", got)
	}
	if got := pageText(t, ctx, "#cert-list"); !strings.Contains(got, owner) || !strings.Contains(got, "Действителен до 31.12.2049") ||
		!strings.Contains(got, "Издатель:") {
		t.Errorf("the list shows %q; want %s with issuer and validity as the server describes them", got, owner)
	}
	sel := chromedp.JSPath(`[...document.querySelectorAll("#cert-list .cert-item")].find(b => b.textContent.includes(` +
		jsString(owner) + `))`)
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(sel)); err != nil {
		t.Fatalf("choose the certificate of %s: %v", owner, err)
	}
}

func jsString(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// TestBrowserCertificateAgent: link a certificate in the cabinet through the
// reference agent, then sign in with it into a product.
//
//  1. the person signs in with the password and opens "Способы входа";
//  2. presses "Привязать сертификат", picks the certificate the agent lists, and is
//     back at the methods, which now show it: owner, organization, SNILS and INN,
//     issuer and validity;
//  3. signs out, opens the product, presses "Сертификат", picks an expired
//     certificate first — the refusal is shown over the list, the manual form stays
//     folded — then the linked one, and lands on the product with amr ["swk"].
func TestBrowserCertificateAgent(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			ag := newCertAgent(t)
			e := newTestEnvWith(t, backend, map[string]string{"IDP_CERT_ROOTS": gosttest.RootsDir(t), "IDP_CERT_AGENT_URL": ag.srv.URL})
			ag.serve(t, e.issuer, "ivanov", "petrov", "expired")
			rp := newRelyingParty(t, e)
			report := rp.addProduct(t, e, "browser-report", "Астрал.Отчет", "report")
			ctx := browsertest.New(t)
			browserScreenshotOnFailure(t, ctx, "alice")

			// 1. The password, then the methods.
			if err := chromedp.Do(ctx, chromedp.Navigate(e.issuer+"/login"),
				chromedp.SendKeys(chromedp.ID("login"), "9105940899"),
				chromedp.SendKeys(chromedp.ID("password"), e.password)); err != nil {
				t.Fatal(err)
			}
			clickSignIn(t, ctx)
			if err := chromedp.Do(ctx, chromedp.Navigate(e.issuer+"/account/methods")); err != nil {
				t.Fatal(err)
			}
			// 2. Link.
			followLink(t, ctx, "Привязать сертификат")
			if got := pageText(t, ctx, "h1"); got != "Привязка сертификата" {
				t.Fatalf("link page heading %q", got)
			}
			chooseCertificate(t, ctx, "Иванов Иван Иванович")
			p := readShownPage(t, ctx)
			if p.URL != e.issuer+"/account/methods" || !strings.Contains(p.Text, "Иванов Иван Иванович") {
				t.Fatalf("after linking: %s\n%s", p.URL, p.Text)
			}
			if got := e.certOwner("ivanov"); got != e.userID {
				t.Fatalf("the certificate belongs to %q; want %q", got, e.userID)
			}
			// The page keeps a label with its number by a no-break space.
			shown := strings.ReplaceAll(p.Text, "\u00a0", " ")
			for _, want := range []string{"ООО «Ромашка» · ИНН 7701234567", "СНИЛС 112-233-445 95 · ИНН 771234567890",
				"Издатель: Тестовый УЦ · действителен до 31.12.2049"} {
				if !strings.Contains(shown, want) {
					t.Errorf("the methods do not show %q of the linked certificate:\n%s", want, shown)
				}
			}

			// 3. Sign out, then the product with the certificate.
			if err := chromedp.Do(ctx, chromedp.Navigate(e.issuer+"/logout")); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("form button[type=submit]"))); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(rp.srv.URL+"/"+report.path+"/start")); err != nil {
				t.Fatal(err)
			}
			followLink(t, ctx, "Сертификат")
			if got := pageText(t, ctx, "h1"); got != "Вход в Астрал.Отчет" {
				t.Errorf("certificate page heading %q", got)
			}
			chooseCertificate(t, ctx, "Смирнов Семен Семенович")
			waitVisible(t, ctx, "#cert-list .cert-item")
			if got := pageText(t, ctx, "#cert-agent #cert-error"); got != "Срок действия сертификата истек." {
				t.Errorf("expired certificate: the alert over the list says %q", got)
			}
			if open, err := browserLook(ctx, chromedp.Evaluate[bool](`document.getElementById("cert-manual").open`)); err != nil || open {
				t.Errorf("after a refusal from the list the manual form is open=%v (%v); want it folded", open, err)
			}
			chooseCertificate(t, ctx, "Иванов Иван Иванович")
			p = readShownPage(t, ctx)
			if want := "Вошли как " + e.userID + ", amr=swk"; !strings.HasPrefix(p.URL, rp.srv.URL+"/"+report.path+"/cb?") || p.Text != want {
				t.Fatalf("after the certificate: %s shows %q; want %q", p.URL, p.Text, want)
			}
		})
	}
}

// TestBrowserCertificatePasted: with no agent running the page says so ("Отсутствует
// соединение с Astral.Toolbox", "Обновить"), shows the challenge, and takes a
// signature made by OpenSSL with the GOST engine, pasted as PEM.
func TestBrowserCertificatePasted(t *testing.T) {
	openssl := gosttest.OpenSSL(t)
	// A port nothing listens on: the agent does not answer.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	e := newTestEnvWith(t, "sqlite", map[string]string{"IDP_CERT_ROOTS": gosttest.RootsDir(t), "IDP_CERT_AGENT_URL": deadURL})
	e.linkCert(e.userID, "ivanov")
	rp := newRelyingParty(t, e)
	report := rp.addProduct(t, e, "browser-report", "Астрал.Отчет", "report")
	ctx := browsertest.New(t)
	browserScreenshotOnFailure(t, ctx, "ivanov")

	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(rp.srv.URL+"/"+report.path+"/start")); err != nil {
		t.Fatal(err)
	}
	followLink(t, ctx, "Сертификат")
	waitVisible(t, ctx, "#cert-offline")
	if got := pageText(t, ctx, "#cert-offline h2"); got != "Отсутствует соединение с Astral.Toolbox" {
		t.Errorf("offline heading %q", got)
	}
	if got := pageText(t, ctx, "#cert-refresh"); got != "Обновить" {
		t.Errorf("refresh button %q", got)
	}
	// As the seeds show the page: the agent's state first, the manual form folded
	// under "Подписать без Astral.Toolbox" until the person opens it.
	if open, err := browserLook(ctx, chromedp.Evaluate[bool](`document.getElementById("cert-manual").open`)); err != nil || open {
		t.Errorf("with no agent the manual form is open=%v (%v); want it folded", open, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#cert-manual summary"))); err != nil {
		t.Fatal(err)
	}
	// A signature that is none: the refusal next to the field, the form still open.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("signature"), "MIIBgarbage==")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#cert-form button[type=submit]"))); err != nil {
		t.Fatalf("submit a broken signature: %v", err)
	}
	waitVisible(t, ctx, "#signature-error")
	if got := pageText(t, ctx, "#signature-error"); got != "Подпись или сертификат повреждены или имеют неизвестный формат." {
		t.Errorf("broken signature: the error next to the field says %q", got)
	}
	if got := pageAttr(t, ctx, "#signature", "aria-describedby"); got != "signature-error" {
		t.Errorf("broken signature: aria-describedby=%q on the field", got)
	}
	challenge := fieldValue(t, ctx, "#cert-challenge")
	if challenge == "" {
		t.Fatal("no challenge on the page")
	}

	// The person signs the challenge with OpenSSL, exactly as the page's hint says.
	dir := t.TempDir()
	who := gosttest.Load(t, "ivanov")
	certFile, keyFile := gosttest.WriteFiles(t, who)
	in := filepath.Join(dir, "challenge.txt")
	if err := os.WriteFile(in, []byte(challenge), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(openssl, "cms", "-engine", "gost", "-sign", "-binary", "-nosmimecap", "-md", "md_gost12_256",
		"-in", in, "-signer", certFile, "-inkey", keyFile, "-outform", "PEM")
	sig, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl cms: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("signature"), string(sig))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#cert-form button[type=submit]"))); err != nil {
		t.Fatalf("submit the signature: %v", err)
	}
	p := readShownPage(t, ctx)
	if want := "Вошли как " + e.userID + ", amr=swk"; !strings.HasPrefix(p.URL, rp.srv.URL+"/"+report.path+"/cb?") || p.Text != want {
		t.Fatalf("after the pasted signature: %s shows %q; want %q", p.URL, p.Text, want)
	}
}

// TestBrowserCertificateRegister: registration through "Сертификат" — the agent's
// certificate, a phone confirmed by code, and on to the product with amr ["swk"].
func TestBrowserCertificateRegister(t *testing.T) {
	ag := newCertAgent(t)
	e := newTestEnvWith(t, "sqlite", map[string]string{"IDP_CERT_ROOTS": gosttest.RootsDir(t), "IDP_CERT_AGENT_URL": ag.srv.URL})
	ag.serve(t, e.issuer, "petrov")
	rp := newRelyingParty(t, e)
	report := rp.addProduct(t, e, "browser-report", "Астрал.Отчет", "report")
	ctx := browsertest.New(t)
	browserScreenshotOnFailure(t, ctx, "petrov")

	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(rp.srv.URL+"/"+report.path+"/start")); err != nil {
		t.Fatal(err)
	}
	followLink(t, ctx, "Регистрация")
	if got := pageText(t, ctx, "#upstreams-title"); got != "или зарегистрируйтесь через" {
		t.Errorf("registration block title %q", got)
	}
	followLink(t, ctx, "Сертификат")
	if got := pageText(t, ctx, "h1"); got != "Регистрация" {
		t.Errorf("certificate registration heading %q", got)
	}
	chooseCertificate(t, ctx, "Петров Петр Петрович")
	if got := pageText(t, ctx, ".cert-card .cert-owner"); got != "Петров Петр Петрович" {
		t.Errorf("contact page names %q; want the certificate's owner", got)
	}
	if got := pageText(t, ctx, ".cert-card"); !strings.Contains(got, "Издатель: Тестовый УЦ · действителен до 31.12.2049") {
		t.Errorf("contact page shows the certificate as %q; want its issuer and validity", got)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("login"), "9161112233")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("form button[type=submit]"))); err != nil {
		t.Fatal(err)
	}
	if got := pageText(t, ctx, "h1"); got != "Подтвердите телефон" {
		t.Fatalf("after the phone: heading %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), e.sent.lastCode(t, "+79161112233"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("form button[type=submit]"))); err != nil {
		t.Fatal(err)
	}
	if got := pageText(t, ctx, "h1"); got != "Телефон подтвержден!" {
		t.Fatalf("after the code: heading %q", got)
	}
	followLink(t, ctx, "Перейти в Астрал.Отчет")
	u, err := e.store.UserByPhone(context.Background(), "+79161112233")
	if err != nil {
		t.Fatal(err)
	}
	p := readShownPage(t, ctx)
	if want := "Вошли как " + u.ID + ", amr=swk"; !strings.HasPrefix(p.URL, rp.srv.URL+"/"+report.path+"/cb?") || p.Text != want {
		t.Fatalf("after registration: %s shows %q; want %q", p.URL, p.Text, want)
	}
	if u.FamilyName != "Петров" || e.certOwner("petrov") != u.ID {
		t.Errorf("new account %+v; certificate of %q", u, e.certOwner("petrov"))
	}
}
