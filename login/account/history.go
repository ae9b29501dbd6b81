package account

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

// historyPage is how many events a page of the history shows.
const historyPage = 20

// maxHistoryPage bounds ?page=: an offset past every account's history costs nothing,
// but a huge one is no request a person makes.
const maxHistoryPage = 100000

// eventNames say what happened, by audit event kind.
var eventNames = map[string]string{
	"signin":                 "Вход",
	"signin_failed":          "Неудачная попытка входа",
	"registered":             "Регистрация",
	"reauth":                 "Подтверждение входа",
	"reauth_failed":          "Подтверждение входа",
	"password_reset":         "Восстановление пароля",
	"password_changed":       "Смена пароля",
	"password_change_failed": "Смена пароля",
	"password_set":           "Пароль задан",
	"phone_changed":          "Смена телефона",
	"email_changed":          "Смена email",
	"profile_changed":        "Изменение личных данных",
	"identity_linked":        "Привязка способа входа",
	"identity_unlinked":      "Отвязка способа входа",
	"session_ended":          "Завершение сеанса",
	"sessions_ended":         "Завершение других сеансов",
	"access_revoked":         "Отзыв доступа сервиса",
	"blocked":                "Блокировка учетной записи",
	"unblocked":              "Разблокировка учетной записи",
}

// failureResults say why a failed attempt failed, by the first word of its detail.
var failureResults = map[string]string{
	"invalid":      "Неверный пароль",
	"rate_limited": "Слишком много попыток",
	"blocked":      "Учетная запись заблокирована",
}

// signInKinds are the events of a sign-in: without a product, it was into the cabinet.
var signInKinds = map[string]bool{"signin": true, "signin_failed": true, "registered": true, "reauth": true, "reauth_failed": true}

// failed reports whether an event is a refused attempt.
func failed(kind string) bool {
	return strings.HasSuffix(kind, "_failed")
}

// methodName says how the person proved who they were.
func (p *Part) methodName(e storage.AuditEvent) string {
	switch e.Method {
	case "pwd":
		return "Пароль"
	case "otp":
		switch e.Detail {
		case "sms":
			return "Код из SMS"
		case "email":
			return "Код из письма"
		}
		return "Код"
	case "swk":
		return "Сертификат"
	case "fed":
		connector, _, _ := strings.Cut(e.Detail, " ")
		return p.connectorTitle(connector)
	}
	return ""
}

func (p *Part) eventItem(e storage.AuditEvent, names map[string]string) web.EventItem {
	item := web.EventItem{
		Time: p.formatTime(e.CreatedAt), ISO: e.CreatedAt.In(p.loc).Format(time.RFC3339),
		What: eventNames[e.Kind], Method: p.methodName(e), IP: e.IP, Result: "Успешно", Failed: failed(e.Kind),
	}
	if item.What == "" {
		item.What = e.Kind
	}
	switch {
	case e.ClientID != "":
		item.Product = nameOf(names, e.ClientID)
	case signInKinds[e.Kind]:
		item.Product = "Личный кабинет"
	}
	if item.Failed {
		word, _, _ := strings.Cut(e.Detail, " ")
		if item.Result = failureResults[word]; item.Result == "" {
			item.Result = "Отказано"
		}
	}
	return item
}

func (p *Part) showHistory(c echo.Context, v *visit) error {
	ctx := c.Request().Context()
	page, err := strconv.Atoi(c.QueryParam("page"))
	if err != nil || page < 1 {
		page = 1
	}
	page = min(page, maxHistoryPage)
	events, total, err := p.store.UserEventsPage(ctx, v.user.ID, (page-1)*historyPage, historyPage)
	if err != nil {
		return p.internal(c, "list events", err)
	}
	pages := max(1, int((total+historyPage-1)/historyPage))
	if page > pages {
		// A link to a page that no longer exists (or never did): the last one.
		page = pages
		if events, total, err = p.store.UserEventsPage(ctx, v.user.ID, (page-1)*historyPage, historyPage); err != nil {
			return p.internal(c, "list events", err)
		}
		pages = max(1, int((total+historyPage-1)/historyPage))
	}
	names, err := p.clientNames(c)
	if err != nil {
		return p.internal(c, "list products", err)
	}
	data := web.HistoryData{
		Cabinet: p.cabinet(c, v, PathHistory, "Входы в аккаунт, неудачные попытки и изменения настроек, сначала новые. Время московское."),
		Page:    page, Pages: pages,
	}
	for _, e := range events {
		data.Events = append(data.Events, p.eventItem(e, names))
	}
	if page > 1 {
		data.LaterURL = PathHistory
		if page > 2 {
			data.LaterURL += "?page=" + strconv.Itoa(page-1)
		}
	}
	if page < pages {
		data.EarlierURL = PathHistory + "?page=" + strconv.Itoa(page+1)
	}
	return p.render(c, http.StatusOK, "account-history", data)
}
