package conformance

import (
	"bytes"
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

func keyTests() []test {
	return []test{
		{"create and list", testKeysCreateList},
		{"one key per algorithm and generation", testKeysOnePerGeneration},
		{"expired keys leave the set", testKeysExpiry},
		{"race create one generation", testKeysRaceCreate},
	}
}

// key makes a signing key of alg for generation gen: published now, signing from
// an hour on, retiring a day later, gone from the key set after two days.
func (e *env) key(alg string, gen int64) *storage.SigningKey {
	return &storage.SigningKey{
		ID: storage.NewID(), Algorithm: alg, Generation: gen,
		PublicKeyDER:  []byte{0x30, 0x82, 0x01, 0x22, byte(gen)},
		PrivateKeyEnc: append([]byte("sealed:"), byte(gen), 0x00, 0xff),
		ActiveAt:      e.now().Add(time.Hour), RetireAt: e.now().Add(25 * time.Hour), ExpiresAt: e.now().Add(49 * time.Hour),
	}
}

func testKeysCreateList(t *testing.T, e *env) {
	want := map[string]*storage.SigningKey{}
	for _, k := range []*storage.SigningKey{e.key("RS256", 1), e.key("RS256", 3), e.key("RS256", 2), e.key("ES256", 3)} {
		inserted, err := e.s.CreateSigningKey(e.ctx, k)
		must(t, err)
		if !inserted {
			t.Fatalf("CreateSigningKey(%s, %d) reported not inserted on an empty store", k.Algorithm, k.Generation)
		}
		want[k.ID] = k
	}
	keys, err := e.s.SigningKeys(e.ctx, "RS256")
	must(t, err)
	var gens []int64
	for _, k := range keys {
		gens = append(gens, k.Generation)
		w := want[k.ID]
		if w == nil || k.Algorithm != "RS256" || !bytes.Equal(k.PublicKeyDER, w.PublicKeyDER) ||
			!bytes.Equal(k.PrivateKeyEnc, w.PrivateKeyEnc) || !k.ActiveAt.Equal(w.ActiveAt) ||
			!k.RetireAt.Equal(w.RetireAt) || !k.ExpiresAt.Equal(w.ExpiresAt) {
			t.Errorf("listed key %+v; want %+v", k, w)
		}
	}
	if len(gens) != 3 || gens[0] != 3 || gens[1] != 2 || gens[2] != 1 {
		t.Errorf("RS256 generations %v; want [3 2 1], newest first", gens)
	}
	keys, err = e.s.SigningKeys(e.ctx, "ES256")
	must(t, err)
	if len(keys) != 1 || keys[0].Algorithm != "ES256" {
		t.Errorf("ES256 keys %+v; want the one ES256 key", keys)
	}
	keys, err = e.s.SigningKeys(e.ctx, "PS256")
	must(t, err)
	if len(keys) != 0 {
		t.Errorf("PS256 keys %+v; want none", keys)
	}
}

func testKeysOnePerGeneration(t *testing.T, e *env) {
	first := e.key("RS256", 7)
	inserted, err := e.s.CreateSigningKey(e.ctx, first)
	must(t, err)
	if !inserted {
		t.Fatal("the first key of a generation was not inserted")
	}
	inserted, err = e.s.CreateSigningKey(e.ctx, e.key("RS256", 7))
	must(t, err)
	if inserted {
		t.Error("a second key of the same algorithm and generation was inserted")
	}
	inserted, err = e.s.CreateSigningKey(e.ctx, e.key("ES256", 7))
	must(t, err)
	if !inserted {
		t.Error("the same generation of another algorithm was not inserted")
	}
	keys, err := e.s.SigningKeys(e.ctx, "RS256")
	must(t, err)
	if len(keys) != 1 || keys[0].ID != first.ID {
		t.Errorf("RS256 keys %+v; want only the first one", keys)
	}
}

func testKeysExpiry(t *testing.T, e *env) {
	old := e.key("RS256", 1)
	_, err := e.s.CreateSigningKey(e.ctx, old)
	must(t, err)
	e.advance(24 * time.Hour)
	current := e.key("RS256", 2)
	_, err = e.s.CreateSigningKey(e.ctx, current)
	must(t, err)

	e.advance(25*time.Hour - time.Second) // a second before old leaves the key set
	keys, err := e.s.SigningKeys(e.ctx, "RS256")
	must(t, err)
	if len(keys) != 2 {
		t.Errorf("%d keys before the old one expires; want 2", len(keys))
	}
	e.advance(time.Second)
	keys, err = e.s.SigningKeys(e.ctx, "RS256")
	must(t, err)
	if len(keys) != 1 || keys[0].ID != current.ID {
		t.Errorf("keys %+v at the old key's expiry; want only the current one", keys)
	}
	counts, err := e.s.DeleteExpired(e.ctx, storage.DefaultRetention)
	must(t, err)
	if counts["signing_keys"] != 1 {
		t.Errorf("DeleteExpired removed %d signing keys; want 1", counts["signing_keys"])
	}
}

func testKeysRaceCreate(t *testing.T, e *env) {
	keys := make([]*storage.SigningKey, racers)
	for i := range keys {
		keys[i] = e.key("RS256", 42)
	}
	inserted := make([]bool, racers)
	errs := race(racers, func(i int) error {
		var err error
		inserted[i], err = e.s.CreateSigningKey(e.ctx, keys[i])
		return err
	})
	winner := -1
	for i := range racers {
		switch {
		case errs[i] != nil:
			t.Errorf("racer %d: %v", i, errs[i])
		case inserted[i] && winner >= 0:
			t.Errorf("racers %d and %d both inserted a key of generation 42", winner, i)
		case inserted[i]:
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no racer inserted the key")
	}
	// Every node that lost reads the key set and finds the winner's key.
	listed := race(racers, func(int) error {
		ks, err := e.s.SigningKeys(e.ctx, "RS256")
		if err == nil && (len(ks) != 1 || ks[0].ID != keys[winner].ID) {
			t.Errorf("a node sees keys %+v; want only the winner's %s", ks, keys[winner].ID)
		}
		return err
	})
	for _, err := range listed {
		must(t, err)
	}
}
