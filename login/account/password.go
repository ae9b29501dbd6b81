package account

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/password"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

// The sentences of the password page.
const (
	msgEnterCurrent = "Введите текущий пароль"
	msgSameAsOld    = "Новый пароль совпадает с текущим. Придумайте другой"
)

func (p *Part) showPassword(c echo.Context, v *visit) error {
	return p.passwordPage(c, v, http.StatusOK, nil)
}

func (p *Part) passwordPage(c echo.Context, v *visit, status int, fieldErrors map[string]string) error {
	return p.render(c, status, "account-password", web.PasswordData{
		Cabinet:     p.cabinet(c, v, PathPassword, ""),
		HasPassword: v.user.PasswordHash != "",
		Action:      PathPassword,
		FieldErrors: fieldErrors,
	})
}

// logins are the account's phone and email: a new password must be neither.
func logins(u *storage.User) []string {
	var out []string
	if u.Phone != nil {
		out = append(out, *u.Phone)
	}
	if u.Email != nil {
		out = append(out, *u.Email)
	}
	return out
}

// submitPassword changes the password (the current one is proof enough of who is
// asking) or sets a first one (a sensitive change: it needs a recent sign-in).
func (p *Part) submitPassword(c echo.Context, v *visit) error {
	u := v.user
	has := u.PasswordHash != ""
	cur, next := c.FormValue("current_password"), c.FormValue("new_password")
	errs := map[string]string{}
	if has && cur == "" {
		errs["current_password"] = msgEnterCurrent
	}
	if err := password.Check(next, logins(u)...); err != nil {
		errs["new_password"] = err.Error()
	}
	if len(errs) > 0 {
		return p.passwordPage(c, v, http.StatusBadRequest, errs)
	}
	if has {
		status, problem, err := p.checkPassword(c, v, cur, msgEnterCurrent, "password_change_failed")
		if err != nil {
			return p.internal(c, "check password", err)
		}
		if problem != "" {
			return p.passwordPage(c, v, status, map[string]string{"current_password": problem})
		}
		if next == cur {
			return p.passwordPage(c, v, http.StatusBadRequest, map[string]string{"new_password": msgSameAsOld})
		}
	}
	hash, err := p.hasher.Hash(next)
	if err != nil {
		return p.internal(c, "hash password", err)
	}
	if has {
		return p.setPassword(c, v, hash, true)
	}
	return p.sensitive(c, v, change{Action: actionPassword, Hash: hash})
}

// setPassword puts the new hash on the account and ends every other session, with
// every token not issued to this browser's session; the products of the ended
// sessions hear of it on the back channel. proven is true when the current password
// was just checked: the session is re-authenticated with it.
func (p *Part) setPassword(c echo.Context, v *visit, hash string, proven bool) error {
	ctx := c.Request().Context()
	if hash == "" {
		return c.Redirect(http.StatusSeeOther, PathPassword)
	}
	had := v.user.PasswordHash != ""
	if _, err := p.store.UpdateUser(ctx, v.user.ID, func(u *storage.User) error {
		u.PasswordHash = hash
		return nil
	}); err != nil {
		return p.internal(c, "set password", err)
	}
	if _, err := p.store.EndOtherSessions(ctx, v.user.ID, v.sess.ID); err != nil {
		return p.internal(c, "end other sessions", err)
	}
	p.host.Kick()
	kind, key := "password_set", "set"
	if had {
		kind, key = "password_changed", "password"
	}
	p.record(c, &storage.AuditEvent{UserID: v.user.ID, Kind: kind, Method: "pwd"})
	if proven {
		if err := p.reauthenticate(c, v, []string{"pwd"}); err != nil {
			return p.internal(c, "re-authenticate session", err)
		}
	}
	return done(c, PathPassword, key)
}

// checkPassword checks the account's current password, within the limits; problem is
// the sentence for the field (empty: right), with its status. A wrong one is recorded
// as failKind.
func (p *Part) checkPassword(c echo.Context, v *visit, pw, emptyMsg, failKind string) (status int, problem string, err error) {
	ctx := c.Request().Context()
	if pw == "" {
		return http.StatusBadRequest, emptyMsg, nil
	}
	key := "account:pwd:" + v.user.ID
	n, err := p.store.Count(ctx, key, p.limits.Window)
	if err != nil {
		return 0, "", err
	}
	if n >= p.limits.PasswordFailures {
		return http.StatusTooManyRequests, msgTooManyTries, nil
	}
	ok := false
	if len(pw) <= password.MaxLength {
		if ok, err = p.hasher.Verify(pw, v.user.PasswordHash); err != nil {
			return 0, "", err
		}
	}
	if !ok {
		if _, err := p.store.Hit(ctx, key, p.limits.Window); err != nil {
			return 0, "", err
		}
		p.record(c, &storage.AuditEvent{UserID: v.user.ID, Kind: failKind, Method: "pwd", Detail: "invalid"})
		return http.StatusUnauthorized, msgWrongPassword, nil
	}
	if err := p.store.ResetLimit(ctx, key, p.limits.Window); err != nil {
		return 0, "", err
	}
	return 0, "", nil
}
