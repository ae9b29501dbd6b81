package account

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/mileusna/useragent"

	"github.com/astral/idp/login"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

// device is a browser and its operating system, as a person recognises them.
type device struct {
	Browser string // "Chrome 131", "Яндекс Браузер 24"
	OS      string // "Windows 10", "iOS 17.5"; empty when unknown
	Mobile  bool
}

// browserNames are the parser's names that read better otherwise.
var browserNames = map[string]string{
	"YaBrowser":       "Яндекс Браузер",
	"Edge":            "Microsoft Edge",
	"Mobile Safari":   "Safari",
	"Samsung Browser": "Samsung Internet",
}

// windowsVersions names Windows NT versions.
var windowsVersions = map[string]string{"10.0": "10", "6.3": "8.1", "6.2": "8", "6.1": "7"}

// parseDevice reads a User-Agent header (github.com/mileusna/useragent).
func parseDevice(header string) device {
	ua := useragent.Parse(header)
	d := device{Mobile: ua.Mobile || ua.Tablet}
	name := ua.Name
	if n, ok := browserNames[name]; ok {
		name = n
	}
	if name == "" || strings.ContainsAny(name, "/;()") {
		d.Browser = "Неизвестный браузер"
	} else {
		d.Browser = name
		if major, _, _ := strings.Cut(ua.Version, "."); major != "" && major != "0" {
			d.Browser += " " + major
		}
	}
	switch ua.OS {
	case "":
	case useragent.Windows:
		d.OS = "Windows"
		if v, ok := windowsVersions[ua.OSVersion]; ok {
			d.OS += " " + v
		}
	case useragent.MacOS, useragent.Linux, useragent.ChromeOS:
		// Browsers freeze or omit these versions: the name alone is honest.
		d.OS = ua.OS
	default:
		d.OS = strings.TrimSpace(ua.OS + " " + ua.OSVersion)
	}
	if ua.Device == "iPhone" || ua.Device == "iPad" {
		d.OS = strings.TrimSpace(d.OS + " (" + ua.Device + ")")
	}
	return d
}

func (p *Part) showSessions(c echo.Context, v *visit) error {
	ctx := c.Request().Context()
	list, err := p.store.UserSessions(ctx, v.user.ID)
	if err != nil {
		return p.internal(c, "list sessions", err)
	}
	names, err := p.clientNames(c)
	if err != nil {
		return p.internal(c, "list products", err)
	}
	data := web.SessionsData{
		Cabinet:         p.cabinet(c, v, PathSessions, "Браузеры и устройства, где Вы сейчас вошли в Личный кабинет. Если какой-то сеанс Вам незнаком, завершите его и смените пароль."),
		EndAction:       pathEndSession,
		EndOthersAction: pathEndOthers,
	}
	var current *web.SessionItem
	for _, s := range list {
		ids, err := p.store.SessionClients(ctx, s.ID)
		if err != nil {
			return p.internal(c, "list session products", err)
		}
		d := parseDevice(s.UserAgent)
		item := web.SessionItem{
			ID: s.ID, Browser: d.Browser, OS: d.OS, Mobile: d.Mobile, IP: s.IP,
			Started: p.formatTime(s.CreatedAt), LastActive: p.formatTime(s.LastSeenAt), Current: s.ID == v.sess.ID,
		}
		for _, id := range ids {
			item.Products = append(item.Products, nameOf(names, id))
		}
		if item.Current {
			current = &item
			continue
		}
		data.Sessions = append(data.Sessions, item)
	}
	data.Others = len(data.Sessions)
	if current != nil {
		data.Sessions = append([]web.SessionItem{*current}, data.Sessions...)
	}
	return p.render(c, http.StatusOK, "account-sessions", data)
}

// clientNames maps the registered products' ids to their names.
func (p *Part) clientNames(c echo.Context) (map[string]string, error) {
	clients, err := p.store.ListClients(c.Request().Context())
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(clients))
	for _, cl := range clients {
		m[cl.ID] = cl.Name
	}
	return m, nil
}

// nameOf names a product; one no longer registered goes by its id.
func nameOf(names map[string]string, id string) string {
	if n, ok := names[id]; ok && n != "" {
		return n
	}
	return id
}

// ownSession finds a live session of the account, or nil.
func (p *Part) ownSession(c echo.Context, v *visit, id string) (*storage.Session, error) {
	if id == "" {
		return nil, nil
	}
	list, err := p.store.UserSessions(c.Request().Context(), v.user.ID)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].ID == id {
			return &list[i], nil
		}
	}
	return nil, nil
}

// submitEndSession ends one session of the account: its tokens are revoked and its
// products told on the back channel. Ending this browser's own is signing out.
func (p *Part) submitEndSession(c echo.Context, v *visit) error {
	ctx := c.Request().Context()
	s, err := p.ownSession(c, v, c.FormValue("session"))
	if err != nil {
		return p.internal(c, "list sessions", err)
	}
	if s == nil {
		// Ended meanwhile, or not this account's: nothing to do.
		return c.Redirect(http.StatusSeeOther, PathSessions)
	}
	if s.ID == v.sess.ID {
		if _, err := p.host.Sessions().End(ctx, c.Response(), c.Request()); err != nil {
			return p.internal(c, "end session", err)
		}
		p.host.Kick()
		return c.Redirect(http.StatusSeeOther, login.PathLoggedOut)
	}
	if _, err := p.store.EndSession(ctx, s.ID); err != nil {
		return p.internal(c, "end session", err)
	}
	p.host.Kick()
	d := parseDevice(s.UserAgent)
	p.record(c, &storage.AuditEvent{UserID: v.user.ID, Kind: "session_ended",
		Detail: strings.TrimSpace(d.Browser + " " + d.OS + " " + s.IP)})
	return done(c, PathSessions, "ended")
}

// submitEndOthers ends every session of the account but this browser's.
func (p *Part) submitEndOthers(c echo.Context, v *visit) error {
	ended, err := p.store.EndUserSessions(c.Request().Context(), v.user.ID, v.sess.ID)
	if err != nil {
		return p.internal(c, "end other sessions", err)
	}
	p.host.Kick()
	if len(ended) > 0 {
		p.record(c, &storage.AuditEvent{UserID: v.user.ID, Kind: "sessions_ended"})
	}
	return done(c, PathSessions, "others")
}
