// Package page renders the login app's pages for every part of it (sign-in,
// registration, the cabinet, upstream sign-in): the page itself, its CSRF token, and
// the Russian error pages. It has no routes of its own.
package page

import (
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/web"
)

// CSRFContextKey is where echo's CSRF middleware leaves the token.
const CSRFContextKey = "csrf"

// CSRF returns the request's CSRF token for the page's forms.
func CSRF(c echo.Context) string {
	t, _ := c.Get(CSRFContextKey).(string)
	return t
}

// Pages renders pages.
type Pages struct{ r *web.Renderer }

// New wraps the renderer.
func New(r *web.Renderer) *Pages { return &Pages{r: r} }

// Render writes page name with status; a template failure is logged and the answer
// stays the status alone.
func (p *Pages) Render(c echo.Context, status int, name string, data any) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	if err := p.r.Render(c.Response(), name, data); err != nil {
		slog.ErrorContext(c.Request().Context(), "render page", "page", name, "err", err)
	}
	return nil
}

// Error shows a Russian error page with an optional link back.
func (p *Pages) Error(c echo.Context, status int, heading, message, back string) error {
	data := web.ErrorData{
		Layout:  web.Layout{Title: heading, CSRFToken: CSRF(c)},
		Heading: heading, Message: message,
	}
	if back != "" {
		data.BackURL, data.BackText = back, "Вернуться"
	}
	return p.Render(c, status, "error", data)
}

// Internal logs err and shows the generic page; no detail reaches the person.
func (p *Pages) Internal(c echo.Context, what string, err error) error {
	slog.ErrorContext(c.Request().Context(), what, "err", err)
	return p.Error(c, http.StatusInternalServerError, "Что-то пошло не так",
		"Не удалось выполнить действие. Попробуйте еще раз через минуту.", "")
}
