// Package keys manages the provider's token-signing keys: it generates them, keeps
// them in the database with the private half encrypted by the master key, rotates
// them on a schedule, and publishes every key that may still verify a live token.
//
// Rotation is by generation: generation g covers [g·Period, (g+1)·Period). The key of
// the next generation is created Prepublish before it starts signing, so every node
// and every relying party has seen it in the JWKS by then. A key leaves the JWKS
// MaxTokenLifetime after it stops signing. Two nodes creating the same generation at
// once are resolved by a unique index: one insert wins, both use the winner.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/astral/idp/storage"
)

// Store is what the key manager needs from storage.
type Store interface {
	CreateSigningKey(ctx context.Context, k *storage.SigningKey) (bool, error)
	SigningKeys(ctx context.Context, alg string) ([]storage.SigningKey, error)
	Now() time.Time
}

// Policy is the rotation schedule.
type Policy struct {
	Period           time.Duration // how long one key signs
	Prepublish       time.Duration // how long a key is published before it signs
	MaxTokenLifetime time.Duration // the longest lifetime of a token the key signs
	Refresh          time.Duration // how often a node re-reads the key set
}

// DefaultPolicy rotates monthly.
var DefaultPolicy = Policy{
	Period:           30 * 24 * time.Hour,
	Prepublish:       24 * time.Hour,
	MaxTokenLifetime: 2 * time.Hour,
	Refresh:          time.Minute,
}

// Key is a usable key: the public half always, the private half once decrypted.
type Key struct {
	ID        string
	Algorithm jose.SignatureAlgorithm
	Public    crypto.PublicKey
	Private   crypto.Signer // nil for keys that are only published
	ActiveAt  time.Time
	RetireAt  time.Time
}

// Manager hands out the current signing key and the published key set.
type Manager struct {
	store  Store
	alg    jose.SignatureAlgorithm
	sealer *Sealer
	policy Policy

	mu        sync.Mutex
	keys      []Key // published, newest generation first
	loadedAt  time.Time
	decrypted map[string]crypto.Signer // by kid; keys never change once written
}

// NewManager makes a manager for one algorithm (RS256 or ES256).
func NewManager(store Store, alg jose.SignatureAlgorithm, sealer *Sealer, policy Policy) (*Manager, error) {
	if alg != jose.RS256 && alg != jose.ES256 {
		return nil, fmt.Errorf("signing algorithm %q: want RS256 or ES256", alg)
	}
	return &Manager{store: store, alg: alg, sealer: sealer, policy: policy, decrypted: map[string]crypto.Signer{}}, nil
}

// Algorithm is the signing algorithm.
func (m *Manager) Algorithm() jose.SignatureAlgorithm { return m.alg }

// Rotate makes sure the current generation has a key, and the next one too once it is
// within Prepublish of starting. Every node calls it on start and then periodically.
func (m *Manager) Rotate(ctx context.Context) error {
	now := m.store.Now()
	period := m.policy.Period
	gen := now.UnixNano() / int64(period)
	existing, err := m.store.SigningKeys(ctx, string(m.alg))
	if err != nil {
		return err
	}
	have := map[int64]bool{}
	for _, k := range existing {
		have[k.Generation] = true
	}
	if !have[gen] {
		// The first key of a generation nobody prepared signs at once.
		if err := m.create(ctx, gen, now); err != nil {
			return err
		}
	}
	next := gen + 1
	nextStart := time.Unix(0, next*int64(period)).UTC()
	if !have[next] && !now.Before(nextStart.Add(-m.policy.Prepublish)) {
		if err := m.create(ctx, next, nextStart); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.loadedAt = time.Time{} // re-read on next use
	m.mu.Unlock()
	return nil
}

func (m *Manager) create(ctx context.Context, gen int64, activeAt time.Time) error {
	priv, err := generate(m.alg)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return fmt.Errorf("marshal public key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("marshal private key: %w", err)
	}
	sum := sha256.Sum256(pubDER)
	kid := base64.RawURLEncoding.EncodeToString(sum[:12])
	retire := time.Unix(0, (gen+1)*int64(m.policy.Period)).UTC()
	k := &storage.SigningKey{
		ID: kid, Algorithm: string(m.alg), Generation: gen,
		PublicKeyDER: pubDER, PrivateKeyEnc: m.sealer.Seal(privDER, associated(kid, m.alg)),
		CreatedAt: m.store.Now(), ActiveAt: activeAt, RetireAt: retire,
		ExpiresAt: retire.Add(m.policy.MaxTokenLifetime),
	}
	if _, err := m.store.CreateSigningKey(ctx, k); err != nil {
		return fmt.Errorf("store %s key of generation %d: %w", m.alg, gen, err)
	}
	return nil
}

func associated(kid string, alg jose.SignatureAlgorithm) []byte {
	return []byte(string(alg) + "/" + kid)
}

func generate(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	switch alg {
	case jose.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
}

// load returns the published keys, re-reading them from the database at most every
// Refresh, so a key another node created is seen within that time.
func (m *Manager) load(ctx context.Context) ([]Key, error) {
	now := m.store.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.loadedAt.IsZero() && now.Sub(m.loadedAt) < m.policy.Refresh && now.After(m.loadedAt) {
		return m.keys, nil
	}
	rows, err := m.store.SigningKeys(ctx, string(m.alg))
	if err != nil {
		return nil, err
	}
	keys := make([]Key, 0, len(rows))
	for _, row := range rows {
		pub, err := x509.ParsePKIXPublicKey(row.PublicKeyDER)
		if err != nil {
			return nil, fmt.Errorf("parse public key %q: %w", row.ID, err)
		}
		keys = append(keys, Key{ID: row.ID, Algorithm: m.alg, Public: pub, ActiveAt: row.ActiveAt, RetireAt: row.RetireAt})
		if _, ok := m.decrypted[row.ID]; !ok {
			der, err := m.sealer.Open(row.PrivateKeyEnc, associated(row.ID, m.alg))
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", row.ID, err)
			}
			priv, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil {
				return nil, fmt.Errorf("parse private key %q: %w", row.ID, err)
			}
			signer, ok := priv.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("key %q is not a signing key", row.ID)
			}
			m.decrypted[row.ID] = signer
		}
	}
	m.keys, m.loadedAt = keys, now
	return keys, nil
}

// Signing returns the key that signs now: the newest one whose time has come.
func (m *Manager) Signing(ctx context.Context) (Key, error) {
	keys, err := m.load(ctx)
	if err != nil {
		return Key{}, err
	}
	now := m.store.Now()
	for _, k := range keys {
		if !k.ActiveAt.After(now) && now.Before(k.RetireAt) {
			m.mu.Lock()
			k.Private = m.decrypted[k.ID]
			m.mu.Unlock()
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("no %s signing key is active: run key rotation", m.alg)
}

// Published returns every key a relying party may need to verify a live token.
func (m *Manager) Published(ctx context.Context) ([]Key, error) {
	return m.load(ctx)
}

// Run rotates keys every interval until ctx ends.
func (m *Manager) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Rotate(ctx); err != nil {
				onError(err)
			}
		}
	}
}
