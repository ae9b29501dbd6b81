package clientfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// secret32 is exactly MinSecretLength characters.
const secret32 = "0123456789abcdef0123456789abcdef"

// env builds a lookupEnv over a map, the way tests stand in for os.LookupEnv.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// messages splits a joined error back into its lines.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// checkMessages wants one message per entry of want, in order, each starting with it.
func checkMessages(t *testing.T, got []string, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Errorf("got %d problems:\n  %s\nwant %d starting with:\n  %s",
			len(got), strings.Join(got, "\n  "), len(want), strings.Join(want, "\n  "))
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // message prefixes, in file order; none means the file is valid
		n    int      // number of clients when valid
	}{
		{
			name: "minimal web client",
			yaml: `clients:
  - id: app
    name: App
    type: web
    secret: "` + secret32 + `"
    redirect_uris: ["https://app.example/cb"]
`,
			n: 1,
		},
		{name: "empty list", yaml: "clients: []\n", n: 0},
		{name: "clients key with nothing under it", yaml: "clients:\n", n: 0},
		{name: "only comments under clients", yaml: "clients:\n  # none yet\n", n: 0},
		{
			name: "empty file",
			yaml: "",
			want: []string{`clients.yaml:1: the file is empty: it needs a top-level "clients:" list`},
		},
		{
			name: "only a comment",
			yaml: "# nothing\n",
			want: []string{`clients.yaml:1: the file is empty`},
		},
		{
			name: "missing clients list",
			yaml: "# header\nclient:\n  - id: app\n",
			want: []string{`clients.yaml:2: the top-level "clients:" list is missing`},
		},
		{
			name: "top level is a list",
			yaml: "- id: app\n",
			want: []string{`clients.yaml:1: the top level must be a mapping with a "clients:" list`},
		},
		{
			name: "clients is a mapping",
			yaml: "clients:\n  id: app\n",
			want: []string{`clients.yaml:2: "clients" must be a list of clients`},
		},
		{
			name: "clients is a string",
			yaml: "clients: app\n",
			want: []string{`clients.yaml:1: "clients" must be a list of clients`},
		},
		{
			name: "syntax error keeps yaml's line",
			yaml: "clients:\n  - id: app\n    name: [unclosed\n",
			want: []string{`clients.yaml:2: did not find expected ',' or ']'`},
		},
		{
			name: "tab indentation",
			yaml: "clients:\n\t- id: app\n",
			want: []string{`clients.yaml:2: found character that cannot start any token`},
		},
		{
			name: "syntax error on the first line",
			yaml: "clients: a: b\n",
			want: []string{`clients.yaml:1: mapping values are not allowed in this context`},
		},
		{
			name: "control character",
			yaml: "clients:\n  - id: app\n    name: \"A\x01\"\n",
			want: []string{`clients.yaml:3: control characters are not allowed`},
		},
		{
			name: "two documents",
			yaml: "clients: []\n---\nclients: []\n",
			want: []string{`clients.yaml:2: only one YAML document is allowed`},
		},
		{
			name: "unknown top-level key",
			yaml: "clients: []\nclinets: []\n",
			want: []string{`clients.yaml:2: unknown top-level key "clinets": the file has only "clients"`},
		},
		{
			name: "unknown client key, and what it leaves missing",
			yaml: `clients:
  - id: app
    name: App
    type: web
    secret: "` + secret32 + `"
    redirect_uri: ["https://app.example/cb"]
`,
			want: []string{
				`clients.yaml:2: client "app": redirect_uris needs at least one URL because authorization_code is granted`,
				`clients.yaml:6: client "app": unknown key "redirect_uri": a client has only id, name, secret, type, redirect_uris,`,
			},
		},
		{
			name: "unknown key after the list is not blamed on the last client",
			yaml: `clients:
  - id: app
    name: App
    type: spa
    redirect_uris: ["https://app.example/cb"]
extra: 1
`,
			want: []string{`clients.yaml:6: unknown top-level key "extra"`},
		},
		{
			name: "a string where a list belongs",
			yaml: `clients:
  - id: app
    name: App
    type: spa
    redirect_uris: "https://app.example/cb"
`,
			want: []string{
				`clients.yaml:5: client "app": redirect_uris needs at least one URL`,
				`clients.yaml:5: client "app": redirect_uris must be a list, not a string`,
			},
		},
		{
			name: "a list where a single value belongs",
			yaml: `clients:
  - id: app
    name: [App]
    type: spa
    redirect_uris: ["https://app.example/cb"]
`,
			want: []string{
				`clients.yaml:3: client "app": name is required`,
				`clients.yaml:3: client "app": name must be a single value, not a list`,
			},
		},
		{
			name: "a list inside a list",
			yaml: `clients:
  - id: app
    name: App
    type: spa
    redirect_uris:
      - "https://app.example/cb"
      - ["https://app.example/other"]
`,
			want: []string{`clients.yaml:7: client "app": redirect_uris[1] must be a single value, not a list`},
		},
		{
			name: "entry that is not a mapping",
			yaml: "clients:\n  - app\n",
			want: []string{`clients.yaml:2: client #1: each client must be a mapping of keys such as id:, name: and type:, not a string`},
		},
		{
			name: "empty entry",
			yaml: "clients:\n  -\n",
			want: []string{`clients.yaml:2: client #1: the entry is empty`},
		},
		{
			name: "empty list item",
			yaml: `clients:
  - id: app
    name: App
    type: spa
    redirect_uris:
      -
      - "https://app.example/cb"
`,
			want: []string{`clients.yaml:6: client "app": redirect_uris[0] is empty`},
		},
		{
			name: "second entry not a mapping, first still checked",
			yaml: `clients:
  - id: app
    name: App
    type: spa
    redirect_uris: ["http://app.example/cb"]
  - [a, b]
`,
			want: []string{
				`clients.yaml:5: client "app": redirect_uris[0] "http://app.example/cb" must use https`,
				`clients.yaml:6: client #2: each client must be a mapping of keys such as id:, name: and type:, not a list`,
			},
		},
		{
			name: "empty mapping is validated",
			yaml: "clients:\n  - {}\n",
			want: []string{
				`clients.yaml:2: client #1: id is required`,
				`clients.yaml:2: client #1: name is required`,
				`clients.yaml:2: client #1: type is required`,
				`clients.yaml:2: client #1: redirect_uris needs at least one URL`,
			},
		},
		{
			name: "repeated key",
			yaml: `clients:
  - id: app
    name: App
    type: spa
    name: Other
`,
			want: []string{`clients.yaml:5: client #1: key "name" is repeated (first set on line 3)`},
		},
		{
			name: "duplicate id",
			yaml: `clients:
  - id: app
    name: App
    type: spa
    redirect_uris: ["https://app.example/cb"]
  - name: Again
    type: spa
    redirect_uris: ["https://again.example/cb"]
    id: app
`,
			want: []string{`clients.yaml:9: client "app": id "app" is already used by the client on line 2: ids must be unique`},
		},
		{
			name: "the message of the brief",
			yaml: `clients:
  - id: report
    name: "Астрал.Отчет"
    type: web
    secret: "` + secret32 + `"
    redirect_uris:
      - "https://online.astral.ru/oidc/callback"
      - "online.astral.ru/cb"
`,
			want: []string{`clients.yaml:8: client "report": redirect_uris[1] "online.astral.ru/cb" is not an absolute URL`},
		},
		{
			name: "every problem of every client, in file order",
			yaml: `clients:
  - id: Report
    name: ""
    type: web
    secret: short
    redirect_uris:
      - "http://online.astral.ru/cb"
      - "https://online.astral.ru/cb#x"
    post_logout_redirect_uris: ["/"]
    grant_types: [authorization_code, implicit]
    backchannel_logout_uri: "ru.astral.app:/logout"
    home_url: "http://online.astral.ru/"
    scopes: [openid, admin]

  - id: poa
    name: POA
    type: spa
    secret: "` + secret32 + `"
    redirect_uris: ["ru.astral.poa:/cb"]
    grant_types: [refresh_token, client_credentials]
`,
			want: []string{
				`clients.yaml:2: client "Report": id "Report" is not valid`,
				`clients.yaml:3: client "Report": name is required`,
				`clients.yaml:5: client "Report": secret is too short (5 characters); secrets must be at least 32 random characters; make one with: openssl rand -base64 48`,
				`clients.yaml:7: client "Report": redirect_uris[0] "http://online.astral.ru/cb" must use https`,
				`clients.yaml:8: client "Report": redirect_uris[1] "https://online.astral.ru/cb#x" must not contain a fragment`,
				`clients.yaml:9: client "Report": post_logout_redirect_uris[0] "/" is not an absolute URL`,
				`clients.yaml:10: client "Report": grant_types[1] "implicit" is not supported`,
				`clients.yaml:11: client "Report": backchannel_logout_uri "ru.astral.app:/logout" must be an https URL`,
				`clients.yaml:12: client "Report": home_url "http://online.astral.ru/" must use https`,
				`clients.yaml:13: client "Report": scopes[1] "admin" is not supported`,
				`clients.yaml:18: client "poa": secret must not be set for a spa client`,
				`clients.yaml:19: client "poa": redirect_uris[0] "ru.astral.poa:/cb" must be an https URL`,
				`clients.yaml:20: client "poa": grant_types[1] client_credentials is only for web (confidential) clients`,
				`clients.yaml:20: client "poa": grant_types has refresh_token without authorization_code`,
			},
		},
		{
			name: "unset variable names the variable and the line",
			yaml: `clients:
  - id: app
    name: App
    type: web
    secret: "${APP_SECRET}"
    redirect_uris: ["https://app.example/cb"]
`,
			want: []string{
				`clients.yaml:5: client "app": secret: environment variable APP_SECRET is not set: set it, or give a default as ${APP_SECRET:-value}`,
			},
		},
		{
			name: "variable in a list item",
			yaml: `clients:
  - id: app
    name: App
    type: spa
    redirect_uris:
      - "https://app.example/cb"
      - "https://${APP_HOST}/cb"
`,
			want: []string{
				`clients.yaml:7: client "app": redirect_uris[1]: environment variable APP_HOST is not set`,
			},
		},
		{
			name: "variables set, defaulted and escaped",
			yaml: `clients:
  - id: ${APP_ID}
    name: "${APP_NAME:-App}"
    type: web
    secret: '${APP_SECRET}'
    redirect_uris: ["https://${APP_HOST:-app.example}/cb?price=$$5"]
`,
			env: map[string]string{"APP_ID": "app", "APP_SECRET": secret32, "APP_HOST": ""},
			n:   1,
		},
		{
			name: "bad variable reference",
			yaml: `clients:
  - id: app
    name: "${APP NAME}"
    type: spa
    redirect_uris: ["https://app.example/cb"]
`,
			want: []string{
				`clients.yaml:3: client "app": name: "APP NAME" is not a valid variable name`,
			},
		},
		{
			name: "an anchor shared by two clients",
			yaml: `clients:
  - id: a
    name: A
    type: spa
    redirect_uris: &cb ["https://app.example/cb"]
  - id: b
    name: B
    type: spa
    redirect_uris: *cb
`,
			n: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clients, err := Parse("clients.yaml", []byte(tt.yaml), env(tt.env))
			checkMessages(t, messages(err), tt.want)
			if err != nil {
				if clients != nil {
					t.Errorf("got %d clients with an error, want none", len(clients))
				}
				return
			}
			if len(clients) != tt.n {
				t.Errorf("got %d clients, want %d", len(clients), tt.n)
			}
			if clients == nil {
				t.Error("got nil clients without an error, want an empty list")
			}
		})
	}
}

// TestParseResult checks what a valid file turns into: expanded, normalized, with lines.
func TestParseResult(t *testing.T) {
	data := `# products
clients:
  - id: app
    name: "${APP_NAME:-App}"
    type: web
    secret: "${APP_SECRET}"
    redirect_uris: ["https://app.example/cb"]

  - id: cli
    name: CLI
    type: native
    redirect_uris: ["ru.astral.cli:/cb", "http://127.0.0.1/cb"]
    scopes: []
`
	clients, err := Parse("clients.yaml", []byte(data), env(map[string]string{"APP_SECRET": "$$" + secret32}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Client{{
		ID:           "app",
		Name:         "App",
		Type:         "web",
		Secret:       "$$" + secret32, // expansion is not applied to what a variable holds
		RedirectURIs: []string{"https://app.example/cb"},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Line:         3,
	}, {
		ID:           "cli",
		Name:         "CLI",
		Type:         "native",
		RedirectURIs: []string{"ru.astral.cli:/cb", "http://127.0.0.1/cb"},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Line:         9,
	}}
	if !reflect.DeepEqual(clients, want) {
		t.Errorf("got  %+v\nwant %+v", clients, want)
	}
}

// TestParseKeepsSecretsOutOfMessages: messages end up in logs.
func TestParseKeepsSecretsOutOfMessages(t *testing.T) {
	const short = "hunter2-hunter2"
	data := "clients:\n  - id: app\n    name: App\n    type: web\n    secret: " + short + "\n    redirect_uris: [\"https://app.example/cb\"]\n"
	_, err := Parse("clients.yaml", []byte(data), nil)
	if err == nil || strings.Contains(err.Error(), short) {
		t.Errorf("got %v, want an error that does not repeat the secret", err)
	}
	data = "clients:\n  - id: app\n    name: App\n    type: web\n    secret: \"s3cr3t${oops\"\n    redirect_uris: [\"https://app.example/cb\"]\n"
	_, err = Parse("clients.yaml", []byte(data), nil)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("got %v, want an error that does not repeat the secret", err)
	}
}

func TestValidate(t *testing.T) {
	web := func() Client {
		return Client{
			ID: "app", Name: "App", Type: "web", Secret: secret32,
			RedirectURIs: []string{"https://app.example/cb"},
		}
	}
	spa := func() Client {
		return Client{ID: "app", Name: "App", Type: "spa", RedirectURIs: []string{"https://app.example/cb"}}
	}
	native := func() Client {
		return Client{ID: "app", Name: "App", Type: "native", RedirectURIs: []string{"ru.astral.app:/cb"}}
	}
	tests := []struct {
		name   string
		client Client
		want   []string // message prefixes; none means valid
		fields []string // the field each problem is about, when checked
	}{
		{name: "valid web", client: web()},
		{name: "valid spa", client: spa()},
		{name: "valid native", client: native()},

		// id
		{name: "id missing", client: with(web(), func(c *Client) { c.ID = "" }), want: []string{"id is required"}, fields: []string{"id"}},
		{name: "id upper case", client: with(web(), func(c *Client) { c.ID = "App" }), want: []string{`id "App" is not valid`}},
		{name: "id starts with a dash", client: with(web(), func(c *Client) { c.ID = "-app" }), want: []string{`id "-app" is not valid`}},
		{name: "id with a space", client: with(web(), func(c *Client) { c.ID = "my app" }), want: []string{`id "my app" is not valid`}},
		{name: "id of 64 characters", client: with(web(), func(c *Client) { c.ID = strings.Repeat("a", 64) })},
		{name: "id of 65 characters", client: with(web(), func(c *Client) { c.ID = strings.Repeat("a", 65) }), want: []string{`id "aaaa`}},
		{name: "id with dot, dash and underscore", client: with(web(), func(c *Client) { c.ID = "0astral.report_v2-beta" })},

		// name
		{name: "name missing", client: with(web(), func(c *Client) { c.Name = "" }), want: []string{"name is required"}, fields: []string{"name"}},
		{name: "name blank", client: with(web(), func(c *Client) { c.Name = "  " }), want: []string{"name is required"}},

		// type
		{name: "type missing", client: with(spa(), func(c *Client) { c.Type = "" }), want: []string{"type is required"}, fields: []string{"type"}},
		{name: "type unknown", client: with(spa(), func(c *Client) { c.Type = "Web" }), want: []string{`type "Web" is not supported: use web, spa or native`}},

		// secret
		{name: "web without secret", client: with(web(), func(c *Client) { c.Secret = "" }),
			want: []string{"secret is required for a web client; secrets must be at least 32 random characters; make one with: openssl rand -base64 48"}, fields: []string{"secret"}},
		{name: "web secret of 31", client: with(web(), func(c *Client) { c.Secret = secret32[1:] }),
			want: []string{"secret is too short (31 characters); secrets must be at least 32 random characters; make one with: openssl rand -base64 48"}},
		{name: "web secret counted in characters", client: with(web(), func(c *Client) { c.Secret = strings.Repeat("ж", 31) }),
			want: []string{"secret is too short (31 characters)"}},
		{name: "spa with secret", client: with(spa(), func(c *Client) { c.Secret = secret32 }),
			want: []string{"secret must not be set for a spa client"}, fields: []string{"secret"}},
		{name: "native with secret", client: with(native(), func(c *Client) { c.Secret = secret32 }),
			want: []string{"secret must not be set for a native client"}},

		// redirect_uris
		{name: "no redirect with authorization_code", client: with(web(), func(c *Client) { c.RedirectURIs = nil }),
			want: []string{"redirect_uris needs at least one URL because authorization_code is granted"}, fields: []string{"redirect_uris"}},
		{name: "no redirect with the default grants", client: with(spa(), func(c *Client) { c.RedirectURIs = []string{} }),
			want: []string{"redirect_uris needs at least one URL"}},
		{name: "no redirect for client_credentials only", client: with(web(), func(c *Client) {
			c.RedirectURIs = nil
			c.GrantTypes = []string{"client_credentials"}
		})},
		{name: "redirect relative", client: with(web(), func(c *Client) { c.RedirectURIs = []string{"/cb"} }),
			want: []string{`redirect_uris[0] "/cb" is not an absolute URL`}, fields: []string{"redirect_uris[0]"}},
		{name: "redirect without scheme", client: with(web(), func(c *Client) { c.RedirectURIs = []string{"online.astral.ru/cb"} }),
			want: []string{`redirect_uris[0] "online.astral.ru/cb" is not an absolute URL`}},
		{name: "redirect empty", client: with(web(), func(c *Client) { c.RedirectURIs = []string{""} }),
			want: []string{`redirect_uris[0] is empty`}},
		{name: "redirect unparsable", client: with(web(), func(c *Client) { c.RedirectURIs = []string{"https://app.example/%zz"} }),
			want: []string{`redirect_uris[0] "https://app.example/%zz" is not a valid URL: invalid URL escape "%zz"`}},
		{name: "redirect with fragment", client: with(web(), func(c *Client) { c.RedirectURIs = []string{"https://app.example/cb#top"} }),
			want: []string{`redirect_uris[0] "https://app.example/cb#top" must not contain a fragment`}},
		{name: "redirect with empty fragment", client: with(web(), func(c *Client) { c.RedirectURIs = []string{"https://app.example/cb#"} }),
			want: []string{`redirect_uris[0] "https://app.example/cb#" must not contain a fragment`}},
		{name: "redirect http on a real host", client: with(web(), func(c *Client) { c.RedirectURIs = []string{"https://app.example/cb", "http://app.example/cb"} }),
			want: []string{`redirect_uris[1] "http://app.example/cb" must use https: plain http is allowed only on localhost, 127.0.0.1 or [::1]`}, fields: []string{"redirect_uris[1]"}},
		{name: "redirect http on loopback hosts", client: with(web(), func(c *Client) {
			c.RedirectURIs = []string{"http://localhost:9001/cb", "http://127.0.0.1:9001/cb", "http://[::1]:9001/cb", "http://LOCALHOST/cb"}
		})},
		{name: "redirect http on a look-alike host", client: with(web(), func(c *Client) { c.RedirectURIs = []string{"http://localhost.evil.example/cb"} }),
			want: []string{`redirect_uris[0] "http://localhost.evil.example/cb" must use https`}},
		{name: "redirect https without host", client: with(web(), func(c *Client) { c.RedirectURIs = []string{"https:///cb"} }),
			want: []string{`redirect_uris[0] "https:///cb" has no host`}},
		{name: "redirect private scheme on web", client: with(web(), func(c *Client) { c.RedirectURIs = []string{"ru.astral.app:/cb"} }),
			want: []string{`redirect_uris[0] "ru.astral.app:/cb" must be an https URL`}},
		{name: "redirect private scheme on spa", client: with(spa(), func(c *Client) { c.RedirectURIs = []string{"ru.astral.app:/cb"} }),
			want: []string{`redirect_uris[0] "ru.astral.app:/cb" must be an https URL`}},
		{name: "redirect javascript scheme on native", client: with(native(), func(c *Client) { c.RedirectURIs = []string{"javascript:alert(1)"} }),
			want: []string{`redirect_uris[0] "javascript:alert(1)" uses the scheme "javascript": a native app's private-use scheme must be a reverse domain name`}},
		{name: "native with loopback and https", client: with(native(), func(c *Client) {
			c.RedirectURIs = []string{"http://127.0.0.1/cb", "https://app.example/cb"}
		})},

		// post_logout_redirect_uris
		{name: "post logout relative", client: with(web(), func(c *Client) { c.PostLogoutRedirectURIs = []string{"https://app.example/", "/"} }),
			want: []string{`post_logout_redirect_uris[1] "/" is not an absolute URL`}, fields: []string{"post_logout_redirect_uris[1]"}},
		{name: "post logout http", client: with(web(), func(c *Client) { c.PostLogoutRedirectURIs = []string{"http://app.example/"} }),
			want: []string{`post_logout_redirect_uris[0] "http://app.example/" must use https`}},
		{name: "post logout fragment", client: with(web(), func(c *Client) { c.PostLogoutRedirectURIs = []string{"https://app.example/#bye"} }),
			want: []string{`post_logout_redirect_uris[0] "https://app.example/#bye" must not contain a fragment`}},
		{name: "post logout private scheme on native", client: with(native(), func(c *Client) { c.PostLogoutRedirectURIs = []string{"ru.astral.app:/bye"} })},
		{name: "post logout private scheme on web", client: with(web(), func(c *Client) { c.PostLogoutRedirectURIs = []string{"ru.astral.app:/bye"} }),
			want: []string{`post_logout_redirect_uris[0] "ru.astral.app:/bye" must be an https URL`}},

		// grant_types
		{name: "grant unknown", client: with(web(), func(c *Client) { c.GrantTypes = []string{"authorization_code", "password"} }),
			want: []string{`grant_types[1] "password" is not supported: use authorization_code, refresh_token or client_credentials`}, fields: []string{"grant_types[1]"}},
		{name: "client_credentials on web", client: with(web(), func(c *Client) { c.GrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"} })},
		{name: "client_credentials on spa", client: with(spa(), func(c *Client) { c.GrantTypes = []string{"authorization_code", "client_credentials"} }),
			want: []string{"grant_types[1] client_credentials is only for web (confidential) clients"}, fields: []string{"grant_types[1]"}},
		{name: "client_credentials on native", client: with(native(), func(c *Client) { c.GrantTypes = []string{"client_credentials"} }),
			want: []string{"grant_types[0] client_credentials is only for web (confidential) clients"}},
		{name: "refresh_token without authorization_code", client: with(web(), func(c *Client) { c.GrantTypes = []string{"refresh_token", "client_credentials"} }),
			want: []string{"grant_types has refresh_token without authorization_code"}, fields: []string{"grant_types"}},
		{name: "authorization_code alone", client: with(spa(), func(c *Client) { c.GrantTypes = []string{"authorization_code"} })},

		// backchannel_logout_uri
		{name: "backchannel https", client: with(web(), func(c *Client) { c.BackchannelLogoutURI = "https://app.example/logout" })},
		{name: "backchannel loopback http", client: with(web(), func(c *Client) { c.BackchannelLogoutURI = "http://localhost:9001/logout" })},
		{name: "backchannel http", client: with(web(), func(c *Client) { c.BackchannelLogoutURI = "http://app.example/logout" }),
			want: []string{`backchannel_logout_uri "http://app.example/logout" must use https`}, fields: []string{"backchannel_logout_uri"}},
		{name: "backchannel relative", client: with(web(), func(c *Client) { c.BackchannelLogoutURI = "/logout" }),
			want: []string{`backchannel_logout_uri "/logout" is not an absolute URL`}},
		{name: "backchannel fragment", client: with(web(), func(c *Client) { c.BackchannelLogoutURI = "https://app.example/logout#x" }),
			want: []string{`backchannel_logout_uri "https://app.example/logout#x" must not contain a fragment`}},
		{name: "backchannel private scheme even on native", client: with(native(), func(c *Client) { c.BackchannelLogoutURI = "ru.astral.app:/logout" }),
			want: []string{`backchannel_logout_uri "ru.astral.app:/logout" must be an https URL`}},

		// home_url
		{name: "home https", client: with(spa(), func(c *Client) { c.HomeURL = "https://app.example/" })},
		{name: "home loopback http", client: with(spa(), func(c *Client) { c.HomeURL = "http://[::1]:9003/" })},
		{name: "home http", client: with(spa(), func(c *Client) { c.HomeURL = "http://app.example/" }),
			want: []string{`home_url "http://app.example/" must use https`}, fields: []string{"home_url"}},
		{name: "home relative", client: with(spa(), func(c *Client) { c.HomeURL = "app.example" }),
			want: []string{`home_url "app.example" is not an absolute URL`}},
		{name: "home fragment", client: with(spa(), func(c *Client) { c.HomeURL = "https://app.example/#/home" }),
			want: []string{`home_url "https://app.example/#/home" must not contain a fragment`}},
		{name: "home ftp", client: with(spa(), func(c *Client) { c.HomeURL = "ftp://app.example/" }),
			want: []string{`home_url "ftp://app.example/" must be an https URL`}},

		// scopes
		{name: "all supported scopes", client: with(web(), func(c *Client) { c.Scopes = SupportedScopes() })},
		{name: "scope unknown", client: with(web(), func(c *Client) { c.Scopes = []string{"openid", "admin", "Email"} }),
			want: []string{
				`scopes[1] "admin" is not supported: use openid, profile, email, phone, offline_access or gosuslugi`,
				`scopes[2] "Email" is not supported`,
			}, fields: []string{"scopes[1]", "scopes[2]"}},

		// all at once
		{name: "every problem is returned", client: Client{Type: "web", RedirectURIs: []string{"x"}, Scopes: []string{"x"}},
			want: []string{"id is required", "name is required", "secret is required", `redirect_uris[0] "x" is not an absolute URL`, `scopes[0] "x" is not supported`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.client.Validate()
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
			}
			checkMessages(t, got, tt.want)
			for i, field := range tt.fields {
				var fe *fieldError
				if i < len(errs) && (!errors.As(errs[i], &fe) || fe.field != field) {
					t.Errorf("problem %d is about %v, want %q", i, errs[i], field)
				}
			}
		})
	}
}

func with(c Client, change func(*Client)) Client {
	change(&c)
	return c
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name       string
		in         Client
		wantGrants []string
		wantScopes []string
	}{
		{name: "defaults", in: Client{}, wantGrants: []string{"authorization_code", "refresh_token"}},
		{name: "empty lists", in: Client{GrantTypes: []string{}, Scopes: []string{}}, wantGrants: []string{"authorization_code", "refresh_token"}},
		{name: "kept", in: Client{GrantTypes: []string{"client_credentials"}, Scopes: []string{"openid"}},
			wantGrants: []string{"client_credentials"}, wantScopes: []string{"openid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.in
			c.Normalize()
			if !reflect.DeepEqual(c.GrantTypes, tt.wantGrants) || !reflect.DeepEqual(c.Scopes, tt.wantScopes) {
				t.Errorf("got grants %#v scopes %#v, want %#v %#v", c.GrantTypes, c.Scopes, tt.wantGrants, tt.wantScopes)
			}
		})
	}
}

func TestConfidential(t *testing.T) {
	for typ, want := range map[string]bool{"web": true, "spa": false, "native": false, "": false} {
		if got := (Client{Type: typ}).Confidential(); got != want {
			t.Errorf("type %q: Confidential() = %v, want %v", typ, got, want)
		}
	}
}

func TestSupportedScopesIsACopy(t *testing.T) {
	s := SupportedScopes()
	s[0] = "changed"
	if SupportedScopes()[0] != "openid" {
		t.Error("changing the result of SupportedScopes changed the package's list")
	}
}

func TestExpandEnv(t *testing.T) {
	vars := env(map[string]string{"A": "x", "EMPTY": "", "DOLLAR": "$B"})
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "x"},
		{in: "pre-${A}-post", want: "pre-x-post"},
		{in: "${A}${A}", want: "xx"},
		{in: "${A:-d}", want: "x"},
		{in: "${UNSET:-d}", want: "d"},
		{in: "${EMPTY:-d}", want: "d"},
		{in: "${UNSET:-}", want: ""},
		{in: "${UNSET:-a:-b}", want: "a:-b"},
		{in: "${EMPTY}", want: ""},
		{in: "${DOLLAR}", want: "$B"},
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "$$$${A}", want: "$$" + "{A}"},
		{in: "$$${A}", want: "$x"},
		{in: "cost $5", want: "cost $5"},
		{in: "end$", want: "end$"},
		{in: "${UNSET}", err: "environment variable UNSET is not set: set it, or give a default as ${UNSET:-value}"},
		{in: "${A", err: `"${" is not closed with "}"`},
		{in: "${}", err: `"" is not a valid variable name`},
		{in: "${1A}", err: `"1A" is not a valid variable name`},
		{in: "${A-d}", err: `"A-d" is not a valid variable name`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := expandEnv(tt.in, vars)
			switch {
			case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
				t.Errorf("got %q, %v; want error %q", got, err, tt.err)
			case tt.err == "" && (err != nil || got != tt.want):
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "clients.yaml")
	data := "clients:\n  - id: app\n    name: App\n    type: web\n    secret: ${S}\n    redirect_uris: [\"https://app.example/cb\"]\n"
	if err := os.WriteFile(good, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}

	clients, err := Load(good, env(map[string]string{"S": secret32}))
	if err != nil {
		t.Fatal(err)
	}
	if len(clients) != 1 || clients[0].ID != "app" || clients[0].Secret != secret32 || clients[0].Line != 2 {
		t.Errorf("got %+v", clients)
	}

	_, err = Load(good, env(nil))
	checkMessages(t, messages(err), []string{
		good + `:5: client "app": secret: environment variable S is not set`,
	})

	_, err = Load(filepath.Join(dir, "missing.yaml"), env(nil))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want an error that is fs.ErrNotExist", err)
	}
}

// TestRepositoryClientsFile keeps the shipped clients.yaml loadable with no
// environment at all, which is what `go run ./cmd/idp` relies on.
func TestRepositoryClientsFile(t *testing.T) {
	clients, err := Load("../../clients.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		name, typ string
		secret    bool
		creds     bool
		gosuslugi bool
	}{
		"report":    {name: "Астрал.Отчет", typ: "web", secret: true},
		"signature": {name: "Астрал.Подпись", typ: "web", secret: true, creds: true, gosuslugi: true},
		"poa":       {name: "Астрал. Доверенность", typ: "spa"},
	}
	if len(clients) != len(want) {
		t.Fatalf("got %d clients, want %d", len(clients), len(want))
	}
	for _, c := range clients {
		w, ok := want[c.ID]
		if !ok {
			t.Errorf("unexpected client %q", c.ID)
			continue
		}
		if c.Name != w.name || c.Type != w.typ || (c.Secret != "") != w.secret ||
			slices.Contains(c.GrantTypes, "client_credentials") != w.creds ||
			slices.Contains(c.Scopes, "gosuslugi") != w.gosuslugi {
			t.Errorf("client %q: got %+v", c.ID, c)
		}
		if errs := c.Validate(); errs != nil {
			t.Errorf("client %q: %v", c.ID, errs)
		}
	}

	// Production sets the secrets; the file must take them.
	prod := env(map[string]string{
		"REPORT_SECRET":    strings.Repeat("r", 44),
		"SIGNATURE_SECRET": strings.Repeat("s", 44),
	})
	clients, err = Load("../../clients.yaml", prod)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if c.Confidential() && c.Secret != strings.Repeat(c.ID[:1], 44) {
			t.Errorf("client %q did not take its secret from the environment", c.ID)
		}
	}
}
