package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultParams follow OWASP's argon2id minimum (m=19 MiB, t=2, p=1): about 90 hashes
// a second on two cores.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// Hasher hashes and verifies passwords in PHC string format. It bounds how many hashes
// run at once, so a burst of sign-ins queues instead of taking memory without limit.
type Hasher struct {
	params Params
	slots  chan struct{}
}

// NewHasher makes a hasher; at most MaxConcurrent hashes run at once.
func NewHasher(p Params) *Hasher {
	return &Hasher{params: p, slots: make(chan struct{}, MaxConcurrent())}
}

// MaxConcurrent is how many hashes one Hasher runs at once: one a core. More would
// only take turns on the same cores, each with its own memory cost allocated, and the
// caches shared between more of them.
func MaxConcurrent() int { return runtime.GOMAXPROCS(0) }

// MaxLength bounds the password a person may type; argon2 would hash any length, but
// a megabyte "password" is an attack, not a password.
const MaxLength = 256

// Hash returns the PHC string of password with a fresh salt.
func (h *Hasher) Hash(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := h.derive(password, salt, h.params)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.Memory, h.params.Time, h.params.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

func (h *Hasher) derive(password string, salt []byte, p Params) []byte {
	h.slots <- struct{}{}
	defer func() { <-h.slots }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, 32)
}

// ErrMalformedHash means a stored hash cannot be read.
var ErrMalformedHash = errors.New("malformed password hash")

// Verify reports whether password matches the PHC string encoded.
func (h *Hasher) Verify(password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, ErrMalformedHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, ErrMalformedHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, ErrMalformedHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, ErrMalformedHash
	}
	got := h.derive(password, salt, p)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is verified for unknown accounts so that they cost the same time.
var dummyHash = func() string {
	h := NewHasher(DefaultParams)
	s, _ := h.Hash("no account has this password")
	return s
}()
