package login

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/page"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// Part is a part of the login app with pages of its own (the cabinet, upstream
// sign-in). It mounts its routes on the CSRF-protected group and uses host for what
// the parts share.
type Part interface {
	Register(g *echo.Group, host Host)
}

// Host is what the login app offers its parts.
type Host interface {
	// Pages renders pages and error pages.
	Pages() *page.Pages
	// Sessions reads and starts browser sessions.
	Sessions() *session.Manager
	// PendingRequest loads a live authorization request, or nil.
	PendingRequest(ctx context.Context, id string) *provider.PendingRequest
	// FinishSignIn starts (or re-authenticates) the session of a person who proved who
	// they are, records it, and continues: to the product of authRequestID, or to next
	// (a path of ours) when there is no request, or to the cabinet.
	FinishSignIn(c echo.Context, u *storage.User, proof session.Proof, authRequestID, next string) error
	// Kick delivers queued back-channel logouts soon (after sessions were ended).
	Kick()
	// Record appends an audit event with the request's IP and browser. What it records
	// has happened already, so a lost row is logged, not shown.
	Record(c echo.Context, e *storage.AuditEvent)
	// SignInButtons and RegisterButtons are every part's buttons (login.Buttons), for
	// a part's page that offers the other ways in.
	SignInButtons(authRequestID string) []web.UpstreamLink
	RegisterButtons(authRequestID string) []web.UpstreamLink
}

// Buttons is a capability of a Part, found by type assertion: the ways in it adds
// below the password form. The sign-in page shows them under "или авторизуйтесь
// через", the registration page under "или зарегистрируйтесь через"; a part returns
// none for a page it has nothing to offer on.
type Buttons interface {
	SignInButtons(authRequestID string) []web.UpstreamLink
	RegisterButtons(authRequestID string) []web.UpstreamLink
}

// SignInButtons implements Host.
func (a *App) SignInButtons(authRequestID string) []web.UpstreamLink {
	return a.signInButtons(authRequestID)
}

// RegisterButtons implements Host.
func (a *App) RegisterButtons(authRequestID string) []web.UpstreamLink {
	return a.registerButtons(authRequestID)
}

// signInButtons gathers the parts' sign-in buttons, in the parts' order.
func (a *App) signInButtons(authRequestID string) []web.UpstreamLink {
	var out []web.UpstreamLink
	for _, p := range a.parts {
		if b, ok := p.(Buttons); ok {
			out = append(out, b.SignInButtons(authRequestID)...)
		}
	}
	return out
}

// registerButtons gathers the parts' registration buttons, in the parts' order.
func (a *App) registerButtons(authRequestID string) []web.UpstreamLink {
	var out []web.UpstreamLink
	for _, p := range a.parts {
		if b, ok := p.(Buttons); ok {
			out = append(out, b.RegisterButtons(authRequestID)...)
		}
	}
	return out
}

var _ Host = (*App)(nil)

// Pages implements Host.
func (a *App) Pages() *page.Pages { return a.view }

// Sessions implements Host.
func (a *App) Sessions() *session.Manager { return a.sessions }

// PendingRequest implements Host.
func (a *App) PendingRequest(ctx context.Context, id string) *provider.PendingRequest {
	return a.pendingOf(ctx, id)
}

// Record implements Host.
func (a *App) Record(c echo.Context, e *storage.AuditEvent) { a.record(c, e) }

// Kick implements Host.
func (a *App) Kick() { a.kickLogout() }

// FinishSignIn implements Host.
func (a *App) FinishSignIn(c echo.Context, u *storage.User, proof session.Proof, authRequestID, next string) error {
	ctx := c.Request().Context()
	if u.Blocked {
		return a.errorPage(c, http.StatusForbidden, "Учетная запись заблокирована", "Обратитесь в службу поддержки.", "")
	}
	sess, err := a.sessions.Start(ctx, c.Response(), c.Request(), u.ID, proof)
	if err != nil {
		return a.internalError(c, "start session", err)
	}
	method := "fed"
	if len(proof.AMR) > 0 {
		method = proof.AMR[0]
	}
	req := a.pendingOf(ctx, authRequestID)
	a.metrics.SignIn(method, "success")
	a.record(c, &storage.AuditEvent{UserID: u.ID, Kind: "signin", Method: method, ClientID: clientOf(req), Detail: proof.IDP})
	if req != nil {
		return a.complete(c, req, sess)
	}
	if next == "" || next[0] != '/' || (len(next) > 1 && (next[1] == '/' || next[1] == '\\')) {
		next = PathAccount // only our own paths: never an open redirect
	}
	return c.Redirect(http.StatusSeeOther, next)
}
