package provider

import "testing"

func TestWithMembers(t *testing.T) {
	for _, tc := range []struct {
		name, obj string
		members   map[string]any
		want      string
		wantErr   bool
	}{
		{"no members, encoder's newline trimmed", "{\"iss\":\"x\"}\n", nil, `{"iss":"x"}`, false},
		{"into an empty object", "{}", map[string]any{"sid": "s1"}, `{"sid":"s1"}`, false},
		{"in key order, values marshalled", `{"iss":"x"}`, map[string]any{"snils": "123", "idp": "esia", "gosuslugi_trusted": true},
			`{"iss":"x","gosuslugi_trusted":true,"idp":"esia","snils":"123"}`, false},
		{"a key that needs escaping", `{"a":1}`, map[string]any{`q"k`: 1}, `{"a":1,"q\"k":1}`, false},
		{"not an object", `["a"]`, map[string]any{"sid": "s1"}, "", true},
		{"empty input", ``, map[string]any{"sid": "s1"}, "", true},
		{"a value JSON cannot hold", `{}`, map[string]any{"f": func() {}}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := withMembers([]byte(tc.obj), tc.members)
			if (err != nil) != tc.wantErr || string(got) != tc.want {
				t.Errorf("withMembers(%q, %v) = %q, %v; want %q (error %v)", tc.obj, tc.members, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestAppendable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		extra   map[string]any
		wantErr bool
	}{
		{"none", nil, false},
		{"the provider's own", map[string]any{"idp": "esia", "snils": "123-456-789 64", ClaimGosuslugiTrusted: true}, false},
		{"a registered claim", map[string]any{"idp": "esia", "sub": "someone else"}, true},
		{"a standard claim the struct writes", map[string]any{"email": "x@example.ru"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := appendable(tc.extra); (err != nil) != tc.wantErr {
				t.Errorf("appendable(%v) = %v, want error %v", tc.extra, err, tc.wantErr)
			}
		})
	}
}
