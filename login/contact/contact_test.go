package contact

import "testing"

func TestParsePhone(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"+7 910 594-08-99", "+79105940899", nil},
		{"8 (910) 594-08-99", "+79105940899", nil},
		{"9105940899", "+79105940899", nil},
		{"+7 (910) 594-08-99", "+79105940899", nil},
		{"  89105940899 ", "+79105940899", nil},
		{"79105940899", "+79105940899", nil},
		{"", "", ErrEmpty},
		{"12345", "", ErrInvalidPhone},
		{"+7 910 594-08-9", "", ErrInvalidPhone},
		{"+7 910 594-08-99x", "", ErrInvalidPhone},
		{"+7 (495) 123-45-67", "", ErrInvalidPhone}, // Moscow landline: no SMS
		{"not a phone", "", ErrInvalidPhone},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePhone(tt.in)
			if err != tt.err {
				t.Fatalf("ParsePhone(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if err == nil && (got.Value != tt.want || got.Kind != Phone) {
				t.Fatalf("ParsePhone(%q) = %+v, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseEmail(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"Mashin@Astral.ru", "mashin@astral.ru", nil},
		{" a.b+c@example.com ", "a.b+c@example.com", nil},
		{"", "", ErrEmpty},
		{"nobody", "", ErrInvalidEmail},
		{"a@b", "", ErrInvalidEmail},
		{"Имя <a@b.ru>", "", ErrInvalidEmail},
		{"a @b.ru", "", ErrInvalidEmail},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEmail(tt.in)
			if err != tt.err {
				t.Fatalf("ParseEmail(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if err == nil && got.Value != tt.want {
				t.Fatalf("ParseEmail(%q) = %q, want %q", tt.in, got.Value, tt.want)
			}
		})
	}
}

func TestParseGuessesKind(t *testing.T) {
	if c, err := Parse("", "a@b.ru"); err != nil || c.Kind != Email {
		t.Fatalf("Parse guess email = %+v, %v", c, err)
	}
	if c, err := Parse("", "89105940899"); err != nil || c.Kind != Phone {
		t.Fatalf("Parse guess phone = %+v, %v", c, err)
	}
}

func TestFormatPhone(t *testing.T) {
	if got := FormatPhone("+79105940899"); got != "+7 (910) 594-08-99" {
		t.Fatalf("FormatPhone = %q", got)
	}
	if got := FormatPhone("+12025550100"); got != "+12025550100" {
		t.Fatalf("FormatPhone foreign = %q", got)
	}
}
