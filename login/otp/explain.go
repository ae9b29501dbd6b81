package otp

import (
	"errors"
	"net/http"
)

// Explain turns an outcome of this package into the sentence a page shows; ok is
// false for failures that are not the person's (a database error), which get the
// generic error page instead.
func Explain(err error) (sentence string, ok bool) {
	var p Problem
	var soon *TooSoon
	var wrong *WrongCode
	switch {
	case errors.As(err, &wrong):
		return wrong.Error(), true
	case errors.As(err, &soon):
		return soon.Error(), true
	case errors.Is(err, ErrNotDelivered):
		return ErrNotDelivered.Error(), true
	case errors.As(err, &p):
		return p.Error(), true
	}
	return "", false
}

// Status is the HTTP status of a refused code request: a limit is 429, a code that
// could not be delivered is our failure, not the person's (503).
func Status(err error) int {
	if errors.Is(err, ErrNotDelivered) {
		return http.StatusServiceUnavailable
	}
	return http.StatusTooManyRequests
}
