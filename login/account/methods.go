package account

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/certificate"
	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

// msgLastMethod refuses to unlink the last way in.
const msgLastMethod = "Это единственный способ входа в аккаунт. Чтобы отвязать его, сначала задайте пароль или подтвердите телефон или email"

// upstreamPrefix is where login/upstream serves its routes.
const upstreamPrefix = "/upstream/"

// linkURL is where a signed-in person links an identity of connector id.
func linkURL(id string) string {
	return upstreamPrefix + url.PathEscape(id) + "/start?mode=link"
}

// signInURL is where a sign-in through connector id starts.
func signInURL(id string) string {
	return upstreamPrefix + url.PathEscape(id) + "/start?mode=signin"
}

// titles maps the configured connectors' ids to their names.
func (p *Part) titles() map[string]string {
	m := make(map[string]string, len(p.links))
	for _, l := range p.links {
		m[l.ID] = l.Title
	}
	return m
}

// connectorTitle names a connector, configured or not (a linked identity outlives
// its connector's configuration).
func (p *Part) connectorTitle(id string) string {
	if t, ok := p.titles()[id]; ok {
		return t
	}
	switch id {
	case "esia", "gosuslugi":
		return "госуслуги"
	case "certificate":
		return "Сертификат"
	}
	if id == "" {
		return "Внешний сервис"
	}
	return strings.ToUpper(id[:1]) + id[1:]
}

// iconOf picks the icon of a connector.
func iconOf(id string) string {
	switch id {
	case "telegram":
		return "plane"
	case "esia", "gosuslugi":
		return "gov"
	case "certificate":
		return "key"
	}
	return "login"
}

func (p *Part) showMethods(c echo.Context, v *visit) error {
	return p.methodsPage(c, v, http.StatusOK, "", "")
}

// methodsPage lists the ways in; failedID and problem put a refusal next to one.
func (p *Part) methodsPage(c echo.Context, v *visit, status int, failedID, problem string) error {
	ids, err := p.store.UserIdentities(c.Request().Context(), v.user.ID)
	if err != nil {
		return p.internal(c, "list identities", err)
	}
	u := v.user
	data := web.MethodsData{Cabinet: p.cabinet(c, v, PathMethods,
		"Так можно войти в Личный кабинет и во все сервисы Астрал. Вход через другие сервисы становится доступен после их привязки.")}
	pw := web.SignInMethod{Icon: "lock", Title: "Пароль", ManageURL: PathPassword}
	if u.PasswordHash != "" {
		pw.Detail, pw.Status, pw.ManageText = "Вход по номеру телефона или email и паролю", "Задан", "Изменить"
	} else {
		pw.Detail, pw.Status, pw.ManageText, pw.Off = "Задайте пароль, чтобы входить по номеру телефона или email", "Не задан", "Задать", true
	}
	data.Methods = append(data.Methods, pw)
	if u.Phone != nil {
		m := web.SignInMethod{Icon: "phone", Title: "Телефон", Detail: contact.FormatPhone(*u.Phone), Status: "Код из SMS",
			ManageURL: Path, ManageText: "Изменить"}
		if !u.PhoneVerified {
			m.Status, m.Off = "Не подтвержден", true
		}
		data.Methods = append(data.Methods, m)
	}
	if u.Email != nil {
		m := web.SignInMethod{Icon: "mail", Title: "Email", Detail: *u.Email, Status: "Код из письма",
			ManageURL: Path, ManageText: "Изменить"}
		if !u.EmailVerified {
			m.Status, m.Off = "Не подтвержден", true
		}
		data.Methods = append(data.Methods, m)
	}
	certs, err := p.linkedCertificates(c, v.user.ID, ids)
	if err != nil {
		return p.internal(c, "list certificates", err)
	}
	linked := map[string]bool{}
	for _, id := range ids {
		linked[id.Connector] = true
		m := web.SignInMethod{
			Icon: iconOf(id.Connector), Title: p.connectorTitle(id.Connector), Detail: id.DisplayName,
			Status: "Привязан " + p.formatDate(id.CreatedAt), UnlinkAction: pathUnlink, ID: id.ID,
		}
		if cert, ok := certs[id.ID]; ok {
			info := certificate.Describe(&cert, p.store.Now())
			m.Certificate = &info
			if info.Expired {
				// Still listed, so it can be unlinked, but no longer a way in.
				m.Status, m.Off = "Срок истек", true
			}
		}
		if id.ID == failedID {
			m.Error = problem
		}
		data.Methods = append(data.Methods, m)
	}
	for _, l := range p.links {
		if linked[l.ID] && !l.Many {
			continue
		}
		u := l.URL
		if u == "" {
			u = linkURL(l.ID)
		}
		name := l.Title
		if l.ID == storage.ConnectorCertificate {
			// "Привязать сертификат": a common noun mid-sentence, unlike the names
			// госуслуги and Telegram (the icon is found by name in any case).
			name = strings.ToLower(name)
		}
		data.Links = append(data.Links, web.UpstreamLink{Name: name, URL: u})
	}
	return p.render(c, status, "account-methods", data)
}

// linkedCertificates are the account's certificate rows by identity id; none are
// looked up when no identity is a certificate.
func (p *Part) linkedCertificates(c echo.Context, userID string, ids []storage.Identity) (map[string]storage.Certificate, error) {
	has := false
	for _, id := range ids {
		has = has || id.Connector == storage.ConnectorCertificate
	}
	if !has {
		return nil, nil
	}
	rows, err := p.store.UserCertificates(c.Request().Context(), userID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]storage.Certificate, len(rows))
	for _, r := range rows {
		out[r.IdentityID] = r
	}
	return out, nil
}

// submitUnlink unlinks one of the account's identities (a sensitive change).
func (p *Part) submitUnlink(c echo.Context, v *visit) error {
	id := c.FormValue("identity")
	owned, err := p.ownIdentity(c, v, id)
	if err != nil {
		return p.internal(c, "list identities", err)
	}
	if owned == nil {
		return c.Redirect(http.StatusSeeOther, PathMethods)
	}
	return p.sensitive(c, v, change{Action: actionUnlink, Identity: id})
}

// ownIdentity finds the account's identity id, or nil.
func (p *Part) ownIdentity(c echo.Context, v *visit, id string) (*storage.Identity, error) {
	if id == "" {
		return nil, nil
	}
	ids, err := p.store.UserIdentities(c.Request().Context(), v.user.ID)
	if err != nil {
		return nil, err
	}
	for i := range ids {
		if ids[i].ID == id {
			return &ids[i], nil
		}
	}
	return nil, nil
}

// unlink removes the identity, unless it is the account's last way in.
func (p *Part) unlink(c echo.Context, v *visit, id string) error {
	owned, err := p.ownIdentity(c, v, id)
	if err != nil {
		return p.internal(c, "list identities", err)
	}
	if owned == nil {
		return c.Redirect(http.StatusSeeOther, PathMethods)
	}
	err = p.store.UnlinkIdentity(c.Request().Context(), v.user.ID, id)
	switch {
	case errors.Is(err, storage.ErrLastMethod):
		return p.methodsPage(c, v, http.StatusConflict, id, msgLastMethod)
	case storage.IsNotFound(err):
		return c.Redirect(http.StatusSeeOther, PathMethods)
	case err != nil:
		return p.internal(c, "unlink identity", err)
	}
	p.record(c, &storage.AuditEvent{UserID: v.user.ID, Kind: "identity_unlinked", Method: "fed", Detail: owned.Connector})
	return done(c, PathMethods, "unlinked")
}
