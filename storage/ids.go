package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// NewID returns a random opaque identifier (128 bits, hex): safe in URLs, and never
// starts with "-", so it can be typed as a command-line argument.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// NewSecret returns a random bearer secret (256 bits, URL-safe): cookie values,
// refresh tokens, authorization codes.
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
