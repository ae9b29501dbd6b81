// Package clientfile reads and validates the clients file (clients.yaml).
//
// The file is the only way a product becomes an OpenID Connect client at start-up,
// so a mistake in it must stop the server with a message an administrator can act on
// without reading Go: every problem of the file is reported at once, each with the
// file name, the line and the field, instead of the server failing one edit at a time.
//
// Secrets do not belong in the file: any string value may refer to the environment
// as ${VAR} or ${VAR:-default}, and "$$" stands for a literal "$".
package clientfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Client is one product registered in the clients file.
//
// The yaml tags are the file's contract (see DESIGN.md, "Contracts"); Load and Parse
// refuse any key not listed here, so a misspelt key cannot silently drop a setting.
type Client struct {
	// ID is the OAuth client_id products send; it is stable forever because tokens,
	// consents and sessions refer to it.
	ID string `yaml:"id"`
	// Name is shown to people on the login page ("Вход в {Name}"), so it is the
	// product's own spelling.
	Name string `yaml:"name"`
	// Secret authenticates a confidential (web) client; it normally comes from the
	// environment through ${VAR} so it never sits in the repository.
	Secret string `yaml:"secret"`
	// Type decides how the client proves who it is: "web" keeps a secret on a server,
	// "spa" and "native" cannot keep one and must use PKCE instead.
	Type string `yaml:"type"`
	// RedirectURIs are matched exactly, because any looser match lets an attacker
	// receive authorization codes.
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are the only places a logout may send a person back to,
	// so logout cannot be used as an open redirect.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// GrantTypes limits what the client may ask the token endpoint for; Normalize
	// fills in a sign-in with refresh tokens when the file says nothing.
	GrantTypes []string `yaml:"grant_types"`
	// BackchannelLogoutURI is where the provider tells the product's server that a
	// session ended, so the product can end its own session too; empty means the
	// product is not told.
	BackchannelLogoutURI string `yaml:"backchannel_logout_uri"`
	// HomeURL is where the account cabinet links to the product; empty hides the link.
	HomeURL string `yaml:"home_url"`
	// Scopes is an optional allow-list, so a product that has no business with, say,
	// Gosuslugi-verified claims cannot ask for them; nil means every supported scope.
	Scopes []string `yaml:"scopes"`
	// Line is where the entry starts in the file, so later messages (at start-up or
	// in logs) can point the administrator at it; zero when the client did not come
	// from a file.
	Line int `yaml:"-"`
}

// MinSecretLength is the shortest client secret accepted. Anyone can try secrets at
// the token endpoint, so a secret must be hopeless to guess: 32 random characters
// carry at least 128 bits even when they are only hex digits.
const MinSecretLength = 32

// The client types and grant types the provider serves, spelled as in the file.
const (
	typeWeb    = "web"
	typeSPA    = "spa"
	typeNative = "native"

	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
)

var (
	idPattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	supportedScopes = []string{"openid", "profile", "email", "phone", "offline_access", "gosuslugi"}
	supportedGrants = []string{grantAuthorizationCode, grantRefreshToken, grantClientCredentials}
	// knownKeys is the list shown when a key is misspelt, in the file's usual order.
	knownKeys = []string{"id", "name", "secret", "type", "redirect_uris", "post_logout_redirect_uris",
		"grant_types", "backchannel_logout_uri", "home_url", "scopes"}
)

// SupportedScopes returns the scopes a client may be allowed; it is what a nil
// Client.Scopes stands for, so the provider should use this list rather than its own.
// The result is a fresh copy the caller may change.
func SupportedScopes() []string {
	return append([]string(nil), supportedScopes...)
}

// Confidential reports whether the client can keep a secret and therefore
// authenticates at the token endpoint; public clients rely on PKCE alone.
func (c Client) Confidential() bool {
	return c.Type == typeWeb
}

// Normalize fills in the defaults, so that the rest of the provider never has to
// guess what an omitted setting means.
//
// No grant_types means a sign-in with refresh tokens (authorization_code and
// refresh_token). No scopes (nil or an empty list) becomes nil, which means every
// supported scope: an empty allow-list would make a client that cannot even ask for
// openid, which nobody means to write.
func (c *Client) Normalize() {
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{grantAuthorizationCode, grantRefreshToken}
	}
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
}

// Validate returns every problem of the client, each a sentence that starts with the
// field it is about, so the same checks serve the clients file and the admin CLI
// (which has no file line to add). It validates the client as Normalize would leave
// it, so a client does not pass or fail just because defaults were not filled in yet.
// A nil result means the client is usable.
func (c Client) Validate() []error {
	c.Normalize()
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &fieldError{field: field, msg: fmt.Sprintf(format, args...)})
	}

	switch {
	case c.ID == "":
		add("id", "id is required: it is the client_id the product sends")
	case !idPattern.MatchString(c.ID):
		add("id", "id %q is not valid: use 1 to 64 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit", c.ID)
	}

	if strings.TrimSpace(c.Name) == "" {
		add("name", "name is required: the login page shows it as \"Вход в {name}\"")
	}

	public := false
	switch c.Type {
	case typeWeb:
	case typeSPA, typeNative:
		public = true
	case "":
		add("type", "type is required: web (a server that keeps a secret), spa or native (public clients that use PKCE)")
	default:
		add("type", "type %q is not supported: use web, spa or native", c.Type)
	}

	secretAdvice := fmt.Sprintf("secrets must be at least %d random characters; make one with: openssl rand -base64 48", MinSecretLength)
	switch n := len([]rune(c.Secret)); {
	case c.Type == typeWeb && n == 0:
		add("secret", "secret is required for a web client; %s", secretAdvice)
	case c.Type == typeWeb && n < MinSecretLength:
		// The secret itself is never repeated in a message: messages end up in logs.
		add("secret", "secret is too short (%d characters); %s", n, secretAdvice)
	case public && n > 0:
		add("secret", "secret must not be set for a %s client: a public client cannot keep a secret and proves itself with PKCE instead", c.Type)
	}

	granted := map[string]bool{}
	for i, g := range c.GrantTypes {
		field := fmt.Sprintf("grant_types[%d]", i)
		switch g {
		case grantAuthorizationCode, grantRefreshToken:
		case grantClientCredentials:
			if public {
				add(field, "%s client_credentials is only for web (confidential) clients: it has no person and no PKCE, only the secret proves who is calling", field)
			}
		default:
			add(field, "%s %q is not supported: use %s", field, g, orList(supportedGrants))
		}
		granted[g] = true
	}
	if granted[grantRefreshToken] && !granted[grantAuthorizationCode] {
		add("grant_types", "grant_types has refresh_token without authorization_code: refresh tokens are only issued after a person signs in")
	}

	if granted[grantAuthorizationCode] && len(c.RedirectURIs) == 0 {
		add("redirect_uris", "redirect_uris needs at least one URL because authorization_code is granted: the sign-in result is sent there")
	}
	private := c.Type == typeNative
	for i, u := range c.RedirectURIs {
		field := fmt.Sprintf("redirect_uris[%d]", i)
		if msg := checkURL(field, u, private); msg != "" {
			add(field, "%s", msg)
		}
	}
	for i, u := range c.PostLogoutRedirectURIs {
		field := fmt.Sprintf("post_logout_redirect_uris[%d]", i)
		if msg := checkURL(field, u, private); msg != "" {
			add(field, "%s", msg)
		}
	}
	if c.BackchannelLogoutURI != "" {
		if msg := checkURL("backchannel_logout_uri", c.BackchannelLogoutURI, false); msg != "" {
			add("backchannel_logout_uri", "%s", msg)
		}
	}
	if c.HomeURL != "" {
		if msg := checkURL("home_url", c.HomeURL, false); msg != "" {
			add("home_url", "%s", msg)
		}
	}

	for i, s := range c.Scopes {
		if !slices.Contains(supportedScopes, s) {
			field := fmt.Sprintf("scopes[%d]", i)
			add(field, "%s %q is not supported: use %s", field, s, orList(supportedScopes))
		}
	}
	return errs
}

// fieldError keeps the field path apart from the sentence, so Parse can find the
// line of the offending value while Validate's callers just print the sentence.
type fieldError struct {
	field string // "secret", "redirect_uris[0]"
	msg   string
}

func (e *fieldError) Error() string { return e.msg }

// Load reads the clients file at path and returns its clients, normalized and
// validated; lookupEnv resolves ${VAR} (os.LookupEnv in production, a map in tests).
// Messages name the file as path is written, so pass the path the administrator
// configured.
func Load(path string, lookupEnv func(string) (string, bool)) ([]Client, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clients file: %w", err)
	}
	return Parse(path, data, lookupEnv)
}

// Parse is Load for bytes already in hand; name is used only in messages.
//
// It returns every problem of the file joined with errors.Join, each as
// "name:line: client "id": problem", and no clients at all when there is any
// problem, because a half-loaded list would start a server that refuses some
// products for no visible reason. A nil lookupEnv means an empty environment.
func Parse(name string, data []byte, lookupEnv func(string) (string, bool)) ([]Client, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	p := &parser{name: name}

	// First pass: the node tree, for line numbers and the overall shape.
	entries, ok := p.shape(data)
	if !ok {
		return nil, p.err()
	}

	// Second pass: the strict decode, only for its errors. KnownFields makes a
	// misspelt key an error instead of a silently ignored setting.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var typeErrs []string
	if err := dec.Decode(new(fileShape)); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// The first pass parsed the same bytes, so this is not expected; still
			// report it rather than lose it.
			p.addYAMLError(err, data)
			return nil, p.err()
		}
		typeErrs = te.Errors
	}

	// Attribute each decode error to the entry that holds its line.
	type decodeErr struct {
		line, entry int
		msg         string
	}
	var decodeErrs []decodeErr
	for _, msg := range typeErrs {
		de := decodeErr{entry: -1, msg: msg}
		if m := typeErrLine.FindStringSubmatch(msg); m != nil {
			de.line, _ = strconv.Atoi(m[1])
			de.msg = m[2]
			de.entry = entryAt(entries, de.line)
		}
		decodeErrs = append(decodeErrs, de)
	}

	// The values come from each entry's own node rather than from the strict decode,
	// because yaml drops list items it cannot decode and client i would no longer be
	// entry i. Problems of these decodes are the strict decode's, already collected.
	clients := make([]Client, len(entries))
	firstLine := map[string]int{}
	for i, entry := range entries {
		c := &clients[i]
		c.Line = entry.Line
		node := resolve(entry)
		if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
			p.add(c.Line, label(*c, i)+"the entry is empty: a client needs at least id, name and type")
			continue
		}
		if node.Kind != yaml.MappingNode || (node.Decode(c) != nil && isZero(*c)) {
			// Not a client at all, or a repeated key: the decode error says so, and
			// validating an empty client would only add noise.
			continue
		}
		for _, field := range nullItems(node) {
			p.add(fieldLine(entry, field), label(*c, i)+field+" is empty")
		}
		unexpanded := map[string]bool{}
		for _, fe := range c.expand(lookupEnv) {
			p.add(fieldLine(entry, fe.field), label(*c, i)+fe.msg)
			unexpanded[fe.field] = true
		}
		c.Normalize()
		for _, err := range c.Validate() {
			line := c.Line
			var fe *fieldError
			if errors.As(err, &fe) {
				if unexpanded[fe.field] {
					continue // judging the text of a failed ${VAR} would only add noise
				}
				line = fieldLine(entry, fe.field)
			}
			p.add(line, label(*c, i)+err.Error())
		}
		if c.ID != "" {
			if first, dup := firstLine[c.ID]; dup {
				p.add(fieldLine(entry, "id"), fmt.Sprintf("%sid %q is already used by the client on line %d: ids must be unique", label(*c, i), c.ID, first))
			} else {
				firstLine[c.ID] = c.Line
			}
		}
	}

	for _, de := range decodeErrs {
		prefix := ""
		if de.entry >= 0 {
			prefix = label(clients[de.entry], de.entry)
		}
		p.add(de.line, prefix+decodeMessage(de.msg, de.line, de.entry, entries))
	}

	if len(p.problems) > 0 {
		return nil, p.err()
	}
	return clients, nil
}

// expand replaces ${VAR} references in every string field. It reports the field path
// of each failure so Parse can point at the exact line.
func (c *Client) expand(lookupEnv func(string) (string, bool)) []*fieldError {
	var errs []*fieldError
	one := func(field string, s *string) {
		v, err := expandEnv(*s, lookupEnv)
		if err != nil {
			errs = append(errs, &fieldError{field: field, msg: field + ": " + err.Error()})
			return
		}
		*s = v
	}
	list := func(field string, l []string) {
		for i := range l {
			one(fmt.Sprintf("%s[%d]", field, i), &l[i])
		}
	}
	one("id", &c.ID)
	one("name", &c.Name)
	one("secret", &c.Secret)
	one("type", &c.Type)
	list("redirect_uris", c.RedirectURIs)
	list("post_logout_redirect_uris", c.PostLogoutRedirectURIs)
	list("grant_types", c.GrantTypes)
	one("backchannel_logout_uri", &c.BackchannelLogoutURI)
	one("home_url", &c.HomeURL)
	list("scopes", c.Scopes)
	return errs
}

// expandEnv expands ${VAR} and ${VAR:-default} in s; "$$" is a literal "$" and a "$"
// followed by anything else is kept as it is. It runs on values YAML has already
// parsed, so quoting in the file means what YAML says it means. Errors never repeat
// s, because s may be a secret.
func expandEnv(s string, lookupEnv func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		if strings.HasPrefix(s[i:], "$$") {
			b.WriteByte('$')
			i += 2
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte('$')
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", errors.New(`"${" is not closed with "}"; write "$$" for a literal "$"`)
		}
		body := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(body, ":-")
		if !varName.MatchString(name) {
			return "", fmt.Errorf(`%q is not a valid variable name in "${...}": use ${NAME} or ${NAME:-default}, and "$$" for a literal "$"`, name)
		}
		v, ok := lookupEnv(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set: set it, or give a default as ${%s:-value}", name, name)
		}
		b.WriteString(v)
		i += 2 + end + 1
	}
	return b.String(), nil
}

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// fileShape is the whole file, for the strict decode.
type fileShape struct {
	Clients []Client `yaml:"clients"`
}

// nullItems lists the empty items of the entry's lists ("redirect_uris:" followed by
// a bare "-"), which yaml would otherwise drop without a word.
func nullItems(entry *yaml.Node) []string {
	var fields []string
	for i := 0; i+1 < len(entry.Content); i += 2 {
		v := resolve(entry.Content[i+1])
		if v.Kind != yaml.SequenceNode {
			continue
		}
		for j, item := range v.Content {
			if item := resolve(item); item.Kind == yaml.ScalarNode && item.Tag == "!!null" {
				fields = append(fields, fmt.Sprintf("%s[%d]", entry.Content[i].Value, j))
			}
		}
	}
	return fields
}

// parser collects the problems of one file with their lines.
type parser struct {
	name     string
	problems []problem
}

type problem struct {
	line int
	msg  string
}

func (p *parser) add(line int, msg string) {
	p.problems = append(p.problems, problem{line: line, msg: msg})
}

// err returns the problems in file order: an administrator fixes a file top to bottom.
func (p *parser) err() error {
	sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].line < p.problems[j].line })
	errs := make([]error, len(p.problems))
	for i, pr := range p.problems {
		if pr.line > 0 {
			errs[i] = fmt.Errorf("%s:%d: %s", p.name, pr.line, pr.msg)
		} else {
			errs[i] = fmt.Errorf("%s: %s", p.name, pr.msg)
		}
	}
	return errors.Join(errs...)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// addYAMLError turns yaml's "yaml: line N: msg" into the file's "name:N: msg" form.
func (p *parser) addYAMLError(err error, data []byte) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.add(line, m[2])
		return
	}
	// yaml leaves the line out when it is the first one, and for problems found while
	// decoding the bytes (control characters, broken UTF-8); find the line ourselves.
	p.add(badByteLine(data), strings.TrimPrefix(msg, "yaml: "))
}

// badByteLine returns the line of the first character YAML does not allow (broken
// UTF-8 or a control character), or 1 when there is none.
func badByteLine(data []byte) int {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		allowed := r == '\t' || r == '\n' || r == '\r' || r == 0x85 ||
			(r >= 0x20 && r <= 0x7E) || (r >= 0xA0 && r <= 0xD7FF) ||
			(r >= 0xE000 && r <= 0xFFFD) || r >= 0x10000
		if (r == utf8.RuneError && size <= 1) || !allowed {
			return line
		}
		if r == '\n' {
			line++
		}
		data = data[size:]
	}
	return 1
}

// shape parses data as a node tree and checks the top level: one document, a mapping
// with a "clients:" list. It returns the list's entries.
func (p *parser) shape(data []byte) ([]*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(1, `the file is empty: it needs a top-level "clients:" list (an empty list is "clients: []")`)
		} else {
			p.addYAMLError(err, data)
		}
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.add(extra.Line, `only one YAML document is allowed: remove the "---" and everything after it, or merge it into the first document`)
		return nil, false
	} else if !errors.Is(err, io.EOF) {
		p.addYAMLError(err, data)
		return nil, false
	}

	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.add(root.Line, `the top level must be a mapping with a "clients:" list`)
		return nil, false
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "clients" {
			list = resolve(root.Content[i+1])
			break
		}
	}
	switch {
	case list == nil:
		p.add(root.Line, `the top-level "clients:" list is missing (an empty list is "clients: []")`)
		return nil, false
	case list.Kind == yaml.ScalarNode && list.Tag == "!!null":
		return nil, true // "clients:" with nothing under it: an empty list
	case list.Kind != yaml.SequenceNode:
		p.add(list.Line, `"clients" must be a list of clients, each starting with "- id: ..."`)
		return nil, false
	}
	return list.Content, true
}

var (
	typeErrLine     = regexp.MustCompile(`^line (\d+): (.*)$`)
	typeErrUnknown  = regexp.MustCompile(`^field (.*) not found in type (\S+)$`)
	typeErrDupKey   = regexp.MustCompile(`^mapping key (".*") already defined at line (\d+)$`)
	typeErrSetTwice = regexp.MustCompile(`^field (.*) already set in type (\S+)$`)
	typeErrConvert  = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `.*`)? into (\\S+)$")
)

// decodeMessage rewrites one of yaml's decode errors, which speak of Go types, in
// the file's terms. entry is the index of the client whose entry holds line, or -1.
func decodeMessage(msg string, line, entry int, entries []*yaml.Node) string {
	if sm := typeErrUnknown.FindStringSubmatch(msg); sm != nil {
		if entry >= 0 {
			return fmt.Sprintf("unknown key %q: a client has only %s", sm[1], strings.Join(knownKeys, ", "))
		}
		return fmt.Sprintf(`unknown top-level key %q: the file has only "clients"`, sm[1])
	}
	if sm := typeErrDupKey.FindStringSubmatch(msg); sm != nil {
		return fmt.Sprintf("key %s is repeated (first set on line %s): each key may appear once", sm[1], sm[2])
	}
	if sm := typeErrSetTwice.FindStringSubmatch(msg); sm != nil {
		return fmt.Sprintf("key %q is set twice: each key may appear once", sm[1])
	}
	if sm := typeErrConvert.FindStringSubmatch(msg); sm != nil {
		return convertMessage(sm[1], sm[2], entry, entries, line)
	}
	return msg
}

// entryAt returns the index of the entry whose lines include line, or -1 for a line
// outside the clients list.
func entryAt(entries []*yaml.Node, line int) int {
	for i, e := range entries {
		if line >= e.Line && line <= lastLine(e) {
			return i
		}
	}
	return -1
}

// convertMessage explains a value of the wrong kind: which key, what was expected.
func convertMessage(tag, goType string, idx int, entries []*yaml.Node, line int) string {
	if idx >= 0 && strings.HasSuffix(goType, ".Client") && !strings.HasPrefix(goType, "[]") {
		return "each client must be a mapping of keys such as id:, name: and type:, not " + kindName(tag)
	}
	want := "a different kind of value"
	switch goType {
	case "string":
		want = "a single value"
	case "[]string":
		want = "a list"
	}
	field := "the value"
	if idx >= 0 {
		if f := pathAtLine(entries[idx], line); f != "" {
			field = f
		}
	}
	return fmt.Sprintf("%s must be %s, not %s", field, want, kindName(tag))
}

func kindName(tag string) string {
	switch tag {
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "true/false"
	default:
		return tag
	}
}

// label prefixes a message with the client it is about: by id when it has one,
// otherwise by position, so a client with a broken id can still be found.
func label(c Client, i int) string {
	if c.ID != "" {
		return fmt.Sprintf("client %q: ", c.ID)
	}
	return fmt.Sprintf("client #%d: ", i+1)
}

// fieldLine finds the line of a field path ("secret", "redirect_uris[1]") in an
// entry, falling back to the entry's own line for a field the file does not set
// (a default, or a missing required key).
func fieldLine(entry *yaml.Node, field string) int {
	name, idx := field, -1
	if open := strings.IndexByte(field, '['); open >= 0 && strings.HasSuffix(field, "]") {
		name = field[:open]
		if n, err := strconv.Atoi(field[open+1 : len(field)-1]); err == nil {
			idx = n
		}
	}
	m := resolve(entry)
	if m.Kind != yaml.MappingNode {
		return entry.Line
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != name {
			continue
		}
		v := resolve(m.Content[i+1])
		if idx >= 0 && v.Kind == yaml.SequenceNode && idx < len(v.Content) {
			return v.Content[idx].Line
		}
		return m.Content[i].Line
	}
	return entry.Line
}

// pathAtLine is the reverse of fieldLine: the field path whose value holds line.
func pathAtLine(entry *yaml.Node, line int) string {
	m := resolve(entry)
	if m.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		if line < k.Line || line > lastLine(v) {
			continue
		}
		if v.Kind == yaml.SequenceNode {
			for j, item := range v.Content {
				if line >= item.Line && line <= lastLine(item) && item.Kind != yaml.ScalarNode {
					return fmt.Sprintf("%s[%d]", k.Value, j)
				}
			}
		}
		return k.Value
	}
	return ""
}

// checkURL returns why raw is not acceptable as the field's URL, or "" when it is.
// https is required so codes and tokens never cross the network in the clear; plain
// http is allowed on a loopback host because such traffic never leaves the machine
// (local development, and native apps per RFC 8252 section 7.3). A native app may
// also use a private-use scheme (RFC 8252 section 7.1), which must be a reverse
// domain name so two apps do not claim the same scheme.
func checkURL(field, raw string, allowPrivateScheme bool) string {
	if raw == "" {
		return field + " is empty"
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("%s %q is not a valid URL: %v", field, raw, err)
	}
	if u.Scheme == "" {
		return fmt.Sprintf("%s %q is not an absolute URL", field, raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Sprintf("%s %q must not contain a fragment (#...)", field, raw)
	}
	httpsRule := "plain http is allowed only on localhost, 127.0.0.1 or [::1]"
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return fmt.Sprintf("%s %q has no host", field, raw)
		}
	case "http":
		if u.Host == "" {
			return fmt.Sprintf("%s %q has no host", field, raw)
		}
		if !isLoopback(u.Hostname()) {
			return fmt.Sprintf("%s %q must use https: %s", field, raw, httpsRule)
		}
	default:
		if !allowPrivateScheme {
			return fmt.Sprintf("%s %q must be an https URL: %s", field, raw, httpsRule)
		}
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Sprintf("%s %q uses the scheme %q: a native app's private-use scheme must be a reverse domain name such as ru.astral.app", field, raw, u.Scheme)
		}
	}
	return ""
}

func isLoopback(host string) bool {
	return strings.EqualFold(host, "localhost") || host == "127.0.0.1" || host == "::1"
}

// lastLine is the last line a node spans, to tell which entry a line belongs to.
func lastLine(n *yaml.Node) int {
	last := n.Line
	for _, c := range n.Content {
		if l := lastLine(c); l > last {
			last = l
		}
	}
	return last
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isZero(c Client) bool {
	return c.ID == "" && c.Name == "" && c.Secret == "" && c.Type == "" &&
		c.RedirectURIs == nil && c.PostLogoutRedirectURIs == nil && c.GrantTypes == nil &&
		c.BackchannelLogoutURI == "" && c.HomeURL == "" && c.Scopes == nil
}

// orList writes "a, b or c" for messages.
func orList(list []string) string {
	if len(list) < 2 {
		return strings.Join(list, "")
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}
