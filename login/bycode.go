package login

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// Paths of sign-in by code ("У меня есть код") and password reset ("Забыли пароль?").
const (
	PathCode  = "/login/code"
	PathReset = "/reset"
)

// codeFlow describes one of the two "send me a code" flows, which differ only in words
// and in what the verified code leads to.
type codeFlow struct {
	base, purpose               string
	title, lead, confirmHeading string
	confirmButton               string
}

var (
	signInByCode = codeFlow{
		base: PathCode, purpose: otp.SignIn,
		title:          "Вход по коду",
		lead:           "Отправим одноразовый код на телефон или email вашего аккаунта.",
		confirmHeading: "Введите код", confirmButton: "Войти",
	}
	passwordReset = codeFlow{
		base: PathReset, purpose: otp.Reset,
		title:          "Восстановление пароля",
		lead:           "Отправим код на телефон или email вашего аккаунта, после чего Вы зададите новый пароль.",
		confirmHeading: "Введите код", confirmButton: "Продолжить",
	}
)

func (a *App) contactForm(c echo.Context, cf codeFlow, req *provider.PendingRequest, f web.ContactFields, errText string, fieldErrors map[string]string, status int) error {
	link := linkOf(c, cf)
	f.SwitchURL = withLink(switchURL(cf.base, req, f.Mode), link)
	return a.render(c, status, "contact", web.ContactData{
		Layout:        web.Layout{Title: cf.title, CSRFToken: csrfToken(c)},
		ContactFields: f,
		Heading:       cf.title,
		Lead:          cf.lead,
		Action:        withLink(pageURL(cf.base, req, nil), link),
		Button:        "Получить код",
		Error:         errText,
		FieldErrors:   fieldErrors,
		BackURL:       withLink(pageURL(PathLogin, req, url.Values{"mode": {f.Mode}}), link),
		BackText:      "Войти с паролем",
	})
}

// linkOf is the pending upstream link that sign-in by code carries (login/upstream):
// checked when the sign-in succeeds.
func linkOf(c echo.Context, cf codeFlow) string {
	if l := c.QueryParam("link"); cf.purpose == otp.SignIn && len(l) <= 64 {
		return l
	}
	return ""
}

func (a *App) showContactForm(cf codeFlow) echo.HandlerFunc {
	return func(c echo.Context) error {
		req, ok, err := a.pending(c)
		if !ok {
			return err
		}
		f := web.ContactFields{Mode: modeOf(c), Login: c.QueryParam("login")}
		return a.contactForm(c, cf, req, f, "", nil, http.StatusOK)
	}
}

// submitContactForm sends a code to an existing account's phone or email. For a
// contact without an account (or a blocked one) the same page follows, but nothing is
// sent: the form must not tell who has an account.
func (a *App) submitContactForm(cf codeFlow) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		req, ok, err := a.pending(c)
		if !ok {
			return err
		}
		f, who, perr := ReadContact(c)
		if perr != nil {
			return a.contactForm(c, cf, req, f, "", map[string]string{"login": perr.Error()}, http.StatusBadRequest)
		}
		var u *storage.User
		if who.Kind == contact.Email {
			u, err = a.accounts.UserByEmail(ctx, who.Value)
		} else {
			u, err = a.accounts.UserByPhone(ctx, who.Value)
		}
		if err != nil && !storage.IsNotFound(err) {
			return a.internalError(c, "find account", err)
		}
		silent := err != nil || u.Blocked
		userID := ""
		if !silent {
			userID = u.ID
		}
		flow, err := a.codes.Start(ctx, otp.Request{
			Purpose: cf.purpose, To: who, ClientName: clientName(req), ClientID: clientOf(req),
			AuthRequestID: requestID(req), UserID: userID, IP: c.RealIP(), Silent: silent,
			Payload: encodeState(flowState{Mode: f.Mode, Login: f.Login, Silent: silent, ClientName: clientName(req), Link: linkOf(c, cf)}),
		})
		if err != nil {
			msg, ok := otp.Explain(err)
			if !ok {
				return a.internalError(c, "start code flow", err)
			}
			return a.contactForm(c, cf, req, f, msg, nil, otp.Status(err))
		}
		return c.Redirect(http.StatusSeeOther, cf.base+"/confirm?"+url.Values{"flow": {flow.ID}}.Encode())
	}
}

func (a *App) showCodeConfirm(cf codeFlow) echo.HandlerFunc {
	return func(c echo.Context) error {
		flow, err := a.codes.Flow(c.Request().Context(), c.QueryParam("flow"))
		if err != nil || flow.Purpose != cf.purpose {
			if err == nil || errors.Is(err, otp.ErrExpired) {
				return a.expiredFlow(c, cf.base)
			}
			return a.internalError(c, "load code flow", err)
		}
		return a.confirmPage(c, flow, http.StatusOK, cf.base, cf.confirmHeading, cf.confirmButton, "", "")
	}
}

func (a *App) submitCodeResend(cf codeFlow) echo.HandlerFunc {
	return func(c echo.Context) error {
		return a.resend(c, cf.purpose, cf.base, cf.confirmHeading, cf.confirmButton)
	}
}

// submitCodeConfirm checks the code; then sign-in by code signs the person in, and a
// reset asks for the new password.
func (a *App) submitCodeConfirm(cf codeFlow) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		flowID := c.FormValue("flow")
		pending, err := a.codes.Flow(ctx, flowID)
		if err != nil || pending.Purpose != cf.purpose {
			if err == nil || errors.Is(err, otp.ErrExpired) {
				return a.expiredFlow(c, cf.base)
			}
			return a.internalError(c, "load code flow", err)
		}
		flow, err := a.codes.Verify(ctx, flowID, c.FormValue("code"))
		if err != nil {
			msg, ok := otp.Explain(err)
			if !ok {
				return a.internalError(c, "verify code", err)
			}
			if cf.purpose == otp.SignIn {
				a.metrics.SignIn("otp", "invalid")
			}
			return a.confirmPage(c, pending, http.StatusBadRequest, cf.base, cf.confirmHeading, cf.confirmButton, msg, "")
		}
		if flow.UserID == "" {
			// A silent flow's code cannot match; reaching here would be a bug.
			return a.expiredFlow(c, cf.base)
		}
		u, err := a.accounts.UserByID(ctx, flow.UserID)
		if err != nil {
			return a.internalError(c, "load account", err)
		}
		if u.Blocked {
			return a.errorPage(c, http.StatusForbidden, "Учетная запись заблокирована",
				"Обратитесь в службу поддержки.", "")
		}
		if err := a.markVerified(c, u, flow); err != nil {
			return a.internalError(c, "mark contact verified", err)
		}
		if cf.purpose == otp.SignIn {
			return a.signInWithCode(c, u, flow)
		}
		return a.beginNewPassword(c, u, flow)
	}
}

// markVerified records that the person proved the phone or email a code went to.
func (a *App) markVerified(c echo.Context, u *storage.User, flow *storage.OneTimeCode) error {
	if flow.Channel == string(contact.Email) && u.EmailVerified || flow.Channel == string(contact.Phone) && u.PhoneVerified {
		return nil
	}
	_, err := a.accounts.UpdateUser(c.Request().Context(), u.ID, func(x *storage.User) error {
		if flow.Channel == string(contact.Email) && x.Email != nil && *x.Email == flow.Destination {
			x.EmailVerified = true
		}
		if flow.Channel == string(contact.Phone) && x.Phone != nil && *x.Phone == flow.Destination {
			x.PhoneVerified = true
		}
		return nil
	})
	return err
}
