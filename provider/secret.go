package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// SecretHasher hashes client secrets with a keyed SHA-256. Client secrets are long
// machine-made random strings, so a fast keyed hash is safe, and a password hash would
// cost every token request milliseconds. The key comes from the master key, so a
// stolen database alone does not allow offline checks.
type SecretHasher struct{ key []byte }

// NewSecretHasher makes a hasher with key.
func NewSecretHasher(key []byte) SecretHasher { return SecretHasher{key: key} }

// Hash returns the stored form of secret.
func (h SecretHasher) Hash(secret string) string {
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(secret))
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify compares secret with a stored hash in constant time.
func (h SecretHasher) Verify(secret, stored string) bool {
	if stored == "" {
		return false
	}
	return hmac.Equal([]byte(h.Hash(secret)), []byte(stored))
}
