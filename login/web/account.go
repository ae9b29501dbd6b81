package web

// The pages of the account cabinet ("Личный кабинет", login/account). Each page is
// one template named "account…" (wide, with the cabinet's navigation) and embeds
// Cabinet; the re-authentication page ("reauth") is a narrow card like the sign-in.

// NavItem is one entry of the cabinet's navigation.
type NavItem struct {
	Icon    string // id for the "cabinet-icon" template
	Text    string
	URL     string
	Current bool // the page shown: aria-current="page"
}

// Cabinet is what every cabinet page shows around its section.
type Cabinet struct {
	Layout
	Nav          []NavItem
	Heading      string // the section: "Профиль", "Активные сеансы"
	Lead         string // one sentence under the heading, optional
	UserName     string // "Иванов Иван Петрович", or the phone or email when there is no name
	UserContact  string // the phone or email under the name; empty when UserName is one
	Notice       string // the outcome of a change ("Данные сохранены"), role="status"
	LogoutAction string // POST of "Выйти"
}

// AccountData is the profile: the person's name and their phone and email.
type AccountData struct {
	Cabinet
	ProfileAction string
	Names         []NameField   // Фамилия, Имя, Отчество
	Contacts      []ContactItem // the phone, then the email
}

// NameField is one part of the person's name.
type NameField struct {
	ID           string // the field's id and name: "family_name"
	Label        string // "Фамилия"
	Autocomplete string // "family-name"
	Value        string
	Error        string
}

// ContactItem is the phone or the email of the profile, with the form that changes it.
type ContactItem struct {
	Mode     string // "phone" or "email"
	Label    string // "Телефон", "Email"
	Value    string // as shown ("+7 (910) 594-08-99"); empty: none yet
	Verified bool
	Action   string // POST of the new value (mode, login)
	Input    string // the new value as typed, sent back with an error
	Error    string // next to the new value's field
	Open     bool   // the form starts unfolded (after an error)
}

// PasswordData is the password page: change it, or set a first one.
type PasswordData struct {
	Cabinet
	HasPassword bool
	Action      string
	FieldErrors map[string]string // "current_password", "new_password"
}

// MethodsData is "Способы входа": what the person can sign in with.
type MethodsData struct {
	Cabinet
	Methods []SignInMethod
	Links   []UpstreamLink // "Привязать …": connectors not linked yet
}

// SignInMethod is one way into the account.
type SignInMethod struct {
	Icon         string // id for the "cabinet-icon" template: "lock", "phone", "mail", "plane", "gov", "key"
	Title        string // "Пароль", "Телефон", "Telegram"
	Detail       string // "+7 (910) 594-08-99", the upstream display name
	Status       string // "Задан", "Подтвержден", "Привязан 22.11.2026"
	Off          bool   // not a way in (yet): shown muted
	ManageURL    string // a link to where it is changed, with ManageText
	ManageText   string
	UnlinkAction string // POST that unlinks it (field "identity" = ID); empty: no button
	ID           string
	Error        string // why it was not unlinked
	// Certificate, for a linked certificate, replaces Detail with what it says:
	// owner, organization, SNILS and INN, issuer and validity.
	Certificate *CertificateInfo
}

// SessionsData is "Активные сеансы".
type SessionsData struct {
	Cabinet
	Sessions        []SessionItem
	EndAction       string // POST, field "session"
	EndOthersAction string // POST; the button is shown when there are other sessions
	Others          int
}

// SessionItem is one live session of the account.
type SessionItem struct {
	ID         string
	Browser    string // "Chrome 131"
	OS         string // "Windows 10"
	Mobile     bool
	IP         string
	Started    string // "22.11.2026 14:05", Moscow time
	LastActive string
	Products   []string // names of the products signed in through it
	Current    bool     // "Этот сеанс"
}

// HistoryData is "История входов": one page of the account's events.
type HistoryData struct {
	Cabinet
	Events     []EventItem
	Page       int
	Pages      int
	LaterURL   string // "Позже": newer events; empty on the first page
	EarlierURL string // "Ранее": older events; empty on the last page
}

// EventItem is one row of the history.
type EventItem struct {
	Time    string // "22.11.2026 14:05", Moscow time
	ISO     string // the same instant for <time datetime>
	What    string // "Вход", "Неудачная попытка входа", "Смена пароля"
	Method  string // "Пароль", "Код из SMS", "Telegram"; empty: none
	Product string // the product's name; empty: none
	IP      string
	Result  string // "Успешно", "Неверный пароль"
	Failed  bool
}

// ServicesData is "Мои сервисы": the products the account has used.
type ServicesData struct {
	Cabinet
	Services     []ServiceItem
	RevokeAction string // POST, field "client"
}

// ServiceItem is one product.
type ServiceItem struct {
	ID       string
	Name     string
	HomeURL  string // the product's own page; empty: no link
	LastUsed string
	Active   bool // holds tokens: "Отозвать доступ" is offered
}

// ReauthData asks a person who signed in a while ago to prove again who they are
// before a sensitive change.
type ReauthData struct {
	Layout
	Heading       string
	Lead          string
	Action        string // POST of the password (fields "pending", "password"); empty: no password form
	Pending       string // the change that waits, hidden
	PasswordError string
	Codes         []CodeOption   // "Получить код": for an account without a password
	Upstreams     []UpstreamLink // sign in again upstream: for an account with neither
	BackURL       string
}

// CodeOption sends a re-authentication code to the account's phone or email.
type CodeOption struct {
	Action  string // POST (fields "pending", "channel")
	Channel string // "phone" or "email"
	Label   string // "Получить код по SMS"
	To      string // masked: "+7 (910) ***-**-99"
}
