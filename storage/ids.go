package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// NewID returns a random opaque identifier (128 bits, hex): safe in URLs, and never
// starts with "-", so it can be typed as a command-line argument.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// newTokenID returns an identifier for a token row: 48 bits of the Unix time in
// milliseconds, then 80 random bits, in hex. Token rows are written on every grant, and
// a random key lands each index entry on a random page, which the commit then writes
// whole; keys in time order land a batch's entries on the same last pages instead.
// The time it shows is no secret: a token's row also records it, and a JWT access
// token carries it in "iat".
func newTokenID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

// secretLength is the length of a NewSecret: 32 bytes in unpadded base64.
const secretLength = 43

// NewSecret returns a random bearer secret (256 bits, URL-safe): cookie values,
// authorization codes, the secret part of refresh tokens.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret is how a bearer secret is stored and looked up: unsalted SHA-256 is
// right for 256-bit random values, which no dictionary can guess.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
