package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login"
	"github.com/astral/idp/login/page"
	"github.com/astral/idp/login/session"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/provider"
	"github.com/astral/idp/storage"
)

// Registrar is a capability of a Connector, found by type assertion: its upstream
// verifies a person well enough (Gosuslugi does; Telegram does not) for an account to
// be opened from what it says. The registration page offers such connectors under
// "или зарегистрируйтесь через".
type Registrar interface {
	Connector
	// Profile is the account to open for a verified identity: the names, and only the
	// phone (E.164) and email (lower case) the upstream itself has confirmed.
	Profile(id Identity) Profile
}

// Profile is what a Registrar vouches for, to open an account with.
type Profile struct {
	FamilyName, GivenName, MiddleName string
	Phone                             string // confirmed by the upstream, E.164; may be empty
	Email                             string // confirmed by the upstream, lower case; may be empty
}

// RegisterURL is where registration through connector id starts, for authRequestID
// (may be empty).
func RegisterURL(id, authRequestID string) string {
	q := url.Values{"mode": {ModeRegister}}
	if authRequestID != "" {
		q.Set("authRequestID", authRequestID)
	}
	return PathPrefix + "/" + url.PathEscape(id) + "/start?" + q.Encode()
}

// NewUUID is a random UUID, version 4 (RFC 9562 §5.4): 122 random bits in the
// canonical 36-character form, as Gosuslugi wants its state.
func NewUUID() string { return uuid.NewString() }

func encodeClaims(claims map[string]any) (string, error) {
	if len(claims) == 0 {
		return "", nil
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	return string(b), nil
}

// register ends a registration through an upstream identity: an identity linked
// already just signs in; otherwise the account is opened from the verified profile,
// the identity linked to it and the person signed in. A confirmed phone or email
// that already belongs to an account is never merged into it silently: the person is
// asked to sign in to that account, which then links the identity (a pending link).
func (p *Part) register(c echo.Context, conn Connector, a attempt, id Identity) error {
	ctx := c.Request().Context()
	reg, ok := conn.(Registrar)
	if !ok { // start refuses these; a row of an older configuration may remain
		p.refused(c, conn, "registration through a connector that cannot register", nil)
		return p.pages().Error(c, http.StatusBadRequest, "Регистрация не удалась",
			"Регистрация через "+conn.Title()+" недоступна. Зарегистрируйтесь по телефону или email.", login.PathRegister)
	}
	if linked, err := p.store.IdentityBySubject(ctx, conn.ID(), id.Subject); err == nil {
		return p.signInLinked(c, conn, a, id, linked)
	} else if !storage.IsNotFound(err) {
		return p.pages().Internal(c, "load identity", err)
	}
	prof := reg.Profile(id)
	if taken, err := p.contactTaken(c, prof); err != nil {
		return p.pages().Internal(c, "look up contacts", err)
	} else if taken != "" {
		return p.offerExisting(c, conn, a, id, taken)
	}
	u := &storage.User{FamilyName: prof.FamilyName, GivenName: prof.GivenName, MiddleName: prof.MiddleName}
	if prof.Phone != "" {
		phone := prof.Phone
		u.Phone, u.PhoneVerified = &phone, true
	}
	if prof.Email != "" {
		email := prof.Email
		u.Email, u.EmailVerified = &email, true
	}
	claims, err := encodeClaims(id.Claims)
	if err != nil {
		return p.pages().Internal(c, "encode claims", err)
	}
	link := &storage.Identity{Connector: conn.ID(), Subject: id.Subject, DisplayName: id.DisplayName, Claims: claims}
	err = p.store.CreateUserWithIdentity(ctx, u, login.RegistrationConsents(c, p.store.Now()), link)
	if storage.IsConflict(err) {
		// Another registration took the phone, the email or the identity meanwhile.
		if linked, lerr := p.store.IdentityBySubject(ctx, conn.ID(), id.Subject); lerr == nil {
			return p.signInLinked(c, conn, a, id, linked)
		}
		taken, terr := p.contactTaken(c, prof)
		if terr != nil {
			return p.pages().Internal(c, "look up contacts", terr)
		}
		return p.offerExisting(c, conn, a, id, taken)
	}
	if err != nil {
		return p.pages().Internal(c, "create account", err)
	}
	slog.InfoContext(ctx, "account registered through upstream", "connector", conn.ID(), "user", u.ID)
	p.record(c, &storage.AuditEvent{UserID: u.ID, Kind: "registered", Method: "fed", ClientID: p.clientOf(ctx, a.AuthRequestID),
		Detail: conn.ID()})
	return p.host.FinishSignIn(c, u, session.Proof{AMR: []string{"fed"}, ACR: provider.ACR, IDP: conn.ID()}, a.AuthRequestID, "")
}

// contactTaken names the confirmed contact of prof that an account holds already:
// "номер телефона" or "email", or "" when neither is taken.
func (p *Part) contactTaken(c echo.Context, prof Profile) (string, error) {
	for _, ct := range []struct {
		value, what string
		owner       func(context.Context, string) (*storage.User, error)
	}{{prof.Phone, "номер телефона", p.store.UserByPhone}, {prof.Email, "email", p.store.UserByEmail}} {
		if ct.value == "" {
			continue
		}
		_, err := ct.owner(c.Request().Context(), ct.value)
		if err == nil {
			return ct.what, nil
		}
		if !storage.IsNotFound(err) {
			return "", err
		}
	}
	return "", nil
}

// offerExisting tells a person registering through an upstream that its confirmed
// phone or email (what) belongs to an account already, and offers to sign in to it
// and link the identity in the same step.
func (p *Part) offerExisting(c echo.Context, conn Connector, a attempt, id Identity, what string) error {
	if what == "" {
		what = "номер телефона или email"
	}
	slog.InfoContext(c.Request().Context(), "upstream registration: contact belongs to an account, offered to link",
		"connector", conn.ID())
	flowID, err := p.keepPending(c, conn, a, id)
	if err != nil {
		return p.pages().Internal(c, "create pending link", err)
	}
	t := conn.Title()
	return p.pages().Render(c, http.StatusConflict, "notice", web.NoticeData{
		Layout:  web.Layout{Title: "Личный кабинет уже есть", CSRFToken: page.CSRF(c)},
		Heading: "У Вас уже есть Личный кабинет",
		Message: "Ваш " + what + " из " + t + " уже указан в Личном кабинете. Войдите в него — по паролю или по коду, — " +
			"и мы привяжем " + t + ": в следующий раз можно будет входить через " + t + ". " +
			"Привязать " + t + " можно и позже, в Личном кабинете в разделе «Способы входа».",
		Links: []web.Link{
			{Text: "Войти и привязать " + t, URL: pendingLoginURL(flowID, a.AuthRequestID), Primary: true},
			{Text: "Войти без привязки", URL: plainLoginURL(a.AuthRequestID)},
		},
	})
}
