// Command certagent is the reference signing agent for certificate sign-in: it lists
// the certificates it was given and signs the sign-in page's challenge with them,
// over loopback HTTP, for the identity provider's origin only (DESIGN.md, "Signing
// agent"; the handler is package agent).
//
//	go run ./cmd/certagent --cert C --key K [--cert C2 --key K2] \
//	    [--addr 127.0.0.1:24321] [--origin http://localhost:8080]
//
// Key files are PEM: GOST R 34.10-2012 (256 or 512 bits), RSA or ECDSA. The keys stay
// in this process; nothing is written to disk.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/astral/idp/cmd/certagent/agent"
)

// files collects a repeated flag.
type files []string

func (f *files) String() string     { return fmt.Sprint([]string(*f)) }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "certagent:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("certagent", flag.ContinueOnError)
	var certs, keys files
	fs.Var(&certs, "cert", "certificate file, PEM or DER (repeat with --key for more)")
	fs.Var(&keys, "key", "private key file, PEM, of the --cert before it")
	addr := fs.String("addr", "127.0.0.1:24321", "listen address (keep it on loopback)")
	origin := fs.String("origin", "http://localhost:8080", "the identity provider's origin (IDP_ISSUER without a path)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(certs) == 0 || len(certs) != len(keys) {
		return errors.New("give each --cert its --key (at least one pair)")
	}
	if host, _, err := net.SplitHostPort(*addr); err != nil {
		return fmt.Errorf("--addr %q: %w", *addr, err)
	} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		slog.Warn("listening beyond loopback: anyone who reaches this address may ask for signatures", "addr", *addr)
	}
	loaded := make([]agent.Key, 0, len(certs))
	for i := range certs {
		k, err := agent.Load(certs[i], keys[i])
		if err != nil {
			return err
		}
		loaded = append(loaded, k)
		slog.Info("certificate", "id", k.Cert.Thumbprint, "owner", k.Cert.Subject.Owner(), "not_after", k.Cert.NotAfter)
	}
	h, err := agent.New(*origin, loaded, slog.Default())
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("signing agent listening", "addr", *addr, "origin", *origin)
	select {
	case err = <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}
