package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// form GETs page in browser b and POSTs values with the page's CSRF token to action
// (or to the page itself when action is empty); it returns the answer.
func (e *testEnv) form(b *http.Client, page, action string, values url.Values) (*http.Response, string) {
	e.t.Helper()
	resp, err := b.Get(page)
	if err != nil {
		e.t.Fatal(err)
	}
	body := readAll(e.t, resp)
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("no CSRF token on %s (%d): %s", page, resp.StatusCode, body)
	}
	values.Set("_csrf", m[1])
	if action == "" {
		action = resp.Request.URL.String()
	} else if strings.HasPrefix(action, "/") {
		action = e.issuer + action
	}
	resp, err = b.PostForm(action, values)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, readAll(e.t, resp)
}

var flowRe = `name="flow" value="([^"]*)"`

// TestRegisterByPhoneReachesTheProduct is the registration journey at the HTTP level:
// the product's request → registration → code → "Телефон подтвержден!" → the product
// receives a code for the new account, with amr otp+sms.
func TestRegisterByPhoneReachesTheProduct(t *testing.T) {
	for _, backend := range backends() {
		t.Run(backend, func(t *testing.T) {
			e := newTestEnv(t, backend)
			ctx := context.Background()
			provider, err := oidc.NewProvider(ctx, e.issuer)
			if err != nil {
				t.Fatal(err)
			}
			rp := rpConfig(e, provider, "report", "http://127.0.0.1:9/report/cb")
			verifier := oauth2.GenerateVerifier()
			b := e.browser()
			resp, err := b.Get(rp.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
			if err != nil {
				t.Fatal(err)
			}
			loginPage := readAll(t, resp)
			if !strings.Contains(loginPage, "Регистрация") {
				t.Fatal("the sign-in page has no link to registration")
			}
			authReq := resp.Request.URL.Query().Get("authRequestID")
			regURL := e.issuer + "/register?authRequestID=" + url.QueryEscape(authReq)
			newPhone := "+79035551234"
			resp, body := e.form(b, regURL, "", url.Values{"mode": {"phone"}, "login": {"8 903 555-12-34"}, "password": {"Ласточка-на-крыше-7"}})
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Подтвердите телефон") ||
				!strings.Contains(body, "7 (903) ***-**-34") || !strings.Contains(body, "Отправить повторно через") {
				t.Fatalf("confirmation page %d: %s", resp.StatusCode, body)
			}
			if n, _ := e.store.UserByPhone(ctx, newPhone); n != nil && n.ID != "" {
				t.Fatal("the account exists before the code was confirmed")
			}
			flow := regexpFind(t, flowRe, body)
			resp, body = e.form(b, resp.Request.URL.String(), "/register/confirm", url.Values{"flow": {flow}, "code": {"000000"}})
			if e.sent.lastCode(t, newPhone) != "000000" && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Неверный код. Осталось попыток: 4")) {
				t.Fatalf("wrong code: %d %s", resp.StatusCode, body)
			}
			resp, body = e.form(b, e.issuer+"/register/confirm?flow="+flow, "/register/confirm", url.Values{"flow": {flow}, "code": {e.sent.lastCode(t, newPhone)}})
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Телефон подтвержден!") || !strings.Contains(body, "Перейти в Астрал.Отчет") {
				t.Fatalf("done page %d: %s", resp.StatusCode, body)
			}
			if n := e.sent.count(t, newPhone); n != 1 {
				t.Fatalf("%d messages went to the new phone, want 1", n)
			}
			u, err := e.store.UserByPhone(ctx, newPhone)
			if err != nil || !u.PhoneVerified {
				t.Fatalf("account %+v, %v", u, err)
			}
			consents, err := e.store.UserConsents(ctx, u.ID)
			if err != nil || len(consents) != 2 || consents[0].IP == "" {
				t.Fatalf("consents %+v, %v", consents, err)
			}
			// The "continue" link completes the product's request with the new session.
			cb := e.signIn(b, e.issuer+"/login?authRequestID="+url.QueryEscape(authReq), "", "")
			tok, err := rp.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			idt, err := provider.Verifier(&oidc.Config{ClientID: "report"}).Verify(ctx, tok.Extra("id_token").(string))
			if err != nil {
				t.Fatal(err)
			}
			var claims struct {
				AMR []string `json:"amr"`
			}
			_ = idt.Claims(&claims)
			if idt.Subject != u.ID || strings.Join(claims.AMR, ",") != "otp,sms" {
				t.Fatalf("sub %s amr %v", idt.Subject, claims.AMR)
			}
		})
	}
}
