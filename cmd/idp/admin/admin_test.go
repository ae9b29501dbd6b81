package admin_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/astral/idp/cmd/idp/admin"
	"github.com/astral/idp/login/password"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
	"github.com/astral/idp/storage/pgtest"
)

var masterKey = []byte("0123456789abcdef0123456789abcdef")

// harness is one database in a temporary folder, shared by the commands (each Run
// opens it anew, as `idp` does) and by the test, which inspects it.
type harness struct {
	t     *testing.T
	ctx   context.Context
	url   string
	store *storage.Store
	opens int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessAt(t, "sqlite://"+t.TempDir()+"/idp.db")
}

func newHarnessAt(t *testing.T, url string) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &harness{t: t, ctx: ctx, url: url, store: st}
}

type result struct {
	code           int
	stdout, stderr string
}

func (h *harness) env(stdin string) (admin.Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return admin.Env{
		Open: func(ctx context.Context) (*storage.Store, error) {
			h.opens++
			return storage.Open(ctx, h.url)
		},
		MasterKey: masterKey,
		Stdin:     strings.NewReader(stdin),
		Stdout:    &out,
		Stderr:    &errOut,
	}, &out, &errOut
}

// run runs `idp ARGS` with stdin and checks the rules every command keeps: each
// line on stderr is a message starting with "idp: ", and a failure says something.
func (h *harness) run(stdin string, args ...string) result {
	h.t.Helper()
	env, out, errOut := h.env(stdin)
	code := admin.Run(h.ctx, args, env)
	res := result{code: code, stdout: out.String(), stderr: errOut.String()}
	for _, line := range strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n") {
		if line != "" && !strings.HasPrefix(line, "idp: ") {
			h.t.Errorf("idp %s: stderr line %q does not start with \"idp: \"", strings.Join(args, " "), line)
		}
	}
	if code != 0 && res.stderr == "" {
		h.t.Errorf("idp %s: exit %d with nothing on stderr", strings.Join(args, " "), code)
	}
	return res
}

// mustRun runs a command that must succeed.
func (h *harness) mustRun(stdin string, args ...string) result {
	h.t.Helper()
	res := h.run(stdin, args...)
	if res.code != 0 {
		h.t.Fatalf("idp %s: exit %d, stderr:\n%s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res
}

func (h *harness) client(id string) *storage.Client {
	h.t.Helper()
	c, err := h.store.ClientByID(h.ctx, id)
	if err != nil {
		h.t.Fatalf("client %q: %v", id, err)
	}
	return c
}

// fileClient puts a client in the database as the clients file would.
func (h *harness) fileClient(id, typ string) {
	h.t.Helper()
	c := storage.Client{
		ID: id, Name: "Файл " + id, Type: typ,
		RedirectURIs: storage.StringList{"https://" + id + ".example.ru/cb"},
		GrantTypes:   storage.StringList{"authorization_code", "refresh_token"},
	}
	if typ == "web" {
		c.SecretHash = provider.ClientSecretHasher(masterKey).Hash("a-file-secret-that-is-long-enough-000")
	}
	if err := h.store.SyncFileClients(h.ctx, []storage.Client{c}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) user(phone string) *storage.User {
	h.t.Helper()
	u, err := h.store.UserByPhone(h.ctx, phone)
	if err != nil {
		h.t.Fatalf("user %s: %v", phone, err)
	}
	return u
}

// secretIn returns the line of out that is a generated secret (64 base64url characters).
func secretIn(out string) string {
	return generatedSecret.FindString(out)
}

var generatedSecret = regexp.MustCompile(`(?m)^[A-Za-z0-9_-]{64}$`)

func contains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func TestUsageAndHelp(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // on help
		stderr   string   // on errors
		noStderr []string
	}{
		{name: "nothing", args: nil, code: 2, stderr: "name a command"},
		{name: "unknown group", args: []string{"group"}, code: 2, stderr: `unknown command "group"`},
		{name: "group alone", args: []string{"client"}, code: 2, stderr: "add, list, remove, rotate-secret"},
		{name: "unknown command", args: []string{"user", "delete"}, code: 2, stderr: `"idp user delete"`},
		{name: "top help", args: []string{"help"}, code: 0, stdout: []string{"idp client add", "idp user block"}},
		{name: "client help", args: []string{"client", "-h"}, code: 0, stdout: []string{"rotate-secret", "remove"}},
		{name: "user help", args: []string{"user", "--help"}, code: 0, stdout: []string{"unblock"}},
		{name: "client add help", args: []string{"client", "add", "-h"}, code: 0,
			stdout: []string{"Usage: idp client add", "--redirect-uri URI", "--secret-stdin", "Example:\n  idp client add"}},
		{name: "client list help", args: []string{"client", "list", "-h"}, code: 0, stdout: []string{"Example:\n  idp client list"}},
		{name: "client remove help", args: []string{"client", "remove", "--help"}, code: 0, stdout: []string{"Usage: idp client remove ID", "Example:"}},
		{name: "rotate help", args: []string{"client", "rotate-secret", "-h"}, code: 0, stdout: []string{"before or after", "Example:"}},
		{name: "user add help", args: []string{"user", "add", "-h"}, code: 0,
			stdout: []string{"--password-stdin", "--phone PHONE", "Example:\n  idp user add"}},
		{name: "user list help", args: []string{"user", "list", "-h"}, code: 0, stdout: []string{"--limit N", "(default 100)", "Example:"}},
		{name: "user block help", args: []string{"user", "block", "-h"}, code: 0, stdout: []string{"Usage: idp user block USER", "Example:"}},
		{name: "user unblock help", args: []string{"user", "unblock", "-h"}, code: 0, stdout: []string{"Example:"}},
		{name: "unknown flag", args: []string{"client", "list", "--all"}, code: 2, stderr: "unknown flag --all"},
		{name: "flag without value", args: []string{"client", "add", "--id"}, code: 2, stderr: "--id needs a value"},
		{name: "list with argument", args: []string{"client", "list", "x"}, code: 2, stderr: "takes none"},
		{name: "remove without id", args: []string{"client", "remove"}, code: 2, stderr: "name exactly one client"},
		{name: "remove two ids", args: []string{"client", "remove", "a", "b"}, code: 2, stderr: "name exactly one client"},
		{name: "rotate without id", args: []string{"client", "rotate-secret", "--secret-stdin"}, code: 2, stderr: "name exactly one client"},
		{name: "limit zero", args: []string{"user", "list", "--limit", "0"}, code: 2, stderr: "--limit must be from 1"},
		{name: "limit not a number", args: []string{"user", "list", "--limit", "many"}, code: 2, stderr: "-limit"},
		{name: "negative offset", args: []string{"user", "list", "--offset=-1"}, code: 2, stderr: "--offset must not be negative"},
		{name: "block nobody", args: []string{"user", "block"}, code: 2, stderr: "name exactly one account"},
		{name: "unblock two", args: []string{"user", "unblock", "a", "b"}, code: 2, stderr: "name exactly one account"},
		// A value given to a switch may be the secret itself: it is never repeated.
		{name: "value for a switch", args: []string{"user", "add", "--phone", "89105940899", "--password-stdin=hunter2hunter2"},
			code: 2, stderr: "--password-stdin is a switch and takes no value", noStderr: []string{"hunter2"}},
		{name: "secret as argument", args: []string{"client", "add", "--id", "x", "s3cr3t-in-argv"},
			code: 2, stderr: "unexpected argument", noStderr: []string{"s3cr3t-in-argv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.opens = 0
			res := h.run("", tt.args...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", res.code, tt.code, res.stderr)
			}
			contains(t, "stdout", res.stdout, tt.stdout...)
			if tt.stderr != "" {
				contains(t, "stderr", res.stderr, tt.stderr)
				if n := strings.Count(res.stderr, "\n"); n != 1 {
					t.Errorf("usage error takes %d lines, want 1:\n%s", n, res.stderr)
				}
				contains(t, "stderr", res.stderr, "(see \"idp ") // points at the help
			}
			for _, s := range tt.noStderr {
				if strings.Contains(res.stderr, s) {
					t.Errorf("stderr repeats %q:\n%s", s, res.stderr)
				}
			}
			if tt.code == 0 && res.stderr != "" {
				t.Errorf("help wrote to stderr:\n%s", res.stderr)
			}
			if h.opens != 0 {
				t.Errorf("opened the database %d times for help or a usage error", h.opens)
			}
		})
	}
}

func TestClientAdd(t *testing.T) {
	stdinSecret := "a-secret-from-stdin-that-is-long-enough-0123456789"
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stderr []string // every one must appear
		check  func(t *testing.T, h *harness, res result)
	}{
		{
			name: "web with generated secret",
			args: []string{"--id", "report", "--name", "Астрал.Отчет", "--type", "web",
				"--redirect-uri", "https://online.astral.ru/oidc/callback", "--redirect-uri", "http://localhost:9001/cb",
				"--post-logout-redirect-uri", "https://online.astral.ru/",
				"--backchannel-logout-uri", "https://online.astral.ru/oidc/backchannel-logout",
				"--home-url", "https://online.astral.ru/", "--scope", "openid,profile", "--scope", "offline_access"},
			check: func(t *testing.T, h *harness, res result) {
				secret := secretIn(res.stdout)
				if secret == "" {
					t.Fatalf("no generated secret in stdout:\n%s", res.stdout)
				}
				if strings.Count(res.stdout, secret) != 1 {
					t.Errorf("secret printed more than once:\n%s", res.stdout)
				}
				contains(t, "stdout", res.stdout, "cannot be shown again")
				c := h.client("report")
				if !provider.ClientSecretHasher(masterKey).Verify(secret, c.SecretHash) {
					t.Error("the printed secret does not verify against the stored hash")
				}
				if strings.Contains(c.SecretHash, secret) {
					t.Error("the secret is stored in clear")
				}
				want := storage.Client{
					ID: "report", Name: "Астрал.Отчет", Type: "web", Source: "cli",
					RedirectURIs:           storage.StringList{"https://online.astral.ru/oidc/callback", "http://localhost:9001/cb"},
					PostLogoutRedirectURIs: storage.StringList{"https://online.astral.ru/"},
					GrantTypes:             storage.StringList{"authorization_code", "refresh_token"},
					Scopes:                 storage.StringList{"openid", "profile", "offline_access"},
					BackchannelLogoutURI:   "https://online.astral.ru/oidc/backchannel-logout",
					HomeURL:                "https://online.astral.ru/",
				}
				c.SecretHash, c.CreatedAt, c.UpdatedAt = "", time.Time{}, time.Time{}
				if got, wantS := strings.Join(clientFields(*c), "|"), strings.Join(clientFields(want), "|"); got != wantS {
					t.Errorf("stored client\n got %s\nwant %s", got, wantS)
				}
			},
		},
		{
			name:  "web with secret from stdin",
			args:  []string{"--secret-stdin", "--id", "sig", "--name", "Подпись", "--type", "web", "--grant", "client_credentials"},
			stdin: stdinSecret + "\n",
			check: func(t *testing.T, h *harness, res result) {
				if strings.Contains(res.stdout, stdinSecret) || secretIn(res.stdout) != "" {
					t.Errorf("stdout shows a secret:\n%s", res.stdout)
				}
				c := h.client("sig")
				if !provider.ClientSecretHasher(masterKey).Verify(stdinSecret, c.SecretHash) {
					t.Error("the secret from stdin (one newline trimmed) does not verify")
				}
				if strings.Join(c.GrantTypes, ",") != "client_credentials" || len(c.RedirectURIs) != 0 {
					t.Errorf("grants %v, redirect URIs %v", c.GrantTypes, c.RedirectURIs)
				}
			},
		},
		{
			name:  "secret from stdin with CRLF and no trailing text",
			args:  []string{"--secret-stdin", "--id", "crlf", "--name", "CRLF", "--type", "web", "--redirect-uri", "https://x.example.ru/cb"},
			stdin: stdinSecret + "\r\n",
			check: func(t *testing.T, h *harness, res result) {
				if !provider.ClientSecretHasher(masterKey).Verify(stdinSecret, h.client("crlf").SecretHash) {
					t.Error("secret ending in CRLF does not verify without it")
				}
			},
		},
		{
			name: "spa without secret",
			args: []string{"--id", "poa", "--name", "Доверенность", "--type", "spa", "--redirect-uri", "https://poa.astral.ru/callback"},
			check: func(t *testing.T, h *harness, res result) {
				if secretIn(res.stdout) != "" {
					t.Errorf("a public client got a secret:\n%s", res.stdout)
				}
				contains(t, "stdout", res.stdout, "PKCE")
				c := h.client("poa")
				if c.SecretHash != "" || len(c.Scopes) != 0 {
					t.Errorf("public client stored with secret hash %q, scopes %v", c.SecretHash, c.Scopes)
				}
			},
		},
		{
			name: "every problem at once", code: 2,
			args:   []string{"--type", "desktop", "--redirect-uri", "http://example.com/cb", "--grant", "password"},
			stderr: []string{"--id is required", "--name is required", `--type "desktop" is not supported`, `--grant "password" is not supported`},
			check: func(t *testing.T, h *harness, res result) {
				if n := strings.Count(res.stderr, "\n"); n < 4 {
					t.Errorf("want one line per problem, got:\n%s", res.stderr)
				}
			},
		},
		{
			name: "insecure redirect", code: 2,
			args:   []string{"--id", "bad", "--name", "Bad", "--type", "web", "--redirect-uri", "http://example.com/cb"},
			stderr: []string{`--redirect-uri "http://example.com/cb" must use https`},
		},
		{
			name: "name too long", code: 2,
			args:   []string{"--id", "long", "--name", strings.Repeat("я", 201), "--type", "spa", "--redirect-uri", "https://x.example.ru/cb"},
			stderr: []string{"--name is too long (201 characters): at most 200"},
		},
		{
			name: "no redirect with authorization_code", code: 2,
			args:   []string{"--id", "bad", "--name", "Bad", "--type", "web"},
			stderr: []string{"--redirect-uri needs at least one URL"},
		},
		{
			name: "client_credentials for spa", code: 2,
			args:   []string{"--id", "bad", "--name", "Bad", "--type", "spa", "--grant", "client_credentials"},
			stderr: []string{"--grant client_credentials is only for web"},
		},
		{
			name: "secret-stdin for a public client", code: 2,
			args:   []string{"--id", "bad", "--name", "Bad", "--type", "native", "--redirect-uri", "ru.astral.app:/cb", "--secret-stdin"},
			stdin:  stdinSecret,
			stderr: []string{"--secret-stdin is only for web clients"},
		},
		{
			name: "secret too short", code: 1,
			args:   []string{"--id", "short", "--name", "Short", "--type", "web", "--redirect-uri", "https://x.example.ru/cb", "--secret-stdin"},
			stdin:  "only-twenty-chars-ab\n",
			stderr: []string{"too short (20 characters)", "at least 32"},
		},
		{
			name: "no secret on stdin", code: 1,
			args:   []string{"--id", "empty", "--name", "Empty", "--type", "web", "--redirect-uri", "https://x.example.ru/cb", "--secret-stdin"},
			stdin:  "\n",
			stderr: []string{"standard input has no secret"},
		},
		{
			name: "taken id", code: 1,
			args:   []string{"--id", "taken", "--name", "Again", "--type", "spa", "--redirect-uri", "https://x.example.ru/cb"},
			stderr: []string{`client "taken" already exists`},
		},
		{
			name: "id of a file client", code: 1,
			args:   []string{"--id", "fromfile", "--name", "Again", "--type", "spa", "--redirect-uri", "https://x.example.ru/cb"},
			stderr: []string{`client "fromfile" already exists: it comes from the clients file`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustRun("", "client", "add", "--id", "taken", "--name", "Taken", "--type", "spa", "--redirect-uri", "https://t.example.ru/cb")
			h.fileClient("fromfile", "spa")
			res := h.run(tt.stdin, append([]string{"client", "add"}, tt.args...)...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", res.code, tt.code, res.stdout, res.stderr)
			}
			contains(t, "stderr", res.stderr, tt.stderr...)
			if tt.code != 0 {
				if res.stdout != "" {
					t.Errorf("a failure printed on stdout:\n%s", res.stdout)
				}
				if _, err := h.store.ClientByID(h.ctx, idArg(tt.args)); idArg(tt.args) != "taken" && idArg(tt.args) != "fromfile" && !storage.IsNotFound(err) {
					t.Errorf("a failed add stored client %q (err %v)", idArg(tt.args), err)
				}
			}
			if tt.check != nil {
				tt.check(t, h, res)
			}
		})
	}
}

func idArg(args []string) string {
	for i, a := range args {
		if a == "--id" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func clientFields(c storage.Client) []string {
	return []string{c.ID, c.Name, c.Type, c.Source, strings.Join(c.RedirectURIs, " "), strings.Join(c.PostLogoutRedirectURIs, " "),
		strings.Join(c.GrantTypes, " "), strings.Join(c.Scopes, " "), c.BackchannelLogoutURI, c.HomeURL}
}

func TestClientAddWithoutMasterKey(t *testing.T) {
	h := newHarness(t)
	env, _, errOut := h.env("")
	env.MasterKey = nil
	code := admin.Run(h.ctx, []string{"client", "add", "--id", "k", "--name", "K", "--type", "web", "--redirect-uri", "https://k.example.ru/cb"}, env)
	if code != 1 || !strings.Contains(errOut.String(), "no master key") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestClientList(t *testing.T) {
	h := newHarness(t)
	web := h.mustRun("", "client", "add", "--id", "report", "--name", "Астрал.Отчет", "--type", "web",
		"--redirect-uri", "https://online.astral.ru/oidc/callback", "--redirect-uri", "https://b.astral.ru/cb")
	secret := secretIn(web.stdout)
	h.fileClient("fromfile", "web")

	res := h.mustRun("", "client", "list")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows:\n%s", res.stdout)
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "ID NAME TYPE SOURCE GRANTS REDIRECT URIS" {
		t.Errorf("header %q", lines[0])
	}
	contains(t, "file row", lines[1], "fromfile", "Файл fromfile", "web", "file", "authorization_code,refresh_token", "https://fromfile.example.ru/cb")
	contains(t, "cli row", lines[2], "report", "Астрал.Отчет", "web", "cli", "https://online.astral.ru/oidc/callback https://b.astral.ru/cb")
	for _, id := range []string{"report", "fromfile"} {
		if hash := h.client(id).SecretHash; hash == "" || strings.Contains(res.stdout, hash) {
			t.Errorf("list shows the secret hash of %s (or it has none)", id)
		}
	}
	if secret == "" || strings.Contains(res.stdout, secret) {
		t.Error("list shows the secret")
	}

	empty := newHarness(t).mustRun("", "client", "list")
	if strings.Join(strings.Fields(empty.stdout), " ") != "ID NAME TYPE SOURCE GRANTS REDIRECT URIS" {
		t.Errorf("empty list:\n%q", empty.stdout)
	}
}

func TestClientRemove(t *testing.T) {
	tests := []struct {
		name   string
		id     string
		code   int
		stderr string
	}{
		{name: "cli client", id: "mine"},
		{name: "file client", id: "fromfile", code: 1, stderr: `client "fromfile" comes from the clients file; remove it there and restart`},
		{name: "unknown client", id: "nobody", code: 1, stderr: `no client has the id "nobody"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustRun("", "client", "add", "--id", "mine", "--name", "Mine", "--type", "spa", "--redirect-uri", "https://m.example.ru/cb")
			h.fileClient("fromfile", "web")
			tok := h.refreshToken(tt.id, "", "")

			res := h.run("", "client", "remove", tt.id)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", res.code, tt.code, res.stderr)
			}
			contains(t, "stderr", res.stderr, tt.stderr)
			_, err := h.store.ClientByID(h.ctx, tt.id)
			rt, rerr := h.store.RefreshFamilyByID(h.ctx, tok.ID)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tt.code == 0 {
				contains(t, "stdout", res.stdout, `Removed client "mine"`)
				if !storage.IsNotFound(err) {
					t.Errorf("client still there (err %v)", err)
				}
				if rt.RevokedAt == nil {
					t.Error("the removed client's refresh token is not revoked")
				}
			} else if rt.RevokedAt != nil {
				t.Error("a refused remove revoked a token")
			}
			if tt.id == "fromfile" && err != nil {
				t.Errorf("file client gone: %v", err)
			}
		})
	}
}

// refreshToken issues a refresh token family to clientID.
func (h *harness) refreshToken(clientID, userID, sessionID string) *storage.RefreshFamily {
	h.t.Helper()
	now := h.store.Now()
	f := &storage.RefreshFamily{
		ClientID: clientID, UserID: userID, SessionID: sessionID,
		Scopes: storage.StringList{"openid", "offline_access"}, AuthTime: now,
		ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(24 * time.Hour), AccessExpiresAt: now.Add(15 * time.Minute),
	}
	if _, err := h.store.CreateRefreshFamily(h.ctx, f); err != nil {
		h.t.Fatal(err)
	}
	return f
}

func TestClientRotateSecret(t *testing.T) {
	newSecret := "the-new-secret-from-stdin-0123456789-abcdef"
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stderr string
		// fromStdin: the new secret must be newSecret; otherwise one printed on stdout.
		fromStdin bool
	}{
		{name: "generated", args: []string{"web"}},
		{name: "from stdin, flag after id", args: []string{"web", "--secret-stdin"}, stdin: newSecret + "\n", fromStdin: true},
		{name: "from stdin, flag before id", args: []string{"--secret-stdin", "web"}, stdin: newSecret, fromStdin: true},
		{name: "secret too short", args: []string{"web", "--secret-stdin"}, stdin: "short\n", code: 1, stderr: "too short (5 characters)"},
		{name: "file client", args: []string{"fromfile"}, code: 1, stderr: `client "fromfile" comes from the clients file`},
		{name: "public client", args: []string{"pub"}, code: 1, stderr: `client "pub" is a spa client: public clients have no secret`},
		{name: "unknown client", args: []string{"nobody"}, code: 1, stderr: `no client has the id "nobody"`},
	}
	hasher := provider.ClientSecretHasher(masterKey)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			old := secretIn(h.mustRun("", "client", "add", "--id", "web", "--name", "Web", "--type", "web", "--redirect-uri", "https://w.example.ru/cb").stdout)
			h.mustRun("", "client", "add", "--id", "pub", "--name", "Pub", "--type", "spa", "--redirect-uri", "https://p.example.ru/cb")
			h.fileClient("fromfile", "web")
			fileHash := h.client("fromfile").SecretHash

			res := h.run(tt.stdin, append([]string{"client", "rotate-secret"}, tt.args...)...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", res.code, tt.code, res.stderr)
			}
			contains(t, "stderr", res.stderr, tt.stderr)
			stored := h.client("web").SecretHash
			if h.client("fromfile").SecretHash != fileHash {
				t.Error("the file client's secret changed")
			}
			if tt.code != 0 {
				if !hasher.Verify(old, stored) {
					t.Error("a refused rotation changed the secret")
				}
				return
			}
			if hasher.Verify(old, stored) {
				t.Error("the old secret still verifies")
			}
			printed := secretIn(res.stdout)
			if tt.fromStdin {
				if printed != "" || strings.Contains(res.stdout, newSecret) {
					t.Errorf("stdout shows a secret:\n%s", res.stdout)
				}
				if !hasher.Verify(newSecret, stored) {
					t.Error("the secret from stdin does not verify")
				}
				return
			}
			contains(t, "stdout", res.stdout, "cannot be shown again")
			if printed == "" || printed == old || !hasher.Verify(printed, stored) {
				t.Errorf("the printed secret does not verify:\n%s", res.stdout)
			}
		})
	}
}

func TestUserAdd(t *testing.T) {
	const pw = "correct horse battery"
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stderr []string
		// phone or email the new account must be found by, and with which names.
		phone, email string
		names        [3]string
	}{
		{name: "phone, any writing", args: []string{"--phone", "8 (910) 594-08-99", "--given-name", "Иван", "--family-name", "Петров", "--middle-name", "Сергеевич", "--password-stdin"},
			stdin: pw + "\n", phone: "+79105940899", names: [3]string{"Петров", "Иван", "Сергеевич"}},
		{name: "email, upper case, no trailing newline", args: []string{"--password-stdin", "--email", "Ivan.Petrov@Example.RU"},
			stdin: pw, email: "ivan.petrov@example.ru"},
		{name: "only the first line is the password", args: []string{"--phone", "9105940800", "--password-stdin"},
			stdin: pw + "\r\nsecond line\n", phone: "+79105940800"},
		{name: "without --password-stdin", args: []string{"--phone", "+79105940899"}, stdin: pw, code: 2,
			stderr: []string{"passwords are read from standard input only", "--password-stdin"}},
		{name: "phone and email", args: []string{"--phone", "+79105940899", "--email", "a@b.ru", "--password-stdin"}, stdin: pw, code: 2,
			stderr: []string{"either --phone or --email, not both"}},
		{name: "neither phone nor email", args: []string{"--password-stdin"}, stdin: pw, code: 2,
			stderr: []string{"give the account's --phone or --email"}},
		{name: "bad phone", args: []string{"--phone", "12345", "--password-stdin"}, stdin: pw, code: 2,
			stderr: []string{`--phone "12345" is not a Russian mobile number`}},
		{name: "bad email", args: []string{"--email", "ivan@", "--password-stdin"}, stdin: pw, code: 2,
			stderr: []string{`--email "ivan@" is not a valid email address`}},
		{name: "password on the command line", args: []string{"--phone", "+79105940899", "--password-stdin", "hunter2hunter2"}, stdin: pw, code: 2,
			stderr: []string{"unexpected argument"}},
		{name: "empty stdin", args: []string{"--phone", "+79105940899", "--password-stdin"}, stdin: "", code: 1,
			stderr: []string{"standard input has no password"}},
		{name: "password too short", args: []string{"--phone", "+79105940899", "--password-stdin"}, stdin: "seven77\n", code: 1,
			stderr: []string{"the password is too short (7 characters): at least 8"}},
		{name: "password too long", args: []string{"--phone", "+79105940899", "--password-stdin"}, stdin: strings.Repeat("я", 129) + "\n", code: 1,
			stderr: []string{"the password is too long (258 bytes): at most 256"}},
		{name: "password is the phone", args: []string{"--phone", "+7 910 594-08-99", "--password-stdin"}, stdin: "89105940899\n", code: 1,
			stderr: []string{"must not be the account's phone number"}},
		{name: "password is the email", args: []string{"--email", "ivan@example.ru", "--password-stdin"}, stdin: "IVAN@example.ru\n", code: 1,
			stderr: []string{"must not be the account's email address"}},
		{name: "taken phone", args: []string{"--phone", "+7 (910) 111-22-33", "--password-stdin"}, stdin: pw, code: 1,
			stderr: []string{"an account with the phone +7 (910) 111-22-33 already exists"}},
		{name: "taken email", args: []string{"--email", "TAKEN@example.ru", "--password-stdin"}, stdin: pw, code: 1,
			stderr: []string{"an account with the email taken@example.ru already exists"}},
	}
	hasher := password.NewHasher(password.DefaultParams)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if err := h.store.CreateUser(h.ctx, &storage.User{Phone: ptr("+79101112233"), Email: ptr("taken@example.ru"), PasswordHash: "x"}); err != nil {
				t.Fatal(err)
			}
			res := h.run(tt.stdin, append([]string{"user", "add"}, tt.args...)...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", res.code, tt.code, res.stderr)
			}
			contains(t, "stderr", res.stderr, tt.stderr...)
			for _, secret := range []string{pw, "hunter2", "seven77", "89105940899\n"} {
				if strings.Contains(res.stderr+res.stdout, secret) {
					t.Errorf("output repeats the password %q", secret)
				}
			}
			users, err := h.store.ListUsers(h.ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if tt.code != 0 {
				if len(users) != 1 || res.stdout != "" {
					t.Errorf("a failed add left %d accounts, stdout %q", len(users), res.stdout)
				}
				return
			}
			var u *storage.User
			if tt.phone != "" {
				u = h.user(tt.phone)
				if !u.PhoneVerified || u.EmailVerified || u.Email != nil {
					t.Errorf("phone account: phone verified %v, email %v verified %v", u.PhoneVerified, u.Email, u.EmailVerified)
				}
			} else {
				if u, err = h.store.UserByEmail(h.ctx, tt.email); err != nil {
					t.Fatal(err)
				}
				if !u.EmailVerified || u.PhoneVerified || u.Phone != nil {
					t.Errorf("email account: email verified %v, phone %v verified %v", u.EmailVerified, u.Phone, u.PhoneVerified)
				}
			}
			contains(t, "stdout", res.stdout, u.ID)
			if got := [3]string{u.FamilyName, u.GivenName, u.MiddleName}; got != tt.names {
				t.Errorf("names %q, want %q", got, tt.names)
			}
			if !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
				t.Errorf("password hash %q is not argon2id", u.PasswordHash)
			}
			if ok, err := hasher.Verify(pw, u.PasswordHash); err != nil || !ok {
				t.Errorf("the password from stdin does not verify: %v %v", ok, err)
			}
			if u.Blocked {
				t.Error("new account is blocked")
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestUserList(t *testing.T) {
	h := newHarness(t)
	h.mustRun("first password\n", "user", "add", "--phone", "+79105940899", "--password-stdin")
	h.mustRun("second password\n", "user", "add", "--email", "ivan@example.ru", "--password-stdin")
	h.mustRun("", "user", "block", "ivan@example.ru")

	res := h.mustRun("", "user", "list")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows:\n%s", res.stdout)
	}
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "ID PHONE EMAIL BLOCKED CREATED" {
		t.Errorf("header %q", lines[0])
	}
	phoneUser := h.user("+79105940899")
	emailUser, err := h.store.UserByEmail(h.ctx, "ivan@example.ru")
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "first row", lines[1], phoneUser.ID, "+7 (910) 594-08-99", " no ", phoneUser.CreatedAt.UTC().Format(time.RFC3339))
	contains(t, "second row", lines[2], emailUser.ID, "ivan@example.ru", " yes ")
	for _, hash := range []string{phoneUser.PasswordHash, emailUser.PasswordHash, "$argon2id$"} {
		if strings.Contains(res.stdout, hash) {
			t.Error("list shows a password hash")
		}
	}
	for _, pw := range []string{"first password", "second password"} {
		if strings.Contains(res.stdout, pw) {
			t.Error("list shows a password")
		}
	}
	if res.stderr != "" {
		t.Errorf("stderr with fewer accounts than the limit: %q", res.stderr)
	}

	page := h.mustRun("", "user", "list", "--limit", "1")
	if !strings.Contains(page.stdout, phoneUser.ID) || strings.Contains(page.stdout, emailUser.ID) {
		t.Errorf("--limit 1:\n%s", page.stdout)
	}
	contains(t, "stderr", page.stderr, "--offset 1")
	next := h.mustRun("", "user", "list", "--offset", "1", "--limit", "1")
	if strings.Contains(next.stdout, phoneUser.ID) || !strings.Contains(next.stdout, emailUser.ID) {
		t.Errorf("--offset 1:\n%s", next.stdout)
	}
}

func TestUserBlock(t *testing.T) {
	tests := []struct {
		name string
		user func(u *storage.User) string // how USER is written
	}{
		{name: "by id", user: func(u *storage.User) string { return u.ID }},
		{name: "by phone in another writing", user: func(*storage.User) string { return "8 (910) 594-08-99" }},
		{name: "by email in upper case", user: func(*storage.User) string { return "IVAN@EXAMPLE.RU" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			u := &storage.User{Phone: ptr("+79105940899"), Email: ptr("ivan@example.ru"), PasswordHash: "x"}
			if err := h.store.CreateUser(h.ctx, u); err != nil {
				t.Fatal(err)
			}
			other := &storage.User{Phone: ptr("+79105940800"), PasswordHash: "x"}
			if err := h.store.CreateUser(h.ctx, other); err != nil {
				t.Fatal(err)
			}
			h.mustRun("", "client", "add", "--id", "report", "--name", "Отчет", "--type", "web",
				"--redirect-uri", "https://r.example.ru/cb", "--backchannel-logout-uri", "https://r.example.ru/bcl")
			sess, cookie := h.session(u.ID)
			if err := h.store.AddSessionClient(h.ctx, sess.ID, "report"); err != nil {
				t.Fatal(err)
			}
			rt := h.refreshToken("report", u.ID, sess.ID)
			_, otherCookie := h.session(other.ID)
			otherRT := h.refreshToken("report", other.ID, "")

			res := h.mustRun("", "user", "block", tt.user(u))
			contains(t, "stdout", res.stdout, "Blocked account "+u.ID, "Ended 1 session", "back-channel logout", "1 notification queued")

			if got, err := h.store.UserByID(h.ctx, u.ID); err != nil || !got.Blocked {
				t.Fatalf("account not blocked: %v", err)
			}
			if _, err := h.store.SessionByToken(h.ctx, cookie); !storage.IsNotFound(err) {
				t.Errorf("session still live: %v", err)
			}
			if got, err := h.store.RefreshFamilyByID(h.ctx, rt.ID); err != nil || got.RevokedAt == nil {
				t.Errorf("refresh token not revoked (err %v)", err)
			}
			if d, err := h.store.LogoutDeliveries(h.ctx, sess.ID); err != nil || len(d) != 1 || d[0].URI != "https://r.example.ru/bcl" {
				t.Errorf("back-channel logout deliveries %+v, err %v", d, err)
			}
			if events, err := h.store.UserEvents(h.ctx, u.ID, 0, 10); err != nil || len(events) != 1 || events[0].Kind != "blocked" {
				t.Errorf("audit events %+v, err %v", events, err)
			}
			// Someone else's session and tokens are untouched.
			if _, err := h.store.SessionByToken(h.ctx, otherCookie); err != nil {
				t.Errorf("another account's session ended: %v", err)
			}
			if got, _ := h.store.RefreshFamilyByID(h.ctx, otherRT.ID); got == nil || got.RevokedAt != nil {
				t.Error("another account's refresh token revoked")
			}

			again := h.mustRun("", "user", "block", tt.user(u))
			contains(t, "stdout", again.stdout, "already blocked", "No session was open")

			un := h.mustRun("", "user", "unblock", tt.user(u))
			contains(t, "stdout", un.stdout, "Unblocked account "+u.ID)
			if got, _ := h.store.UserByID(h.ctx, u.ID); got.Blocked {
				t.Error("account still blocked")
			}
			if got, _ := h.store.RefreshFamilyByID(h.ctx, rt.ID); got.RevokedAt == nil {
				t.Error("unblock brought a revoked token back")
			}
			un2 := h.mustRun("", "user", "unblock", tt.user(u))
			contains(t, "stdout", un2.stdout, "was not blocked")
		})
	}
}

func (h *harness) session(userID string) (*storage.Session, string) {
	h.t.Helper()
	cookie := storage.NewSecret()
	s := &storage.Session{UserID: userID, AuthTime: h.store.Now(), AMR: storage.StringList{"pwd"}, ExpiresAt: h.store.Now().Add(time.Hour)}
	if err := h.store.CreateSession(h.ctx, s, cookie); err != nil {
		h.t.Fatal(err)
	}
	return s, cookie
}

func TestUserBlockNoSessions(t *testing.T) {
	h := newHarness(t)
	h.mustRun("a good password\n", "user", "add", "--email", "ivan@example.ru", "--password-stdin")
	res := h.mustRun("", "user", "block", "ivan@example.ru")
	contains(t, "stdout", res.stdout, "No session was open; every token of the account is revoked.")
}

// Account ids are base64url and may start with "-": after "--" they are not flags.
func TestUserIDAfterDoubleDash(t *testing.T) {
	h := newHarness(t)
	if err := h.store.CreateUser(h.ctx, &storage.User{ID: "-starts-with-dash", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	h.mustRun("", "user", "block", "--", "-starts-with-dash")
	if u, err := h.store.UserByID(h.ctx, "-starts-with-dash"); err != nil || !u.Blocked {
		t.Fatalf("not blocked: %v", err)
	}
	if res := h.run("", "user", "unblock", "-starts-with-dash"); res.code != 2 {
		t.Errorf("without --: exit %d, want 2 (an unknown flag)", res.code)
	}
}

func TestUnknownUser(t *testing.T) {
	h := newHarness(t)
	for _, args := range [][]string{
		{"user", "block", "nobody"},
		{"user", "block", "+7 910 000-00-00"},
		{"user", "unblock", "nobody@example.ru"},
	} {
		res := h.run("", args...)
		if res.code != 1 {
			t.Errorf("idp %s: exit %d, want 1", strings.Join(args, " "), res.code)
		}
		contains(t, "stderr", res.stderr, "no account has the id, phone number or email "+`"`+args[2]+`"`)
	}
}

func TestDatabaseUnavailable(t *testing.T) {
	h := newHarness(t)
	env, _, errOut := h.env("")
	env.Open = func(context.Context) (*storage.Store, error) { return nil, errors.New("connection refused") }
	if code := admin.Run(h.ctx, []string{"client", "list"}, env); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if got := errOut.String(); got != "idp: open the database: connection refused\n" {
		t.Errorf("stderr %q", got)
	}
}

// TestBackends runs one administrator's day on SQLite and on PostgreSQL (which
// needs IDP_TEST_POSTGRES_URL; see storage/pgtest), so the unique-value and
// paging behaviour the commands rely on holds on both.
func TestBackends(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var h *harness
			if backend == "postgres" {
				h = newHarnessAt(t, pgtest.URL(t))
			} else {
				h = newHarness(t)
			}
			hasher := provider.ClientSecretHasher(masterKey)
			add := h.mustRun("", "client", "add", "--id", "report", "--name", "Астрал.Отчет", "--type", "web", "--redirect-uri", "https://r.example.ru/cb")
			if res := h.run("", "client", "add", "--id", "report", "--name", "Again", "--type", "spa", "--redirect-uri", "https://r.example.ru/cb"); res.code != 1 {
				t.Errorf("duplicate id: exit %d", res.code)
			}
			rotated := secretIn(h.mustRun("", "client", "rotate-secret", "report").stdout)
			if hash := h.client("report").SecretHash; !hasher.Verify(rotated, hash) || hasher.Verify(secretIn(add.stdout), hash) {
				t.Error("rotated secret does not replace the first one")
			}
			contains(t, "client list", h.mustRun("", "client", "list").stdout, "report", "Астрал.Отчет")
			h.mustRun("", "client", "remove", "report")

			h.mustRun("a good password\n", "user", "add", "--phone", "+79105940899", "--password-stdin")
			if res := h.run("a good password\n", "user", "add", "--phone", "8 910 594 08 99", "--password-stdin"); res.code != 1 {
				t.Errorf("duplicate phone: exit %d", res.code)
			}
			h.mustRun("a good password\n", "user", "add", "--email", "ivan@example.ru", "--password-stdin")
			u := h.user("+79105940899")
			sess, cookie := h.session(u.ID)
			rt := h.refreshToken("", u.ID, sess.ID)
			contains(t, "block", h.mustRun("", "user", "block", "+7 910 594 08 99").stdout, "Ended 1 session")
			if _, err := h.store.SessionByToken(h.ctx, cookie); !storage.IsNotFound(err) {
				t.Errorf("session still live: %v", err)
			}
			if got, err := h.store.RefreshFamilyByID(h.ctx, rt.ID); err != nil || got.RevokedAt == nil {
				t.Errorf("refresh token not revoked (err %v)", err)
			}
			list := h.mustRun("", "user", "list", "--limit", "1", "--offset", "1").stdout
			if !strings.Contains(list, "ivan@example.ru") || strings.Contains(list, u.ID) {
				t.Errorf("second page:\n%s", list)
			}
			h.mustRun("", "user", "unblock", u.ID)
		})
	}
}
