package gost

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"fmt"
)

// maxSignatureText bounds a pasted signature: base64 of MaxInputSize plus
// generous room for line breaks and PEM armour.
const maxSignatureText = MaxInputSize*3/2 + 4096

// pemSignatureTypes are the PEM labels crypto providers and OpenSSL put
// around a CMS SignedData.
var pemSignatureTypes = map[string]bool{
	"CMS": true, "PKCS7": true, "PKCS #7 SIGNED DATA": true, "SIGNED DATA": true,
}

// ParseSignature turns a detached signature as a person pastes or uploads it
// into DER: PEM (CMS, PKCS7, PKCS #7 SIGNED DATA or SIGNED DATA headers),
// base64 in the standard or URL alphabet with any whitespace and line breaks
// and with or without padding, or raw DER. It checks only the form, not the
// CMS inside; VerifyDetached does that.
func ParseSignature(text []byte) ([]byte, error) {
	if len(text) > maxSignatureText {
		return nil, fmt.Errorf("signature of %d bytes: %w", len(text), ErrTooLarge)
	}
	trimmed := bytes.TrimSpace(text)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("empty signature: %w", ErrMalformed)
	}
	var der []byte
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN ")):
		block, _ := pem.Decode(trimmed)
		if block == nil {
			return nil, fmt.Errorf("signature PEM: %w", ErrMalformed)
		}
		if !pemSignatureTypes[block.Type] {
			return nil, fmt.Errorf("PEM block %q is not a signature: %w", block.Type, ErrMalformed)
		}
		der = block.Bytes
	default:
		// Base64 first: DER itself never passes as base64, while base64 text
		// may begin with the byte 0x30 ('0') that begins DER.
		if b, ok := decodeBase64(trimmed); ok {
			der = b
		} else if trimmed[0] == 0x30 {
			der = text
		} else {
			return nil, fmt.Errorf("signature is neither PEM, base64 nor DER: %w", ErrMalformed)
		}
	}
	if len(der) > MaxInputSize {
		return nil, fmt.Errorf("signature of %d bytes: %w", len(der), ErrTooLarge)
	}
	if len(der) < 2 || der[0] != 0x30 {
		return nil, fmt.Errorf("signature is not a DER SEQUENCE: %w", ErrMalformed)
	}
	return der, nil
}

// decodeBase64 accepts either alphabet, padded or not, with whitespace anywhere.
func decodeBase64(s []byte) ([]byte, bool) {
	clean := make([]byte, 0, len(s))
	for _, c := range s {
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c == '-':
			clean = append(clean, '+')
		case c == '_':
			clean = append(clean, '/')
		case c == '=':
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			clean = append(clean, c)
		default:
			return nil, false
		}
	}
	out, err := base64.RawStdEncoding.DecodeString(string(clean))
	if err != nil {
		return nil, false
	}
	return out, true
}
