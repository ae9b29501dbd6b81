package keys

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/astral/idp/storage"
)

func newStore(t *testing.T) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newManager(t *testing.T, s Store, alg jose.SignatureAlgorithm, masterKey string, p Policy) *Manager {
	t.Helper()
	sealer, err := NewSealer([]byte(masterKey))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(s, alg, sealer, p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const master = "0123456789abcdef0123456789abcdef"

var testPolicy = Policy{Period: time.Hour, Prepublish: 10 * time.Minute, MaxTokenLifetime: 5 * time.Minute, Refresh: 0}

func TestTwoNodesAgree(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			s := newStore(t)
			ctx := context.Background()
			a := newManager(t, s, alg, master, testPolicy)
			b := newManager(t, s, alg, master, testPolicy)
			var wg sync.WaitGroup
			for _, m := range []*Manager{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := m.Rotate(ctx); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			ka, err := a.Signing(ctx)
			if err != nil {
				t.Fatal(err)
			}
			kb, err := b.Signing(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ka.ID != kb.ID || ka.Private == nil || kb.Private == nil {
				t.Fatalf("nodes sign with %q and %q", ka.ID, kb.ID)
			}
			if ka.Algorithm != alg {
				t.Fatalf("algorithm %s", ka.Algorithm)
			}
		})
	}
}

func TestRotationPrepublishesAndRetires(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) // a generation boundary (hours)
	now := start.Add(5 * time.Minute)
	s.SetClock(func() time.Time { return now })
	m := newManager(t, s, jose.ES256, master, testPolicy)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	first, err := m.Signing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Within Prepublish of the next generation: a second key is published, not used.
	now = start.Add(55 * time.Minute)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	pub, _ := m.Published(ctx)
	if len(pub) != 2 {
		t.Fatalf("published %d keys, want 2 (current and next)", len(pub))
	}
	if k, _ := m.Signing(ctx); k.ID != first.ID {
		t.Fatal("the prepublished key signed before its time")
	}
	// Next generation: the new key signs; the old one is still published for tokens it signed.
	now = start.Add(61 * time.Minute)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	second, _ := m.Signing(ctx)
	if second.ID == first.ID {
		t.Fatal("key did not rotate")
	}
	pub, _ = m.Published(ctx)
	if !contains(pub, first.ID) {
		t.Fatal("old key left the key set while its tokens may live")
	}
	// After MaxTokenLifetime past retirement, the old key leaves the key set.
	now = start.Add(66 * time.Minute)
	pub, _ = m.Published(ctx)
	if contains(pub, first.ID) {
		t.Fatal("old key still published after every token it signed expired")
	}
}

func contains(keys []Key, id string) bool {
	for _, k := range keys {
		if k.ID == id {
			return true
		}
	}
	return false
}

func TestWrongMasterKeyRefused(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := newManager(t, s, jose.RS256, master, testPolicy).Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	other := newManager(t, s, jose.RS256, "ffffffffffffffffffffffffffffffff", testPolicy)
	if _, err := other.Signing(ctx); err == nil {
		t.Fatal("a key sealed with another master key was opened")
	}
}

func TestPrivateKeyEncryptedAtRest(t *testing.T) {
	s := newStore(t)
	// Mid-generation, so that exactly one key exists (near a generation's end the
	// next one is prepublished).
	s.SetClock(func() time.Time { return time.Date(2026, 11, 22, 10, 20, 0, 0, time.UTC) })
	ctx := context.Background()
	m := newManager(t, s, jose.ES256, master, testPolicy)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := s.SigningKeys(ctx, "ES256")
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %d, %v", len(rows), err)
	}
	sealer, _ := NewSealer([]byte(master))
	if _, err := sealer.Open(rows[0].PrivateKeyEnc, []byte("ES256/other-kid")); err == nil {
		t.Fatal("sealed key opened with another key id as associated data")
	}
}

func TestUnsupportedAlgorithm(t *testing.T) {
	sealer, _ := NewSealer([]byte(master))
	if _, err := NewManager(nil, jose.HS256, sealer, testPolicy); err == nil {
		t.Fatal("HS256 accepted")
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Fatal("short master key accepted")
	}
}
