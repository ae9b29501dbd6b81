package admin

import (
	"flag"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/astral/idp/provider"
	"github.com/astral/idp/provider/clientfile"
	"github.com/astral/idp/storage"
)

// sourceCLI and sourceFile are storage.Client.Source: where a client was registered.
const (
	sourceCLI  = "cli"
	sourceFile = "file"
)

const secretExample = "openssl rand -base64 48 | idp client … --secret-stdin"

func clientGroup() group {
	return group{
		name:    "client",
		summary: "register the products (OpenID Connect clients) that sign people in",
		commands: []command{
			{
				name:     "add",
				synopsis: "--id ID --name NAME --type web|spa|native --redirect-uri URI [flags]",
				summary:  "register a product; prints a web client's generated secret once",
				help: `
Registers a product (an OpenID Connect client) in the database, next to the
clients that come from the clients file. Flags may be given in any order; the
command takes no other arguments.

A web client is confidential: it gets a client secret. Without --secret-stdin a
random secret is generated and printed once: it cannot be shown again, because
only its hash is stored. With --secret-stdin the secret is read from the first
line of standard input instead (at least 32 characters). Secrets are never
accepted on the command line. spa and native clients are public: they have no
secret and must use PKCE.`,
				example: `
idp client add --id report --name "Астрал.Отчет" --type web \
    --redirect-uri https://online.astral.ru/oidc/callback \
    --post-logout-redirect-uri https://online.astral.ru/ \
    --backchannel-logout-uri https://online.astral.ru/oidc/backchannel-logout
openssl rand -base64 48 | idp client add --id poa-api --name "Доверенность API" \
    --type web --grant client_credentials --secret-stdin`,
				order: []string{"id", "name", "type", "redirect-uri", "post-logout-redirect-uri", "grant",
					"backchannel-logout-uri", "home-url", "scope", "secret-stdin"},
				flags: (*runner).clientAdd,
			},
			{
				name:     "list",
				synopsis: "",
				summary:  "show every registered product (never its secret)",
				help: `
Lists every client, from the clients file (SOURCE file) and from this command
line (SOURCE cli), by id. Secrets and their hashes are never shown.`,
				example: `idp client list`,
				flags:   (*runner).clientList,
			},
			{
				name:     "remove",
				synopsis: "ID",
				summary:  "delete a product added here and revoke its tokens",
				help: `
Deletes the client ID and revokes every token issued to it. Clients that come from
the clients file are removed from the file instead (and the server restarted).`,
				example: `idp client remove poa-api`,
				flags:   (*runner).clientRemove,
			},
			{
				name:     "rotate-secret",
				synopsis: "ID [--secret-stdin]",
				summary:  "replace a web client's secret; prints a generated one once",
				help: `
Replaces the secret of the web client ID; the old secret stops working at once.
Without --secret-stdin a random secret is generated and printed once: it cannot
be shown again. With --secret-stdin the new secret is read from the first line of
standard input (at least 32 characters). --secret-stdin may come before or after
ID. Clients from the clients file keep their secret in the file (or the
environment it refers to): change it there and restart the server.`,
				example: `
idp client rotate-secret report
openssl rand -base64 48 | idp client rotate-secret report --secret-stdin`,
				flags: (*runner).clientRotateSecret,
			},
		},
	}
}

func (r *runner) clientAdd(fs *flag.FlagSet) func([]string) error {
	id := fs.String("id", "", "the `ID` the product sends as client_id: 1 to 64 of a-z 0-9 . _ - (required; never changes)")
	name := fs.String("name", "", "the product's `NAME`, shown as \"Вход в NAME\" on the login page (required)")
	typ := fs.String("type", "", "the client `TYPE`: web (a server that keeps a secret), spa or native (public, PKCE) (required)")
	redirects := &listFlag{}
	fs.Var(redirects, "redirect-uri", "an exact `URI` the sign-in result may be sent to; repeat for more (required with authorization_code)")
	postLogout := &listFlag{}
	fs.Var(postLogout, "post-logout-redirect-uri", "an exact `URI` a logout may return to; repeat for more")
	grants := &listFlag{split: true}
	fs.Var(grants, "grant", "a `GRANT`: authorization_code, refresh_token or client_credentials (web only); repeat for more (default authorization_code,refresh_token)")
	backchannel := fs.String("backchannel-logout-uri", "", "the `URI` the product's server is told at when a session ends")
	home := fs.String("home-url", "", "the `URL` the account cabinet links to the product at")
	scopes := &listFlag{split: true}
	fs.Var(scopes, "scope", "an allowed `SCOPE`: openid, profile, email, phone, offline_access or gosuslugi; repeat for more (default: all but gosuslugi)")
	secretStdin := fs.Bool("secret-stdin", false, "read a web client's secret from standard input instead of generating one")

	return func(args []string) error {
		const cmd = "client add"
		if err := noArgs(cmd, args, "a secret is read from standard input with --secret-stdin"); err != nil {
			return err
		}
		c := clientfile.Client{
			ID:                     strings.TrimSpace(*id),
			Name:                   strings.TrimSpace(*name),
			Type:                   strings.TrimSpace(*typ),
			RedirectURIs:           redirects.items,
			PostLogoutRedirectURIs: postLogout.items,
			GrantTypes:             grants.items,
			BackchannelLogoutURI:   strings.TrimSpace(*backchannel),
			HomeURL:                strings.TrimSpace(*home),
			Scopes:                 scopes.items,
		}
		c.Normalize()
		if *secretStdin && (c.Type == "spa" || c.Type == "native") {
			return usagef(cmd, "--secret-stdin is only for web clients: a %s client is public, has no secret and uses PKCE", c.Type)
		}
		// Judge the command line first, with a stand-in for the secret that is not
		// there yet, so a mistake is reported before anything is read or generated.
		probe := c
		if probe.Confidential() {
			probe.Secret = strings.Repeat("x", clientfile.MinSecretLength)
		}
		ce := &cmdError{code: exitUsage, cmd: cmd}
		for _, err := range probe.Validate() {
			ce.lines = append(ce.lines, flagProblem(err.Error()))
		}
		// The columns' sizes (storage.Client), which the clients file never comes near.
		for _, f := range []struct {
			flag, value string
			max         int
		}{{"--name", c.Name, 200}, {"--backchannel-logout-uri", c.BackchannelLogoutURI, 2048}, {"--home-url", c.HomeURL, 2048}} {
			if n := utf8.RuneCountInString(f.value); n > f.max {
				ce.lines = append(ce.lines, fmt.Sprintf("%s is too long (%d characters): at most %d", f.flag, n, f.max))
			}
		}
		if len(ce.lines) > 0 {
			return ce
		}
		if c.Confidential() && len(r.env.MasterKey) == 0 {
			return failf("no master key is configured (IDP_MASTER_KEY): client secrets are hashed with it")
		}

		st, err := r.open()
		if err != nil {
			return err
		}
		if err := clientTaken(r, st, c.ID); err != nil {
			return err
		}

		var secret string
		if c.Confidential() {
			if secret, err = r.clientSecret(*secretStdin); err != nil {
				return err
			}
		}
		row := &storage.Client{
			ID:                     c.ID,
			Name:                   c.Name,
			Type:                   c.Type,
			RedirectURIs:           storage.StringList(c.RedirectURIs),
			PostLogoutRedirectURIs: storage.StringList(c.PostLogoutRedirectURIs),
			GrantTypes:             storage.StringList(c.GrantTypes),
			Scopes:                 storage.StringList(c.Scopes),
			BackchannelLogoutURI:   c.BackchannelLogoutURI,
			HomeURL:                c.HomeURL,
			Source:                 sourceCLI,
		}
		if c.Confidential() {
			row.SecretHash = provider.ClientSecretHasher(r.env.MasterKey).Hash(secret)
		}
		if err := st.CreateClient(r.ctx, row); err != nil {
			if storage.IsConflict(err) {
				if err := clientTaken(r, st, c.ID); err != nil {
					return err
				}
			}
			return failf("add client %q: %v", c.ID, err)
		}

		switch {
		case !c.Confidential():
			r.out("Added client %q (%s): a public client without a secret; it must use PKCE.\n", c.ID, c.Type)
		case *secretStdin:
			r.out("Added client %q (web). Its secret was read from standard input; only its hash is stored.\n", c.ID)
		default:
			r.out("Added client %q (web). Its client secret is on the next line.\n", c.ID)
			r.out("It is shown only this once and cannot be shown again: put it in the product's configuration now.\n")
			r.out("%s\n", secret)
		}
		return nil
	}
}

// clientTaken reports a clear error when id is already registered.
func clientTaken(r *runner, st *storage.Store, id string) error {
	existing, err := st.ClientByID(r.ctx, id)
	switch {
	case storage.IsNotFound(err):
		return nil
	case err != nil:
		return failf("look up client %q: %v", id, err)
	case existing.Source == sourceFile:
		return failf("client %q already exists: it comes from the clients file; choose another --id", id)
	default:
		return failf("client %q already exists; choose another --id, or remove the old one first with: idp client remove %s", id, id)
	}
}

// clientSecret reads a secret from standard input or generates one.
func (r *runner) clientSecret(fromStdin bool) (string, error) {
	if !fromStdin {
		s, err := newClientSecret()
		if err != nil {
			return "", failf("%v", err)
		}
		return s, nil
	}
	s, err := readLine(r.env.Stdin, "the secret", secretExample)
	if err != nil {
		return "", err
	}
	// The secret itself is never repeated: messages end up in logs.
	if n := len([]rune(s)); n < clientfile.MinSecretLength {
		return "", failf("the secret on standard input is too short (%d characters): secrets must be at least %d random characters; make one with: openssl rand -base64 48",
			n, clientfile.MinSecretLength)
	}
	return s, nil
}

// fieldFlags names the flag that sets each field of the clients file.
var fieldFlags = map[string]string{
	"id":                        "--id",
	"name":                      "--name",
	"type":                      "--type",
	"redirect_uris":             "--redirect-uri",
	"post_logout_redirect_uris": "--post-logout-redirect-uri",
	"grant_types":               "--grant",
	"backchannel_logout_uri":    "--backchannel-logout-uri",
	"home_url":                  "--home-url",
	"scopes":                    "--scope",
}

var leadingField = regexp.MustCompile(`^([a-z_]+)(\[\d+\])?( |$)`)

// flagProblem turns a problem clientfile.Validate words for the file
// ("redirect_uris[0] \"…\" must use https…") into one about the flag
// ("--redirect-uri \"…\" must use https…"); the value is quoted in the message, so
// the index is not needed.
func flagProblem(msg string) string {
	m := leadingField.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	f, ok := fieldFlags[m[1]]
	if !ok {
		return msg
	}
	return f + m[3] + msg[len(m[0]):]
}

func (r *runner) clientList(*flag.FlagSet) func([]string) error {
	return func(args []string) error {
		if len(args) > 0 {
			return usagef("client list", "unexpected argument %q: client list takes none", args[0])
		}
		st, err := r.open()
		if err != nil {
			return err
		}
		clients, err := st.ListClients(r.ctx)
		if err != nil {
			return failf("list clients: %v", err)
		}
		tw := newTable(r.env.Stdout)
		fmt.Fprintln(tw, "ID\tNAME\tTYPE\tSOURCE\tGRANTS\tREDIRECT URIS")
		for _, c := range clients {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(c.ID), cell(c.Name), cell(c.Type), cell(c.Source),
				cell(strings.Join(c.GrantTypes, ",")), cell(strings.Join(c.RedirectURIs, " ")))
		}
		return tw.Flush()
	}
}

func (r *runner) clientRemove(*flag.FlagSet) func([]string) error {
	return func(args []string) error {
		const cmd = "client remove"
		if len(args) != 1 {
			return usagef(cmd, "name exactly one client: idp client remove ID")
		}
		id := args[0]
		st, err := r.open()
		if err != nil {
			return err
		}
		c, err := findClient(r, st, id)
		if err != nil {
			return err
		}
		if c.Source == sourceFile {
			return failf("client %q comes from the clients file; remove it there and restart", id)
		}
		if err := st.DeleteClient(r.ctx, id); err != nil {
			if storage.IsNotFound(err) {
				return noClient(id)
			}
			return failf("remove client %q: %v", id, err)
		}
		r.out("Removed client %q; every token issued to it is revoked.\n", id)
		return nil
	}
}

func (r *runner) clientRotateSecret(fs *flag.FlagSet) func([]string) error {
	secretStdin := fs.Bool("secret-stdin", false, "read the new secret from standard input instead of generating one")
	return func(args []string) error {
		const cmd = "client rotate-secret"
		if len(args) != 1 {
			return usagef(cmd, "name exactly one client: idp client rotate-secret ID [--secret-stdin] (a secret is read from standard input only)")
		}
		id := args[0]
		if len(r.env.MasterKey) == 0 {
			return failf("no master key is configured (IDP_MASTER_KEY): client secrets are hashed with it")
		}
		st, err := r.open()
		if err != nil {
			return err
		}
		c, err := findClient(r, st, id)
		if err != nil {
			return err
		}
		switch {
		case c.Source == sourceFile:
			return failf("client %q comes from the clients file: its secret is set there (or in the environment variable it names); change it there and restart", id)
		case c.Type != "web":
			return failf("client %q is a %s client: public clients have no secret, they prove themselves with PKCE", id, c.Type)
		}
		secret, err := r.clientSecret(*secretStdin)
		if err != nil {
			return err
		}
		if err := st.SetClientSecretHash(r.ctx, id, provider.ClientSecretHasher(r.env.MasterKey).Hash(secret)); err != nil {
			if storage.IsNotFound(err) {
				return noClient(id)
			}
			return failf("set the secret of client %q: %v", id, err)
		}
		if *secretStdin {
			r.out("Replaced the secret of client %q with the one from standard input; the old secret no longer works.\n", id)
			return nil
		}
		r.out("Replaced the secret of client %q; the old secret no longer works. The new one is on the next line.\n", id)
		r.out("It is shown only this once and cannot be shown again: put it in the product's configuration now.\n")
		r.out("%s\n", secret)
		return nil
	}
}

func findClient(r *runner, st *storage.Store, id string) (*storage.Client, error) {
	c, err := st.ClientByID(r.ctx, id)
	switch {
	case storage.IsNotFound(err):
		return nil, noClient(id)
	case err != nil:
		return nil, failf("look up client %q: %v", id, err)
	}
	return c, nil
}

func noClient(id string) error {
	return failf("no client has the id %q (see: idp client list)", id)
}
