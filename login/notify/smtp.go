package notify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// The values of IDP_SMTP_TLS.
const (
	tlsStartTLS = "starttls" // plain connection upgraded by STARTTLS, which is mandatory
	tlsImplicit = "tls"      // TLS from the first byte (port 465)
	tlsNone     = "none"     // no encryption (a relay on the same host or network)
)

// smtpSender sends plain-text UTF-8 email through an SMTP relay
// (IDP_EMAIL_SENDER=smtp), one connection per message.
type smtpSender struct {
	host     string
	port     int
	user     string
	password string
	from     *netmail.Address
	tlsMode  string
	timeout  time.Duration  // 10 s; shorter in tests
	rootCAs  *x509.CertPool // nil: the system roots; set by tests to trust their own certificate
}

var _ EmailSender = (*smtpSender)(nil)

// newSMTP builds the sender from settings that passed checkSMTP.
func newSMTP(c SMTPConfig) (*smtpSender, error) {
	port, err := smtpPort(c)
	if err != nil {
		return nil, err
	}
	from, err := netmail.ParseAddress(c.From)
	if err != nil {
		return nil, err
	}
	return &smtpSender{
		host:     c.Host,
		port:     port,
		user:     c.User,
		password: c.Password,
		from:     from,
		tlsMode:  strings.ToLower(c.TLS),
		timeout:  timeout,
	}, nil
}

// smtpPort is IDP_SMTP_PORT, or its default: 465 for implicit TLS, else 587.
func smtpPort(c SMTPConfig) (int, error) {
	if c.Port == "" {
		if strings.EqualFold(c.TLS, tlsImplicit) {
			return 465, nil
		}
		return 587, nil
	}
	p, err := strconv.Atoi(c.Port)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", c.Port)
	}
	return p, nil
}

// checkSMTP lists the problems of the smtp sender's settings.
func checkSMTP(c SMTPConfig) []Problem {
	var ps []Problem
	req := "required when " + VarEmailSender + "=smtp"
	if c.Host == "" {
		ps = append(ps, Problem{VarSMTPHost, req})
	} else if strings.ContainsAny(c.Host, " /:") && net.ParseIP(c.Host) == nil {
		ps = append(ps, Problem{VarSMTPHost, fmt.Sprintf("%q is not a host name (the port goes in %s)", c.Host, VarSMTPPort)})
	}
	if _, err := smtpPort(c); err != nil {
		ps = append(ps, Problem{VarSMTPPort, err.Error()})
	}
	switch strings.ToLower(c.TLS) {
	case tlsStartTLS, tlsImplicit, tlsNone:
	default:
		ps = append(ps, Problem{VarSMTPTLS, fmt.Sprintf("%q is not starttls, tls or none", c.TLS)})
	}
	if c.From == "" {
		ps = append(ps, Problem{VarSMTPFrom, req + `, e.g. "Астрал <no-reply@astral.ru>"`})
	} else if _, err := netmail.ParseAddress(c.From); err != nil {
		ps = append(ps, Problem{VarSMTPFrom, fmt.Sprintf("%q is not an address like \"Астрал <no-reply@astral.ru>\"", c.From)})
	}
	if c.Password != "" && c.User == "" {
		ps = append(ps, Problem{VarSMTPPassword, "set without " + VarSMTPUser})
	}
	return ps
}

// SendEmail sends one message: From, To, a UTF-8 Subject, Date, Message-ID and a
// text/plain; charset=utf-8 body.
func (s *smtpSender) SendEmail(ctx context.Context, to, subject, text string) error {
	sctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	msg := mail.NewMsg(mail.WithCharset(mail.CharsetUTF8), mail.WithEncoding(mail.EncodingQP), mail.WithNoDefaultUserAgent())
	msg.FromMailAddress(s.from)
	if err := msg.To(to); err != nil {
		return fmt.Errorf("email: bad recipient: %w", err)
	}
	msg.Subject(subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(s.messageID())
	msg.SetBodyString(mail.TypeTextPlain, text)

	client, err := mail.NewClient(s.host, s.options(sctx)...)
	if err != nil {
		return fmt.Errorf("SMTP client: %w", err)
	}
	if err := client.DialAndSendWithContext(sctx, msg); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("email not sent: %w", ctx.Err())
		}
		if errors.Is(sctx.Err(), context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			return &timeoutError{who: "SMTP server " + s.addr(), after: s.timeout}
		}
		return fmt.Errorf("SMTP server %s: %w", s.addr(), err)
	}
	return nil
}

func (s *smtpSender) addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// options configures one go-mail client. sctx bounds the whole conversation: the
// dialer closes the connection when it ends, so a cancelled ctx stops a send even
// between SMTP commands, not only while dialing.
func (s *smtpSender) options(sctx context.Context) []mail.Option {
	tlsConf := &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12, RootCAs: s.rootCAs}
	opts := []mail.Option{
		mail.WithPort(s.port),
		mail.WithTimeout(s.timeout),
		mail.WithTLSConfig(tlsConf),
		mail.WithDialContextFunc(s.dialer(sctx, tlsConf)),
	}
	switch s.tlsMode {
	case tlsImplicit:
		// The dialer does the TLS handshake; WithSSL keeps go-mail from trying
		// STARTTLS inside it.
		opts = append(opts, mail.WithSSL())
	case tlsNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if s.user != "" {
		// PLAIN and LOGIN refuse to send the password over an unencrypted connection
		// (other than to localhost); other mechanisms are found by discovery.
		opts = append(opts,
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthPlain, mail.SMTPAuthLogin),
			mail.WithUsername(s.user),
			mail.WithPassword(s.password))
	}
	return opts
}

func (s *smtpSender) dialer(sctx context.Context, tlsConf *tls.Config) mail.DialContextFunc {
	return func(dctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(dctx, network, address)
		if err != nil {
			return nil, err
		}
		context.AfterFunc(sctx, func() { raw.Close() })
		if s.tlsMode != tlsImplicit {
			return raw, nil
		}
		conn := tls.Client(raw, tlsConf)
		if err := conn.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, err
		}
		return conn, nil
	}
}

// messageID is a random id at the sender's domain.
func (s *smtpSender) messageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	domain := "localhost"
	if at := strings.LastIndexByte(s.from.Address, '@'); at >= 0 {
		domain = s.from.Address[at+1:]
	}
	return hex.EncodeToString(b[:]) + "@" + domain
}
