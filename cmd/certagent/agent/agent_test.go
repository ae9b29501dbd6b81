package agent_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/cmd/certagent/agent"
	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
)

const origin = "http://localhost:8080"

// start runs the agent with ivanov's (GOST-256) and the RSA identity's keys, loaded
// from files as the command does.
func start(t *testing.T) (*httptest.Server, []gosttest.Identity) {
	t.Helper()
	ids := []gosttest.Identity{gosttest.Load(t, "ivanov"), gosttest.Load(t, "rsa")}
	keys := make([]agent.Key, 0, len(ids))
	for _, id := range ids {
		certFile, keyFile := gosttest.WriteFiles(t, id)
		k, err := agent.Load(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	a, err := agent.New(origin+"/", keys, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv, ids
}

func do(t *testing.T, method, url, from, ctype, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if from != "" {
		req.Header.Set("Origin", from)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestCertificates checks the list's shape: DESIGN.md's fields, the DER as base64,
// the thumbprint as the id.
func TestCertificates(t *testing.T) {
	srv, ids := start(t)
	resp, body := do(t, http.MethodGet, srv.URL+"/certificates", origin, "", "")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /certificates: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var raw []map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != len(ids) {
		t.Fatalf("listed %d certificates; want %d", len(raw), len(ids))
	}
	for i, entry := range raw {
		for _, k := range []string{"id", "subject", "issuer", "not_after", "der"} {
			if s, ok := entry[k].(string); !ok || s == "" {
				t.Errorf("entry %d: field %q is %v; want a non-empty string", i, k, entry[k])
			}
		}
		if len(entry) != 5 {
			t.Errorf("entry %d has fields %v; want exactly id, subject, issuer, not_after, der", i, entry)
		}
		der, err := base64.StdEncoding.DecodeString(entry["der"].(string))
		if err != nil || !bytes.Equal(der, ids[i].Cert.Raw) {
			t.Errorf("entry %d: der is not the certificate in base64 (%v)", i, err)
		}
		if entry["id"] != ids[i].Cert.Thumbprint {
			t.Errorf("entry %d: id %v; want the thumbprint %s", i, entry["id"], ids[i].Cert.Thumbprint)
		}
		if _, err := time.Parse(time.RFC3339, entry["not_after"].(string)); err != nil {
			t.Errorf("entry %d: not_after %v: %v", i, entry["not_after"], err)
		}
	}
	if s := raw[0]["subject"].(string); !strings.Contains(s, "Иванов Иван Иванович") {
		t.Errorf("subject %q; want the owner's name", s)
	}
}

// TestSign signs with each key and verifies the answer as the server does: a
// detached CMS over exactly the data, with the signer's certificate in it.
func TestSign(t *testing.T) {
	srv, ids := start(t)
	data := []byte("http://localhost:8080 certificate sign-in abc 2027-01-15T12:00:00Z")
	for _, id := range ids {
		t.Run(id.Name, func(t *testing.T) {
			body, _ := json.Marshal(agent.SignRequest{ID: id.Cert.Thumbprint, Data: base64.StdEncoding.EncodeToString(data)})
			resp, out := do(t, http.MethodPost, srv.URL+"/sign", origin, "application/json", string(body))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /sign: %d %s", resp.StatusCode, out)
			}
			var got agent.SignResponse
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			cms, err := base64.StdEncoding.DecodeString(got.CMS)
			if err != nil {
				t.Fatalf("cms is not base64: %v", err)
			}
			sd, err := gost.VerifyDetached(cms, data)
			if err != nil {
				t.Fatalf("the agent's signature does not verify: %v", err)
			}
			if sd.Signer == nil || sd.Signer.Thumbprint != id.Cert.Thumbprint {
				t.Errorf("signer %v; want %s", sd.Signer, id.Cert.Thumbprint)
			}
			if _, err := gost.VerifyDetached(cms, append(data, '!')); err == nil {
				t.Error("the signature verified over other data")
			}
		})
	}
}

// TestSignRefusals: every malformed request is a JSON error with its status.
func TestSignRefusals(t *testing.T) {
	srv, ids := start(t)
	id := ids[0].Cert.Thumbprint
	ok := base64.StdEncoding.EncodeToString([]byte("x"))
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
	}{
		{"unknown certificate", "POST", "/sign", "application/json", `{"id":"00","data":"` + ok + `"}`, 404},
		{"not base64", "POST", "/sign", "application/json", `{"id":"` + id + `","data":"***"}`, 400},
		{"empty data", "POST", "/sign", "application/json", `{"id":"` + id + `","data":""}`, 400},
		{"too much data", "POST", "/sign", "application/json", `{"id":"` + id + `","data":"` +
			base64.StdEncoding.EncodeToString(make([]byte, agent.MaxData+1)) + `"}`, 400},
		{"body too large", "POST", "/sign", "application/json", `{"id":"` + strings.Repeat("a", agent.MaxBody) + `"}`, 413},
		{"not JSON", "POST", "/sign", "application/json", `id=1`, 400},
		{"unknown field", "POST", "/sign", "application/json", `{"id":"` + id + `","data":"` + ok + `","x":1}`, 400},
		{"two objects", "POST", "/sign", "application/json", `{"id":"` + id + `","data":"` + ok + `"}{}`, 400},
		{"text/plain", "POST", "/sign", "text/plain", `{"id":"` + id + `","data":"` + ok + `"}`, 415},
		{"GET sign", "GET", "/sign", "", "", 405},
		{"POST list", "POST", "/certificates", "application/json", "{}", 405},
		{"unknown path", "GET", "/keys", "", "", 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, srv.URL+tc.path, origin, tc.ctype, tc.body)
			var e struct{ Error string }
			if resp.StatusCode != tc.status || json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Errorf("%d %s; want %d with a JSON error", resp.StatusCode, body, tc.status)
			}
		})
	}
}

// TestCORS: the issuer's origin gets CORS headers and its preflight answered; any
// other origin gets neither, and nothing is listed or signed for it.
func TestCORS(t *testing.T) {
	srv, ids := start(t)
	signBody, _ := json.Marshal(agent.SignRequest{ID: ids[0].Cert.Thumbprint, Data: base64.StdEncoding.EncodeToString([]byte("x"))})
	preflight := func(from string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/sign", nil)
		req.Header.Set("Origin", from)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		req.Header.Set("Access-Control-Request-Private-Network", "true")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	t.Run("allowed origin", func(t *testing.T) {
		resp := preflight(origin)
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") ||
			h.Get("Access-Control-Allow-Private-Network") != "true" {
			t.Errorf("preflight: %d %v", resp.StatusCode, h)
		}
		resp, _ = do(t, http.MethodGet, srv.URL+"/certificates", origin, "", "")
		if resp.Header.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Errorf("GET from the allowed origin: headers %v", resp.Header)
		}
	})
	for _, from := range []string{"https://evil.example", "http://localhost:8081", "null"} {
		t.Run("refused "+from, func(t *testing.T) {
			resp := preflight(from)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" ||
				resp.Header.Get("Access-Control-Allow-Private-Network") != "" {
				t.Errorf("preflight from %s: %d %v", from, resp.StatusCode, resp.Header)
			}
			resp, body := do(t, http.MethodGet, srv.URL+"/certificates", from, "", "")
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" || bytes.Contains(body, []byte("der")) {
				t.Errorf("GET from %s: %d %v %s", from, resp.StatusCode, resp.Header, body)
			}
			resp, body = do(t, http.MethodPost, srv.URL+"/sign", from, "application/json", string(signBody))
			if resp.StatusCode != http.StatusForbidden || bytes.Contains(body, []byte("cms")) {
				t.Errorf("POST /sign from %s: %d %s", from, resp.StatusCode, body)
			}
		})
	}
}

// TestNew refuses a configuration that could not work.
func TestNew(t *testing.T) {
	k := agent.Key{Cert: gosttest.Load(t, "ivanov").Cert, Key: gosttest.Load(t, "ivanov").Key}
	cases := []struct {
		name   string
		origin string
		keys   []agent.Key
	}{
		{"no keys", origin, nil},
		{"origin without scheme", "localhost:8080", []agent.Key{k}},
		{"the same certificate twice", origin, []agent.Key{k, k}},
	}
	for _, tc := range cases {
		if _, err := agent.New(tc.origin, tc.keys, nil); err == nil {
			t.Errorf("%s: New succeeded; want an error", tc.name)
		}
	}
}
