package certificate

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login"
	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/login/page"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// registration is what the code flow of a registration remembers: the verified
// certificate, the browser, and what the person typed.
type registration struct {
	Flow       string `json:"flow"` // the certificate-register row, for the way back
	DER        string `json:"der"`  // base64
	Binding    string `json:"binding"`
	Mode       string `json:"mode"` // the contact step's mode, for the way back
	ClientName string `json:"client_name,omitempty"`
}

// startRegistration keeps a verified certificate for registration and asks for the
// contact, unless an account holds the certificate already.
func (p *Part) startRegistration(c echo.Context, authRequestID string, cert *gost.Certificate) error {
	ctx := c.Request().Context()
	if _, err := p.cfg.Store.CertificateByThumbprint(ctx, thumbprint(cert)); err == nil {
		return p.alreadyRegistered(c, authRequestID)
	} else if !storage.IsNotFound(err) {
		return p.pages().Internal(c, "load certificate", err)
	}
	return p.keepUnknown(c, authRequestID, cert, func(flow *storage.OneTimeCode) error {
		return c.Redirect(http.StatusSeeOther, registerURL(flow.ID, ""))
	})
}

// alreadyRegistered answers a registration with a certificate an account holds.
func (p *Part) alreadyRegistered(c echo.Context, authRequestID string) error {
	return p.pages().Render(c, http.StatusConflict, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Сертификат уже привязан", CSRFToken: page.CSRF(c)},
		Heading: "Сертификат уже привязан к Личному кабинету",
		Message: "С этим сертификатом уже можно войти: регистрироваться заново не нужно.",
		Links:   []web.Link{{Text: "Войти с сертификатом", URL: PageURL(ModeSignIn, authRequestID), Primary: true}},
	})
}

// registrationRow loads a live certificate-register row of this browser and its
// certificate; nil when it is gone or of another browser.
func (p *Part) registrationRow(c echo.Context, id string) (*storage.OneTimeCode, *gost.Certificate, error) {
	if id == "" || len(id) > 64 {
		return nil, nil, nil
	}
	row, err := p.cfg.Store.CodeByID(c.Request().Context(), id)
	if storage.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if row.Purpose != PurposeRegister {
		return nil, nil, nil
	}
	cert, err := p.kept(c, row)
	if errors.Is(err, errOtherBrowser) {
		p.refused(c, ModeRegister, "registration of another browser", nil)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return row, cert, nil
}

// registrationGone is the page for a registration that expired or never was.
func (p *Part) registrationGone(c echo.Context) error {
	return p.pages().Render(c, http.StatusGone, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Регистрация устарела", CSRFToken: page.CSRF(c)},
		Heading: "Регистрация устарела",
		Message: "Срок регистрации истек или она начата в другом браузере. Начните заново.",
		Links:   []web.Link{{Text: "Начать заново", URL: PageURL(ModeRegister, ""), Primary: true}},
	})
}

func (p *Part) registerForm(c echo.Context, row *storage.OneTimeCode, cert *gost.Certificate, f web.ContactFields, status int, errText string, fieldErrors map[string]string) error {
	other := "email"
	if f.Mode == "email" {
		other = "phone"
	}
	f.SwitchURL = registerURL(row.ID, other)
	return p.pages().Render(c, status, "certificate-register", web.CertificateRegisterData{
		Layout:        web.Layout{Title: "Регистрация", CSRFToken: page.CSRF(c)},
		ContactFields: f,
		Owner:         cert.Subject.Owner(),
		Certificate:   Describe(record(cert), p.cfg.Store.Now()),
		Flow:          row.ID,
		Action:        Path + "/register",
		Error:         errText,
		FieldErrors:   fieldErrors,
		BackURL:       PageURL(ModeRegister, row.AuthRequestID),
	})
}

// showRegister: GET /certificate/register?flow=…&mode=phone|email
func (p *Part) showRegister(c echo.Context) error {
	row, cert, err := p.registrationRow(c, c.QueryParam("flow"))
	if err != nil {
		return p.pages().Internal(c, "load certificate registration", err)
	}
	if row == nil {
		return p.registrationGone(c)
	}
	f := web.ContactFields{Mode: "phone"}
	if c.QueryParam("mode") == "email" {
		f.Mode = "email"
	}
	return p.registerForm(c, row, cert, f, http.StatusOK, "", nil)
}

// submitRegister: POST /certificate/register sends the code to the contact.
func (p *Part) submitRegister(c echo.Context) error {
	ctx := c.Request().Context()
	row, cert, err := p.registrationRow(c, c.FormValue("flow"))
	if err != nil {
		return p.pages().Internal(c, "load certificate registration", err)
	}
	if row == nil {
		return p.registrationGone(c)
	}
	f, who, err := login.ReadContact(c)
	if err != nil {
		return p.registerForm(c, row, cert, f, http.StatusBadRequest, "", map[string]string{"login": err.Error()})
	}
	req := p.host.PendingRequest(ctx, row.AuthRequestID)
	clientName, clientID := "", ""
	if req != nil {
		clientName, clientID = req.ClientName, req.ClientID
	}
	payload, _ := json.Marshal(registration{Flow: row.ID, DER: base64.StdEncoding.EncodeToString(cert.Raw),
		Binding: storage.HashSecret(p.binding().Bind(c)), Mode: f.Mode, ClientName: clientName})
	flow, err := p.cfg.Codes.Start(ctx, otp.Request{
		Purpose: otp.RegisterCertificate, To: who, ClientName: clientName, ClientID: clientID,
		AuthRequestID: row.AuthRequestID, IP: c.RealIP(), Payload: string(payload),
	})
	if err != nil {
		msg, ok := otp.Explain(err)
		if !ok {
			return p.pages().Internal(c, "start certificate registration code", err)
		}
		return p.registerForm(c, row, cert, f, otp.Status(err), msg, nil)
	}
	return c.Redirect(http.StatusSeeOther, Path+"/register/confirm?"+url.Values{"flow": {flow.ID}}.Encode())
}

// codeFlow loads a live code flow of a certificate registration; nil when it is gone.
func (p *Part) codeFlow(c echo.Context, id string) (*storage.OneTimeCode, error) {
	flow, err := p.cfg.Codes.Flow(c.Request().Context(), id)
	if errors.Is(err, otp.ErrExpired) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if flow.Purpose != otp.RegisterCertificate {
		return nil, nil
	}
	return flow, nil
}

func decodeRegistration(flow *storage.OneTimeCode) registration {
	var r registration
	_ = json.Unmarshal([]byte(flow.Payload), &r) // a broken payload reads as empty and fails the binding check
	return r
}

func confirmHeading(flow *storage.OneTimeCode) string {
	if flow.Channel == string(contact.Email) {
		return "Подтвердите email"
	}
	return "Подтвердите телефон"
}

// confirmPage asks for the code, as the registration page's confirmation does.
func (p *Part) confirmPage(c echo.Context, flow *storage.OneTimeCode, status int, errText, notice string) error {
	resendIn := 0
	if wait := flow.CreatedAt.Add(p.cfg.Codes.Policy().ResendAfter).Sub(p.cfg.Store.Now()); wait > 0 {
		resendIn = int((wait + time.Second - 1) / time.Second)
	}
	r := decodeRegistration(flow)
	heading := confirmHeading(flow)
	return p.pages().Render(c, status, "confirm", web.ConfirmData{
		Layout:       web.Layout{Title: heading, CSRFToken: page.CSRF(c)},
		Heading:      heading,
		Destination:  otp.MaskedDestination(flow.Channel, flow.Destination),
		Action:       Path + "/register/confirm",
		Flow:         flow.ID,
		ResendAction: Path + "/register/resend",
		ResendIn:     resendIn,
		Button:       "Подтвердить",
		Error:        errText,
		Notice:       notice,
		BackURL:      registerURL(r.Flow, r.Mode),
		BackText:     "Вернуться к началу регистрации",
	})
}

// showRegisterConfirm: GET /certificate/register/confirm?flow=…
func (p *Part) showRegisterConfirm(c echo.Context) error {
	flow, err := p.codeFlow(c, c.QueryParam("flow"))
	if err != nil {
		return p.pages().Internal(c, "load certificate registration code", err)
	}
	if flow == nil {
		return p.registrationGone(c)
	}
	return p.confirmPage(c, flow, http.StatusOK, "", "")
}

// submitRegisterResend: POST /certificate/register/resend
func (p *Part) submitRegisterResend(c echo.Context) error {
	flow, err := p.codeFlow(c, c.FormValue("flow"))
	if err != nil {
		return p.pages().Internal(c, "load certificate registration code", err)
	}
	if flow == nil {
		return p.registrationGone(c)
	}
	fresh, err := p.cfg.Codes.Resend(c.Request().Context(), flow.ID, decodeRegistration(flow).ClientName, c.RealIP(), false)
	if err != nil {
		msg, ok := otp.Explain(err)
		if !ok {
			return p.pages().Internal(c, "resend certificate registration code", err)
		}
		if errors.Is(err, otp.ErrExpired) {
			return p.registrationGone(c)
		}
		return p.confirmPage(c, flow, otp.Status(err), "", msg)
	}
	return p.confirmPage(c, fresh, http.StatusOK, "", "Новый код отправлен")
}

// submitRegisterConfirm: POST /certificate/register/confirm checks the code and
// creates the account with its certificate. Only now, with the contact proven,
// does the person learn whether it already has an account.
func (p *Part) submitRegisterConfirm(c echo.Context) error {
	ctx := c.Request().Context()
	pending, err := p.codeFlow(c, c.FormValue("flow"))
	if err != nil {
		return p.pages().Internal(c, "load certificate registration code", err)
	}
	if pending == nil {
		return p.registrationGone(c)
	}
	if !p.binding().Bound(c, decodeRegistration(pending).Binding) {
		p.refused(c, ModeRegister, "code of a registration of another browser", nil)
		return p.registrationGone(c)
	}
	flow, err := p.cfg.Codes.Verify(ctx, pending.ID, c.FormValue("code"))
	if err != nil {
		msg, ok := otp.Explain(err)
		if !ok {
			return p.pages().Internal(c, "verify certificate registration code", err)
		}
		return p.confirmPage(c, pending, http.StatusBadRequest, msg, "")
	}
	r := decodeRegistration(flow)
	der, err := base64.StdEncoding.DecodeString(r.DER)
	if err != nil {
		return p.pages().Internal(c, "decode registration certificate", err)
	}
	cert, err := gost.ParseCertificate(der)
	if err != nil {
		return p.pages().Internal(c, "parse registration certificate", err)
	}
	u := &storage.User{}
	u.FamilyName, u.GivenName, u.MiddleName = personName(cert.Subject)
	dest := flow.Destination
	if flow.Channel == string(contact.Email) {
		u.Email, u.EmailVerified = &dest, true
	} else {
		u.Phone, u.PhoneVerified = &dest, true
	}
	consents := login.RegistrationConsents(c, p.cfg.Store.Now())
	err = p.cfg.Store.CreateUserWithCertificate(ctx, u, consents, &storage.Identity{DisplayName: displayName(cert)}, record(cert))
	if storage.IsConflict(err) {
		if _, cerr := p.cfg.Store.CertificateByThumbprint(ctx, thumbprint(cert)); cerr == nil {
			return p.alreadyRegistered(c, flow.AuthRequestID)
		}
		return p.contactTaken(c, flow)
	}
	if err != nil {
		return p.pages().Internal(c, "create account with certificate", err)
	}
	if _, err := p.host.Sessions().Start(ctx, c.Response(), c.Request(), u.ID, session.Proof{AMR: []string{"swk"}, ACR: provider.ACR}); err != nil {
		return p.pages().Internal(c, "start session", err)
	}
	p.record(c, &storage.AuditEvent{UserID: u.ID, Kind: "registered", Method: "swk", ClientID: flow.ClientID,
		Detail: "certificate " + thumbprint(cert)})
	heading := "Телефон подтвержден!"
	if flow.Channel == string(contact.Email) {
		heading = "Email подтвержден!"
	}
	next, text := login.PathAccount, "Перейти в Личный кабинет"
	if req := p.host.PendingRequest(ctx, flow.AuthRequestID); req != nil {
		// The session now satisfies the request: the sign-in page completes it at once.
		next, text = withRequest(login.PathLogin, req.ID), "Перейти в "+req.ClientName
	}
	return p.pages().Render(c, http.StatusOK, "notice", web.NoticeData{
		Layout:  web.Layout{Title: heading, CSRFToken: page.CSRF(c), Refresh: "3;url=" + next},
		Heading: heading,
		Message: "Теперь Вы можете перейти в Личный кабинет",
		Success: true,
		Links:   []web.Link{{Text: text, URL: next, Primary: true}},
	})
}

// contactTaken tells a person who proved a contact that it already has an account:
// sign in there and link the certificate in the cabinet. Nothing is merged.
func (p *Part) contactTaken(c echo.Context, flow *storage.OneTimeCode) error {
	what := "номер телефона"
	mode := "phone"
	if flow.Channel == string(contact.Email) {
		what, mode = "email", "email"
	}
	q := url.Values{"mode": {mode}}
	if flow.AuthRequestID != "" {
		q.Set("authRequestID", flow.AuthRequestID)
	}
	return p.pages().Render(c, http.StatusConflict, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Аккаунт уже существует", CSRFToken: page.CSRF(c)},
		Heading: "Аккаунт уже существует",
		Message: fmt.Sprintf("На этот %s уже зарегистрирован аккаунт. Войдите в него и привяжите сертификат "+
			"в разделе «Способы входа» Личного кабинета.", what),
		Links: []web.Link{
			{Text: "Войти", URL: login.PathLogin + "?" + q.Encode(), Primary: true},
			{Text: "Забыли пароль?", URL: login.PathReset + "?" + q.Encode()},
		},
	})
}
