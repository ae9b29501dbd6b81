package notify

import (
	"context"
	"log/slog"
)

// LogSender is the dev default for both channels: it writes each message to the log
// at INFO instead of sending it.
//
// It logs the whole text, one-time code included. That is the one deliberate
// exception to "no secret in logs": in dev mode the log IS the way a developer
// receives the code. Production configures http and smtp senders instead.
type LogSender struct {
	// Logger is where messages go; nil means slog.Default() at the time of sending.
	Logger *slog.Logger
}

var (
	_ SMSSender   = LogSender{}
	_ EmailSender = LogSender{}
)

func (s LogSender) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// SendSMS logs the SMS.
func (s LogSender) SendSMS(ctx context.Context, to, text string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.logger().InfoContext(ctx, "notify: SMS (log sender, not sent)", "to", to, "text", text)
	return nil
}

// SendEmail logs the email.
func (s LogSender) SendEmail(ctx context.Context, to, subject, text string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.logger().InfoContext(ctx, "notify: email (log sender, not sent)", "to", to, "subject", subject, "text", text)
	return nil
}
