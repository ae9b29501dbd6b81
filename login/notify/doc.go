// Package notify delivers one-time codes by SMS and email.
//
// The registration and one-time-code flows build a Message (channel, recipient, the
// whole Russian text and the code it carries) and hand it to Notifier.Send. The
// Notifier routes it to the one SMSSender or EmailSender it was built with:
//
//   - log: the dev default for both channels; writes the message with log/slog at
//     INFO, which is how a developer sees the code without a gateway;
//   - http: an HTTP SMS gateway (IDP_SMS_HTTP_URL, a URL template with {to} and {text});
//   - smtp: an SMTP relay (IDP_SMTP_*), STARTTLS by default.
//
// When IDP_OUTBOX names a file, every message the sender delivered is also appended
// to it as one JSON line; end-to-end tests read the codes from there.
//
// FromEnv builds the Notifier from the environment. The sender kinds sit in a registry
// (a map from kind to its check and constructor), and Config.Validate lists every
// problem at once, each with the variable it comes from.
//
// Send makes one network call and holds no lock and no database transaction around
// it; it honours ctx and gives up after 10 s.
package notify
