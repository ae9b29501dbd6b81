package server

// Benchmarks of the real server: Server.Run on a loopback port, production options
// (benchOptions: DefaultOptions, argon2id DefaultParams, JSON request log), driven
// over HTTP with keep-alive connections by b.RunParallel (the API through fasthttp, the
// sign-in's browser steps through net/http; see benchEnv.fast). The load generator shares the
// CPUs with the server, so ops/s is what one machine does while also generating its own
// load. By default the server runs in this process, as the README's figures were
// measured; with IDP_BENCH_SERVER_PROCESS=1 it runs in a process of its own
// (benchserver_test.go), so that its CPU time, memory and profile
// (IDP_BENCH_CPUPROFILE) are its alone, and the load generator's CPU is reported
// apart (loadgen-cpu-µs/op). Two Go runtimes on two cores then also wake and switch
// between processes on every request, which costs throughput.
//
//	task bench                       # everything, SQLite and PostgreSQL (see Taskfile.yml)
//	go test -run '^$' -bench 'Endpoints/sqlite/ES256' ./cmd/idp/server
//
// Per sub-benchmark: ops/s, p50-ms and p99-ms of one operation (closed loop with
// benchParallelism×GOMAXPROCS goroutines, so latencies are those at saturation; the
// load run in load_test.go measures latency below the peak), and CPU time:
// cpu-µs/op of the server's process (with the load generator, unless apart),
// db-cpu-µs/op of the PostgreSQL backends, and others-cpu-% — the share of the machine the rest of it used
// meanwhile; a figure taken while that is far from 0 is not the machine's own.
//
// Against the same work done alone on the same CPUs, measured right after it: token
// grants report sig-ceiling-ops/s (go-jose signatures a second for IDP_SIGNING_ALG,
// divided by the signatures one grant makes), sig-ceiling-% (ops/s against it) and
// cpu-sig-ceiling-% (the same ratio in CPU time: the signing's CPU time against the
// server's process's and the database's for one grant, which other load does not
// skew); the password sign-in reports hash-ceiling-* against argon2id alone.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/valyala/fasthttp"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/astral/idp/cmd/idp/config"
	"github.com/astral/idp/login/password"
	"github.com/astral/idp/storage"
	"github.com/astral/idp/storage/pgtest"
)

// benchParallelism is RunParallel's goroutines per GOMAXPROCS: 16 clients on 2 cores,
// enough to keep both cores busy while some requests wait on the database.
const benchParallelism = 8

// benchAlgs are the IDP_SIGNING_ALG values.
var benchAlgs = []string{"RS256", "ES256"}

const (
	benchPassword  = "correct horse battery staple"
	benchUsers     = 32
	benchRedirect  = "http://127.0.0.1:9/report/cb"
	benchScope     = "openid profile phone offline_access"
	benchTokenPath = "/oauth/token"
)

// benchEnv is a running server with production settings and the clients that drive it.
type benchEnv struct {
	tb     testing.TB
	alg    string
	issuer string
	server *benchServer
	tr     *http.Transport
	api    *http.Client // no cookies, no redirects
	// fast drives the API operations of the load (token endpoint, userinfo,
	// introspection, healthz): it sends and reads on the calling goroutine over
	// pooled keep-alive connections, where net/http's client hands every request to
	// two goroutines of its own. In this process it shares the two cores with the
	// server, and measured here it took about 140 µs of CPU per code exchange with
	// net/http, several times the share a load tool should take.
	fast   *fasthttp.HostClient
	phones []string // accounts, all with benchPassword

	ssoOnce sync.Once
	sso     *http.Client // a browser signed in once, for single sign-on codes
	ssoErr  error

	chains chan string // refresh tokens, each the head of its own rotating chain

	pg *gorm.DB // PostgreSQL: a connection of our own, to find the server's backends
}

// newBenchEnv starts the server as `idp serve` would, on SQLite or PostgreSQL, with
// IDP_SIGNING_ALG=alg and benchOptions, in this process or in one of its own
// (benchProcessEnv). The schema, the products, the signing keys and the accounts are
// made here first.
func newBenchEnv(tb testing.TB, backend, alg string) *benchEnv {
	tb.Helper()
	dir := tb.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "idp.db")
	var pg *gorm.DB
	if backend == "postgres" {
		dbURL = pgtest.URL(tb)
		var err error
		if pg, err = gorm.Open(postgres.Open(dbURL), &gorm.Config{Logger: logger.Discard}); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			if db, err := pg.DB(); err == nil {
				_ = db.Close()
			}
		})
	}
	addr := freeLoopbackAddr(tb)
	e := &benchEnv{tb: tb, alg: alg, issuer: "http://" + addr, chains: make(chan string, 1024), pg: pg}
	clients := fmt.Sprintf(`clients:
  - id: report
    name: "Астрал.Отчет"
    secret: %q
    type: web
    redirect_uris: [%q]
    grant_types: [authorization_code, refresh_token]
  - id: signature
    name: "Астрал.Подпись"
    secret: %q
    type: web
    redirect_uris: ["http://127.0.0.1:9/signature/cb"]
    grant_types: [authorization_code, refresh_token, client_credentials]
`, testSecret, benchRedirect, testSecret)
	clientsFile := filepath.Join(dir, "clients.yaml")
	if err := os.WriteFile(clientsFile, []byte(clients), 0o600); err != nil {
		tb.Fatal(err)
	}
	env := map[string]string{
		"IDP_ADDR": addr, "IDP_ISSUER": e.issuer, "IDP_DATABASE_URL": dbURL, "IDP_CLIENTS_FILE": clientsFile,
		"IDP_SIGNING_ALG": alg,
		"IDP_MASTER_KEY":  base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	seed, err := New(ctx, cfg, benchOptions())
	if err != nil {
		tb.Fatal(err)
	}
	hash, err := password.NewHasher(password.DefaultParams).Hash(benchPassword)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range benchUsers {
		phone := fmt.Sprintf("+7910%07d", 5940000+i)
		u := &storage.User{Phone: &phone, PhoneVerified: true, PasswordHash: hash, FamilyName: "Иванов", GivenName: "Иван"}
		if err := seed.Store.CreateUser(ctx, u); err != nil {
			tb.Fatal(err)
		}
		e.phones = append(e.phones, phone)
	}
	exited := make(chan struct{})
	if os.Getenv(benchProcessEnv) != "" {
		if err := seed.Close(); err != nil {
			tb.Fatal(err)
		}
		e.server = startBenchServer(tb, env)
		exited = e.server.exited
	} else {
		restore, err := logToDevNull()
		if err != nil {
			tb.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- seed.Run(runCtx)
			close(exited)
		}()
		tb.Cleanup(func() {
			stop()
			<-exited
			if err := <-done; err != nil {
				tb.Error("server stopped: ", err)
			}
			restore()
			_ = seed.Close()
		})
	}
	e.tr = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	e.api = &http.Client{
		Transport:     e.tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	tb.Cleanup(e.tr.CloseIdleConnections)
	e.fast = &fasthttp.HostClient{
		Addr: addr, MaxConns: 1024, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		MaxIdleConnDuration: 90 * time.Second, NoDefaultUserAgentHeader: true, DisablePathNormalizing: true,
	}
	tb.Cleanup(e.fast.CloseIdleConnections)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := e.api.Get(e.issuer + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			tb.Fatal("the server stopped")
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("server not ready on %s: %v", e.issuer, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e
}

// browser is a client with its own cookies that follows redirects within the issuer
// and stops at the one to the product.
func (e *benchEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Transport: e.tr, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.HasPrefix(req.URL.String(), e.issuer) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// call sends req and reads the whole body (so the connection is reused).
func call(c *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}

// basicAuth is client_secret_basic for clientID (RFC 6749 §2.3.1: form-encoded, then
// base64).
func basicAuth(clientID string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID)+":"+url.QueryEscape(testSecret)))
}

// fastCall sends method path to the server through e.fast, with authorization and a
// form body when not empty, and returns the status and a copy of the body.
func (e *benchEnv) fastCall(method, path, authorization, form string) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(e.issuer + path)
	req.Header.SetMethod(method)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if form != "" {
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString(form)
	}
	if err := e.fast.Do(req, resp); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), bytes.Clone(resp.Body()), nil
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// grant posts form to the token endpoint as clientID.
func (e *benchEnv) grant(clientID string, form url.Values) (*tokenResponse, error) {
	status, body, err := e.fastCall(http.MethodPost, benchTokenPath, basicAuth(clientID), form.Encode())
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("token endpoint (%s): %d %s", form.Get("grant_type"), status, body)
	}
	var t tokenResponse
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if t.AccessToken == "" {
		return nil, fmt.Errorf("token response without access_token: %s", body)
	}
	return &t, nil
}

// healthz is the floor under every operation: one keep-alive HTTP round trip through
// the server's middleware (request id, log line, metrics, security headers), no
// database, on both the client's and the server's side.
func (e *benchEnv) healthz() error {
	status, _, err := e.fastCall(http.MethodGet, "/healthz", "", "")
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("healthz: %d", status)
	}
	return err
}

func (e *benchEnv) clientCredentials() error {
	_, err := e.grant("signature", url.Values{"grant_type": {"client_credentials"}})
	return err
}

// authCode is an authorization code with its PKCE verifier.
type authCode struct{ code, verifier string }

func (e *benchEnv) exchange(c authCode) (*tokenResponse, error) {
	t, err := e.grant("report", url.Values{
		"grant_type": {"authorization_code"}, "code": {c.code}, "redirect_uri": {benchRedirect},
		"code_verifier": {c.verifier},
	})
	if err == nil && (t.IDToken == "" || t.RefreshToken == "") {
		err = errors.New("code exchange without id_token or refresh_token")
	}
	return t, err
}

func (e *benchEnv) refresh(rt string) (string, error) {
	t, err := e.grant("report", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if err != nil {
		return "", err
	}
	if t.RefreshToken == "" || t.IDToken == "" {
		return "", errors.New("refresh without a new refresh token or id_token")
	}
	return t.RefreshToken, nil
}

func (e *benchEnv) userinfo(accessToken string) error {
	status, body, err := e.fastCall(http.MethodGet, "/userinfo", "Bearer "+accessToken, "")
	if err != nil {
		return err
	}
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"sub"`)) {
		return fmt.Errorf("userinfo: %d %s", status, body)
	}
	return nil
}

func (e *benchEnv) introspect(accessToken string) error {
	status, body, err := e.fastCall(http.MethodPost, "/oauth/introspect", basicAuth("report"),
		url.Values{"token": {accessToken}}.Encode())
	if err != nil {
		return err
	}
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"active":true`)) {
		return fmt.Errorf("introspection: %d %s", status, body)
	}
	return nil
}

// authorize runs an authorization request of the product "report" in browser b: the
// redirect to the login page, then either single sign-on (b has a session) or the
// password form for phone. It returns the code the product receives.
func (e *benchEnv) authorize(b *http.Client, phone string) (authCode, error) {
	var buf [32]byte
	_, _ = rand.Read(buf[:])
	verifier := base64.RawURLEncoding.EncodeToString(buf[:])
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {"report"}, "redirect_uri": {benchRedirect}, "response_type": {"code"},
		"scope": {benchScope}, "state": {"st"}, "nonce": {"n-" + verifier[:8]},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/authorize?"+q.Encode(), nil)
	resp, body, err := call(b, req)
	if err != nil {
		return authCode{}, err
	}
	if resp.StatusCode == http.StatusOK && phone != "" {
		m := csrfRe.FindSubmatch(body)
		if m == nil {
			return authCode{}, fmt.Errorf("no CSRF token on the sign-in page: %.300s", body)
		}
		form := url.Values{"_csrf": {string(m[1])}, "mode": {"phone"}, "login": {phone}, "password": {benchPassword}}
		req, _ = http.NewRequest(http.MethodPost, resp.Request.URL.String(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, body, err = call(b, req); err != nil {
			return authCode{}, err
		}
	}
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return authCode{}, fmt.Errorf("authorization ended in %d, not a redirect to the product: %.300s", resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		return authCode{}, err
	}
	c := loc.Query().Get("code")
	if c == "" || !strings.HasPrefix(loc.String(), benchRedirect) {
		return authCode{}, fmt.Errorf("redirect without a code: %s", loc)
	}
	return authCode{code: c, verifier: verifier}, nil
}

// ssoBrowser is a browser signed in once (account 0).
func (e *benchEnv) ssoBrowser() (*http.Client, error) {
	e.ssoOnce.Do(func() {
		b := e.browser()
		if _, err := e.authorize(b, e.phones[0]); err != nil {
			e.ssoErr = err
			return
		}
		e.sso = b
	})
	return e.sso, e.ssoErr
}

// codes makes n authorization codes by single sign-on (3 requests each), in parallel.
func (e *benchEnv) codes(n int) ([]authCode, error) {
	b, err := e.ssoBrowser()
	if err != nil {
		return nil, err
	}
	out := make([]authCode, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(n, 16) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := e.authorize(b, "")
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				out[i] = c
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

// tokens makes n code exchanges (outside any timer) and returns their responses.
func (e *benchEnv) tokens(n int) ([]*tokenResponse, error) {
	cs, err := e.codes(n)
	if err != nil {
		return nil, err
	}
	out := make([]*tokenResponse, n)
	for i, c := range cs {
		if out[i], err = e.exchange(c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// takeChain hands out a refresh token that heads its own chain; putChain returns the
// chain's newest token.
func (e *benchEnv) takeChain() (string, error) {
	select {
	case rt := <-e.chains:
		return rt, nil
	default:
	}
	ts, err := e.tokens(1)
	if err != nil {
		return "", err
	}
	return ts[0].RefreshToken, nil
}

func (e *benchEnv) putChain(rt string) {
	select {
	case e.chains <- rt:
	default:
	}
}

// fillChains makes sure n chains wait in the pool.
func (e *benchEnv) fillChains(n int) error {
	if missing := n - len(e.chains); missing > 0 {
		ts, err := e.tokens(missing)
		if err != nil {
			return err
		}
		for _, t := range ts {
			e.putChain(t.RefreshToken)
		}
	}
	return nil
}

// latencies collects per-request durations from RunParallel's goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(ds []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, ds...)
	l.mu.Unlock()
}

// percentile of sorted durations, p in [0,1].
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cost is the expensive primitive work of one operation, for the comparison with the
// same work done alone on the same CPUs.
type cost struct {
	sigs   int // token signatures (IDP_SIGNING_ALG)
	hashes int // argon2id password hashes (DefaultParams)
}

// parallel runs one operation b.N times over RunParallel and reports ops/s and
// latency percentiles. newWorker runs once per goroutine and returns the operation
// and what to do when the goroutine ends.
func (e *benchEnv) parallel(b *testing.B, work cost, newWorker func() (op func() error, done func(), err error)) {
	b.Helper()
	var lat latencies
	var failed atomic.Bool
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	cpu0 := e.cpuNow()
	b.RunParallel(func(pb *testing.PB) {
		op, done, err := newWorker()
		if err != nil {
			if !failed.Swap(true) {
				b.Error(err)
			}
			return
		}
		defer done()
		ds := make([]time.Duration, 0, 1024)
		defer func() { lat.add(ds) }()
		for pb.Next() {
			start := time.Now()
			if err := op(); err != nil {
				if !failed.Swap(true) {
					b.Error(err)
				}
				return
			}
			ds = append(ds, time.Since(start))
		}
	})
	b.StopTimer()
	use := e.cpuSince(cpu0)
	opsPerSec := float64(b.N) / b.Elapsed().Seconds()
	slices.Sort(lat.all)
	b.ReportMetric(opsPerSec, "ops/s")
	b.ReportMetric(ms(percentile(lat.all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat.all, 0.99)), "p99-ms")
	use.report(b, float64(b.N))
	compare := func(c ceiling, per int, prefix string) {
		limit := c.perSec / float64(per)
		b.ReportMetric(limit, prefix+"ceiling-ops/s")
		b.ReportMetric(100*opsPerSec/limit, prefix+"ceiling-%")
		if use.procOK && c.cpuPerOp > 0 {
			// The same ratio in CPU time: what it would be on a machine running nothing else.
			total := float64(use.proc+use.db) / float64(time.Microsecond) / float64(b.N)
			b.ReportMetric(100*float64(per)*c.cpuPerOp/total, "cpu-"+prefix+"ceiling-%")
		}
	}
	if work.sigs > 0 {
		compare(signCeiling(b, e.alg), work.sigs, "sig-")
	}
	if work.hashes > 0 {
		compare(hashCeiling(b), work.hashes, "hash-")
	}
}

// cpuSnap is the CPU time used so far by the server process, by this one (the load
// generator), by the PostgreSQL backends that serve the server's connections, and by
// the whole machine.
type cpuSnap struct {
	proc      time.Duration // the server (and the load generator in the same process)
	procOK    bool
	loadgen   time.Duration // the load generator in a process of its own
	loadgenOK bool
	db        map[int]time.Duration // by backend pid; nil on SQLite
	machine   machineCPU
}

func (e *benchEnv) cpuNow() cpuSnap {
	s := cpuSnap{}
	if e.server != nil {
		s.proc, s.procOK = statCPU(fmt.Sprintf("/proc/%d/stat", e.server.pid))
		s.loadgen, s.loadgenOK = processCPU()
	} else {
		s.proc, s.procOK = processCPU()
	}
	s.db = e.backendCPU()
	s.machine = readMachineCPU()
	return s
}

// cpuUse is the CPU time used between two snapshots.
type cpuUse struct {
	proc, db     time.Duration // the server, the database
	loadgen      time.Duration
	loadgenOK    bool
	procOK, dbOK bool
	others       float64 // % of the machine's capacity used by every other process
	othersOK     bool
}

// cpuSince returns the CPU time used since s: by the server process, by the load
// generator, on PostgreSQL by the database backends (a backend that ended in between
// is missed; the pool keeps its connections), and by everything else on the machine.
func (e *benchEnv) cpuSince(s cpuSnap) cpuUse {
	now := e.cpuNow()
	u := cpuUse{proc: now.proc - s.proc, procOK: s.procOK && now.procOK,
		loadgen: now.loadgen - s.loadgen, loadgenOK: s.loadgenOK && now.loadgenOK}
	if s.db != nil && now.db != nil {
		for pid, t := range now.db {
			u.db += t - s.db[pid]
		}
		u.dbOK = true
	}
	if s.machine.ok && now.machine.ok && now.machine.total > s.machine.total {
		capacity := float64(now.machine.total - s.machine.total)
		busy := float64(now.machine.busy-s.machine.busy) - float64(u.proc+u.loadgen+u.db)/float64(machineTick)
		u.others, u.othersOK = max(0, 100*busy/capacity), true
	}
	return u
}

// report adds the CPU metrics for n operations: cpu-µs/op (the server process),
// loadgen-cpu-µs/op (this one), db-cpu-µs/op (PostgreSQL backends) and others-cpu-% (what the
// rest of the machine used meanwhile, in % of all its CPUs: figures taken while it is
// far from 0 are not the machine's own).
func (u cpuUse) report(b *testing.B, n float64) {
	if u.procOK && n > 0 {
		b.ReportMetric(float64(u.proc)/float64(time.Microsecond)/n, "cpu-µs/op")
	}
	if u.loadgenOK && n > 0 {
		b.ReportMetric(float64(u.loadgen)/float64(time.Microsecond)/n, "loadgen-cpu-µs/op")
	}
	if u.dbOK && n > 0 {
		b.ReportMetric(float64(u.db)/float64(time.Microsecond)/n, "db-cpu-µs/op")
	}
	if u.othersOK {
		b.ReportMetric(u.others, "others-cpu-%")
	}
}

// machineTick is the unit of /proc/stat and /proc/PID/stat (USER_HZ, 100 on Linux).
const machineTick = 10 * time.Millisecond

// machineCPU is the first line of /proc/stat: all CPUs' time, busy and in total, in ticks.
type machineCPU struct {
	busy, total int64
	ok          bool
}

func readMachineCPU() machineCPU {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}
	}
	var m machineCPU
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		var n int64
		if _, err := fmt.Sscan(v, &n); err != nil {
			return machineCPU{}
		}
		m.total += n
		if i != 3 && i != 4 {
			m.busy += n
		}
	}
	m.ok = true
	return m
}

// backendCPU reads the CPU time of the PostgreSQL backends connected to the server's
// database, when PostgreSQL runs on this machine; nil otherwise.
func (e *benchEnv) backendCPU() map[int]time.Duration {
	if e.pg == nil {
		return nil
	}
	var pids []int
	if err := e.pg.Raw(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`).
		Scan(&pids).Error; err != nil {
		return nil
	}
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		d, ok := statCPU(fmt.Sprintf("/proc/%d/stat", pid))
		if !ok {
			return nil // another machine, or not ours to read
		}
		out[pid] = d
	}
	return out
}

// processCPU is the CPU time (user and system, all threads) the process has used, from
// /proc/self/stat in clock ticks of 10 ms; ok is false where there is no such file.
// Unlike wall-clock rates it does not depend on what else the machine runs.
func processCPU() (d time.Duration, ok bool) { return statCPU("/proc/self/stat") }

func statCPU(path string) (d time.Duration, ok bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, false
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * machineTick, true
}

// BenchmarkEndpoints: backend × IDP_SIGNING_ALG × operation, against the real server.
//
//   - http_floor: GET /healthz, the HTTP round trip and middleware every request pays.
//   - client_credentials: one grant, one signature (the JWT access token).
//   - code_exchange: authorization_code grant with PKCE and offline_access; two
//     signatures (ID token and JWT access token) and a new refresh family. The codes
//     are made by single sign-on before the timer starts.
//   - refresh: refresh_token grant; every goroutine rotates its own chain; two
//     signatures (ID token and JWT access token).
//   - userinfo: GET /userinfo with a JWT access token.
//   - introspection: POST /oauth/introspect of a JWT access token by its client.
//   - password_signin: a new browser each time: GET /authorize → login form → POST
//     /login (argon2id, DefaultParams) → /authorize/callback → the product's redirect
//     with a code (5 HTTP requests, no token signed).
func BenchmarkEndpoints(b *testing.B) {
	for _, backend := range backends() {
		b.Run(backend, func(b *testing.B) {
			for _, alg := range benchAlgs {
				b.Run(alg, func(b *testing.B) {
					e := newBenchEnv(b, backend, alg)
					e.benchOps(b)
				})
			}
		})
	}
}

func (e *benchEnv) benchOps(b *testing.B) {
	b.Run("http_floor", func(b *testing.B) {
		e.parallel(b, cost{}, func() (func() error, func(), error) {
			return e.healthz, func() {}, nil
		})
	})
	b.Run("client_credentials", func(b *testing.B) {
		e.parallel(b, cost{sigs: 1}, func() (func() error, func(), error) {
			return e.clientCredentials, func() {}, nil
		})
	})
	b.Run("code_exchange", func(b *testing.B) {
		cs, err := e.codes(b.N)
		if err != nil {
			b.Fatal(err)
		}
		var next atomic.Int64
		e.parallel(b, cost{sigs: 2}, func() (func() error, func(), error) {
			return func() error {
				_, err := e.exchange(cs[next.Add(1)-1])
				return err
			}, func() {}, nil
		})
	})
	b.Run("refresh", func(b *testing.B) {
		if err := e.fillChains(benchParallelism * runtime.GOMAXPROCS(0)); err != nil {
			b.Fatal(err)
		}
		e.parallel(b, cost{sigs: 2}, func() (func() error, func(), error) {
			rt, err := e.takeChain()
			if err != nil {
				return nil, nil, err
			}
			return func() error {
					next, err := e.refresh(rt)
					if err == nil {
						rt = next
					}
					return err
				}, func() {
					e.putChain(rt)
				}, nil
		})
	})
	for _, op := range []struct {
		name string
		do   func(string) error
	}{{"userinfo", e.userinfo}, {"introspection", e.introspect}} {
		b.Run(op.name, func(b *testing.B) {
			n := benchParallelism * runtime.GOMAXPROCS(0)
			ts, err := e.tokens(n)
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			e.parallel(b, cost{}, func() (func() error, func(), error) {
				at := ts[int(next.Add(1)-1)%n].AccessToken
				return func() error { return op.do(at) }, func() {}, nil
			})
		})
	}
	b.Run("password_signin", func(b *testing.B) {
		var next atomic.Int64
		e.parallel(b, cost{hashes: 1}, func() (func() error, func(), error) {
			phone := e.phones[int(next.Add(1)-1)%len(e.phones)]
			return func() error {
				_, err := e.authorize(e.browser(), phone)
				return err
			}, func() {}, nil
		})
	})
}

// ceilingPayload is a typical ID token of this provider (the claims of a code
// exchange with openid profile phone offline_access), about 700 bytes of JSON.
func ceilingPayload() []byte {
	now := time.Now().Unix()
	claims := map[string]any{
		"iss": "https://id.astral.ru", "sub": "01JD8Z5Q9W3K7M2N4P6R8T0V1X", "aud": []string{"report"},
		"exp": now + 3600, "iat": now, "auth_time": now - 5, "nonce": "n-3q2+7w9Z", "acr": "0",
		"amr": []string{"pwd"}, "azp": "report", "client_id": "report",
		"at_hash": "Dq4ZhX9m2v1fK0uQ1bD7aw", "c_hash": "kL9q2Zb0rT5nYw3mXc8s1A",
		"sid": "01JD8Z5QA1B2C3D4E5F6G7H8J9", "name": "Иванов Иван", "family_name": "Иванов",
		"given_name": "Иван", "phone_number": "+79105940899", "phone_number_verified": true,
		"updated_at": now - 86400,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return payload
}

// ceilingSigner is go-jose with a fresh key of the algorithm, set up as op's
// SignerFromKey does (JWK with kid, typ JWT).
func ceilingSigner(tb testing.TB, alg string) jose.Signer {
	tb.Helper()
	var key crypto.Signer
	var err error
	switch alg {
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		err = fmt.Errorf("algorithm %q", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(alg),
		Key:       &jose.JSONWebKey{Key: key, KeyID: "ceiling"},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		tb.Fatal(err)
	}
	return signer
}

func signCompact(signer jose.Signer, payload []byte) error {
	jws, err := signer.Sign(payload)
	if err != nil {
		return err
	}
	_, err = jws.CompactSerialize()
	return err
}

// BenchmarkSignCeiling is Go's raw signing rate (go-jose, RSA-2048 or P-256) of a
// typical ID token on all CPUs: no HTTP, no database. A grant that makes k signatures
// cannot exceed ops/s ÷ k.
func BenchmarkSignCeiling(b *testing.B) {
	payload := ceilingPayload()
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			signer := ceilingSigner(b, alg)
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := signCompact(signer, payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu1, _ := processCPU()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			if cpuOK {
				b.ReportMetric(float64(cpu1-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
			}
		})
	}
}

// BenchmarkHashCeiling is argon2id alone (DefaultParams: m=19 MiB, t=2, p=1), through
// password.Hasher as the sign-in uses it: a sign-in cannot exceed its ops/s.
func BenchmarkHashCeiling(b *testing.B) {
	h := password.NewHasher(password.DefaultParams)
	hash, err := h.Hash(benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	cpu0, cpuOK := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, err := h.Verify(benchPassword, hash); err != nil || !ok {
				b.Error("verify: ", ok, err)
				return
			}
		}
	})
	cpu1, _ := processCPU()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	if cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	}
}

// ceiling is the rate of one primitive done alone on all CPUs, and its CPU time.
type ceiling struct {
	perSec   float64
	cpuPerOp float64 // µs; 0 when unknown
	at       time.Time
}

var (
	ceilingMu    sync.Mutex
	ceilingCache = map[string]ceiling{}
)

// ceilingReuse is how old a ceiling may be and still be compared with an operation:
// long enough to serve the short probing rounds of a benchmark, shorter than the
// final round with its setup.
const ceilingReuse = 5 * time.Second

// signCeiling is what BenchmarkSignCeiling measures: Go's signing rate for alg.
func signCeiling(tb testing.TB, alg string) ceiling {
	signer := ceilingSigner(tb, alg)
	payload := ceilingPayload()
	return measureCeiling(tb, alg, func() error { return signCompact(signer, payload) })
}

// hashCeiling is what BenchmarkHashCeiling measures: argon2id verifications a second
// with DefaultParams, through the same Hasher (and its bound on parallel hashes) as
// the sign-in.
func hashCeiling(tb testing.TB) ceiling {
	h := password.NewHasher(password.DefaultParams)
	hash, err := h.Hash(benchPassword)
	if err != nil {
		tb.Fatal(err)
	}
	return measureCeiling(tb, "argon2id", func() error {
		if ok, err := h.Verify(benchPassword, hash); err != nil || !ok {
			return fmt.Errorf("verify: %v %v", ok, err)
		}
		return nil
	})
}

// measureCeiling runs work on benchParallelism×GOMAXPROCS goroutines for 1.5 s, after
// half a second unmeasured (argon2id's first rounds also grow the heap, which the
// operations it is compared with found grown already). It is measured right after
// the operation it is compared with, and a figure is kept only for the operation's
// next round if that ends within ceilingReuse: this machine's speed drifts by up to a
// tenth over a minute, as its host's other guests come and go, and a ceiling measured
// a minute apart from the operation moved the ratio by as much.
func measureCeiling(tb testing.TB, key string, work func() error) ceiling {
	ceilingMu.Lock()
	defer ceilingMu.Unlock()
	if c, ok := ceilingCache[key]; ok && time.Since(c.at) < ceilingReuse {
		return c
	}
	const warmup, ceilingDuration = 500 * time.Millisecond, 1500 * time.Millisecond
	var count atomic.Int64
	var measuring atomic.Bool
	var wg sync.WaitGroup
	var cpu0 time.Duration
	var cpuOK bool
	var start time.Time
	deadline := time.Now().Add(warmup + ceilingDuration)
	for range benchParallelism * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := work(); err != nil {
					tb.Error(err)
					return
				}
				if measuring.Load() {
					count.Add(1)
				}
			}
		}()
	}
	time.Sleep(warmup)
	cpu0, cpuOK = processCPU()
	start = time.Now()
	measuring.Store(true)
	wg.Wait()
	c := ceiling{perSec: float64(count.Load()) / time.Since(start).Seconds(), at: time.Now()}
	if cpu1, _ := processCPU(); cpuOK {
		c.cpuPerOp = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(count.Load())
	}
	ceilingCache[key] = c
	tb.Logf("%s alone: %.0f/s on %d CPUs, %.0f µs CPU each", key, c.perSec, runtime.GOMAXPROCS(0), c.cpuPerOp)
	return c
}
