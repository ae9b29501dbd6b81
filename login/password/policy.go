package password

import (
	_ "embed"
	"strings"
	"unicode/utf8"
)

// MinLength is the shortest password a person may choose.
const MinLength = 8

// Problems with a chosen password; the texts are shown under the field.
const (
	ErrTooShort    Problem = "Пароль должен быть не короче 8 символов"
	ErrTooLong     Problem = "Пароль должен быть не длиннее 256 символов"
	ErrSameAsLogin Problem = "Пароль не должен совпадать с номером телефона или email"
	ErrTooCommon   Problem = "Этот пароль слишком распространен. Придумайте другой"
	ErrEmptyNew    Problem = "Придумайте пароль"
)

//go:embed common-passwords.txt
var commonList string

// common holds the shipped list of common passwords (COMMON-PASSWORDS-LICENSE.txt),
// lower-cased, for an exact-match check.
var common = func() map[string]struct{} {
	m := make(map[string]struct{}, 20100)
	for _, line := range strings.Split(commonList, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			m[strings.ToLower(line)] = struct{}{}
		}
	}
	return m
}()

// Check applies the password rules to a new password: length, not the person's phone
// or email (in any writing), not a common password.
func Check(pw string, logins ...string) error {
	if pw == "" {
		return ErrEmptyNew
	}
	n := utf8.RuneCountInString(pw)
	if n < MinLength {
		return ErrTooShort
	}
	if len(pw) > MaxLength {
		return ErrTooLong
	}
	lower := strings.ToLower(strings.TrimSpace(pw))
	digits := onlyDigits(lower)
	for _, l := range logins {
		if l == "" {
			continue
		}
		l = strings.ToLower(l)
		if lower == l || (strings.Contains(l, "@") && lower == l[:strings.IndexByte(l, '@')]) {
			return ErrSameAsLogin
		}
		// A phone written any way: +79105940899, 89105940899, 9105940899.
		if ld := onlyDigits(l); len(ld) >= 10 && len(digits) >= 10 && len(digits) == len(lower) &&
			strings.HasSuffix(ld, digits[len(digits)-10:]) {
			return ErrSameAsLogin
		}
	}
	if _, ok := common[lower]; ok {
		return ErrTooCommon
	}
	return nil
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
