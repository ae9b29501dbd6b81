package server

import (
	"context"
	"net/http"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func backends() []string { return []string{"sqlite", "postgres"} }

func rpConfig(e *testEnv, provider *oidc.Provider, clientID, redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: clientID, ClientSecret: testSecret, Endpoint: provider.Endpoint(),
		RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID, "profile", "phone", oidc.ScopeOfflineAccess},
	}
}

// TestCodeFlow is the whole journey with an independent relying party: discovery,
// authorization with PKCE and nonce, password sign-in, code exchange, ID token
// verification, userinfo, refresh rotation, and single sign-on into a second product.
func TestCodeFlow(t *testing.T) {
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
			cb := e.signIn(b, rp.AuthCodeURL("st-1", oidc.Nonce("n-1"), oauth2.S256ChallengeOption(verifier)), "8 (910) 594-08-99", e.password)
			if cb.Query().Get("state") != "st-1" || cb.Query().Get("code") == "" {
				t.Fatalf("callback %s", cb)
			}
			tok, err := rp.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := provider.Verifier(&oidc.Config{ClientID: "report"}).Verify(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			var claims struct {
				Nonce    string   `json:"nonce"`
				AMR      []string `json:"amr"`
				AuthTime int64    `json:"auth_time"`
				ACR      string   `json:"acr"`
				SID      string   `json:"sid"`
				Phone    string   `json:"phone_number"`
				Name     string   `json:"name"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if idt.Subject != e.userID || claims.Nonce != "n-1" || len(claims.AMR) != 1 || claims.AMR[0] != "pwd" ||
				claims.AuthTime == 0 || claims.SID == "" || claims.Phone != "+79105940899" || claims.Name != "Иванов Иван" || claims.ACR == "" {
				t.Fatalf("ID token claims %+v sub %s", claims, idt.Subject)
			}
			info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatal(err)
			}
			if info.Subject != e.userID {
				t.Fatalf("userinfo sub %q", info.Subject)
			}
			// Refresh rotates; the old token then fails and revokes the family.
			old := tok.RefreshToken
			if old == "" {
				t.Fatal("no refresh token")
			}
			fresh, err := rp.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token()
			if err != nil {
				t.Fatal(err)
			}
			if fresh.RefreshToken == "" || fresh.RefreshToken == old {
				t.Fatal("refresh token not rotated")
			}
			if _, err := rp.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token(); err == nil {
				t.Fatal("replayed refresh token accepted")
			}
			if _, err := rp.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token(); err == nil {
				t.Fatal("family not revoked after replay")
			}
			// Single sign-on: the second product gets a code without a form.
			rp2 := rpConfig(e, provider, "signature", "http://127.0.0.1:9/signature/cb")
			v2 := oauth2.GenerateVerifier()
			resp, err := b.Get(rp2.AuthCodeURL("st-2", oauth2.S256ChallengeOption(v2)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("second product: status %d, want a redirect without a form", resp.StatusCode)
			}
			loc, _ := resp.Location()
			if loc.Query().Get("code") == "" || loc.Host != "127.0.0.1:9" {
				t.Fatalf("second product redirect %s", loc)
			}
			if _, err := rp2.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(v2)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
