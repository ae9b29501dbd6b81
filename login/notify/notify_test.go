package notify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const (
	testPhone = "+79105940899"
	testCode  = "123456"
	testText  = "Код для входа в Астрал.Отчет: 123456"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func quietLog() LogSender { return LogSender{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))} }

// ---- FromEnv ----

func TestFromEnvDefaults(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"nothing set": {},
		"empty values count as unset": {
			VarSMSSender: "", VarEmailSender: " ", VarOutbox: "", VarSMTPTLS: "", VarSMSHTTPMethod: "",
		},
	} {
		t.Run(name, func(t *testing.T) {
			n, err := FromEnv(env(vars))
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if _, ok := n.sms.(LogSender); !ok {
				t.Errorf("sms sender = %T, want LogSender", n.sms)
			}
			if _, ok := n.email.(LogSender); !ok {
				t.Errorf("email sender = %T, want LogSender", n.email)
			}
			if n.outbox != nil {
				t.Errorf("outbox = %v, want none", n.outbox)
			}
			c := LoadConfig(env(vars))
			if c.SMSHTTP.Method != "POST" || c.SMTP.TLS != "starttls" || c.SMTP.Port != "" {
				t.Errorf("defaults = %+v", c)
			}
		})
	}
}

func TestFromEnvBuildsSenders(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		vars  map[string]string
		check func(t *testing.T, n *Notifier)
	}{
		{
			name: "http GET with placeholders",
			vars: map[string]string{VarSMSSender: "http", VarSMSHTTPURL: "https://sms.example/send?to={to}&text={text}", VarSMSHTTPMethod: "get", VarSMSHTTPAuth: "Bearer k"},
			check: func(t *testing.T, n *Notifier) {
				s := n.sms.(*httpSMS)
				if s.method != "GET" || s.form || s.auth != "Bearer k" || s.timeout != 10*time.Second {
					t.Errorf("http sender = %+v", s)
				}
			},
		},
		{
			name: "http POST without placeholders sends a form",
			vars: map[string]string{VarSMSSender: "HTTP", VarSMSHTTPURL: "http://127.0.0.1:9/send"},
			check: func(t *testing.T, n *Notifier) {
				s := n.sms.(*httpSMS)
				if s.method != "POST" || !s.form {
					t.Errorf("http sender = %+v", s)
				}
			},
		},
		{
			name: "smtp defaults: starttls on 587, no auth",
			vars: map[string]string{VarEmailSender: "smtp", VarSMTPHost: "smtp.astral.ru", VarSMTPFrom: "Астрал <no-reply@astral.ru>"},
			check: func(t *testing.T, n *Notifier) {
				s := n.email.(*smtpSender)
				if s.port != 587 || s.tlsMode != "starttls" || s.user != "" || s.from.Address != "no-reply@astral.ru" || s.from.Name != "Астрал" || s.timeout != 10*time.Second {
					t.Errorf("smtp sender = %+v", s)
				}
			},
		},
		{
			name: "smtp implicit tls defaults to 465",
			vars: map[string]string{VarEmailSender: "smtp", VarSMTPHost: "smtp.astral.ru", VarSMTPFrom: "no-reply@astral.ru", VarSMTPTLS: "tls", VarSMTPUser: "u", VarSMTPPassword: "p"},
			check: func(t *testing.T, n *Notifier) {
				s := n.email.(*smtpSender)
				if s.port != 465 || s.tlsMode != "tls" || s.user != "u" || s.password != "p" {
					t.Errorf("smtp sender = %+v", s)
				}
			},
		},
		{
			name: "smtp explicit port and none",
			vars: map[string]string{VarEmailSender: "smtp", VarSMTPHost: "127.0.0.1", VarSMTPPort: "2525", VarSMTPFrom: "no-reply@astral.ru", VarSMTPTLS: "none"},
			check: func(t *testing.T, n *Notifier) {
				s := n.email.(*smtpSender)
				if s.port != 2525 || s.tlsMode != "none" {
					t.Errorf("smtp sender = %+v", s)
				}
			},
		},
		{
			name: "outbox created with 0600",
			vars: map[string]string{VarOutbox: filepath.Join(dir, "outbox.jsonl")},
			check: func(t *testing.T, n *Notifier) {
				if n.outbox == nil {
					t.Fatal("no outbox")
				}
				st, err := os.Stat(filepath.Join(dir, "outbox.jsonl"))
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("outbox mode = %v, want 0600", st.Mode().Perm())
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := FromEnv(env(tt.vars))
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			tt.check(t, n)
		})
	}
}

func TestFromEnvListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	smtpOK := map[string]string{VarEmailSender: "smtp", VarSMTPHost: "smtp.astral.ru", VarSMTPFrom: "no-reply@astral.ru"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		vars     map[string]string
		want     []string // variables named, in order
		mustNot  []string // secrets that must not appear in the error
		contains []string
	}{
		{
			name:     "unknown sender types",
			vars:     map[string]string{VarSMSSender: "twilio", VarEmailSender: "sendgrid"},
			want:     []string{VarSMSSender, VarEmailSender},
			contains: []string{`unknown sender "twilio" (known: http, log)`, `unknown sender "sendgrid" (known: log, smtp)`},
		},
		{
			name: "http without URL and with a bad method",
			vars: map[string]string{VarSMSSender: "http", VarSMSHTTPMethod: "PUT"},
			want: []string{VarSMSHTTPMethod, VarSMSHTTPURL},
		},
		{
			name:    "http URL not absolute; key not echoed",
			vars:    map[string]string{VarSMSSender: "http", VarSMSHTTPURL: "sms.example/send?key=APIKEY42&to={to}&text={text}"},
			want:    []string{VarSMSHTTPURL},
			mustNot: []string{"APIKEY42"},
		},
		{
			name: "http URL not http(s)",
			vars: map[string]string{VarSMSSender: "http", VarSMSHTTPURL: "ftp://sms.example/{to}/{text}"},
			want: []string{VarSMSHTTPURL},
		},
		{
			name: "http URL with only one placeholder",
			vars: map[string]string{VarSMSSender: "http", VarSMSHTTPURL: "https://sms.example/send?to={to}"},
			want: []string{VarSMSHTTPURL},
		},
		{
			name: "http GET without placeholders",
			vars: map[string]string{VarSMSSender: "http", VarSMSHTTPURL: "https://sms.example/send", VarSMSHTTPMethod: "GET"},
			want: []string{VarSMSHTTPURL},
		},
		{
			name:    "http auth with a line break; value not echoed",
			vars:    map[string]string{VarSMSSender: "http", VarSMSHTTPURL: "https://sms.example/send", VarSMSHTTPAuth: "Bearer SECRET\r\nX-Evil: 1"},
			want:    []string{VarSMSHTTPAuth},
			mustNot: []string{"SECRET"},
		},
		{
			name: "smtp with nothing set",
			vars: map[string]string{VarEmailSender: "smtp"},
			want: []string{VarSMTPHost, VarSMTPFrom},
		},
		{
			name: "smtp port not a number",
			vars: with(smtpOK, VarSMTPPort, "smtp"),
			want: []string{VarSMTPPort},
		},
		{
			name: "smtp port out of range",
			vars: with(smtpOK, VarSMTPPort, "70000"),
			want: []string{VarSMTPPort},
		},
		{
			name: "smtp bad TLS mode",
			vars: with(smtpOK, VarSMTPTLS, "ssl"),
			want: []string{VarSMTPTLS},
		},
		{
			name: "smtp host with a port",
			vars: with(smtpOK, VarSMTPHost, "smtp.astral.ru:587"),
			want: []string{VarSMTPHost},
		},
		{
			name:    "smtp bad from, password without user; password not echoed",
			vars:    with(smtpOK, VarSMTPFrom, "Астрал no-reply", VarSMTPPassword, "PASSWORD9"),
			want:    []string{VarSMTPFrom, VarSMTPPassword},
			mustNot: []string{"PASSWORD9"},
		},
		{
			name: "outbox directory missing",
			vars: map[string]string{VarOutbox: filepath.Join(dir, "no-such-dir", "outbox.jsonl")},
			want: []string{VarOutbox},
		},
		{
			name: "outbox is a directory",
			vars: map[string]string{VarOutbox: dir},
			want: []string{VarOutbox},
		},
		{
			name: "everything wrong at once",
			vars: map[string]string{
				VarSMSSender: "http", VarSMSHTTPMethod: "DELETE",
				VarEmailSender: "smtp", VarSMTPPort: "0", VarSMTPTLS: "starttls-maybe",
				VarOutbox: filepath.Join(dir, "missing", "o.jsonl"),
			},
			want: []string{VarSMSHTTPMethod, VarSMSHTTPURL, VarSMTPHost, VarSMTPPort, VarSMTPTLS, VarSMTPFrom, VarOutbox},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := FromEnv(env(tt.vars))
			if err == nil {
				t.Fatalf("FromEnv = %v, want an error", n)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *ConfigError: %v", err, err)
			}
			var got []string
			for _, p := range ce.Problems {
				got = append(got, p.Var)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems name %v, want %v\n%v", got, tt.want, err)
			}
			msg := err.Error()
			for _, v := range tt.want {
				if !strings.Contains(msg, v+": ") {
					t.Errorf("error does not name %s: %v", v, msg)
				}
			}
			for _, s := range tt.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("error lacks %q: %v", s, msg)
				}
			}
			for _, s := range tt.mustNot {
				if strings.Contains(msg, s) {
					t.Errorf("error leaks %q: %v", s, msg)
				}
			}
			if verr := LoadConfig(env(tt.vars)).Validate(); verr == nil || verr.Error() != msg {
				t.Errorf("Validate() = %v, want the same as FromEnv", verr)
			}
		})
	}
}

// ---- Notifier, log sender ----

type fakeSender struct {
	mu    sync.Mutex
	err   error
	calls []string
}

func (f *fakeSender) SendSMS(_ context.Context, to, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "sms "+to+" "+text)
	return f.err
}

func (f *fakeSender) SendEmail(_ context.Context, to, subject, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "email "+to+" "+subject+" "+text)
	return f.err
}

func TestSendRoutesAndReports(t *testing.T) {
	boom := errors.New("gateway down")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name         string
		ctx          context.Context
		msg          Message
		senderErr    error
		wantCall     string
		wantDelivery bool // error wraps ErrDelivery
		wantErr      error
		wantOutbox   int
	}{
		{name: "sms", msg: Message{Channel: SMS, To: testPhone, Text: testText, Code: testCode}, wantCall: "sms " + testPhone + " " + testText, wantOutbox: 1},
		{name: "email", msg: Message{Channel: Email, To: "a@b.ru", Subject: "Код", Text: testText, Code: testCode}, wantCall: "email a@b.ru Код " + testText, wantOutbox: 1},
		{name: "sender fails: no outbox line", msg: Message{Channel: SMS, To: testPhone, Text: testText, Code: testCode}, senderErr: boom, wantCall: "sms " + testPhone + " " + testText, wantDelivery: true, wantErr: boom},
		{name: "cancelled ctx: nothing sent", ctx: cancelled, msg: Message{Channel: Email, To: "a@b.ru", Text: testText}, wantDelivery: true, wantErr: context.Canceled},
		{name: "unknown channel is a caller bug", msg: Message{Channel: "pigeon", To: "x", Text: "t"}},
		{name: "no recipient", msg: Message{Channel: SMS, Text: testText}},
		{name: "no text", msg: Message{Channel: Email, To: "a@b.ru"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			path := filepath.Join(t.TempDir(), "outbox.jsonl")
			ob, err := OpenOutbox(path)
			if err != nil {
				t.Fatal(err)
			}
			f := &fakeSender{err: tt.senderErr}
			err = New(f, f, ob).Send(ctx, tt.msg)
			if tt.wantCall != "" {
				if len(f.calls) != 1 || f.calls[0] != tt.wantCall {
					t.Errorf("calls = %q, want [%q]", f.calls, tt.wantCall)
				}
			} else if len(f.calls) != 0 {
				t.Errorf("calls = %q, want none", f.calls)
			}
			wantFail := tt.wantDelivery || tt.wantErr != nil || tt.wantOutbox == 0
			if (err != nil) != wantFail {
				t.Fatalf("Send error = %v, want error %v", err, wantFail)
			}
			if errors.Is(err, ErrDelivery) != tt.wantDelivery {
				t.Errorf("errors.Is(%v, ErrDelivery) = %v, want %v", err, !tt.wantDelivery, tt.wantDelivery)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
			entries, rerr := ReadOutbox(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if len(entries) != tt.wantOutbox {
				t.Errorf("outbox has %d entries, want %d", len(entries), tt.wantOutbox)
			}
		})
	}
}

func TestSendWithoutSender(t *testing.T) {
	err := New(nil, nil, nil).Send(context.Background(), Message{Channel: SMS, To: testPhone, Text: testText})
	if !errors.Is(err, ErrDelivery) {
		t.Fatalf("Send = %v, want ErrDelivery", err)
	}
}

func TestLogSenderLogsTheTextAtInfo(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		want map[string]string
	}{
		{"sms", Message{Channel: SMS, To: testPhone, Text: testText, Code: testCode}, map[string]string{"to": testPhone, "text": testText}},
		{"email", Message{Channel: Email, To: "a@b.ru", Subject: "Код подтверждения", Text: testText, Code: testCode}, map[string]string{"to": "a@b.ru", "subject": "Код подтверждения", "text": testText}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := LogSender{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
			if err := New(s, s, nil).Send(context.Background(), tt.msg); err != nil {
				t.Fatal(err)
			}
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("log line %q: %v", buf.String(), err)
			}
			if rec["level"] != "INFO" {
				t.Errorf("level = %v, want INFO", rec["level"])
			}
			for k, v := range tt.want {
				if rec[k] != v {
					t.Errorf("%s = %v, want %q", k, rec[k], v)
				}
			}
		})
	}
}

// ---- Outbox ----

func TestOutboxLineFormat(t *testing.T) {
	tests := []struct {
		name   string
		msg    Message
		prefix string
	}{
		{
			name:   "sms",
			msg:    Message{Channel: SMS, To: testPhone, Text: testText, Code: testCode},
			prefix: `{"channel":"sms","to":"+79105940899","code":"123456","text":"Код для входа в Астрал.Отчет: 123456","created_at":"`,
		},
		{
			name:   "email keeps the text unescaped except for JSON",
			msg:    Message{Channel: Email, To: "a@b.ru", Subject: "Код", Text: "Код <b>&\"654321\"", Code: "654321"},
			prefix: `{"channel":"email","to":"a@b.ru","code":"654321","text":"Код <b>&\"654321\"","created_at":"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "outbox.jsonl")
			ob, err := OpenOutbox(path)
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now().UTC().Truncate(time.Second)
			if err := New(quietLog(), quietLog(), ob).Send(context.Background(), tt.msg); err != nil {
				t.Fatal(err)
			}
			after := time.Now().UTC()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			line := string(raw)
			if !strings.HasSuffix(line, "\"}\n") || strings.Count(line, "\n") != 1 {
				t.Fatalf("not one JSON line: %q", line)
			}
			if !strings.HasPrefix(line, tt.prefix) {
				t.Fatalf("line = %s\nwant prefix %s", line, tt.prefix)
			}
			// The field names, in order, and nothing else.
			dec := json.NewDecoder(strings.NewReader(line))
			var keys []string
			if _, err := dec.Token(); err != nil {
				t.Fatal(err)
			}
			for dec.More() {
				k, _ := dec.Token()
				keys = append(keys, k.(string))
				if _, err := dec.Token(); err != nil {
					t.Fatal(err)
				}
			}
			if want := []string{"channel", "to", "code", "text", "created_at"}; !slices.Equal(keys, want) {
				t.Errorf("keys = %v, want %v", keys, want)
			}
			var e OutboxEntry
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			if e.Channel != tt.msg.Channel || e.To != tt.msg.To || e.Code != tt.msg.Code || e.Text != tt.msg.Text {
				t.Errorf("entry = %+v, want %+v", e, tt.msg)
			}
			at, err := time.Parse(time.RFC3339, e.CreatedAt)
			if err != nil || !strings.HasSuffix(e.CreatedAt, "Z") {
				t.Errorf("created_at %q is not UTC RFC 3339: %v", e.CreatedAt, err)
			}
			if at.Before(before) || at.After(after) {
				t.Errorf("created_at %v not within [%v, %v]", at, before, after)
			}
			st, _ := os.Stat(path)
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode = %v, want 0600", st.Mode().Perm())
			}
		})
	}
}

func TestOutboxConcurrentAppends(t *testing.T) {
	for _, writers := range []int{1, 2} { // 2: two Outbox values, as two processes would have
		t.Run(fmt.Sprintf("%d outbox values", writers), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "outbox.jsonl")
			var ns []*Notifier
			for range writers {
				ob, err := OpenOutbox(path)
				if err != nil {
					t.Fatal(err)
				}
				ns = append(ns, New(quietLog(), quietLog(), ob))
			}
			const n = 50
			long := strings.Repeat("Астрал.Отчет ", 300) // lines of ~8 KB, larger than one pipe buffer
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() {
					code := fmt.Sprintf("%06d", i)
					ch := SMS
					if i%2 == 1 {
						ch = Email
					}
					errs <- ns[i%writers].Send(context.Background(), Message{Channel: ch, To: testPhone, Text: long + code, Code: code})
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			codes := map[string]bool{}
			lines := 0
			for sc.Scan() {
				lines++
				var e OutboxEntry
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatalf("line %d is not intact JSON: %v", lines, err)
				}
				if e.Text != long+e.Code {
					t.Errorf("line %d: text does not match its code %s", lines, e.Code)
				}
				codes[e.Code] = true
			}
			if lines != n || len(codes) != n {
				t.Errorf("%d lines with %d distinct codes, want %d", lines, len(codes), n)
			}
		})
	}
}

func TestReadOutboxMissingFile(t *testing.T) {
	es, err := ReadOutbox(filepath.Join(t.TempDir(), "none.jsonl"))
	if err != nil || len(es) != 0 {
		t.Fatalf("ReadOutbox = %v, %v; want empty", es, err)
	}
}

// ---- HTTP SMS gateway ----

type gotRequest struct {
	method, path, rawQuery, body, contentType, auth string
	query                                           url.Values
}

func TestHTTPGateway(t *testing.T) {
	const auth = "Bearer s3cr3t-token"
	text := "Код: 12&34 = ?+ok"
	tests := []struct {
		name     string
		tmpl     string // appended to the server URL
		method   string
		auth     string
		status   int
		delay    time.Duration
		check    func(t *testing.T, r gotRequest)
		wantErr  []string
		notInErr []string
		timeout  bool
	}{
		{
			name: "POST with placeholders: escaped query, empty body, auth header",
			tmpl: "/send?phone={to}&msg={text}&sender=Astral", method: "POST", auth: auth, status: 200,
			check: func(t *testing.T, r gotRequest) {
				wantRaw := "phone=%2B79105940899&msg=" + url.QueryEscape(text) + "&sender=Astral"
				if r.method != "POST" || r.path != "/send" || r.rawQuery != wantRaw || r.body != "" || r.auth != auth {
					t.Errorf("request = %+v\nwant POST /send?%s, empty body, auth", r, wantRaw)
				}
				if r.query.Get("phone") != testPhone || r.query.Get("msg") != text {
					t.Errorf("decoded query = %v", r.query)
				}
			},
		},
		{
			name: "GET with placeholders, no auth configured",
			tmpl: "/api/{to}/x?t={text}", method: "GET", status: 204,
			check: func(t *testing.T, r gotRequest) {
				if r.method != "GET" || r.query.Get("t") != text || r.auth != "" {
					t.Errorf("request = %+v", r)
				}
				if r.path != "/api/+79105940899/x" {
					t.Errorf("path = %q", r.path)
				}
			},
		},
		{
			name: "POST without placeholders: form fields",
			tmpl: "/send", method: "POST", auth: auth, status: 202,
			check: func(t *testing.T, r gotRequest) {
				form, err := url.ParseQuery(r.body)
				if err != nil || form.Get("to") != testPhone || form.Get("text") != text || len(form) != 2 {
					t.Errorf("form = %v (%v), body %q", form, err, r.body)
				}
				if r.contentType != "application/x-www-form-urlencoded" || r.rawQuery != "" || r.auth != auth {
					t.Errorf("request = %+v", r)
				}
			},
		},
		{
			name: "non-2xx is an error with the status, not the secrets",
			tmpl: "/send?key=APIKEY42&to={to}&text={text}", method: "POST", auth: auth, status: 503,
			wantErr:  []string{"SMS gateway answered 503 Service Unavailable"},
			notInErr: []string{"s3cr3t", "APIKEY42", testCode, "12&34", "79105940899"},
		},
		{
			name: "4xx is an error",
			tmpl: "/send?to={to}&text={text}", method: "GET", status: 400,
			wantErr: []string{"400 Bad Request"},
		},
		{
			name: "slow gateway times out",
			tmpl: "/send?key=APIKEY42&to={to}&text={text}", method: "POST", auth: auth, status: 200, delay: 5 * time.Second,
			wantErr:  []string{"SMS gateway did not answer in 100ms"},
			notInErr: []string{"s3cr3t", "APIKEY42", "12%26"},
			timeout:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan gotRequest, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- gotRequest{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.URL.Query()}
				if tt.delay > 0 {
					select {
					case <-time.After(tt.delay):
					case <-r.Context().Done():
					}
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, "echo: "+r.Header.Get("Authorization"))
			}))
			defer srv.Close()
			vars := map[string]string{VarSMSSender: "http", VarSMSHTTPURL: srv.URL + tt.tmpl, VarSMSHTTPMethod: tt.method, VarSMSHTTPAuth: tt.auth}
			n, err := FromEnv(env(vars))
			if err != nil {
				t.Fatal(err)
			}
			n.sms.(*httpSMS).timeout = 100 * time.Millisecond
			start := time.Now()
			err = n.Send(context.Background(), Message{Channel: SMS, To: testPhone, Text: text, Code: testCode})
			if tt.timeout && time.Since(start) > 3*time.Second {
				t.Errorf("timeout took %v", time.Since(start))
			}
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				tt.check(t, <-got)
				return
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, ErrDelivery) {
				t.Fatalf("Send = %v, want ErrDelivery", err)
			}
			if tt.timeout != errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("errors.Is(%v, DeadlineExceeded) = %v", err, !tt.timeout)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			for _, s := range tt.notInErr {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q leaks %q", err, s)
				}
			}
		})
	}
}

func TestHTTPGatewayHonoursCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	n, err := FromEnv(env(map[string]string{VarSMSSender: "http", VarSMSHTTPURL: srv.URL + "/?to={to}&text={text}"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err = n.Send(ctx, Message{Channel: SMS, To: testPhone, Text: testText, Code: testCode})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrDelivery) {
		t.Fatalf("Send = %v, want Canceled and ErrDelivery", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

// ---- SMTP against a real local server ----

type mailIn struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

type smtpBackend struct {
	got            chan mailIn
	user, password string // when set, AUTH PLAIN is required
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{be: b, conn: c}, nil
}

type smtpSession struct {
	be   *smtpBackend
	conn *smtp.Conn
	in   mailIn
}

func (s *smtpSession) AuthMechanisms() []string {
	if s.be.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.be.user || pass != s.be.password {
			return smtp.ErrAuthFailed
		}
		s.in.user = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.be.user != "" && s.in.user == "" {
		return smtp.ErrAuthRequired
	}
	s.in.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.in.to = append(s.in.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.in.data = b
	_, s.in.tls = s.conn.TLSConnectionState()
	s.be.got <- s.in
	return nil
}

func (s *smtpSession) Reset()        { s.in = mailIn{user: s.in.user} }
func (s *smtpSession) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// startSMTP serves on 127.0.0.1: mode "plain" (no STARTTLS offered), "starttls" or
// "tls" (implicit).
func startSMTP(t *testing.T, mode string, be *smtpBackend) (port string, pool *x509.CertPool) {
	t.Helper()
	cert, pool := selfSigned(t)
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := smtp.NewServer(be)
	s.Domain = "localhost"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	switch mode {
	case "starttls":
		s.TLSConfig = tlsConf
	case "tls":
		ln = tls.NewListener(ln, tlsConf)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, pool
}

func TestSMTPDelivers(t *testing.T) {
	const subject = "Код подтверждения для Астрал.Отчет"
	tests := []struct {
		name       string
		server     string // plain | starttls | tls
		tlsMode    string // IDP_SMTP_TLS
		user, pass string
		trust      bool // trust the test certificate
		wantTLS    bool
		wantErr    string // "" means delivered
	}{
		{name: "none", server: "plain", tlsMode: "none"},
		{name: "starttls", server: "starttls", tlsMode: "starttls", trust: true, wantTLS: true},
		{name: "starttls with auth", server: "starttls", tlsMode: "", user: "mailer", pass: "pa55", trust: true, wantTLS: true},
		{name: "implicit tls with auth", server: "tls", tlsMode: "tls", user: "mailer", pass: "pa55", trust: true, wantTLS: true},
		{name: "starttls is mandatory", server: "plain", tlsMode: "starttls", wantErr: "STARTTLS"},
		{name: "untrusted certificate is refused", server: "starttls", tlsMode: "starttls", wantErr: "certificate"},
		{name: "wrong password", server: "starttls", tlsMode: "starttls", user: "mailer", pass: "nope", trust: true, wantErr: "AUTH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &smtpBackend{got: make(chan mailIn, 1)}
			if tt.user != "" {
				be.user, be.password = "mailer", "pa55"
			}
			port, pool := startSMTP(t, tt.server, be)
			vars := map[string]string{
				VarEmailSender: "smtp", VarSMTPHost: "127.0.0.1", VarSMTPPort: port,
				VarSMTPFrom: "Астрал <no-reply@astral.ru>", VarSMTPTLS: tt.tlsMode,
				VarSMTPUser: tt.user, VarSMTPPassword: tt.pass,
			}
			n, err := FromEnv(env(vars))
			if err != nil {
				t.Fatal(err)
			}
			if tt.trust {
				n.email.(*smtpSender).rootCAs = pool
			}
			n.email.(*smtpSender).timeout = 5 * time.Second
			text := "Ваш код подтверждения: 123456. Никому его не сообщайте."
			err = n.Send(context.Background(), Message{Channel: Email, To: "ivan@example.ru", Subject: subject, Text: text, Code: testCode})
			if tt.wantErr != "" {
				t.Logf("error: %v", err)
				if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Send = %v, want ErrDelivery mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), tt.pass) && tt.pass != "" {
					t.Errorf("error leaks the password: %v", err)
				}
				select {
				case m := <-be.got:
					t.Fatalf("message arrived anyway: %+v", m)
				default:
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			var in mailIn
			select {
			case in = <-be.got:
			case <-time.After(5 * time.Second):
				t.Fatal("no message arrived")
			}
			if in.from != "no-reply@astral.ru" || !slices.Equal(in.to, []string{"ivan@example.ru"}) {
				t.Errorf("envelope from %q to %q", in.from, in.to)
			}
			if in.tls != tt.wantTLS {
				t.Errorf("TLS = %v, want %v", in.tls, tt.wantTLS)
			}
			if in.user != tt.user {
				t.Errorf("authenticated as %q, want %q", in.user, tt.user)
			}
			checkMail(t, in.data, subject, text)
		})
	}
}

func checkMail(t *testing.T, data []byte, subject, text string) {
	t.Helper()
	t.Logf("message as received:\n%s", data)
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, data)
	}
	h := msg.Header
	from, err := netmail.ParseAddress(h.Get("From"))
	if err != nil || from.Name != "Астрал" || from.Address != "no-reply@astral.ru" {
		t.Errorf("From = %q → %v, %v", h.Get("From"), from, err)
	}
	to, err := netmail.ParseAddress(h.Get("To"))
	if err != nil || to.Address != "ivan@example.ru" {
		t.Errorf("To = %q → %v, %v", h.Get("To"), to, err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subj != subject {
		t.Errorf("Subject = %q → %q, %v", h.Get("Subject"), subj, err)
	}
	if ua := h.Get("User-Agent") + h.Get("X-Mailer"); ua != "" {
		t.Errorf("mailer advertised: %q", ua)
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@astral.ru>") {
		t.Errorf("Message-ID = %q", id)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		t.Errorf("Content-Type = %q", h.Get("Content-Type"))
	}
	var body io.Reader = msg.Body
	switch cte := strings.ToLower(h.Get("Content-Transfer-Encoding")); cte {
	case "quoted-printable":
		body = quotedprintable.NewReader(msg.Body)
	case "", "8bit", "7bit":
	default:
		t.Fatalf("unexpected Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimRight(string(b), "\r\n"); got != text || !strings.Contains(got, testCode) {
		t.Errorf("body = %q, want %q", got, text)
	}
}

// silentListener accepts connections and never says a word.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func TestSMTPTimeoutAndCancel(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration // cancel the caller's ctx after this; 0: never
		want    error
		wantMsg string
	}{
		{name: "server silent: timeout", timeout: 200 * time.Millisecond, want: context.DeadlineExceeded, wantMsg: "did not answer in 200ms"},
		{name: "caller cancels mid-conversation", timeout: 10 * time.Second, cancel: 200 * time.Millisecond, want: context.Canceled, wantMsg: "email not sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := silentListener(t)
			n, err := FromEnv(env(map[string]string{
				VarEmailSender: "smtp", VarSMTPHost: "127.0.0.1", VarSMTPPort: port, VarSMTPFrom: "no-reply@astral.ru", VarSMTPTLS: "none",
			}))
			if err != nil {
				t.Fatal(err)
			}
			n.email.(*smtpSender).timeout = tt.timeout
			ctx := context.Background()
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tt.cancel, cancel)
			}
			start := time.Now()
			err = n.Send(ctx, Message{Channel: Email, To: "a@b.ru", Subject: "s", Text: testText, Code: testCode})
			t.Logf("error: %v", err)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Send took %v", d)
			}
			if !errors.Is(err, ErrDelivery) || !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Send = %v, want ErrDelivery, %v, %q", err, tt.want, tt.wantMsg)
			}
		})
	}
}

func TestDefaultTimeoutIsTenSeconds(t *testing.T) {
	e := &timeoutError{who: "SMS gateway", after: timeout}
	if e.Error() != "SMS gateway did not answer in 10s" {
		t.Errorf("message = %q", e.Error())
	}
	if timeout != 10*time.Second {
		t.Errorf("timeout = %v", timeout)
	}
}
