// Package binding ties a short-lived flow — an upstream sign-in, a certificate
// challenge, a pending link — to the browser that started it. The browser holds a
// random value in an HttpOnly cookie; the flow's row keeps only its hash
// (storage.HashSecret), so a flow id that leaks (a link forwarded, a URL in a log) is
// useless in another browser.
package binding

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/storage"
)

// Cookie is the binding cookie of one part of the login app.
type Cookie struct {
	Name   string
	Secure bool          // https: the cookie is Secure
	TTL    time.Duration // how long the cookie lives: as long as the flows it binds
}

// Bind returns the browser's binding value, setting the cookie — anew, or again to
// renew it. A valid value the browser has is kept, so flows started in two tabs
// both keep working.
func (b Cookie) Bind(c echo.Context) string {
	v := ""
	if ck, err := c.Cookie(b.Name); err == nil && valid(ck.Value) {
		v = ck.Value
	} else {
		v = storage.NewSecret()
	}
	c.SetCookie(&http.Cookie{Name: b.Name, Value: v, Path: "/", HttpOnly: true, Secure: b.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(b.TTL / time.Second)})
	return v
}

// Bound reports whether the request carries the binding value whose hash is want.
func (b Cookie) Bound(c echo.Context, want string) bool {
	ck, err := c.Cookie(b.Name)
	if err != nil || !valid(ck.Value) || want == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(storage.HashSecret(ck.Value)), []byte(want)) == 1
}

// valid accepts only what Bind makes (storage.NewSecret: 32 random bytes, base64url),
// so a cookie set by anything else never binds.
func valid(v string) bool {
	if len(v) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil
}
