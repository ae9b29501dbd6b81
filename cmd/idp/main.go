// Command idp is the identity provider: `idp` (or `idp serve`) serves; `idp client …`
// and `idp user …` administer clients and accounts on the same database.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/astral/idp/cmd/idp/admin"
	"github.com/astral/idp/cmd/idp/config"
	"github.com/astral/idp/cmd/idp/server"
	"github.com/astral/idp/storage"
)

const usage = `idp — single sign-on identity provider

Usage:
  idp [serve]            run the server (configured by IDP_* environment variables)
  idp client add|list|remove|rotate-secret …
  idp user add|list|block|unblock …
  idp help

Run "idp client -h" or "idp user -h" for the commands' flags.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	case "serve", "client", "user":
	default:
		fmt.Fprintf(os.Stderr, "idp: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "idp: configuration:\n%v\n", err)
		return 2
	}
	slog.SetDefault(server.NewLogger(os.Stderr, cfg.Dev))
	if cfg.Dev {
		if err := cfg.EnsureDevMasterKey(config.DevMasterKeyFile); err != nil {
			fmt.Fprintf(os.Stderr, "idp: %v\n", err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cmd != "serve" {
		return admin.Run(ctx, args, admin.Env{
			Open:      func(ctx context.Context) (*storage.Store, error) { return storage.Open(ctx, cfg.DatabaseURL) },
			MasterKey: cfg.MasterKey, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		})
	}
	srv, err := server.New(ctx, cfg, server.DefaultOptions())
	if err != nil {
		slog.Error("start failed", "err", err)
		fmt.Fprintf(os.Stderr, "idp: %v\n", err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		slog.Error("server stopped", "err", err)
		return 1
	}
	return 0
}
