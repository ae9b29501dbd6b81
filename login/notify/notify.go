package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Channel is the way a message travels.
type Channel string

// The channels.
const (
	SMS   Channel = "sms"
	Email Channel = "email"
)

// Message is one notification. Code is the one-time code it carries (for the
// outbox; tests read codes from there).
type Message struct {
	Channel Channel // SMS or Email
	To      string  // E.164 phone or email address
	Subject string  // email only
	Text    string  // the whole text, Russian, e.g. "Код для входа в Астрал.Отчет: 123456"
	Code    string
}

// SMSSender sends one SMS. It is a seam: one implementation per kind (log, http).
type SMSSender interface {
	SendSMS(ctx context.Context, to, text string) error
}

// EmailSender sends one plain-text email. It is a seam: one implementation per kind
// (log, smtp).
type EmailSender interface {
	SendEmail(ctx context.Context, to, subject, text string) error
}

// ErrDelivery is wrapped by every error Send returns when the message could not be
// handed to the gateway or relay (including a timeout or a cancelled ctx).
var ErrDelivery = errors.New("delivery failed")

// ErrOutbox is wrapped by the error Send returns when the message WAS delivered but
// could not be appended to the outbox. Retrying would deliver it twice.
var ErrOutbox = errors.New("outbox append failed")

// timeout is how long one delivery may take.
const timeout = 10 * time.Second

// Notifier routes a message to its sender and also appends it to the outbox when
// configured. It is safe for concurrent use and holds no lock while sending.
type Notifier struct {
	sms    SMSSender
	email  EmailSender
	outbox *Outbox // nil: no outbox
}

// New returns a Notifier over the given senders. outbox may be nil. A nil sender makes
// Send fail for that channel.
func New(sms SMSSender, email EmailSender, outbox *Outbox) *Notifier {
	return &Notifier{sms: sms, email: email, outbox: outbox}
}

// Send delivers m through the sender of its channel and then, only if that succeeded,
// appends it to the outbox (so a test that reads the outbox sees only delivered
// codes). A delivery failure wraps ErrDelivery; a timeout says so in the error and
// also matches context.DeadlineExceeded; an outbox failure after a delivery wraps
// ErrOutbox.
func (n *Notifier) Send(ctx context.Context, m Message) error {
	if err := m.check(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("notify: %s: %w: not sent: %w", m.Channel, ErrDelivery, err)
	}
	var err error
	switch m.Channel {
	case SMS:
		if n.sms == nil {
			return fmt.Errorf("notify: sms: %w: no SMS sender configured", ErrDelivery)
		}
		err = n.sms.SendSMS(ctx, m.To, m.Text)
	case Email:
		if n.email == nil {
			return fmt.Errorf("notify: email: %w: no email sender configured", ErrDelivery)
		}
		err = n.email.SendEmail(ctx, m.To, m.Subject, m.Text)
	}
	if err != nil {
		return fmt.Errorf("notify: %s: %w: %w", m.Channel, ErrDelivery, err)
	}
	if n.outbox != nil {
		if err := n.outbox.Append(m); err != nil {
			return fmt.Errorf("notify: %s: delivered, but %w: %w", m.Channel, ErrOutbox, err)
		}
	}
	return nil
}

// check rejects a message the caller built wrongly; such an error is a bug, not a
// delivery failure, so it does not wrap ErrDelivery.
func (m Message) check() error {
	switch m.Channel {
	case SMS, Email:
	default:
		return fmt.Errorf("notify: unknown channel %q", m.Channel)
	}
	if strings.TrimSpace(m.To) == "" {
		return fmt.Errorf("notify: %s: no recipient", m.Channel)
	}
	if m.Text == "" {
		return fmt.Errorf("notify: %s: empty text", m.Channel)
	}
	return nil
}

// timeoutError says that the other side did not answer in time. It matches
// context.DeadlineExceeded.
type timeoutError struct {
	who   string
	after time.Duration
}

func (e *timeoutError) Error() string { return fmt.Sprintf("%s did not answer in %s", e.who, e.after) }
func (e *timeoutError) Timeout() bool { return true }
func (e *timeoutError) Unwrap() error { return context.DeadlineExceeded }
