package login

import (
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/password"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

// resetGrant is the purpose of the permission to set a new password that a verified
// reset code gives; it lives ten minutes and is used once.
const resetGrant = "reset-grant"

// beginNewPassword turns a verified reset code into a one-time permission and asks
// for the new password. The permission travels in a hidden form field, never in a URL.
func (a *App) beginNewPassword(c echo.Context, u *storage.User, flow *storage.OneTimeCode) error {
	now := a.accounts.Now()
	grant := &storage.OneTimeCode{
		Purpose: resetGrant, Channel: flow.Channel, Destination: flow.Destination, UserID: u.ID,
		ClientID: flow.ClientID, AuthRequestID: flow.AuthRequestID, Payload: flow.Payload,
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute),
	}
	if err := a.accounts.CreateCode(c.Request().Context(), grant); err != nil {
		return a.internalError(c, "create reset permission", err)
	}
	return a.newPasswordForm(c, grant.ID, "", nil, http.StatusOK)
}

func (a *App) newPasswordForm(c echo.Context, grant, errText string, fieldErrors map[string]string, status int) error {
	return a.render(c, status, "newpassword", web.NewPasswordData{
		Layout: web.Layout{Title: "Новый пароль", CSRFToken: csrfToken(c)},
		Action: PathReset + "/password", Grant: grant, Error: errText, FieldErrors: fieldErrors,
	})
}

// submitNewPassword sets the new password and ends every session and refresh token of
// the account: whoever knew the old password is out.
func (a *App) submitNewPassword(c echo.Context) error {
	ctx := c.Request().Context()
	grantID := c.FormValue("grant")
	if grantID == "" || len(grantID) > 64 {
		return a.expiredFlow(c, PathReset)
	}
	pw := c.FormValue("password")
	u, err := a.grantUser(c, grantID)
	if err != nil {
		return err
	}
	if u == nil {
		return a.expiredFlow(c, PathReset)
	}
	contacts := []string{}
	if u.Phone != nil {
		contacts = append(contacts, *u.Phone)
	}
	if u.Email != nil {
		contacts = append(contacts, *u.Email)
	}
	if err := password.Check(pw, contacts...); err != nil {
		return a.newPasswordForm(c, grantID, "", map[string]string{"password": err.Error()}, http.StatusBadRequest)
	}
	hash, err := a.hasher.Hash(pw)
	if err != nil {
		return a.internalError(c, "hash password", err)
	}
	grant, err := a.accounts.ConsumeCode(ctx, grantID, resetGrant)
	if storage.IsNotFound(err) {
		return a.expiredFlow(c, PathReset)
	}
	if err != nil {
		return a.internalError(c, "use reset permission", err)
	}
	if _, err := a.accounts.UpdateUser(ctx, grant.UserID, func(x *storage.User) error {
		x.PasswordHash = hash
		return nil
	}); err != nil {
		return a.internalError(c, "set password", err)
	}
	if _, err := a.accounts.EndUserSessions(ctx, grant.UserID, ""); err != nil {
		return a.internalError(c, "end sessions after reset", err)
	}
	if err := a.accounts.RevokeUserTokens(ctx, grant.UserID); err != nil {
		return a.internalError(c, "revoke tokens after reset", err)
	}
	a.kickLogout()
	a.record(c, &storage.AuditEvent{UserID: grant.UserID, Kind: "password_reset", Method: "otp", ClientID: grant.ClientID})
	state := decodeState(grant.Payload)
	req := a.pendingOf(ctx, grant.AuthRequestID)
	return a.render(c, http.StatusOK, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Пароль изменен", CSRFToken: csrfToken(c)},
		Heading: "Пароль изменен",
		Message: "Все сеансы входа завершены. Войдите с новым паролем.",
		Success: true,
		Links:   []web.Link{{Text: "Войти", URL: pageURL(PathLogin, req, url.Values{"mode": {state.Mode}}), Primary: true}},
	})
}

// grantUser loads the account of a live reset permission, or nil.
func (a *App) grantUser(c echo.Context, grantID string) (*storage.User, error) {
	ctx := c.Request().Context()
	flow, err := a.codes.Flow(ctx, grantID)
	if err != nil || flow.Purpose != resetGrant || flow.UserID == "" {
		return nil, nil
	}
	u, err := a.accounts.UserByID(ctx, flow.UserID)
	if storage.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, a.internalError(c, "load account", err)
	}
	return u, nil
}
