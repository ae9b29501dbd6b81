// Package admin is the administrator's side of the idp binary: `idp client …`
// registers, lists, removes and re-keys products (OpenID Connect clients), and
// `idp user …` creates, lists, blocks and unblocks accounts, all on the same
// database the running server uses.
//
// Secrets and passwords are read from standard input only, never from the command
// line, where they would end up in shell history and in every process listing. A
// generated client secret is printed once and only its hash is stored.
//
// Exit codes: 0 success; 1 failure (the database refused, the id or phone is
// taken, the account does not exist, the secret on standard input is too short…);
// 2 usage error (an unknown command or flag, a missing or extra argument, or an
// argument value that can never be right, such as a malformed URL or phone). Every
// message on standard error is one English line starting with "idp: ".
package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/astral/idp/storage"
)

// Env is what a command runs with.
type Env struct {
	// Open opens the server's database (the same IDP_DATABASE_URL). It is called
	// only by commands that need the database, after their arguments were checked,
	// and Run closes the store it returns.
	Open func(ctx context.Context) (*storage.Store, error)
	// MasterKey hashes client secrets, as the server's provider.ClientSecretHasher
	// does when it checks them.
	MasterKey []byte
	Stdin     io.Reader // secrets and passwords; nil reads as empty
	Stdout    io.Writer // results; nil discards
	Stderr    io.Writer // "idp: …" messages; nil discards
}

// Exit codes of Run.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Run runs `idp client …` or `idp user …` (args start after "idp", e.g.
// ["client", "list"]) and returns the exit code: 0 ok, 1 failure, 2 usage error.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	r := &runner{ctx: ctx, env: env}
	defer r.close()
	err := r.dispatch(args)
	return r.report(err)
}

// group is "client" or "user": a noun with its subcommands.
type group struct {
	name     string
	summary  string
	commands []command
}

// command is one subcommand such as `idp client add`.
type command struct {
	name     string   // "add"
	synopsis string   // what follows "idp client add" in the usage line
	summary  string   // one line for the group's help
	help     string   // paragraphs after the usage line
	example  string   // one or more example lines, without the leading indent
	order    []string // flags to list first in the help, in this order; the rest follow by name
	// flags defines the command's flags on fs and returns the function that runs
	// the command once fs is parsed, with the positional arguments.
	flags func(r *runner, fs *flag.FlagSet) func(args []string) error
}

func groups() []group {
	return []group{clientGroup(), userGroup()}
}

// runner carries one Run's environment and the store it opened, if any.
type runner struct {
	ctx   context.Context
	env   Env
	store *storage.Store
}

// open opens the database once.
func (r *runner) open() (*storage.Store, error) {
	if r.store != nil {
		return r.store, nil
	}
	if r.env.Open == nil {
		return nil, failf("no database is configured")
	}
	s, err := r.env.Open(r.ctx)
	if err != nil {
		return nil, failf("open the database: %v", err)
	}
	r.store = s
	return s, nil
}

func (r *runner) close() {
	if r.store != nil {
		_ = r.store.Close()
		r.store = nil
	}
}

func (r *runner) out(format string, args ...any) {
	fmt.Fprintf(r.env.Stdout, format, args...)
}

// dispatch finds the group and command named by args and runs it.
func (r *runner) dispatch(args []string) error {
	if len(args) == 0 {
		return usagef("", "name a command: client or user")
	}
	var g *group
	all := groups()
	for i := range all {
		if all[i].name == args[0] {
			g = &all[i]
		}
	}
	if g == nil {
		if isHelp(args[0]) {
			r.out("%s", topUsage(all))
			return nil
		}
		return usagef("", "unknown command %q: use client or user", args[0])
	}
	if len(args) == 1 {
		return usagef(g.name, "name a subcommand of %q: %s", g.name, commandNames(g))
	}
	if isHelp(args[1]) {
		r.out("%s", groupUsage(g))
		return nil
	}
	for _, c := range g.commands {
		if c.name == args[1] {
			return r.runCommand(g, c, args[2:])
		}
	}
	return usagef(g.name, "unknown command \"idp %s %s\": use %s", g.name, args[1], commandNames(g))
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func commandNames(g *group) string {
	names := make([]string, len(g.commands))
	for i, c := range g.commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// runCommand parses the flags of c and runs it.
func (r *runner) runCommand(g *group, c command, args []string) error {
	full := g.name + " " + c.name
	fs := flag.NewFlagSet("idp "+full, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by report, help by commandUsage
	fs.Usage = func() {}
	run := c.flags(r, fs)
	positional, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		r.out("%s", commandUsage(c, full, fs))
		return nil
	}
	if err != nil {
		return usagef(full, "%s", flagMessage(err))
	}
	return run(positional)
}

// parseArgs parses flags wherever they are among the positional arguments, so
// `idp client rotate-secret report --secret-stdin` works as well as the flag first.
// Everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// flagMessage rewrites the flag package's errors as sentences, and never repeats
// the value given to a switch: `--password-stdin=hunter2` must not print hunter2.
func flagMessage(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "invalid boolean value") {
		if i := strings.LastIndex(msg, " for -"); i >= 0 {
			name, _, _ := strings.Cut(msg[i+len(" for -"):], ":")
			return fmt.Sprintf("--%s is a switch and takes no value", name)
		}
		return "a switch takes no value"
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Sprintf("unknown flag --%s", name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Sprintf("--%s needs a value", name)
	}
	return msg
}

// cmdError is a failure or usage error with the lines to print.
type cmdError struct {
	code  int
	lines []string
	cmd   string // for usage errors: the command whose help to point at ("client add")
}

func (e *cmdError) Error() string { return strings.Join(e.lines, "; ") }

func usagef(cmd, format string, args ...any) error {
	return &cmdError{code: exitUsage, cmd: cmd, lines: []string{fmt.Sprintf(format, args...)}}
}

func failf(format string, args ...any) error {
	return &cmdError{code: exitFailure, lines: []string{fmt.Sprintf(format, args...)}}
}

// report prints err on stderr and returns the exit code.
func (r *runner) report(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *cmdError
	if !errors.As(err, &ce) {
		ce = &cmdError{code: exitFailure, lines: []string{err.Error()}}
	}
	for i, line := range ce.lines {
		line = oneLine(line)
		if ce.code == exitUsage && i == len(ce.lines)-1 {
			help := "idp help"
			if ce.cmd != "" {
				help = "idp " + ce.cmd + " -h"
			}
			line += fmt.Sprintf(" (see %q)", help)
		}
		fmt.Fprintf(r.env.Stderr, "idp: %s\n", line)
	}
	return ce.code
}

// oneLine keeps a message on one line whatever a wrapped error contained.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// cell makes a value safe for a table cell: no tabs or line breaks, "-" when empty.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return s
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

func topUsage(all []group) string {
	var b strings.Builder
	b.WriteString("Usage: idp client|user COMMAND [flags]\n\nAdministers the identity provider's database (IDP_DATABASE_URL).\n\n")
	for _, g := range all {
		fmt.Fprintf(&b, "idp %s: %s\n", g.name, g.summary)
		tw := newTable(&b)
		for _, c := range g.commands {
			fmt.Fprintf(tw, "  idp %s %s\t%s\n", g.name, c.name, c.summary)
		}
		_ = tw.Flush()
		b.WriteString("\n")
	}
	b.WriteString("Run \"idp client add -h\" (or any command with -h) for its flags and an example.\n")
	return b.String()
}

func groupUsage(g *group) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: idp %s COMMAND [flags]\n\n%s.\n\nCommands:\n", g.name, capitalize(g.summary))
	tw := newTable(&b)
	for _, c := range g.commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "\nRun \"idp %s COMMAND -h\" for a command's flags and an example.\n", g.name)
	return b.String()
}

func commandUsage(c command, full string, fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: idp %s %s\n\n%s\n", full, c.synopsis, strings.TrimSpace(c.help))
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		b.WriteString("\nFlags:\n")
		tw := newTable(&b)
		for _, f := range orderedFlags(fs, c.order) {
			name, usage := flag.UnquoteUsage(f)
			if name != "" {
				name = " " + name
			}
			if d := f.DefValue; d != "" && d != "false" && d != "0" {
				usage += " (default " + d + ")"
			}
			fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, name, usage)
		}
		_ = tw.Flush()
	}
	b.WriteString("\nExample:\n")
	for _, line := range strings.Split(strings.Trim(c.example, "\n"), "\n") {
		b.WriteString("  " + strings.TrimRight(line, " ") + "\n")
	}
	return b.String()
}

// orderedFlags lists the flags of fs named in order first, in that order, then the
// rest by name.
func orderedFlags(fs *flag.FlagSet, order []string) []*flag.Flag {
	var out []*flag.Flag
	listed := map[string]bool{}
	for _, name := range order {
		if f := fs.Lookup(name); f != nil && !listed[name] {
			out = append(out, f)
			listed[name] = true
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !listed[f.Name] {
			out = append(out, f)
		}
	})
	return out
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// listFlag is a repeatable flag; with split set, a value may also hold several
// items separated by commas ("--grant authorization_code,refresh_token").
type listFlag struct {
	items []string
	split bool
}

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.items, ",")
}

func (l *listFlag) Set(v string) error {
	if !l.split {
		l.items = append(l.items, v)
		return nil
	}
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			l.items = append(l.items, item)
		}
	}
	return nil
}

// noArgs refuses positional arguments without repeating them: on the commands that
// take a secret or a password, a stray argument may be exactly that.
func noArgs(cmd string, args []string, hint string) error {
	if len(args) == 0 {
		return nil
	}
	return usagef(cmd, "unexpected argument (this command takes flags only; %s)", hint)
}
