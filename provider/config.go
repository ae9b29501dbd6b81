package provider

import (
	"time"
)

// Lifetimes of what the provider issues.
type Lifetimes struct {
	AuthRequest   time.Duration // a person has this long to sign in
	Code          time.Duration // an authorization code
	CodeRetention time.Duration // a used code is remembered this long to detect reuse
	AccessToken   time.Duration
	IDToken       time.Duration
	RefreshIdle   time.Duration // a refresh token unused this long expires
	RefreshMax    time.Duration // a refresh family never outlives this
}

// DefaultLifetimes are conservative for products that hold people's tax reports.
var DefaultLifetimes = Lifetimes{
	AuthRequest:   30 * time.Minute,
	Code:          time.Minute,
	CodeRetention: 10 * time.Minute,
	AccessToken:   15 * time.Minute,
	IDToken:       time.Hour,
	RefreshIdle:   30 * 24 * time.Hour,
	RefreshMax:    90 * 24 * time.Hour,
}

// ACR is the authentication context class the provider asserts: a single factor
// sign-in of an account we hold (the value of OpenID's "phr"-less basic level).
const ACR = "0"
