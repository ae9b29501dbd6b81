package login

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/password"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// pending loads the authorization request named by the page's authRequestID, or nil
// when the person came without one. ok is false when the page has already answered.
func (a *App) pending(c echo.Context) (req *provider.PendingRequest, ok bool, err error) {
	id := c.QueryParam("authRequestID")
	if id == "" {
		return nil, true, nil
	}
	if len(id) > 64 {
		return nil, false, a.staleRequest(c)
	}
	req, err = a.authz.PendingRequest(c.Request().Context(), id)
	if errors.Is(err, provider.ErrRequestNotFound) || (err == nil && req.Done) {
		return nil, false, a.staleRequest(c)
	}
	if err != nil {
		return nil, false, a.internalError(c, "load auth request", err)
	}
	return req, true, nil
}

func (a *App) staleRequest(c echo.Context) error {
	return a.errorPage(c, http.StatusBadRequest, "Ссылка для входа устарела",
		"Вернитесь в приложение и начните вход заново.", PathAccount)
}

// satisfies reports whether a live session may answer req without a form.
func satisfies(req *provider.PendingRequest, sess *storage.Session, now func() int64) bool {
	if slices.Contains(req.Prompt, oidc.PromptLogin) || slices.Contains(req.Prompt, oidc.PromptSelectAccount) {
		return false
	}
	if req.HintSubject != "" && req.HintSubject != sess.UserID {
		return false
	}
	// OIDC Core §3.1.2.1: max_age=0 is prompt=login. Whole seconds would let a
	// sign-in of this very second pass it.
	if req.MaxAge != nil && (*req.MaxAge <= 0 || now()-sess.AuthTime.Unix() > int64(req.MaxAge.Seconds())) {
		return false
	}
	return true
}

func (a *App) showLogin(c echo.Context) error {
	ctx := c.Request().Context()
	req, ok, err := a.pending(c)
	if !ok {
		return err
	}
	sess, _, err := a.sessions.Current(ctx, c.Request())
	if err != nil {
		return a.internalError(c, "load session", err)
	}
	// A pending upstream link asks for a sign-in even in a live session.
	link, linkTitle := a.readLink(c, c.QueryParam("link"))
	if req == nil {
		if sess != nil && link == "" {
			return c.Redirect(http.StatusFound, PathAccount)
		}
		return a.loginForm(c, nil, loginInput{Link: link, LinkTitle: linkTitle}, http.StatusOK)
	}
	if sess != nil && link == "" && satisfies(req, sess, func() int64 { return nowUnix() }) {
		a.metrics.SignIn("sso", "success")
		return a.complete(c, req, sess)
	}
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		a.authz.Fail(c.Response(), c.Request(), req.ID, oidc.ErrLoginRequired().WithDescription("no session satisfies the request"))
		return nil
	}
	in := loginInput{Mode: c.QueryParam("mode"), Link: link, LinkTitle: linkTitle}
	if req.LoginHint != "" && len(req.LoginHint) <= 320 {
		in.Login = req.LoginHint
		if in.Mode == "" && strings.Contains(req.LoginHint, "@") {
			in.Mode = "email"
		}
	}
	return a.loginForm(c, req, in, http.StatusOK)
}

// loginInput is what the form shows back.
type loginInput struct {
	Mode        string
	Login       string
	Error       string
	FieldErrors map[string]string
	Link        string // a pending upstream link (login/upstream), and what it links
	LinkTitle   string
}

func (a *App) loginForm(c echo.Context, req *provider.PendingRequest, in loginInput, status int) error {
	mode := "phone"
	if in.Mode == "email" {
		mode = "email"
	}
	other := "email"
	if mode == "email" {
		other = "phone"
	}
	q := url.Values{}
	if req != nil {
		q.Set("authRequestID", req.ID)
	}
	action := PathLogin
	if len(q) > 0 {
		action += "?" + q.Encode()
	}
	q.Set("mode", other)
	keep := url.Values{"mode": {mode}}
	if in.Link != "" {
		q.Set("link", in.Link)
	}
	data := web.LoginData{
		RegisterURL: pageURL(PathRegister, req, keep),
		CodeURL:     withLink(pageURL(PathCode, req, keep), in.Link),
		ForgotURL:   pageURL(PathReset, req, keep),
		Layout:      web.Layout{Title: "Вход в Личный кабинет", CSRFToken: csrfToken(c)},
		Action:      action,
		Mode:        mode,
		SwitchURL:   PathLogin + "?" + q.Encode(),
		Login:       in.Login,
		Error:       in.Error,
		FieldErrors: in.FieldErrors,
		Link:        in.Link,
		LinkTitle:   in.LinkTitle,
	}
	if req != nil {
		data.ClientName = req.ClientName
		data.Title = "Вход в " + req.ClientName
	}
	data.Upstreams = a.signInButtons(requestID(req))
	return a.render(c, status, "login", data)
}

func (a *App) submitLogin(c echo.Context) error {
	ctx := c.Request().Context()
	req, ok, err := a.pending(c)
	if !ok {
		return err
	}
	in := loginInput{Mode: c.FormValue("mode"), Login: c.FormValue("login"), FieldErrors: map[string]string{}}
	in.Link, in.LinkTitle = a.readLink(c, c.FormValue("link"))
	if in.Mode != "email" {
		in.Mode = "phone"
	}
	pw := c.FormValue("password")
	who, perr := contact.Parse(contact.Kind(in.Mode), in.Login)
	if perr != nil {
		in.FieldErrors["login"] = perr.Error()
	}
	if pw == "" {
		in.FieldErrors["password"] = "Введите пароль"
	}
	if len(in.FieldErrors) > 0 {
		return a.loginForm(c, req, in, http.StatusBadRequest)
	}
	user, err := a.passwords.Authenticate(ctx, who, pw, c.RealIP())
	var problem password.Problem
	if errors.As(err, &problem) {
		a.metrics.SignIn("pwd", resultOf(problem))
		a.recordFailure(c, req, who, problem)
		in.Error = problem.Error()
		status := http.StatusUnauthorized
		if problem == password.ErrTooManyAttempts {
			status = http.StatusTooManyRequests
		}
		return a.loginForm(c, req, in, status)
	}
	if err != nil {
		a.metrics.SignIn("pwd", "error")
		return a.internalError(c, "authenticate password", err)
	}
	sess, err := a.sessions.Start(ctx, c.Response(), c.Request(), user.ID, session.Proof{AMR: []string{"pwd"}, ACR: provider.ACR})
	if err != nil {
		return a.internalError(c, "start session", err)
	}
	a.metrics.SignIn("pwd", "success")
	a.record(c, &storage.AuditEvent{UserID: user.ID, Kind: "signin", Method: "pwd", ClientID: clientOf(req), Detail: "ok"})
	a.linkAfterSignIn(c, in.Link, user)
	if req == nil {
		return c.Redirect(http.StatusSeeOther, PathAccount)
	}
	return a.complete(c, req, sess)
}

func resultOf(p password.Problem) string {
	switch p {
	case password.ErrTooManyAttempts:
		return "rate_limited"
	case password.ErrBlocked:
		return "blocked"
	}
	return "invalid"
}

func clientOf(req *provider.PendingRequest) string {
	if req == nil {
		return ""
	}
	return req.ClientID
}

// recordFailure notes a failed attempt on the account it names, if that account
// exists; the person sees nothing of this.
func (a *App) recordFailure(c echo.Context, req *provider.PendingRequest, who contact.Contact, p password.Problem) {
	a.record(c, &storage.AuditEvent{UserID: a.accountOf(c, who), Kind: "signin_failed", Method: "pwd", ClientID: clientOf(req),
		Detail: resultOf(p) + " " + maskContact(who)})
}

// accountOf is the id of the account with the phone or email who, or "" (the
// attempt then belongs to no account's history).
func (a *App) accountOf(c echo.Context, who contact.Contact) string {
	var u *storage.User
	var err error
	if who.Kind == contact.Email {
		u, err = a.accounts.UserByEmail(c.Request().Context(), who.Value)
	} else {
		u, err = a.accounts.UserByPhone(c.Request().Context(), who.Value)
	}
	if err != nil {
		if !storage.IsNotFound(err) {
			c.Logger().Error(err)
		}
		return ""
	}
	return u.ID
}

// maskContact keeps enough of a contact to recognise it in a log, not to reuse it.
func maskContact(who contact.Contact) string {
	v := who.Value
	if len(v) <= 4 {
		return "***"
	}
	return v[:2] + "***" + v[len(v)-2:]
}

func (a *App) record(c echo.Context, e *storage.AuditEvent) {
	e.IP = c.RealIP()
	e.UserAgent = c.Request().UserAgent()
	if err := a.events.RecordEvent(c.Request().Context(), e); err != nil {
		slog.ErrorContext(c.Request().Context(), "record audit event", "kind", e.Kind, "user", e.UserID, "err", err)
	}
}

// complete answers the authorization request with the session's sign-in and sends the
// browser to the provider's callback.
func (a *App) complete(c echo.Context, req *provider.PendingRequest, sess *storage.Session) error {
	ctx := c.Request().Context()
	err := a.authz.Complete(ctx, req.ID, storage.Authentication{
		UserID: sess.UserID, SessionID: sess.ID, AuthTime: sess.AuthTime, AMR: sess.AMR, ACR: sess.ACR, IDP: sess.IDP,
	})
	if errors.Is(err, provider.ErrRequestNotFound) {
		return a.staleRequest(c)
	}
	if err != nil {
		return a.internalError(c, "complete auth request", err)
	}
	return c.Redirect(http.StatusSeeOther, a.authz.CallbackURL(ctx, req.ID))
}
