// Package contact reads the phone number or email address a person typed and turns it
// into the one form the account is stored under: E.164 for phones, lower case for
// email.
package contact

import (
	"net/mail"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Kind is the kind of contact.
type Kind string

// The kinds of contact an account can be found by.
const (
	Phone Kind = "phone"
	Email Kind = "email"
)

// Contact is a normalized phone or email.
type Contact struct {
	Kind  Kind
	Value string // E.164 (+79105940899) or lower-case email
}

// Problem is a mistake in what the person typed; its text is the Russian sentence
// shown next to the field.
type Problem string

func (p Problem) Error() string { return string(p) }

// The problems a contact can have.
const (
	ErrEmpty        Problem = "Введите номер телефона или email"
	ErrInvalidPhone Problem = "Введите номер мобильного телефона в формате +7 (900) 000-00-00"
	ErrInvalidEmail Problem = "Введите email в формате name@example.ru"
)

// ParsePhone reads a Russian mobile number in any common writing: +7 910 594-08-99,
// 8 (910) 594-08-99, 9105940899.
func ParsePhone(input string) (Contact, error) {
	s := strings.TrimSpace(input)
	if s == "" {
		return Contact{}, ErrEmpty
	}
	if len(s) > 40 {
		return Contact{}, ErrInvalidPhone
	}
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("+-() .", r):
		default:
			return Contact{}, ErrInvalidPhone
		}
	}
	// A bare ten-digit national number (9105940899) has no trunk prefix; the library
	// reads it correctly with region RU, as it does 8… and +7….
	num, err := phonenumbers.Parse(s, "RU")
	// +7 only, as the mask and the sentence say: codes go by SMS to Russian numbers.
	if err != nil || digits < 10 || num.GetCountryCode() != 7 || !phonenumbers.IsValidNumber(num) {
		return Contact{}, ErrInvalidPhone
	}
	if t := phonenumbers.GetNumberType(num); t != phonenumbers.MOBILE && t != phonenumbers.FIXED_LINE_OR_MOBILE {
		return Contact{}, ErrInvalidPhone
	}
	return Contact{Kind: Phone, Value: phonenumbers.Format(num, phonenumbers.E164)}, nil
}

// ParseEmail reads an email address.
func ParseEmail(input string) (Contact, error) {
	s := strings.TrimSpace(input)
	if s == "" {
		return Contact{}, ErrEmpty
	}
	if len(s) > 254 || strings.ContainsAny(s, " <>\"") {
		return Contact{}, ErrInvalidEmail
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s {
		return Contact{}, ErrInvalidEmail
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !strings.Contains(s[at+1:], ".") {
		return Contact{}, ErrInvalidEmail
	}
	return Contact{Kind: Email, Value: strings.ToLower(s)}, nil
}

// Parse reads input as kind; an empty kind guesses from the input (an @ means email).
func Parse(kind Kind, input string) (Contact, error) {
	switch {
	case kind == Email, kind == "" && strings.Contains(input, "@"):
		return ParseEmail(input)
	default:
		return ParsePhone(input)
	}
}

// FormatPhone writes an E.164 Russian number the way the pages show it: +7 (910) 594-08-99.
func FormatPhone(e164 string) string {
	if len(e164) != 12 || !strings.HasPrefix(e164, "+7") {
		return e164
	}
	d := e164[2:]
	return "+7 (" + d[0:3] + ") " + d[3:6] + "-" + d[6:8] + "-" + d[8:10]
}
