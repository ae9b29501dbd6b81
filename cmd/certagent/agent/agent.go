// Package agent is the reference signing agent's HTTP handler: the contract the
// certificate sign-in page talks to (DESIGN.md, "Signing agent"), over loopback HTTP
// with CORS limited to one origin — the identity provider's.
//
//	GET  /certificates          → [{"id","subject","issuer","not_after","der"}]
//	POST /sign {"id","data"}    → {"cms"}: a detached CMS SignedData over data, with
//	                              the signer's certificate included
//
// Bodies are JSON, binary values standard base64. Errors are JSON too:
// {"error": "…"} with a 4xx status.
//
// A request that carries an Origin header other than the allowed one is refused
// (403, no CORS headers), so a page of another site can neither read the list nor
// make the agent sign; a request without Origin (curl, a test) is served. POST needs
// Content-Type application/json, which a browser never sends cross-origin without a
// preflight, so the origin check always runs before anything is signed.
package agent

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/astral/idp/login/gost"
)

// Limits of a request.
const (
	// MaxBody bounds a POST /sign body.
	MaxBody = 64 << 10
	// MaxData bounds the bytes to sign: a sign-in challenge is a few dozen bytes.
	MaxData = 16 << 10
)

// Key is one certificate the agent can sign with.
type Key struct {
	Cert *gost.Certificate
	Key  *gost.PrivateKey
}

// Load reads a certificate (PEM or DER; the first certificate of the file) and its
// private key (PEM: GOST R 34.10-2012, RSA or ECDSA).
func Load(certFile, keyFile string) (Key, error) {
	raw, err := os.ReadFile(certFile)
	if err != nil {
		return Key{}, fmt.Errorf("read certificate: %w", err)
	}
	certs, err := gost.ParseCertificates(raw)
	if err != nil {
		return Key{}, fmt.Errorf("certificate %s: %w", certFile, err)
	}
	pemKey, err := os.ReadFile(keyFile)
	if err != nil {
		return Key{}, fmt.Errorf("read key: %w", err)
	}
	k, err := gost.ParsePrivateKeyPEM(pemKey)
	if err != nil {
		return Key{}, fmt.Errorf("key %s: %w", keyFile, err)
	}
	return Key{Cert: certs[0], Key: k}, nil
}

// Agent serves the contract for its keys.
type Agent struct {
	keys   []Key
	byID   map[string]Key
	origin string
	log    *slog.Logger
}

// New makes the agent. origin is the one web origin allowed to call it
// ("https://id.astral.ru", no path); keys are listed in the order given.
func New(origin string, keys []Key, log *slog.Logger) (*Agent, error) {
	origin = strings.TrimSuffix(origin, "/")
	if !strings.HasPrefix(origin, "http://") && !strings.HasPrefix(origin, "https://") {
		return nil, fmt.Errorf("origin %q: want http(s)://host[:port]", origin)
	}
	if len(keys) == 0 {
		return nil, errors.New("no certificate to sign with")
	}
	if log == nil {
		log = slog.Default()
	}
	a := &Agent{origin: origin, byID: map[string]Key{}, log: log}
	for _, k := range keys {
		if k.Cert == nil || k.Key == nil {
			return nil, errors.New("a key without its certificate")
		}
		id := k.Cert.Thumbprint
		if _, dup := a.byID[id]; dup {
			return nil, fmt.Errorf("certificate %s given twice", id)
		}
		a.byID[id] = k
		a.keys = append(a.keys, k)
	}
	return a, nil
}

// Certificate is one entry of GET /certificates.
type Certificate struct {
	ID       string `json:"id"`        // the SHA-1 thumbprint, hex
	Subject  string `json:"subject"`   // the owner and organization, readable
	Issuer   string `json:"issuer"`    // the issuing CA, readable
	NotAfter string `json:"not_after"` // RFC 3339
	DER      string `json:"der"`       // base64
}

// SignRequest is the body of POST /sign.
type SignRequest struct {
	ID   string `json:"id"`
	Data string `json:"data"` // base64
}

// SignResponse is the answer of POST /sign.
type SignResponse struct {
	CMS string `json:"cms"` // base64 DER
}

// ServeHTTP implements http.Handler.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin != "" && origin != a.origin {
		a.log.Warn("request from another origin refused", "origin", origin, "path", r.URL.Path)
		writeError(w, http.StatusForbidden, "origin not allowed")
		return
	}
	if origin != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		a.preflight(w, r)
		return
	}
	switch r.URL.Path {
	case "/certificates":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET, OPTIONS")
			writeError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		a.list(w)
	case "/sign":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST, OPTIONS")
			writeError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		a.sign(w, r)
	default:
		writeError(w, http.StatusNotFound, "unknown path")
	}
}

// preflight answers a CORS preflight of the allowed origin; the origin check ran before.
func (a *Agent) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	// Chrome's Private Network Access: a public page calling a loopback server asks
	// first; only the allowed origin ever gets this far.
	if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
		h.Set("Access-Control-Allow-Private-Network", "true")
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Agent) list(w http.ResponseWriter) {
	out := make([]Certificate, 0, len(a.keys))
	for _, k := range a.keys {
		c := k.Cert
		out = append(out, Certificate{
			ID: c.Thumbprint, Subject: describe(c.Subject), Issuer: describe(c.Issuer),
			NotAfter: c.NotAfter.UTC().Format(time.RFC3339), DER: base64.StdEncoding.EncodeToString(c.Raw),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Agent) sign(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "want Content-Type application/json")
		return
	}
	var req SignRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		writeError(w, http.StatusBadRequest, "want a JSON object {\"id\",\"data\"}")
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "want one JSON object")
		return
	}
	k, ok := a.byID[req.ID]
	if !ok {
		writeError(w, http.StatusNotFound, "no such certificate")
		return
	}
	data, err := base64.StdEncoding.DecodeString(req.Data)
	if err != nil {
		writeError(w, http.StatusBadRequest, "data: want standard base64")
		return
	}
	if len(data) == 0 || len(data) > MaxData {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("data: want 1 to %d bytes", MaxData))
		return
	}
	cms, err := gost.SignDetached(k.Key, k.Cert, data)
	if err != nil {
		a.log.Error("sign", "certificate", req.ID, "err", err)
		writeError(w, http.StatusInternalServerError, "signing failed")
		return
	}
	a.log.Info("signed", "certificate", req.ID, "bytes", len(data))
	writeJSON(w, http.StatusOK, SignResponse{CMS: base64.StdEncoding.EncodeToString(cms)})
}

// describe is a readable name: the owner and, when there is one, the organization.
func describe(n gost.Name) string {
	owner := n.Owner()
	if n.Organization != "" && n.Organization != owner {
		if owner == "" {
			return n.Organization
		}
		return owner + ", " + n.Organization
	}
	return owner
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a client that went away is not our error
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
