package admin

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxStdinLine bounds what is read for a secret or a password: far above any real
// one, and small enough that a mistaken pipe of a big file stops at once.
const maxStdinLine = 4096

// readLine reads the first line of standard input, without its line break (one
// "\n" or "\r\n"). It reads no further than that line, so a person typing at a
// terminal finishes with Enter. what names the value in messages ("the secret");
// the value itself is never put in a message.
func readLine(r io.Reader, what, example string) (string, error) {
	br := bufio.NewReader(io.LimitReader(r, maxStdinLine+1))
	line, err := br.ReadString('\n')
	switch {
	case err == nil:
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	case errors.Is(err, io.EOF):
		if len(line) > maxStdinLine {
			return "", failf("%s on standard input is longer than %d bytes; give it on one line", what, maxStdinLine)
		}
		line = strings.TrimSuffix(line, "\r")
	default:
		return "", failf("read %s from standard input: %v", what, err)
	}
	if line == "" {
		return "", failf("standard input has no %s: give it on the first line, e.g. %s", strings.TrimPrefix(what, "the "), example)
	}
	return line, nil
}

// newClientSecret returns 48 random bytes, base64url: 64 characters, 384 bits.
func newClientSecret() (string, error) {
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
