package account

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/otp"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

// maxNameRunes bounds each part of a name.
const maxNameRunes = 100

// The sentences of the profile.
const (
	msgNameTooLong   = "Не длиннее 100 символов"
	msgNameLetters   = "Используйте буквы, пробел, дефис или апостроф"
	msgSamePhone     = "Это Ваш текущий номер телефона"
	msgSameEmail     = "Это Ваш текущий email"
	msgTakenPhone    = "Этот номер телефона уже используется в другом аккаунте. Укажите другой номер"
	msgTakenEmail    = "Этот email уже используется в другом аккаунте. Укажите другой адрес"
	msgContactsLimit = "Слишком много попыток сменить телефон или email. Попробуйте через час"
)

// profileInput is what the profile page shows back after a refused change.
type profileInput struct {
	names      map[string]string // typed values of the name fields, when they were posted
	nameErrors map[string]string
	mode       string // the contact whose form failed: phone | email
	login      string // as typed
	contactErr string
}

func (p *Part) showProfile(c echo.Context, v *visit) error {
	return p.profilePage(c, v, http.StatusOK, profileInput{})
}

func (p *Part) profilePage(c echo.Context, v *visit, status int, in profileInput) error {
	u := v.user
	data := web.AccountData{
		Cabinet:       p.cabinet(c, v, Path, ""),
		ProfileAction: pathProfile,
	}
	for _, f := range []struct{ id, label, auto, value string }{
		{"family_name", "Фамилия", "family-name", u.FamilyName},
		{"given_name", "Имя", "given-name", u.GivenName},
		{"middle_name", "Отчество", "additional-name", u.MiddleName},
	} {
		value := f.value
		if typed, ok := in.names[f.id]; ok {
			value = typed
		}
		data.Names = append(data.Names, web.NameField{ID: f.id, Label: f.label, Autocomplete: f.auto,
			Value: value, Error: in.nameErrors[f.id]})
	}
	phone := web.ContactItem{Mode: "phone", Label: "Телефон", Verified: u.PhoneVerified, Action: pathContact}
	if u.Phone != nil {
		phone.Value = contact.FormatPhone(*u.Phone)
	}
	email := web.ContactItem{Mode: "email", Label: "Email", Verified: u.EmailVerified, Action: pathContact}
	if u.Email != nil {
		email.Value = *u.Email
	}
	for _, item := range []*web.ContactItem{&phone, &email} {
		if item.Mode == in.mode {
			item.Input, item.Error, item.Open = in.login, in.contactErr, true
		}
	}
	data.Contacts = []web.ContactItem{phone, email}
	return p.render(c, status, "account", data)
}

// cleanName reads one part of a name: spaces collapsed; letters of any alphabet,
// spaces, hyphens, apostrophes and dots only.
func cleanName(raw string) (string, string) {
	if !utf8.ValidString(raw) {
		return raw, msgNameLetters
	}
	s := strings.Join(strings.Fields(raw), " ")
	if utf8.RuneCountInString(s) > maxNameRunes {
		return s, msgNameTooLong
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.Is(unicode.Mn, r) && !strings.ContainsRune(" -'’.", r) {
			return s, msgNameLetters
		}
	}
	return s, ""
}

// submitProfile saves the name.
func (p *Part) submitProfile(c echo.Context, v *visit) error {
	in := profileInput{names: map[string]string{}, nameErrors: map[string]string{}}
	for _, id := range []string{"family_name", "given_name", "middle_name"} {
		value, problem := cleanName(c.FormValue(id))
		in.names[id] = value
		if problem != "" {
			in.nameErrors[id] = problem
		}
	}
	if len(in.nameErrors) > 0 {
		return p.profilePage(c, v, http.StatusBadRequest, in)
	}
	u := v.user
	if u.FamilyName == in.names["family_name"] && u.GivenName == in.names["given_name"] && u.MiddleName == in.names["middle_name"] {
		return done(c, Path, "profile")
	}
	if _, err := p.store.UpdateUser(c.Request().Context(), u.ID, func(x *storage.User) error {
		x.FamilyName, x.GivenName, x.MiddleName = in.names["family_name"], in.names["given_name"], in.names["middle_name"]
		return nil
	}); err != nil {
		return p.internal(c, "save name", err)
	}
	p.record(c, &storage.AuditEvent{UserID: u.ID, Kind: "profile_changed"})
	return done(c, Path, "profile")
}

// contactChange is what a code to a new phone or email remembers.
type contactChange struct {
	Mode  string `json:"mode"`
	Login string `json:"login"`
}

// readContact reads the form of a new phone or email.
func readContact(c echo.Context) (mode, login string) {
	mode, login = c.FormValue("mode"), c.FormValue("login")
	if mode != "email" {
		mode = "phone"
	}
	if len(login) > 320 {
		login = login[:320]
	}
	return mode, login
}

// current reports whether who is the account's own, verified phone or email.
func current(u *storage.User, who contact.Contact) bool {
	if who.Kind == contact.Email {
		return u.Email != nil && *u.Email == who.Value && u.EmailVerified
	}
	return u.Phone != nil && *u.Phone == who.Value && u.PhoneVerified
}

// submitContact starts the change of the phone or email: checked at once, then (after
// a recent sign-in) a code goes to the new one.
func (p *Part) submitContact(c echo.Context, v *visit) error {
	mode, login := readContact(c)
	who, err := contact.Parse(contact.Kind(mode), login)
	if err != nil {
		return p.profilePage(c, v, http.StatusBadRequest, profileInput{mode: mode, login: login, contactErr: err.Error()})
	}
	if current(v.user, who) {
		msg := msgSamePhone
		if who.Kind == contact.Email {
			msg = msgSameEmail
		}
		return p.profilePage(c, v, http.StatusBadRequest, profileInput{mode: mode, login: login, contactErr: msg})
	}
	return p.sensitive(c, v, change{Action: actionContact, Mode: mode, Login: login})
}

// startContactChange refuses a phone or email another account holds and sends the
// code to a new one. The person is signed in and recently proved it, so saying that
// it is taken tells nothing a stranger could learn; which account holds it is not said.
func (p *Part) startContactChange(c echo.Context, v *visit, mode, login string) error {
	ctx := c.Request().Context()
	who, err := contact.Parse(contact.Kind(mode), login)
	if err != nil {
		return p.profilePage(c, v, http.StatusBadRequest, profileInput{mode: mode, login: login, contactErr: err.Error()})
	}
	refuse := func(status int, msg string) error {
		return p.profilePage(c, v, status, profileInput{mode: mode, login: login, contactErr: msg})
	}
	// Each try may tell whether a number has an account: a few an hour.
	n, err := p.store.Hit(ctx, "account:contact:"+v.user.ID, time.Hour)
	if err != nil {
		return p.internal(c, "count contact changes", err)
	}
	if n > p.limits.ContactChecks {
		return refuse(http.StatusTooManyRequests, msgContactsLimit)
	}
	holder, err := p.byContact(c, who)
	if err != nil {
		return p.internal(c, "find account of contact", err)
	}
	if holder != nil && holder.ID != v.user.ID {
		if who.Kind == contact.Email {
			return refuse(http.StatusConflict, msgTakenEmail)
		}
		return refuse(http.StatusConflict, msgTakenPhone)
	}
	payload, _ := json.Marshal(contactChange{Mode: mode, Login: login}) // strings always marshal
	flow, err := p.codes.Start(ctx, otp.Request{
		Purpose: otp.ContactChange, To: who, UserID: v.user.ID, IP: c.RealIP(), Payload: string(payload),
	})
	if err != nil {
		msg, ok := otp.Explain(err)
		if !ok {
			return p.internal(c, "send contact code", err)
		}
		return refuse(otp.Status(err), msg)
	}
	return c.Redirect(http.StatusSeeOther, pathContact+"/confirm?"+url.Values{"flow": {flow.ID}}.Encode())
}

// byContact finds the account with who, or nil.
func (p *Part) byContact(c echo.Context, who contact.Contact) (*storage.User, error) {
	var u *storage.User
	var err error
	if who.Kind == contact.Email {
		u, err = p.store.UserByEmail(c.Request().Context(), who.Value)
	} else {
		u, err = p.store.UserByPhone(c.Request().Context(), who.Value)
	}
	if storage.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

func contactPage(flow *storage.OneTimeCode) codePage {
	heading := "Подтвердите телефон"
	if flow != nil && flow.Channel == string(contact.Email) {
		heading = "Подтвердите email"
	}
	return codePage{base: pathContact, heading: heading, button: "Подтвердить", back: Path, backText: "Вернуться в Личный кабинет"}
}

func (p *Part) showContactConfirm(c echo.Context, v *visit) error {
	flow, err := p.loadFlow(c, v, c.QueryParam("flow"), otp.ContactChange)
	if err != nil {
		return p.internal(c, "load contact change", err)
	}
	if flow == nil {
		return p.expiredFlow(c, Path)
	}
	return p.confirmPage(c, flow, contactPage(flow), http.StatusOK, "", "")
}

func (p *Part) submitContactResend(c echo.Context, v *visit) error {
	flow, _ := p.loadFlow(c, v, c.FormValue("flow"), otp.ContactChange)
	return p.resend(c, v, otp.ContactChange, contactPage(flow), Path)
}

// submitContactConfirm checks the code and puts the new phone or email on the account,
// verified.
func (p *Part) submitContactConfirm(c echo.Context, v *visit) error {
	before, _ := p.loadFlow(c, v, c.FormValue("flow"), otp.ContactChange)
	flow, answered, err := p.verify(c, v, otp.ContactChange, contactPage(before), Path)
	if answered {
		return err
	}
	var ch contactChange
	_ = json.Unmarshal([]byte(flow.Payload), &ch) // ours; a broken one only loses what was typed
	dest := flow.Destination
	email := flow.Channel == string(contact.Email)
	_, err = p.store.UpdateUser(c.Request().Context(), v.user.ID, func(u *storage.User) error {
		if email {
			u.Email, u.EmailVerified = &dest, true
		} else {
			u.Phone, u.PhoneVerified = &dest, true
		}
		return nil
	})
	if storage.IsConflict(err) {
		// Another account took it between the code and now.
		in := profileInput{mode: "phone", login: ch.Login, contactErr: msgTakenPhone}
		if email {
			in.mode, in.contactErr = "email", msgTakenEmail
		}
		return p.profilePage(c, v, http.StatusConflict, in)
	}
	if err != nil {
		return p.internal(c, "change contact", err)
	}
	kind, key := "phone_changed", "phone"
	if email {
		kind, key = "email_changed", "email"
	}
	p.record(c, &storage.AuditEvent{UserID: v.user.ID, Kind: kind, Method: "otp", Detail: otp.MaskedDestination(flow.Channel, dest)})
	return done(c, Path, key)
}
