package notify

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The environment variables (DESIGN.md, "Contracts").
const (
	VarOutbox        = "IDP_OUTBOX"
	VarSMSSender     = "IDP_SMS_SENDER"
	VarSMSHTTPURL    = "IDP_SMS_HTTP_URL"
	VarSMSHTTPMethod = "IDP_SMS_HTTP_METHOD"
	VarSMSHTTPAuth   = "IDP_SMS_HTTP_AUTH"
	VarEmailSender   = "IDP_EMAIL_SENDER"
	VarSMTPHost      = "IDP_SMTP_HOST"
	VarSMTPPort      = "IDP_SMTP_PORT"
	VarSMTPUser      = "IDP_SMTP_USER"
	VarSMTPPassword  = "IDP_SMTP_PASSWORD"
	VarSMTPFrom      = "IDP_SMTP_FROM"
	VarSMTPTLS       = "IDP_SMTP_TLS"
)

// Config is the senders' configuration as read from the environment, defaults
// applied. Values are kept as written; Validate says what is wrong with them.
type Config struct {
	SMSSender   string // IDP_SMS_SENDER: log | http
	SMSHTTP     HTTPSMSConfig
	EmailSender string // IDP_EMAIL_SENDER: log | smtp
	SMTP        SMTPConfig
	Outbox      string // IDP_OUTBOX: file path, "" for none
}

// HTTPSMSConfig is the HTTP SMS gateway (IDP_SMS_HTTP_*).
type HTTPSMSConfig struct {
	URL    string // template with {to} and {text}
	Method string // GET | POST
	Auth   string // Authorization header value, sent verbatim
}

// SMTPConfig is the SMTP relay (IDP_SMTP_*).
type SMTPConfig struct {
	Host     string
	Port     string // "" means 587 (465 with TLS=tls)
	User     string // auth only when set
	Password string
	From     string // "Астрал <no-reply@astral.ru>"
	TLS      string // starttls | tls | none
}

// smsKind and emailKind are entries of the sender registries: check lists the
// problems of the kind's own settings, build makes the sender from settings that
// passed the check.
type smsKind struct {
	check func(Config) []Problem
	build func(Config) (SMSSender, error)
}

type emailKind struct {
	check func(Config) []Problem
	build func(Config) (EmailSender, error)
}

// smsKinds is the registry of SMS senders, by IDP_SMS_SENDER.
var smsKinds = map[string]smsKind{
	"log": {
		build: func(Config) (SMSSender, error) { return LogSender{}, nil },
	},
	"http": {
		check: func(c Config) []Problem { return checkHTTPSMS(c.SMSHTTP) },
		build: func(c Config) (SMSSender, error) { return newHTTPSMS(c.SMSHTTP), nil },
	},
}

// emailKinds is the registry of email senders, by IDP_EMAIL_SENDER.
var emailKinds = map[string]emailKind{
	"log": {
		build: func(Config) (EmailSender, error) { return LogSender{}, nil },
	},
	"smtp": {
		check: func(c Config) []Problem { return checkSMTP(c.SMTP) },
		build: func(c Config) (EmailSender, error) { return newSMTP(c.SMTP) },
	},
}

// LoadConfig reads the variables through lookup (os.LookupEnv in the binary) and
// applies the defaults. An empty value counts as unset.
func LoadConfig(lookup func(string) (string, bool)) Config {
	get := func(name, def string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	return Config{
		SMSSender: strings.ToLower(get(VarSMSSender, "log")),
		SMSHTTP: HTTPSMSConfig{
			URL:    get(VarSMSHTTPURL, ""),
			Method: get(VarSMSHTTPMethod, "POST"),
			Auth:   get(VarSMSHTTPAuth, ""),
		},
		EmailSender: strings.ToLower(get(VarEmailSender, "log")),
		SMTP: SMTPConfig{
			Host:     get(VarSMTPHost, ""),
			Port:     get(VarSMTPPort, ""),
			User:     get(VarSMTPUser, ""),
			Password: get(VarSMTPPassword, ""),
			From:     get(VarSMTPFrom, ""),
			TLS:      get(VarSMTPTLS, tlsStartTLS),
		},
		Outbox: get(VarOutbox, ""),
	}
}

// Validate lists every problem of c at once, each with its variable; nil means c
// builds. When IDP_OUTBOX is set it creates the outbox file if missing (empty, 0600),
// which is the only sure test that the path can be appended to.
func (c Config) Validate() error {
	_, ps := c.validate()
	if len(ps) > 0 {
		return &ConfigError{Problems: ps}
	}
	return nil
}

func (c Config) validate() (*Outbox, []Problem) {
	var ps []Problem
	if k, ok := smsKinds[c.SMSSender]; !ok {
		ps = append(ps, Problem{VarSMSSender, fmt.Sprintf("unknown sender %q (known: %s)", c.SMSSender, known(smsKinds))})
	} else if k.check != nil {
		ps = append(ps, k.check(c)...)
	}
	if k, ok := emailKinds[c.EmailSender]; !ok {
		ps = append(ps, Problem{VarEmailSender, fmt.Sprintf("unknown sender %q (known: %s)", c.EmailSender, known(emailKinds))})
	} else if k.check != nil {
		ps = append(ps, k.check(c)...)
	}
	var outbox *Outbox
	if c.Outbox != "" {
		var err error
		if outbox, err = OpenOutbox(c.Outbox); err != nil {
			ps = append(ps, Problem{VarOutbox, fmt.Sprintf("cannot append to %q: %v", c.Outbox, err)})
		}
	}
	return outbox, ps
}

// Build validates c and makes the Notifier.
func (c Config) Build() (*Notifier, error) {
	outbox, ps := c.validate()
	if len(ps) > 0 {
		return nil, &ConfigError{Problems: ps}
	}
	sms, err := smsKinds[c.SMSSender].build(c)
	if err != nil {
		return nil, &ConfigError{Problems: []Problem{{VarSMSSender, err.Error()}}}
	}
	email, err := emailKinds[c.EmailSender].build(c)
	if err != nil {
		return nil, &ConfigError{Problems: []Problem{{VarEmailSender, err.Error()}}}
	}
	return New(sms, email, outbox), nil
}

// FromEnv builds the Notifier from the IDP_* variables. Every problem is reported at
// once in a *ConfigError, each naming its variable.
func FromEnv(lookup func(string) (string, bool)) (*Notifier, error) {
	return LoadConfig(lookup).Build()
}

// Problem is one thing wrong with the configuration.
type Problem struct {
	Var string // the environment variable, e.g. IDP_SMTP_HOST
	Msg string
}

func (p Problem) String() string { return p.Var + ": " + p.Msg }

// ConfigError lists every problem of a configuration.
type ConfigError struct {
	Problems []Problem
}

func (e *ConfigError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "notify: invalid configuration: " + strings.Join(parts, "; ")
}

func known[V any](m map[string]V) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}
