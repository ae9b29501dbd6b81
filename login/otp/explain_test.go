package otp

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestExplain(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		want   string
		ok     bool
		status int
	}{
		{"wrong code", &WrongCode{Left: 3}, "Неверный код. Осталось попыток: 3", true, http.StatusTooManyRequests},
		{"too soon", &TooSoon{Wait: 41e9}, "Новый код можно запросить через 41 с", true, http.StatusTooManyRequests},
		{"not delivered, wrapped", fmt.Errorf("%w: gateway down", ErrNotDelivered), string(ErrNotDelivered), true, http.StatusServiceUnavailable},
		{"a problem", ErrTooMany, string(ErrTooMany), true, http.StatusTooManyRequests},
		{"database failure", errors.New("disk full"), "", false, http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Explain(tt.err)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("Explain = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
			if s := Status(tt.err); s != tt.status {
				t.Fatalf("Status = %d, want %d", s, tt.status)
			}
		})
	}
}
