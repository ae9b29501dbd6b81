package login

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/login/password"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// PathRegister is the registration page.
const PathRegister = "/register"

// Documents a person accepts by registering, with the versions in force; the versions
// are recorded with the account.
var registrationDocuments = []struct{ Name, Version string }{
	{"license-agreement", "2021-01"},
	{"personal-data-consent", "2021-01"},
}

func (a *App) registerForm(c echo.Context, req *provider.PendingRequest, f web.ContactFields, errText string, fieldErrors map[string]string, status int) error {
	f.SwitchURL = switchURL(PathRegister, req, f.Mode)
	return a.render(c, status, "register", web.RegisterData{
		Layout:        web.Layout{Title: "Регистрация", CSRFToken: csrfToken(c)},
		ContactFields: f,
		Action:        pageURL(PathRegister, req, nil),
		Error:         errText,
		FieldErrors:   fieldErrors,
		LoginURL:      pageURL(PathLogin, req, url.Values{"mode": {f.Mode}}),
		Upstreams:     a.registerButtons(requestID(req)),
	})
}

// showRegister is the registration form; ?flow= comes back from the code page with
// what the person typed.
func (a *App) showRegister(c echo.Context) error {
	ctx := c.Request().Context()
	req, ok, err := a.pending(c)
	if !ok {
		return err
	}
	f := web.ContactFields{Mode: modeOf(c)}
	if id := c.QueryParam("flow"); id != "" {
		if flow, err := a.codes.Flow(ctx, id); err == nil && flow.Purpose == otp.Register {
			state := decodeState(flow.Payload)
			f.Mode, f.Login = state.Mode, state.Login
			if req == nil {
				req = a.pendingOf(ctx, flow.AuthRequestID)
			}
		}
	}
	return a.registerForm(c, req, f, "", nil, http.StatusOK)
}

// submitRegister checks the form and sends the confirmation code. The account is
// created only when the code is confirmed.
func (a *App) submitRegister(c echo.Context) error {
	ctx := c.Request().Context()
	req, ok, err := a.pending(c)
	if !ok {
		return err
	}
	f, who, perr := ReadContact(c)
	fieldErrors := map[string]string{}
	if perr != nil {
		fieldErrors["login"] = perr.Error()
	}
	pw := c.FormValue("password")
	if err := password.Check(pw, who.Value, f.Login); err != nil {
		fieldErrors["password"] = err.Error()
	}
	if len(fieldErrors) > 0 {
		return a.registerForm(c, req, f, "", fieldErrors, http.StatusBadRequest)
	}
	hash, err := a.hasher.Hash(pw)
	if err != nil {
		return a.internalError(c, "hash password", err)
	}
	flow, err := a.codes.Start(ctx, otp.Request{
		Purpose: otp.Register, To: who, ClientName: clientName(req), ClientID: clientOf(req),
		AuthRequestID: requestID(req), IP: c.RealIP(),
		Payload: encodeState(flowState{Mode: f.Mode, Login: f.Login, PasswordHash: hash, ClientName: clientName(req)}),
	})
	if err != nil {
		msg, ok := otp.Explain(err)
		if !ok {
			return a.internalError(c, "start registration", err)
		}
		return a.registerForm(c, req, f, msg, nil, otp.Status(err))
	}
	return c.Redirect(http.StatusSeeOther, PathRegister+"/confirm?"+url.Values{"flow": {flow.ID}}.Encode())
}

func requestID(req *provider.PendingRequest) string {
	if req == nil {
		return ""
	}
	return req.ID
}

func confirmHeading(flow *storage.OneTimeCode) string {
	if flow.Channel == string(contact.Email) {
		return "Подтвердите email"
	}
	return "Подтвердите телефон"
}

func (a *App) showRegisterConfirm(c echo.Context) error {
	flow, err := a.codes.Flow(c.Request().Context(), c.QueryParam("flow"))
	if err != nil || flow.Purpose != otp.Register {
		if err == nil || errors.Is(err, otp.ErrExpired) {
			return a.expiredFlow(c, PathRegister)
		}
		return a.internalError(c, "load registration", err)
	}
	return a.confirmPage(c, flow, http.StatusOK, PathRegister, confirmHeading(flow), "Подтвердить", "", "")
}

// submitRegisterConfirm checks the code and creates the account. Only now, with the
// phone or email proven, does the person learn whether it already has an account, so
// the form cannot be used to probe who is registered.
func (a *App) submitRegisterConfirm(c echo.Context) error {
	ctx := c.Request().Context()
	flowID := c.FormValue("flow")
	pending, err := a.codes.Flow(ctx, flowID)
	if err != nil || pending.Purpose != otp.Register {
		if err == nil || errors.Is(err, otp.ErrExpired) {
			return a.expiredFlow(c, PathRegister)
		}
		return a.internalError(c, "load registration", err)
	}
	flow, err := a.codes.Verify(ctx, flowID, c.FormValue("code"))
	if err != nil {
		msg, ok := otp.Explain(err)
		if !ok {
			return a.internalError(c, "verify registration code", err)
		}
		return a.confirmPage(c, pending, http.StatusBadRequest, PathRegister, confirmHeading(pending), "Подтвердить", msg, "")
	}
	state := decodeState(flow.Payload)
	req := a.pendingOf(ctx, flow.AuthRequestID)
	u := &storage.User{PasswordHash: state.PasswordHash}
	dest := flow.Destination
	if flow.Channel == string(contact.Email) {
		u.Email, u.EmailVerified = &dest, true
	} else {
		u.Phone, u.PhoneVerified = &dest, true
	}
	now := a.accounts.Now()
	consents := make([]storage.Consent, 0, len(registrationDocuments))
	for _, d := range registrationDocuments {
		consents = append(consents, storage.Consent{Document: d.Name, Version: d.Version, AcceptedAt: now,
			IP: c.RealIP(), UserAgent: c.Request().UserAgent()})
	}
	err = a.accounts.CreateUserWithConsents(ctx, u, consents)
	if storage.IsConflict(err) {
		return a.accountExists(c, req, flow, state)
	}
	if err != nil {
		return a.internalError(c, "create account", err)
	}
	amr := []string{"otp", "sms"}
	heading := "Телефон подтвержден!"
	if flow.Channel == string(contact.Email) {
		amr, heading = []string{"otp", "email"}, "Email подтвержден!"
	}
	if _, err := a.sessions.Start(ctx, c.Response(), c.Request(), u.ID, session.Proof{AMR: amr, ACR: provider.ACR}); err != nil {
		return a.internalError(c, "start session", err)
	}
	a.metrics.SignIn("register", "success")
	a.record(c, &storage.AuditEvent{UserID: u.ID, Kind: "registered", Method: "otp", ClientID: flow.ClientID, Detail: amr[1]})
	next, text := PathAccount, "Перейти в Личный кабинет"
	if req != nil {
		// The session now satisfies the request: the sign-in page completes it at once.
		next, text = pageURL(PathLogin, req, nil), "Перейти в "+req.ClientName
	}
	return a.render(c, http.StatusOK, "notice", web.NoticeData{
		Layout:  web.Layout{Title: heading, CSRFToken: csrfToken(c), Refresh: "3;url=" + next},
		Heading: heading,
		Message: "Теперь Вы можете перейти в Личный кабинет",
		Success: true,
		Links:   []web.Link{{Text: text, URL: next, Primary: true}},
	})
}

// accountExists tells a person who proved the phone or email that it already has an
// account, and offers the ways in.
func (a *App) accountExists(c echo.Context, req *provider.PendingRequest, flow *storage.OneTimeCode, state flowState) error {
	what := "номер телефона"
	if flow.Channel == string(contact.Email) {
		what = "email"
	}
	q := url.Values{"mode": {state.Mode}}
	return a.render(c, http.StatusConflict, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Аккаунт уже существует", CSRFToken: csrfToken(c)},
		Heading: "Аккаунт уже существует",
		Message: "На этот " + what + " уже зарегистрирован аккаунт. Войдите в него или восстановите пароль.",
		Links: []web.Link{
			{Text: "Войти", URL: pageURL(PathLogin, req, q), Primary: true},
			{Text: "Забыли пароль?", URL: pageURL(PathReset, req, q)},
		},
	})
}

func (a *App) submitRegisterResend(c echo.Context) error {
	flow, err := a.codes.Flow(c.Request().Context(), c.FormValue("flow"))
	heading := "Подтвердите телефон"
	if err == nil {
		heading = confirmHeading(flow)
	}
	return a.resend(c, otp.Register, PathRegister, heading, "Подтвердить")
}
