package account

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/login/page"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// purposePending is the storage.OneTimeCode row (without a code) of a sensitive
// change that waits for re-authentication: bound to the account and the session,
// ten minutes, used once.
const purposePending = "account-pending"

// The sensitive changes.
const (
	actionContact  = "contact"  // a new phone or email: Mode, Login
	actionUnlink   = "unlink"   // Identity
	actionPassword = "password" // a first password: Hash
)

// change is a sensitive change, as it waits for re-authentication.
type change struct {
	Action   string `json:"action"`
	Session  string `json:"session"`
	Mode     string `json:"mode,omitempty"`
	Login    string `json:"login,omitempty"`
	Identity string `json:"identity,omitempty"`
	Hash     string `json:"hash,omitempty"` // of the password being set; never a password
}

// The sentences of re-authentication.
const (
	msgReauthHeading = "Подтвердите, что это Вы"
	msgEnterPassword = "Введите пароль"
	msgWrongPassword = "Неверный пароль"
	msgTooManyTries  = "Слишком много попыток. Попробуйте через 15 минут"
)

// sensitive makes ch now if the session's sign-in is recent, else keeps it and asks
// the person to prove again who they are.
func (p *Part) sensitive(c echo.Context, v *visit, ch change) error {
	if p.fresh(v) {
		return p.perform(c, v, ch)
	}
	ch.Session = v.sess.ID
	payload, _ := json.Marshal(ch) // strings always marshal
	now := p.now()
	row := &storage.OneTimeCode{
		ID: storage.NewID(), Purpose: purposePending, UserID: v.user.ID, Payload: string(payload),
		CreatedAt: now, ExpiresAt: now.Add(p.reauthAfter),
	}
	if err := p.store.CreateCode(c.Request().Context(), row); err != nil {
		return p.internal(c, "keep pending change", err)
	}
	return p.reauthPage(c, v, row.ID, ch, "", http.StatusOK)
}

// perform makes a change the person may make now.
func (p *Part) perform(c echo.Context, v *visit, ch change) error {
	switch ch.Action {
	case actionContact:
		return p.startContactChange(c, v, ch.Mode, ch.Login)
	case actionUnlink:
		return p.unlink(c, v, ch.Identity)
	case actionPassword:
		return p.setPassword(c, v, ch.Hash, false)
	}
	return c.Redirect(http.StatusSeeOther, Path)
}

// backOf is the page a change starts from.
func backOf(action string) string {
	switch action {
	case actionUnlink:
		return PathMethods
	case actionPassword:
		return PathPassword
	}
	return Path
}

func whatOf(ch change) string {
	switch {
	case ch.Action == actionUnlink:
		return "отвязать способ входа"
	case ch.Action == actionPassword:
		return "задать пароль"
	case ch.Mode == "email":
		return "изменить email"
	}
	return "изменить телефон"
}

// reauthPage asks for the password, or — for an account without one — offers a code
// to its phone or email, or a sign-in through a linked upstream.
func (p *Part) reauthPage(c echo.Context, v *visit, pendingID string, ch change, pwErr string, status int) error {
	u := v.user
	data := web.ReauthData{
		Layout:        web.Layout{Title: msgReauthHeading, CSRFToken: page.CSRF(c)},
		Heading:       msgReauthHeading,
		Pending:       pendingID,
		PasswordError: pwErr,
		BackURL:       backOf(ch.Action),
	}
	const since = "С Вашего входа прошло больше 10 минут. "
	switch {
	case u.PasswordHash != "":
		data.Action = pathReauth
		data.Lead = since + "Чтобы " + whatOf(ch) + ", введите пароль."
	case (u.Phone != nil && u.PhoneVerified) || (u.Email != nil && u.EmailVerified):
		data.Lead = since + "Чтобы " + whatOf(ch) + ", войдите по коду."
		both := u.Phone != nil && u.PhoneVerified && u.Email != nil && u.EmailVerified
		if u.Phone != nil && u.PhoneVerified {
			label := "Войти по коду"
			if both {
				label = "Войти по коду из SMS"
			}
			data.Codes = append(data.Codes, web.CodeOption{Action: pathReauthCode, Channel: "phone", Label: label,
				To: otp.MaskedDestination(string(contact.Phone), *u.Phone)})
		}
		if u.Email != nil && u.EmailVerified {
			label := "Войти по коду"
			if both {
				label = "Войти по коду из письма"
			}
			data.Codes = append(data.Codes, web.CodeOption{Action: pathReauthCode, Channel: "email", Label: label,
				To: otp.MaskedDestination(string(contact.Email), *u.Email)})
		}
	default:
		// Only upstream identities: sign in again through one, then repeat the change.
		data.Lead = since + "Войдите заново, затем повторите действие."
		ids, err := p.store.UserIdentities(c.Request().Context(), u.ID)
		if err != nil {
			return p.internal(c, "list identities", err)
		}
		titles := p.titles()
		for _, id := range ids {
			if title, ok := titles[id.Connector]; ok {
				data.Upstreams = append(data.Upstreams, web.UpstreamLink{Name: title, URL: signInURL(id.Connector)})
			}
		}
	}
	return p.render(c, status, "reauth", data)
}

// loadChange loads the pending change of the visitor's session, or nil when it is
// gone (used, expired, another account's or another session's).
func (p *Part) loadChange(c echo.Context, v *visit, id string) (*change, error) {
	if id == "" || len(id) > 64 {
		return nil, nil
	}
	row, err := p.store.CodeByID(c.Request().Context(), id)
	if storage.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ch change
	if row.Purpose != purposePending || row.UserID != v.user.ID || json.Unmarshal([]byte(row.Payload), &ch) != nil ||
		ch.Session != v.sess.ID {
		return nil, nil
	}
	return &ch, nil
}

// takeChange uses the pending change up; nil when another request did first.
func (p *Part) takeChange(c echo.Context, id string) (*change, error) {
	row, err := p.store.ConsumeCode(c.Request().Context(), id, purposePending)
	if storage.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ch change
	if err := json.Unmarshal([]byte(row.Payload), &ch); err != nil {
		return nil, nil
	}
	return &ch, nil
}

// expiredChange is the page of a pending change that is gone.
func (p *Part) expiredChange(c echo.Context) error {
	return p.render(c, http.StatusGone, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Время подтверждения истекло", CSRFToken: page.CSRF(c)},
		Heading: "Время подтверждения истекло",
		Message: "Изменение не сохранено. Вернитесь в Личный кабинет и повторите его.",
		Links:   []web.Link{{Text: "Вернуться в Личный кабинет", URL: Path, Primary: true}},
	})
}

// reauthenticate records the new proof in the session (session.Manager.Start with the
// same account re-authenticates it in place).
func (p *Part) reauthenticate(c echo.Context, v *visit, amr []string) error {
	sess, err := p.host.Sessions().Start(c.Request().Context(), c.Response(), c.Request(), v.user.ID,
		session.Proof{AMR: amr, ACR: provider.ACR})
	if err != nil {
		return err
	}
	v.sess = sess
	detail := ""
	if len(amr) > 1 {
		detail = amr[1]
	}
	p.record(c, &storage.AuditEvent{UserID: v.user.ID, Kind: "reauth", Method: amr[0], Detail: detail})
	return nil
}

// submitReauth checks the password and makes the pending change.
func (p *Part) submitReauth(c echo.Context, v *visit) error {
	id := c.FormValue("pending")
	ch, err := p.loadChange(c, v, id)
	if err != nil {
		return p.internal(c, "load pending change", err)
	}
	if ch == nil || v.user.PasswordHash == "" {
		return p.expiredChange(c)
	}
	if status, problem, err := p.checkPassword(c, v, c.FormValue("password"), msgEnterPassword, "reauth_failed"); err != nil {
		return p.internal(c, "check password", err)
	} else if problem != "" {
		return p.reauthPage(c, v, id, *ch, problem, status)
	}
	if err := p.reauthenticate(c, v, []string{"pwd"}); err != nil {
		return p.internal(c, "re-authenticate session", err)
	}
	return p.continueChange(c, v, id)
}

// continueChange makes the pending change id after a re-authentication.
func (p *Part) continueChange(c echo.Context, v *visit, id string) error {
	ch, err := p.takeChange(c, id)
	if err != nil {
		return p.internal(c, "use pending change", err)
	}
	if ch == nil {
		return p.expiredChange(c)
	}
	return p.perform(c, v, *ch)
}

// reauthCodes is the confirmation page of a re-authentication code.
var reauthCodes = codePage{base: pathReauth, heading: "Введите код", button: "Продолжить", back: Path,
	backText: "Вернуться в Личный кабинет"}

// submitReauthCode sends a code to the account's verified phone or email; only an
// account without a password proves itself this way.
func (p *Part) submitReauthCode(c echo.Context, v *visit) error {
	id := c.FormValue("pending")
	ch, err := p.loadChange(c, v, id)
	if err != nil {
		return p.internal(c, "load pending change", err)
	}
	u := v.user
	var who contact.Contact
	switch {
	case c.FormValue("channel") == "email" && u.Email != nil && u.EmailVerified:
		who = contact.Contact{Kind: contact.Email, Value: *u.Email}
	case c.FormValue("channel") == "phone" && u.Phone != nil && u.PhoneVerified:
		who = contact.Contact{Kind: contact.Phone, Value: *u.Phone}
	}
	if ch == nil || u.PasswordHash != "" || who.Value == "" {
		return p.expiredChange(c)
	}
	flow, err := p.codes.Start(c.Request().Context(), otp.Request{
		Purpose: otp.Reauth, To: who, UserID: u.ID, IP: c.RealIP(), Payload: id,
	})
	if err != nil {
		msg, ok := otp.Explain(err)
		if !ok {
			return p.internal(c, "send re-authentication code", err)
		}
		return p.pages().Error(c, otp.Status(err), "Код не отправлен", msg, backOf(ch.Action))
	}
	return c.Redirect(http.StatusSeeOther, pathReauthConfirm+"?"+url.Values{"flow": {flow.ID}}.Encode())
}

func (p *Part) showReauthConfirm(c echo.Context, v *visit) error {
	flow, err := p.loadFlow(c, v, c.QueryParam("flow"), otp.Reauth)
	if err != nil {
		return p.internal(c, "load re-authentication", err)
	}
	if flow == nil {
		return p.expiredFlow(c, Path)
	}
	return p.confirmPage(c, flow, reauthCodes, http.StatusOK, "", "")
}

func (p *Part) submitReauthResend(c echo.Context, v *visit) error {
	return p.resend(c, v, otp.Reauth, reauthCodes, Path)
}

// submitReauthConfirm checks the code, re-authenticates the session and makes the
// pending change.
func (p *Part) submitReauthConfirm(c echo.Context, v *visit) error {
	flow, answered, err := p.verify(c, v, otp.Reauth, reauthCodes, Path)
	if answered {
		return err
	}
	if ch, err := p.loadChange(c, v, flow.Payload); err != nil {
		return p.internal(c, "load pending change", err)
	} else if ch == nil {
		return p.expiredChange(c)
	}
	amr := []string{"otp", "sms"}
	if flow.Channel == string(contact.Email) {
		amr = []string{"otp", "email"}
	}
	if err := p.reauthenticate(c, v, amr); err != nil {
		return p.internal(c, "re-authenticate session", err)
	}
	return p.continueChange(c, v, flow.Payload)
}
