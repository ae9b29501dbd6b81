package web

// CertificateData is the certificate page (login/certificate): the signing agent's
// list of certificates when the script finds one, and always the challenge with a
// field for a signature made elsewhere.
type CertificateData struct {
	Layout
	Heading   string // "Вход в Астрал.Отчет", "Вход в Личный кабинет", "Регистрация", "Привязка сертификата"
	Lead      string // a line under the heading, optional
	Action    string // POST the signature
	Challenge string // the exact text to sign
	// ChallengeID names the challenge in the form (hidden field "challenge").
	ChallengeID string
	// Mode and AuthRequestID come back with the form, only to show the page again
	// when its challenge is gone.
	Mode          string
	AuthRequestID string
	// ChallengeB64 is Challenge in standard base64, for the agent's POST /sign.
	ChallengeB64 string
	AgentURL     string // the signing agent, without a trailing slash
	// RefreshURL is this page anew ("Обновить"): the script asks the agent again
	// instead of following it.
	RefreshURL  string
	DescribeURL string // POST DERs here for owner, organization, issuer, validity
	Error       string // a Russian sentence shown with role="alert"
	// UpstreamsTitle heads the other ways: "или авторизуйтесь через" /
	// "или зарегистрируйтесь через"; the block is shown only with Upstreams.
	UpstreamsTitle string
	Upstreams      []UpstreamLink
	BackURL        string
	BackText       string
}

// CertificateRegisterData asks a person registering with a certificate for the phone
// or email to confirm.
type CertificateRegisterData struct {
	Layout
	ContactFields
	Owner       string // "Иванов Иван Иванович", from the certificate
	Flow        string // hidden field
	Action      string
	Error       string
	FieldErrors map[string]string // "login"
	BackURL     string
}
