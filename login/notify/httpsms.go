package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// httpSMS sends an SMS through an HTTP gateway (IDP_SMS_SENDER=http).
//
// The URL is a template: {to} and {text} are replaced by the query-escaped phone and
// text. With POST and a template without placeholders the two go as form fields
// to=…&text=… instead. The Authorization header, when configured, is sent verbatim
// and never appears in an error.
type httpSMS struct {
	template string
	method   string // GET or POST
	auth     string
	form     bool // no placeholders: POST the fields as a form
	client   *http.Client
	timeout  time.Duration // 10 s; shorter in tests
}

var _ SMSSender = (*httpSMS)(nil)

const (
	phToKey   = "{to}"
	phTextKey = "{text}"
)

func newHTTPSMS(c HTTPSMSConfig) *httpSMS {
	return &httpSMS{
		template: c.URL,
		method:   strings.ToUpper(c.Method),
		auth:     c.Auth,
		form:     !strings.Contains(c.URL, phToKey) && !strings.Contains(c.URL, phTextKey),
		client:   &http.Client{},
		timeout:  timeout,
	}
}

// fill puts the escaped values into the template.
func fillTemplate(tmpl, to, text string) string {
	return strings.NewReplacer(phToKey, url.QueryEscape(to), phTextKey, url.QueryEscape(text)).Replace(tmpl)
}

// SendSMS makes one request to the gateway; any 2xx answer is success.
func (s *httpSMS) SendSMS(ctx context.Context, to, text string) error {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	var body io.Reader
	target := s.template
	if s.form {
		body = strings.NewReader(url.Values{"to": {to}, "text": {text}}.Encode())
	} else {
		target = fillTemplate(s.template, to, text)
	}
	req, err := http.NewRequestWithContext(rctx, s.method, target, body)
	if err != nil {
		// The URL may carry an API key and the code: do not repeat it.
		return errors.New("SMS gateway: cannot build the request from IDP_SMS_HTTP_URL")
	}
	if s.form {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return s.transportError(ctx, rctx, err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; the body itself is not reported
	// (a gateway may echo the credentials or the text back).
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("SMS gateway answered %s", resp.Status)
	}
	return nil
}

func (s *httpSMS) transportError(ctx, rctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("SMS not sent: %w", ctx.Err())
	}
	if errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return &timeoutError{who: "SMS gateway", after: s.timeout}
	}
	// *url.Error repeats the URL, which holds the phone, the code and maybe an API key.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("SMS gateway: %w", err)
}

// checkHTTPSMS lists the problems of the http SMS sender's settings.
func checkHTTPSMS(c HTTPSMSConfig) []Problem {
	var ps []Problem
	method := strings.ToUpper(c.Method)
	if method != http.MethodGet && method != http.MethodPost {
		ps = append(ps, Problem{VarSMSHTTPMethod, fmt.Sprintf("method %q is not GET or POST", c.Method)})
	}
	if c.URL == "" {
		ps = append(ps, Problem{VarSMSHTTPURL, "required when " + VarSMSSender + "=http"})
	} else {
		// Values are not echoed: the URL may carry an API key.
		u, err := url.Parse(fillTemplate(c.URL, "+70000000000", "x"))
		switch {
		case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "":
			ps = append(ps, Problem{VarSMSHTTPURL, "not an absolute http or https URL"})
		}
		hasTo, hasText := strings.Contains(c.URL, phToKey), strings.Contains(c.URL, phTextKey)
		switch {
		case hasTo != hasText:
			ps = append(ps, Problem{VarSMSHTTPURL, "has only one of the placeholders {to} and {text}: use both, or (with POST) neither to send them as form fields"})
		case !hasTo && method == http.MethodGet:
			ps = append(ps, Problem{VarSMSHTTPURL, "GET needs the placeholders {to} and {text} in the URL"})
		}
	}
	if strings.ContainsAny(c.Auth, "\r\n") {
		ps = append(ps, Problem{VarSMSHTTPAuth, "contains a line break"})
	}
	return ps
}
