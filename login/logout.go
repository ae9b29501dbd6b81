package login

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/web"
)

func nowUnix() int64 { return time.Now().Unix() }

// showLogout asks the person to confirm a logout that a product started without an
// id_token_hint, so that a mere link cannot sign anyone out.
func (a *App) showLogout(c echo.Context) error {
	redirect, sig := c.QueryParam("post_logout_redirect_uri"), c.QueryParam("sig")
	if redirect != "" && !a.authz.VerifyLogoutRedirect(redirect, sig) {
		redirect, sig = "", ""
	}
	return a.render(c, http.StatusOK, "logout", web.LogoutData{
		Layout: web.Layout{Title: "Выход", CSRFToken: csrfToken(c)},
		Action: PathLogout, RedirectURI: redirect, Sig: sig,
	})
}

// submitLogout ends the browser's session (and tells its products), then goes to the
// product's registered post-logout page or to our own.
func (a *App) submitLogout(c echo.Context) error {
	if _, err := a.sessions.End(c.Request().Context(), c.Response(), c.Request()); err != nil {
		return a.internalError(c, "end session", err)
	}
	a.kickLogout()
	redirect, sig := c.FormValue("post_logout_redirect_uri"), c.FormValue("sig")
	if redirect != "" && a.authz.VerifyLogoutRedirect(redirect, sig) {
		return c.Redirect(http.StatusSeeOther, redirect)
	}
	return c.Redirect(http.StatusSeeOther, PathLoggedOut)
}

func (a *App) showLoggedOut(c echo.Context) error {
	return a.render(c, http.StatusOK, "error", web.ErrorData{
		Layout:  web.Layout{Title: "Вы вышли", CSRFToken: csrfToken(c)},
		Heading: "Вы вышли из Личного кабинета",
		Message: "Чтобы продолжить работу, войдите снова.",
		BackURL: PathLogin, BackText: "Войти",
	})
}
