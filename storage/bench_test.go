package storage_test

// Benchmarks of the token writes alone, without HTTP or signing: what one grant costs
// the database. Besides ns/op they report cpu-µs/op (this process, all threads) and
// written-B/op (bytes this process handed to write(2) and pwrite(2): on SQLite the
// WAL frames and checkpoints), which vary far less between runs than the rate does.
//
//	go test -run '^$' -bench . ./storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/astral/idp/storage"
	"github.com/astral/idp/storage/pgtest"
)

// benchChains is how many refresh chains rotate at once: the HTTP benchmark's clients.
const benchChains = 16

func BenchmarkRotate(b *testing.B) { forBenchBackends(b, benchRotate) }

// BenchmarkExchange is a code exchange's database work as the provider does it:
// spend the code (reading the request and its account), then store the new refresh
// family. The codes are made before the timer starts.
func BenchmarkExchange(b *testing.B) { forBenchBackends(b, benchExchange) }

func forBenchBackends(b *testing.B, bench func(*testing.B, *storage.Store)) {
	backends := map[string]func(b *testing.B) string{
		"sqlite": func(b *testing.B) string { return "sqlite://" + b.TempDir() + "/idp.db" },
	}
	if os.Getenv("IDP_TEST_POSTGRES_URL") != "" {
		backends["postgres"] = func(b *testing.B) string { return pgtest.URL(b) }
	}
	for _, name := range []string{"sqlite", "postgres"} {
		url, ok := backends[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			s, err := storage.Open(b.Context(), url(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			bench(b, s)
		})
	}
}

// chain is one client's refresh family, by its live token.
type chain struct{ raw string }

func benchRotate(b *testing.B, s *storage.Store) {
	ctx := context.Background()
	// Accounts and sessions as many as the chains, each with a family at its first
	// generation, as a code exchange leaves it.
	chains := make(chan *chain, benchChains)
	for i := range benchChains {
		phone := fmt.Sprintf("+7910%07d", i)
		u := &storage.User{Phone: &phone, PhoneVerified: true}
		if err := s.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		sess := &storage.Session{UserID: u.ID, AuthTime: s.Now(), AMR: storage.StringList{"pwd"}, ExpiresAt: s.Now().Add(time.Hour)}
		if err := s.CreateSession(ctx, sess, storage.NewSecret()); err != nil {
			b.Fatal(err)
		}
		first := newFamily(s, u.ID, sess.ID)
		raw, err := s.CreateRefreshFamily(ctx, first)
		if err != nil {
			b.Fatal(err)
		}
		chains <- &chain{raw: raw}
	}
	var failed atomic.Bool
	b.SetParallelism(benchChains / 2) // RunParallel multiplies by GOMAXPROCS
	b.ResetTimer()
	cpu0, w0 := selfCPU(), selfWritten()
	b.RunParallel(func(pb *testing.PB) {
		c := <-chains
		defer func() { chains <- c }()
		for pb.Next() {
			// A refresh as the provider does it: read the family by the token, then
			// rotate what was read.
			f, err := s.RefreshFamilyByToken(ctx, c.raw, "report")
			if err != nil {
				if !failed.Swap(true) {
					b.Error(err)
				}
				return
			}
			now := s.Now()
			raw, err := s.RotateRefreshFamily(ctx, f, now.Add(time.Hour), now.Add(15*time.Minute))
			if err != nil {
				if !failed.Swap(true) {
					b.Error(err)
				}
				return
			}
			c.raw = raw
		}
	})
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(selfCPU()-cpu0)/float64(time.Microsecond)/n, "cpu-µs/op")
	b.ReportMetric(float64(selfWritten()-w0)/n, "written-B/op")
}

func benchExchange(b *testing.B, s *storage.Store) {
	ctx := context.Background()
	phone := "+79100000000"
	u := &storage.User{Phone: &phone, PhoneVerified: true, FamilyName: "Иванов", GivenName: "Иван"}
	if err := s.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	sess := &storage.Session{UserID: u.ID, AuthTime: s.Now(), AMR: storage.StringList{"pwd"}, ExpiresAt: s.Now().Add(time.Hour)}
	if err := s.CreateSession(ctx, sess, storage.NewSecret()); err != nil {
		b.Fatal(err)
	}
	codes := make([]string, b.N)
	for i := range codes {
		r := &storage.AuthRequest{
			ClientID: "report", RedirectURI: "http://127.0.0.1:9/report/cb", State: "st-" + storage.NewID(),
			Nonce: "n-" + storage.NewID(), Scopes: storage.StringList{"openid", "profile", "phone", "offline_access"},
			ResponseType: "code", CodeChallenge: storage.NewSecret(), CodeChallengeMethod: "S256",
			CreatedAt: s.Now(), ExpiresAt: s.Now().Add(time.Hour),
		}
		codes[i] = storage.NewSecret()
		err := s.CreateAuthRequest(ctx, r)
		if err == nil {
			err = s.CompleteAuthRequest(ctx, r.ID, storage.Authentication{UserID: u.ID, SessionID: sess.ID, AuthTime: s.Now(), AMR: []string{"pwd"}})
		}
		if err == nil {
			err = s.SaveAuthCode(ctx, r.ID, codes[i], 10*time.Minute)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var failed atomic.Bool
	b.SetParallelism(benchChains / 2)
	b.ResetTimer()
	cpu0, w0 := selfCPU(), selfWritten()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := s.ExchangeCode(ctx, codes[next.Add(1)-1], time.Hour)
			if err == nil && (r.Account == nil || r.Account.ID != u.ID) {
				err = fmt.Errorf("the exchange read account %+v, want %s", r.Account, u.ID)
			}
			if err == nil {
				f := newFamily(s, r.UserID, r.SessionID)
				f.AuthRequestID = r.ID
				_, err = s.CreateRefreshFamily(ctx, f)
			}
			if err != nil {
				if !failed.Swap(true) {
					b.Error(err)
				}
				return
			}
		}
	})
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(selfCPU()-cpu0)/float64(time.Microsecond)/n, "cpu-µs/op")
	b.ReportMetric(float64(selfWritten()-w0)/n, "written-B/op")
}

// newFamily is a family as a code exchange makes it; the store gives its ids.
func newFamily(s *storage.Store, userID, sessionID string) *storage.RefreshFamily {
	now := s.Now()
	return &storage.RefreshFamily{
		ClientID: "report", UserID: userID, SessionID: sessionID,
		Scopes: storage.StringList{"openid", "offline_access"}, AuthTime: now, AMR: storage.StringList{"pwd"},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(30 * 24 * time.Hour),
		AccessExpiresAt: now.Add(15 * time.Minute),
	}
}

// selfCPU is this process's CPU time (user and system) from /proc/self/stat; 0 where
// there is none.
func selfCPU() time.Duration {
	raw, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(raw, ')')
	f := strings.Fields(string(raw[i+1:]))
	var ut, st int64
	if len(f) < 13 {
		return 0
	}
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// selfWritten is wchar of /proc/self/io: bytes passed to write-like system calls.
func selfWritten() int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}
