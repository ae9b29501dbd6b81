// Package esiatest is a stand-in ESIA (Gosuslugi) for tests. It checks every request
// as strictly as the description of the protocol allows — client_secret verified
// against the client's certificate over exactly client_id + scope + scope_org +
// timestamp + state + redirect_uri (+ code), client_certificate_hash equal to the
// upper-case hex Streebog-256 of that certificate's DER, the timestamp's form and a
// window around its clock, the state a UUID, the redirect_uri the same at both
// endpoints, codes single-use — and issues access and ID tokens signed with the
// esia-service GOST key (gosttest), then serves /rs/prns/{oid} and its contacts to
// the bearer of such an access token.
//
// A refused authorization request is redirected back with error=invalid_request
// and the reason in error_description (or answered 400 when the redirect_uri
// itself is unusable); a refused token request is a 400 with the reason. Refusals()
// lists the reasons. It misbehaves on demand ([Fault]).
//
//	es := esiatest.New(t, gosttest.Load(t, "esia-client").CertPEM)
//	es.LogIn(esiatest.Ivanov)
//	// IDP_ESIA_URL=es.URL, IDP_ESIA_CLIENT_ID=es.ClientID, IDP_ESIA_TOKEN_CERT_FILE=<es.TokenCertPEM>
package esiatest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/gost/gosttest"
)

// ClientID is the mnemonic the stand-in knows.
const ClientID = "ASTRAL_IDP"

// Window is how far a request's timestamp may be from the stand-in's clock.
const Window = 5 * time.Minute

// Fault is how the stand-in misbehaves in the logins that start after SetFault.
type Fault int

// Faults.
const (
	None            Fault = iota
	ForgedToken           // tokens signed by another GOST key
	WrongState            // the authorization endpoint returns another state
	WrongTokenState       // the token endpoint echoes another state
	ExpiredToken          // tokens expired an hour ago
	WrongAudience         // tokens for another client
	Deny                  // the person declines: error=access_denied
	Down                  // the token endpoint answers 503
)

// Person is who logs in at the stand-in.
type Person struct {
	OID                  int64
	LastName, FirstName  string
	MiddleName           string
	BirthDate            string // dd.MM.yyyy
	SNILS                string
	Trusted              bool
	Mobile, Email        string
	MobileOK, EmailOK    bool // VERIFIED
	ExtraUnverifiedEmail string
}

// Ivanov is a confirmed account with a verified mobile and email.
var Ivanov = Person{OID: 1000404834, LastName: "Иванов", FirstName: "Иван", MiddleName: "Иванович",
	BirthDate: "15.03.1985", SNILS: "112-233-445 95", Trusted: true,
	Mobile: "+7(916)1234567", MobileOK: true, Email: "Ivanov@Example.ru", EmailOK: true}

// Server is a running stand-in.
type Server struct {
	URL          string
	ClientID     string
	Issuer       string // the iss of its tokens: "http://{host}/", as ESIA writes it
	TokenCertPEM []byte // the certificate to verify its tokens with

	clientKey *gost.PublicKey
	trusted   *gost.PublicKey // the registered certificate's key, for Reset
	certHash  string
	service   *gost.PrivateKey
	forger    *gost.PrivateKey
	srv       *httptest.Server

	mu       sync.Mutex
	now      func() time.Time
	person   *Person
	fault    Fault
	codes    map[string]grant
	tokens   map[string]int64 // access token → oid
	persons  map[int64]Person
	refusals []string
	issued   int
}

type grant struct {
	redirectURI, scope string
	person             Person
	fault              Fault
}

// New starts a stand-in that trusts the client certificate clientCertPEM; it stops
// when the test ends. Nobody is logged in until LogIn.
func New(t testing.TB, clientCertPEM []byte) *Server {
	t.Helper()
	certs, err := gost.ParseCertificates(clientCertPEM)
	if err != nil || len(certs) == 0 {
		t.Fatalf("esiatest: client certificate: %v", err)
	}
	svc := gosttest.Load(t, "esia-service")
	forger := gosttest.Load(t, "esia-client") // any other GOST key forges
	s := &Server{
		ClientID: ClientID, TokenCertPEM: svc.CertPEM, clientKey: certs[0].PublicKey, trusted: certs[0].PublicKey,
		certHash: strings.ToUpper(hex.EncodeToString(gost.Streebog256(certs[0].Raw))),
		service:  svc.Key, forger: forger.Key, now: time.Now,
		codes: map[string]grant{}, tokens: map[string]int64{}, persons: map[int64]Person{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /aas/oauth2/v2/ac", s.authorize)
	mux.HandleFunc("POST /aas/oauth2/v3/te", s.token)
	mux.HandleFunc("GET /rs/prns/{oid}", s.prns)
	mux.HandleFunc("GET /rs/prns/{oid}/ctts", s.ctts)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	s.Issuer = "http://" + strings.TrimPrefix(s.srv.URL, "http://") + "/"
	t.Cleanup(s.srv.Close)
	return s
}

// SetNow pins the stand-in's clock.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetClientKey makes the stand-in verify client_secret with another key than the
// registered certificate's, as if another certificate were registered at ESIA.
func (s *Server) SetClientKey(k *gost.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clientKey = k
}

// Reset undoes SetFault, SetNow and SetClientKey.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.now, s.clientKey = None, time.Now, s.trusted
}

// LogIn sets who logs in from now on.
func (s *Server) LogIn(p Person) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.person = &p
}

// SetFault makes the logins that start from now on misbehave (None: behave).
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Refusals lists the reasons of every refused request, oldest first.
func (s *Server) Refusals() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refusals...)
}

// Issued counts the token answers given.
func (s *Server) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

func (s *Server) refuse(reason string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals = append(s.refusals, reason)
	return reason
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkSigned checks the parameters every signed request carries; it returns the
// refusal reason or "".
func (s *Server) checkSigned(v url.Values, code string) string {
	switch {
	case v.Get("client_id") != s.ClientID:
		return "unknown client_id"
	case v.Get("client_certificate_hash") != s.certHash:
		return "client_certificate_hash is not the hash of the registered certificate"
	case !uuidRe.MatchString(v.Get("state")):
		return "state is not a UUID"
	case v.Get("redirect_uri") == "":
		return "no redirect_uri"
	case v.Get("scope") == "":
		return "no scope"
	}
	ts, err := time.Parse("2006.01.02 15:04:05 -0700", v.Get("timestamp"))
	if err != nil {
		return "timestamp is not yyyy.MM.dd HH:mm:ss ±zzzz"
	}
	s.mu.Lock()
	now, key := s.now(), s.clientKey
	s.mu.Unlock()
	if d := now.Sub(ts); d > Window || d < -Window {
		return "timestamp outside the window"
	}
	secret := v.Get("client_secret")
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(secret, "="))
	if err != nil || strings.ContainsAny(secret, "+/") {
		return "client_secret is not base64url"
	}
	msg := v.Get("client_id") + v.Get("scope") + v.Get("scope_org") + v.Get("timestamp") + v.Get("state") +
		v.Get("redirect_uri") + code
	if err := key.Verify([]byte(msg), sig); err != nil {
		return "client_secret does not verify: " + err.Error()
	}
	return ""
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || (back.Scheme != "http" && back.Scheme != "https") || back.Host == "" {
		http.Error(w, s.refuse("bad redirect_uri"), http.StatusBadRequest)
		return
	}
	bq := back.Query()
	bq.Set("state", q.Get("state"))
	reason := s.checkSigned(q, "")
	if reason == "" && (q.Get("response_type") != "code" || !strings.Contains(" "+q.Get("scope")+" ", " openid ")) {
		reason = s.refuse("want response_type=code and scope openid")
	} else if reason != "" {
		s.refuse(reason)
	}
	s.mu.Lock()
	p, fault := s.person, s.fault
	s.mu.Unlock()
	switch {
	case reason != "":
		bq.Set("error", "invalid_request")
		bq.Set("error_description", reason)
	case p == nil || fault == Deny:
		bq.Set("error", "access_denied")
		bq.Set("error_description", "the person declined")
	default:
		code := rand.Text()
		s.mu.Lock()
		s.codes[code] = grant{redirectURI: q.Get("redirect_uri"), scope: q.Get("scope"), person: *p, fault: fault}
		s.mu.Unlock()
		bq.Set("code", code)
		if fault == WrongState {
			bq.Set("state", "6f1c2a8e-0b7d-4c3e-9a51-2d4b6e8f0a1c")
		}
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", s.refuse("unreadable form"))
		return
	}
	f := r.PostForm
	code := f.Get("code")
	if reason := s.checkSigned(f, code); reason != "" {
		oauthError(w, http.StatusBadRequest, "invalid_client", s.refuse(reason))
		return
	}
	if f.Get("grant_type") != "authorization_code" || f.Get("token_type") != "Bearer" {
		oauthError(w, http.StatusBadRequest, "invalid_request", s.refuse("want grant_type=authorization_code, token_type=Bearer"))
		return
	}
	s.mu.Lock()
	g, found := s.codes[code]
	delete(s.codes, code) // single use
	now := s.now()
	s.mu.Unlock()
	switch {
	case !found:
		oauthError(w, http.StatusBadRequest, "invalid_grant", s.refuse("unknown or used code"))
		return
	case g.redirectURI != f.Get("redirect_uri") || g.scope != f.Get("scope"):
		oauthError(w, http.StatusBadRequest, "invalid_grant", s.refuse("redirect_uri or scope differ from the authorization request"))
		return
	case g.fault == Down:
		http.Error(w, "down for a test", http.StatusServiceUnavailable)
		return
	}
	key, aud, iat := s.service, s.ClientID, now
	switch g.fault {
	case ForgedToken:
		key = s.forger
	case WrongAudience:
		aud = "ANOTHER_IS"
	case ExpiredToken:
		iat = now.Add(-2 * time.Hour)
	}
	oid := g.person.OID
	access := rand.Text()
	at, err := s.sign(key, "access", map[string]any{
		"iss": s.Issuer, "client_id": aud, "urn:esia:sbj_id": oid, "scope": g.scope, "urn:esia:sid": rand.Text(),
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": iat.Add(time.Hour).Unix(), "jti": access,
	})
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	it, err := s.sign(key, "id", map[string]any{
		"iss": s.Issuer, "aud": aud, "sub": strconv.FormatInt(oid, 10), "auth_time": iat.Unix(), "amr": "PWD",
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": iat.Add(time.Hour).Unix(),
		"urn:esia:sbj": map[string]any{"urn:esia:sbj:oid": oid, "urn:esia:sbj:typ": "P", "urn:esia:sbj:is_tru": g.person.Trusted},
	})
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	state := f.Get("state")
	if g.fault == WrongTokenState {
		state = "6f1c2a8e-0b7d-4c3e-9a51-2d4b6e8f0a1c"
	}
	s.mu.Lock()
	s.tokens[at] = oid
	s.persons[oid] = g.person
	s.issued++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "id_token": it, "state": state, "token_type": "Bearer", "expires_in": 3600,
	})
}

// sign makes a GOST-signed JWT as ESIA does: alg GOST3410_2012_256, the signature
// s||r big-endian, base64url.
func (s *Server) sign(key *gost.PrivateKey, sbt string, claims map[string]any) (string, error) {
	h, _ := json.Marshal(map[string]any{"alg": "GOST3410_2012_256", "typ": "JWT", "sbt": sbt, "ver": 1})
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sig, err := key.Sign([]byte(in))
	if err != nil {
		return "", err
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// bearer returns the person the request's access token is of, or nil.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) *Person {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	oid, found := s.tokens[tok]
	p, known := s.persons[oid]
	s.mu.Unlock()
	if !ok || !found || !known || r.PathValue("oid") != strconv.FormatInt(oid, 10) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"code": "ESIA-005005", "message": s.refuse("bad bearer token")})
		return nil
	}
	return &p
}

func (s *Server) prns(w http.ResponseWriter, r *http.Request) {
	p := s.bearer(w, r)
	if p == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"stateFacts": []string{"EntityRoot"}, "firstName": p.FirstName, "lastName": p.LastName,
		"middleName": p.MiddleName, "birthDate": p.BirthDate, "gender": "M", "trusted": p.Trusted,
		"snils": p.SNILS, "citizenship": "RUS", "updatedOn": 1700000000, "status": "REGISTERED", "verifying": false,
		"rIdDoc": 1, "containsUpCfmCode": false, "eTag": "A1B2C3",
	})
}

func (s *Server) ctts(w http.ResponseWriter, r *http.Request) {
	p := s.bearer(w, r)
	if p == nil {
		return
	}
	if r.URL.Query().Get("embed") != "(elements)" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": s.refuse("want embed=(elements)")})
		return
	}
	status := func(ok bool) string {
		if ok {
			return "VERIFIED"
		}
		return "NOT_VERIFIED"
	}
	var elements []map[string]any
	add := func(typ, value string, ok bool) {
		if value != "" {
			elements = append(elements, map[string]any{"stateFacts": []string{"Identifiable"}, "id": len(elements) + 1,
				"type": typ, "vrfStu": status(ok), "value": value, "eTag": "E" + strconv.Itoa(len(elements))})
		}
	}
	add("EML", p.ExtraUnverifiedEmail, false)
	add("MBT", p.Mobile, p.MobileOK)
	add("EML", p.Email, p.EmailOK)
	writeJSON(w, http.StatusOK, map[string]any{"stateFacts": []string{"hasSize"}, "size": len(elements), "elements": elements})
}

func oauthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// String describes the stand-in for test logs.
func (s *Server) String() string { return fmt.Sprintf("esiatest %s", s.URL) }
