package login

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// Codes issues and checks one-time codes (login/otp).
type Codes interface {
	Start(ctx context.Context, r otp.Request) (*storage.OneTimeCode, error)
	Resend(ctx context.Context, flowID, clientName, ip string, silent bool) (*storage.OneTimeCode, error)
	Verify(ctx context.Context, flowID, code string) (*storage.OneTimeCode, error)
	Flow(ctx context.Context, flowID string) (*storage.OneTimeCode, error)
	Policy() otp.Policy
}

// Accounts is what registration, sign-in by code and password reset need from storage.
type Accounts interface {
	UserByID(ctx context.Context, id string) (*storage.User, error)
	UserByPhone(ctx context.Context, phone string) (*storage.User, error)
	UserByEmail(ctx context.Context, email string) (*storage.User, error)
	CreateUserWithConsents(ctx context.Context, u *storage.User, consents []storage.Consent) error
	UpdateUser(ctx context.Context, id string, fn func(u *storage.User) error) (*storage.User, error)
	EndUserSessions(ctx context.Context, userID, keep string) ([]storage.Session, error)
	RevokeUserTokens(ctx context.Context, userID string) error
	CreateCode(ctx context.Context, c *storage.OneTimeCode) error
	ConsumeCode(ctx context.Context, id, purpose string) (*storage.OneTimeCode, error)
	Now() time.Time
}

// PasswordHasher hashes a new password (login/password).
type PasswordHasher interface {
	Hash(password string) (string, error)
}

// flowState is what a code flow remembers between its pages (the code row's payload).
type flowState struct {
	Mode         string `json:"mode"`  // phone | email
	Login        string `json:"login"` // as typed, to show it again
	PasswordHash string `json:"password_hash,omitempty"`
	Silent       bool   `json:"silent,omitempty"` // no account: nothing was sent
	ClientName   string `json:"client_name,omitempty"`
	Link         string `json:"link,omitempty"` // sign-in by code: a pending upstream link (login/upstream)
}

func encodeState(s flowState) string {
	b, _ := json.Marshal(s) // a struct of strings always marshals
	return string(b)
}

func decodeState(raw string) flowState {
	var s flowState
	_ = json.Unmarshal([]byte(raw), &s) // a broken payload reads as empty: the flow then fails safely
	return s
}

// ReadContact reads a form's mode ("phone" or "email") and phone or email, for every
// page that asks for a contact.
func ReadContact(c echo.Context) (web.ContactFields, contact.Contact, error) {
	f := web.ContactFields{Mode: c.FormValue("mode"), Login: c.FormValue("login")}
	if f.Mode != "email" {
		f.Mode = "phone"
	}
	if len(f.Login) > 320 {
		f.Login = f.Login[:320]
	}
	who, err := contact.Parse(contact.Kind(f.Mode), f.Login)
	return f, who, err
}

// pageURL builds path?query with the authorization request and mode kept.
func pageURL(path string, req *provider.PendingRequest, extra url.Values) string {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	if req != nil {
		q.Set("authRequestID", req.ID)
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// switchURL is the same page in the other mode.
func switchURL(path string, req *provider.PendingRequest, mode string) string {
	other := "email"
	if mode == "email" {
		other = "phone"
	}
	return pageURL(path, req, url.Values{"mode": {other}})
}

func modeOf(c echo.Context) string {
	if c.QueryParam("mode") == "email" {
		return "email"
	}
	return "phone"
}

// pendingOf loads the authorization request a flow started from (nil if none or gone).
func (a *App) pendingOf(ctx context.Context, id string) *provider.PendingRequest {
	if id == "" {
		return nil
	}
	req, err := a.authz.PendingRequest(ctx, id)
	if err != nil || req.Done {
		return nil
	}
	return req
}

func clientName(req *provider.PendingRequest) string {
	if req == nil {
		return ""
	}
	return req.ClientName
}

// confirmPage renders the code page of a flow.
func (a *App) confirmPage(c echo.Context, flow *storage.OneTimeCode, status int, base, heading, button, errText, notice string) error {
	resendIn := 0
	if wait := flow.CreatedAt.Add(a.codes.Policy().ResendAfter).Sub(a.accounts.Now()); wait > 0 {
		resendIn = int((wait + time.Second - 1) / time.Second)
	}
	data := web.ConfirmData{
		Layout:       web.Layout{Title: heading, CSRFToken: csrfToken(c)},
		Heading:      heading,
		Destination:  otp.MaskedDestination(flow.Channel, flow.Destination),
		Action:       base + "/confirm",
		Flow:         flow.ID,
		ResendAction: base + "/resend",
		ResendIn:     resendIn,
		Button:       button,
		Error:        errText,
		Notice:       notice,
	}
	if flow.Purpose == otp.Register {
		data.BackURL = base + "?" + url.Values{"flow": {flow.ID}}.Encode()
		data.BackText = "Вернуться к началу регистрации"
	} else {
		state := decodeState(flow.Payload)
		q := url.Values{"mode": {state.Mode}}
		if state.Link != "" {
			q.Set("link", state.Link)
		}
		if flow.AuthRequestID != "" {
			q.Set("authRequestID", flow.AuthRequestID)
		}
		data.BackURL, data.BackText = base+"?"+q.Encode(), "Вернуться"
	}
	return a.render(c, status, "confirm", data)
}

// expiredFlow is the page for a flow that is gone (expired, used, unknown).
func (a *App) expiredFlow(c echo.Context, restart string) error {
	return a.render(c, http.StatusGone, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Код устарел", CSRFToken: csrfToken(c)},
		Heading: "Код устарел",
		Message: "Срок действия кода истек или он уже использован. Начните заново.",
		Links:   []web.Link{{Text: "Начать заново", URL: restart, Primary: true}},
	})
}

// resend sends a new code into a flow of purpose and shows its page again. A flow of
// another purpose (a reset grant above all: it must not be extended or get a code) is
// unknown here.
func (a *App) resend(c echo.Context, purpose, base, heading, button string) error {
	ctx := c.Request().Context()
	flow, err := a.codes.Flow(ctx, c.FormValue("flow"))
	if err != nil {
		if _, ok := otp.Explain(err); ok {
			return a.expiredFlow(c, base)
		}
		return a.internalError(c, "load code flow", err)
	}
	if flow.Purpose != purpose {
		return a.expiredFlow(c, base)
	}
	state := decodeState(flow.Payload)
	fresh, err := a.codes.Resend(ctx, flow.ID, state.ClientName, c.RealIP(), state.Silent)
	if err != nil {
		msg, ok := otp.Explain(err)
		if !ok {
			return a.internalError(c, "resend code", err)
		}
		if errors.Is(err, otp.ErrExpired) {
			return a.expiredFlow(c, base)
		}
		return a.confirmPage(c, flow, otp.Status(err), base, heading, button, "", msg)
	}
	return a.confirmPage(c, fresh, http.StatusOK, base, heading, button, "", "Новый код отправлен")
}

// signInWithCode ends a code flow that proved the person holds the account's phone or
// email: the session starts with amr otp and the channel.
func (a *App) signInWithCode(c echo.Context, u *storage.User, flow *storage.OneTimeCode) error {
	ctx := c.Request().Context()
	amr := []string{"otp", "sms"}
	if flow.Channel == string(contact.Email) {
		amr = []string{"otp", "email"}
	}
	sess, err := a.sessions.Start(ctx, c.Response(), c.Request(), u.ID, session.Proof{AMR: amr, ACR: provider.ACR})
	if err != nil {
		return a.internalError(c, "start session", err)
	}
	a.metrics.SignIn("otp", "success")
	a.record(c, &storage.AuditEvent{UserID: u.ID, Kind: "signin", Method: "otp", ClientID: flow.ClientID, Detail: amr[1]})
	a.linkAfterSignIn(c, decodeState(flow.Payload).Link, u)
	req := a.pendingOf(ctx, flow.AuthRequestID)
	if req == nil {
		return c.Redirect(http.StatusSeeOther, PathAccount)
	}
	return a.complete(c, req, sess)
}
