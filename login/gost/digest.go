package gost

import (
	"crypto"
	"crypto/sha256"
	"hash"

	"github.com/ddulesov/gogost/gost34112012256"
	"github.com/ddulesov/gogost/gost34112012512"
)

// Streebog256 returns the GOST R 34.11-2012 256-bit digest of data, byte for
// byte as `openssl dgst -engine gost -md_gost12_256` prints it (and as the
// ESIA client_certificate_hash and a CMS messageDigest carry it).
func Streebog256(data []byte) []byte {
	h := gost34112012256.New()
	h.Write(data)
	return h.Sum(nil)
}

// Streebog512 returns the GOST R 34.11-2012 512-bit digest of data, as
// `openssl dgst -engine gost -md_gost12_512` prints it.
func Streebog512(data []byte) []byte {
	h := gost34112012512.New()
	h.Write(data)
	return h.Sum(nil)
}

// newHash returns the hash function a key of alg signs with by default.
func newHash(alg Algorithm) hash.Hash {
	switch alg {
	case AlgGOST256:
		return gost34112012256.New()
	case AlgGOST512:
		return gost34112012512.New()
	default:
		return sha256.New()
	}
}

func hashOf(h crypto.Hash, data []byte) []byte {
	w := h.New()
	w.Write(data)
	return w.Sum(nil)
}

// reversed returns a reversed copy of b: GOST reads digests as little-endian
// integers where gogost reads big-endian.
func reversed(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return r
}
