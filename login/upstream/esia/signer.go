package esia

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"time"

	"github.com/astral/idp/login/gost"
)

// Signer makes the raw GOST R 34.10-2012 (256-bit key) signature of data with our
// key: 64 bytes, s||r, each big-endian (RFC 4491 §2.2.2, OpenSSL's order).
type Signer interface {
	Sign(ctx context.Context, data []byte) ([]byte, error)
}

// SignatureSize is the length of a GOST R 34.10-2012 signature with a 256-bit key.
const SignatureSize = 64

// KeySigner signs with a GOST private key in memory (IDP_ESIA_KEY_FILE), in pure Go.
type KeySigner struct{ key *gost.PrivateKey }

// NewKeySigner reads a PEM GOST R 34.10-2012 256-bit private key; ESIA accepts no
// other.
func NewKeySigner(pemKey []byte) (*KeySigner, error) {
	k, err := gost.ParsePrivateKeyPEM(pemKey)
	if err != nil {
		return nil, fmt.Errorf("ESIA signing key: %w", err)
	}
	if k.Algorithm() != gost.AlgGOST256 {
		return nil, fmt.Errorf("ESIA signing key is %s: ESIA wants GOST R 34.10-2012 with a 256-bit key", k.Algorithm())
	}
	return &KeySigner{key: k}, nil
}

// Sign implements Signer: Streebog-256 of data, signed.
func (s *KeySigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	sig, err := s.key.Sign(data)
	if err != nil {
		return nil, fmt.Errorf("sign with the ESIA key: %w", err)
	}
	return sig, nil
}

// CommandSigner signs by running an external program (IDP_ESIA_SIGN_COMMAND), for
// where the regulator requires a certified crypto provider (КриптоПро CSP, for
// example) to hold the key. The program is run directly, never through a shell: the
// command line is split at spaces into the program and its arguments (no quoting).
// It gets the bytes to sign on stdin and writes the signature to stdout, either raw
// (exactly 64 bytes, s||r big-endian as OpenSSL's `dgst -sign` writes it) or as
// base64 text (standard or URL alphabet, padded or not, surrounding whitespace
// ignored). A wrapper around CryptoPro's csptest, whose output is little-endian,
// reverses it first. A non-zero exit, or an answer that is neither, fails the
// signature, and its stderr is logged (never the data: it carries the state and
// the code).
type CommandSigner struct {
	path    string
	args    []string
	timeout time.Duration
}

// DefaultSignTimeout bounds one run of the signing command.
const DefaultSignTimeout = 10 * time.Second

// maxSignOutput is what we read of the command's stdout and stderr.
const maxSignOutput = 16 << 10

// NewCommandSigner makes a signer of command line; timeout 0 is DefaultSignTimeout.
func NewCommandSigner(command string, timeout time.Duration) (*CommandSigner, error) {
	f := strings.Fields(command)
	if len(f) == 0 {
		return nil, errors.New("ESIA signing command is empty")
	}
	if timeout <= 0 {
		timeout = DefaultSignTimeout
	}
	return &CommandSigner{path: f[0], args: f[1:], timeout: timeout}, nil
}

// Sign implements Signer.
func (s *CommandSigner) Sign(ctx context.Context, data []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.path, s.args...)
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxSignOutput, maxSignOutput
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second // a child that keeps the pipes open does not hang us
	err := cmd.Run()
	if err == nil && stdout.over {
		err = fmt.Errorf("more than %d bytes on stdout", maxSignOutput)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timeout %s)", err, s.timeout)
		}
		slog.ErrorContext(ctx, "ESIA signing command failed", "command", s.path, "err", err,
			"stderr", strings.TrimSpace(stderr.String()))
		return nil, fmt.Errorf("ESIA signing command %s: %w", s.path, err)
	}
	sig, err := decodeSignature(stdout.Bytes())
	if err != nil {
		slog.ErrorContext(ctx, "ESIA signing command answered no signature", "command", s.path, "err", err,
			"stdout_bytes", stdout.Len(), "stderr", strings.TrimSpace(stderr.String()))
		return nil, fmt.Errorf("ESIA signing command %s: %w", s.path, err)
	}
	return sig, nil
}

// decodeSignature reads a command's answer: 64 raw bytes, or base64 of them. The two
// cannot be confused: base64 of 64 bytes is at least 86 characters.
func decodeSignature(out []byte) ([]byte, error) {
	if len(out) == SignatureSize {
		return out, nil
	}
	text := strings.TrimSpace(string(out))
	if text == "" {
		return nil, errors.New("empty answer")
	}
	text = strings.TrimRight(text, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			if len(b) != SignatureSize {
				return nil, fmt.Errorf("signature of %d bytes, want %d", len(b), SignatureSize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("answer of %d bytes is neither a raw %d-byte signature nor base64", len(out), SignatureSize)
}

// limitedBuffer keeps the first max bytes written and notes that more came.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

var _ io.Writer = (*limitedBuffer)(nil)
