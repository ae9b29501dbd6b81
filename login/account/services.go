package account

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

func (p *Part) showServices(c echo.Context, v *visit) error {
	used, err := p.store.UserClients(c.Request().Context(), v.user.ID)
	if err != nil {
		return p.internal(c, "list products of the account", err)
	}
	data := web.ServicesData{
		Cabinet: p.cabinet(c, v, PathServices,
			"Сервисы Астрал, в которые Вы входили с этим аккаунтом. Отзыв доступа завершает работу сервиса с аккаунтом: чтобы продолжить, войдите в него снова."),
		RevokeAction: pathRevoke,
	}
	for _, u := range used {
		data.Services = append(data.Services, web.ServiceItem{
			ID: u.Client.ID, Name: nameOf(map[string]string{u.Client.ID: u.Client.Name}, u.Client.ID),
			HomeURL: webURL(u.Client.HomeURL), LastUsed: p.formatTime(u.LastUsed), Active: u.Active,
		})
	}
	return p.render(c, http.StatusOK, "account-services", data)
}

// webURL keeps an http(s) address for a link, or nothing.
func webURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return raw
}

// submitRevoke revokes every token a product holds for the account.
func (p *Part) submitRevoke(c echo.Context, v *visit) error {
	ctx := c.Request().Context()
	id := c.FormValue("client")
	used, err := p.store.UserClients(ctx, v.user.ID)
	if err != nil {
		return p.internal(c, "list products of the account", err)
	}
	var found *storage.UserClient
	for i := range used {
		if used[i].Client.ID == id {
			found = &used[i]
		}
	}
	if found == nil {
		return c.Redirect(http.StatusSeeOther, PathServices)
	}
	if err := p.store.RevokeUserClientTokens(ctx, v.user.ID, id); err != nil {
		return p.internal(c, "revoke product tokens", err)
	}
	p.record(c, &storage.AuditEvent{UserID: v.user.ID, Kind: "access_revoked", ClientID: id})
	return done(c, PathServices, "revoked")
}
