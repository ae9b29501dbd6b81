package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/astral/idp/login/browsertest"
)

// TestBrowserUpstreamTelegram is Telegram sign-in as a person does it, in a real
// headless Chromium, with Telegram played by a test OpenID provider at
// IDP_TELEGRAM_URL and a product that is an independent relying party:
//
//  1. the person signs in with the password and lands in the cabinet;
//  2. links Telegram (/upstream/telegram/start?mode=link; the cabinet's button leads
//     there) and comes back to the cabinet's list of sign-in methods;
//  3. signs out;
//  4. opens the product, presses "Telegram" on the sign-in page and lands on the
//     product, which verifies the ID token and sees amr ["fed"];
//  5. another person, whose Telegram is linked to no account, gets the page that
//     explains it and offers to sign in and link it.
func TestBrowserUpstreamTelegram(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e, tg := newTelegramEnv(t, backend)
			tg.LogIn("100200300", map[string]any{"name": "Иван Иванов", "preferred_username": "ivan"})
			rp := newRelyingParty(t, e)
			report := rp.addProduct(t, e, "browser-report", "Астрал.Отчет", "report")

			alice := browsertest.New(t)
			browserScreenshotOnFailure(t, alice, "alice")

			// 1. The password, without a product: the cabinet.
			if err := chromedp.Do(alice, chromedp.Navigate(e.issuer+"/login")); err != nil {
				t.Fatal(err)
			}
			if got := pageText(t, alice, "h1"); got != "Вход в Личный кабинет" {
				t.Fatalf("sign-in page heading %q", got)
			}
			if err := chromedp.Do(alice,
				chromedp.SendKeys(chromedp.ID("login"), "9105940899"),
				chromedp.SendKeys(chromedp.ID("password"), e.password),
			); err != nil {
				t.Fatal(err)
			}
			clickSignIn(t, alice)
			if p := readShownPage(t, alice); !strings.HasPrefix(p.URL, e.issuer+"/account") {
				t.Fatalf("after signing in the browser is at %s, want the cabinet\n%s", p.URL, p.Text)
			}

			// 2. Link Telegram.
			link := e.issuer + "/upstream/telegram/start?mode=link"
			if err := chromedp.Do(alice, chromedp.Navigate(link)); err != nil {
				t.Fatalf("open %s: %v", link, err)
			}
			if p := readShownPage(t, alice); p.URL != e.issuer+"/account/methods" {
				t.Fatalf("linking Telegram ended at %s, want %s/account/methods\n%s", p.URL, e.issuer, p.Text)
			}
			if id := e.identityOf("100200300"); id == nil || id.UserID != e.userID {
				t.Fatalf("after linking, the Telegram identity is %+v", id)
			}

			// 3. Sign out.
			if err := chromedp.Do(alice, chromedp.Navigate(e.issuer+"/logout")); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.RunResponse(alice, chromedp.Click(chromedp.CSS("form button[type=submit]"))); err != nil {
				t.Fatalf("press «Выйти»: %v", err)
			}
			if got := pageText(t, alice, "h1"); got != "Вы вышли из Личного кабинета" {
				t.Fatalf("after signing out: heading %q", got)
			}

			// 4. The product, the "Telegram" button, the product again.
			start := rp.srv.URL + "/" + report.path + "/start"
			resp, err := chromedp.RunResponse(alice, chromedp.Navigate(start))
			if err != nil {
				t.Fatalf("open %s: %v", start, err)
			}
			if p := readShownPage(t, alice); resp.Status != http.StatusOK || !strings.HasPrefix(p.URL, e.issuer+"/login?") {
				t.Fatalf("%s led to %s (status %d), want the sign-in page\n%s", start, p.URL, resp.Status, p.Text)
			}
			if got := pageText(t, alice, "#upstreams-title"); got != "или авторизуйтесь через" {
				t.Errorf("upstream block title %q", got)
			}
			followLink(t, alice, "Telegram")
			p := readShownPage(t, alice)
			want := "Вошли как " + e.userID + ", amr=fed"
			if !strings.HasPrefix(p.URL, rp.srv.URL+"/"+report.path+"/cb?") || p.Text != want {
				t.Fatalf("after Telegram: %s shows %q, want %q", p.URL, p.Text, want)
			}
			// The session remembers the upstream: the idp claim of the sign-in.
			sess, err := e.store.UserSessions(context.Background(), e.userID)
			if err != nil {
				t.Fatal(err)
			}
			if len(sess) != 1 || sess[0].IDP != "telegram" {
				t.Errorf("sessions after Telegram sign-in: %+v, want one with idp telegram", sess)
			}

			// 5. Another person, whose Telegram is linked to no account, gets the page that
			// says so and offers the way to link it — in a browser of their own.
			tg.LogIn("555000111", map[string]any{"name": "Петр Петров"})
			bob := browsertest.NewContext(t, alice)
			browserScreenshotOnFailure(t, bob, "bob")
			if _, err := chromedp.RunResponse(bob, chromedp.Navigate(start)); err != nil {
				t.Fatalf("open %s: %v", start, err)
			}
			followLink(t, bob, "Telegram")
			p = readShownPage(t, bob)
			if !strings.Contains(p.Text, "Этот аккаунт Telegram не привязан к Личному кабинету") ||
				!strings.Contains(p.Text, "Войти и привязать Telegram") {
				t.Fatalf("an unlinked Telegram led to %s showing %q, want the explaining page", p.URL, p.Text)
			}
			if id := e.identityOf("555000111"); id != nil {
				t.Fatalf("an unlinked Telegram sign-in linked %+v", id)
			}
		})
	}
}
