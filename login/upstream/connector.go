package upstream

import (
	"context"
	"errors"
	"net/http"
)

// Connector is one upstream identity provider.
type Connector interface {
	// ID names the connector in URLs, in linked identities and in the idp claim of
	// the tokens of a sign-in through it: "telegram".
	ID() string
	// Title is the button's text and the name in the pages: "Telegram".
	Title() string
	// LoginURL is where the browser goes to sign in upstream, carrying s.
	LoginURL(s Start) (string, error)
	// HandleCallback verifies the upstream's answer at s.RedirectURI and returns the
	// identity it vouches for. An upstream that cannot be reached is ErrUnavailable;
	// any other error is an answer we refuse.
	HandleCallback(ctx context.Context, s Start, r *http.Request) (Identity, error)
}

// Start is one attempt to sign in upstream, as remembered between start and callback.
type Start struct {
	State       string // the OAuth state: the attempt's single-use row
	Nonce       string // the OpenID Connect nonce the ID token must carry
	Verifier    string // the PKCE code verifier (S256)
	RedirectURI string // our callback: {issuer}/upstream/{id}/callback
}

// Identity is an upstream identity a connector has verified.
type Identity struct {
	Connector   string // the connector's ID
	Subject     string // stable id of the person at the upstream
	DisplayName string // a name to show: "Иван Петров", "@ivan"
	Email       string // as the upstream says, may be empty
	Phone       string // as the upstream says (+7…), may be empty
	Claims      map[string]any
}

// ErrUnavailable means the upstream could not be reached or answered with a failure
// of its own (discovery, token endpoint, keys): not the person's fault, try later.
var ErrUnavailable = errors.New("upstream unavailable")
