package account

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/login/page"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

// The cabinet's two code flows — a new phone or email, and re-authentication by
// code — share the confirmation page of registration (the "confirm" template).

// codePage describes the confirmation page of one flow.
type codePage struct {
	base     string // the flow's path: base+"/confirm", base+"/resend"
	heading  string
	button   string
	back     string // "← Вернуться в Личный кабинет"
	backText string
}

func (p *Part) confirmPage(c echo.Context, flow *storage.OneTimeCode, cp codePage, status int, errText, notice string) error {
	resendIn := 0
	if wait := flow.CreatedAt.Add(p.codes.Policy().ResendAfter).Sub(p.now()); wait > 0 {
		resendIn = int((wait + time.Second - 1) / time.Second)
	}
	return p.render(c, status, "confirm", web.ConfirmData{
		Layout:       web.Layout{Title: cp.heading, CSRFToken: page.CSRF(c)},
		Heading:      cp.heading,
		Destination:  otp.MaskedDestination(flow.Channel, flow.Destination),
		Action:       cp.base + "/confirm",
		Flow:         flow.ID,
		ResendAction: cp.base + "/resend",
		ResendIn:     resendIn,
		Button:       cp.button,
		Error:        errText,
		Notice:       notice,
		BackURL:      cp.back,
		BackText:     cp.backText,
	})
}

// loadFlow loads a live flow of purpose that belongs to the visitor's account, or nil.
func (p *Part) loadFlow(c echo.Context, v *visit, id, purpose string) (*storage.OneTimeCode, error) {
	flow, err := p.codes.Flow(c.Request().Context(), id)
	if err != nil {
		if _, ok := otp.Explain(err); ok {
			return nil, nil
		}
		return nil, err
	}
	if flow.Purpose != purpose || flow.UserID != v.user.ID {
		return nil, nil
	}
	return flow, nil
}

// expiredFlow is the page of a code flow that is gone (expired, used, unknown).
func (p *Part) expiredFlow(c echo.Context, restart string) error {
	return p.render(c, http.StatusGone, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Код устарел", CSRFToken: page.CSRF(c)},
		Heading: "Код устарел",
		Message: "Срок действия кода истек или он уже использован. Начните заново.",
		Links:   []web.Link{{Text: "Начать заново", URL: restart, Primary: true}},
	})
}

// resend sends a new code into a flow and shows its page again.
func (p *Part) resend(c echo.Context, v *visit, purpose string, cp codePage, restart string) error {
	flow, err := p.loadFlow(c, v, c.FormValue("flow"), purpose)
	if err != nil {
		return p.internal(c, "load code flow", err)
	}
	if flow == nil {
		return p.expiredFlow(c, restart)
	}
	fresh, err := p.codes.Resend(c.Request().Context(), flow.ID, "", c.RealIP(), false)
	if err != nil {
		msg, ok := otp.Explain(err)
		if !ok {
			return p.internal(c, "resend code", err)
		}
		if errors.Is(err, otp.ErrExpired) {
			return p.expiredFlow(c, restart)
		}
		return p.confirmPage(c, flow, cp, otp.Status(err), "", msg)
	}
	return p.confirmPage(c, fresh, cp, http.StatusOK, "", "Новый код отправлен")
}

// verify checks the typed code of a flow; a wrong code shows the page again (done is
// true: the answer is written).
func (p *Part) verify(c echo.Context, v *visit, purpose string, cp codePage, restart string) (flow *storage.OneTimeCode, answered bool, err error) {
	id := c.FormValue("flow")
	pending, err := p.loadFlow(c, v, id, purpose)
	if err != nil {
		return nil, true, p.internal(c, "load code flow", err)
	}
	if pending == nil {
		return nil, true, p.expiredFlow(c, restart)
	}
	flow, err = p.codes.Verify(c.Request().Context(), id, c.FormValue("code"))
	if err != nil {
		msg, ok := otp.Explain(err)
		if !ok {
			return nil, true, p.internal(c, "verify code", err)
		}
		if errors.Is(err, otp.ErrExpired) {
			return nil, true, p.expiredFlow(c, restart)
		}
		return nil, true, p.confirmPage(c, pending, cp, http.StatusBadRequest, msg, "")
	}
	return flow, false, nil
}
