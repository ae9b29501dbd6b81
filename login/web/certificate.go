package web

import "strings"

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
	// Via is how the refused signature came: "agent" puts Error next to the
	// agent's list (and keeps the manual form folded), anything else next to the
	// signature field, where the person pasted it.
	Via string
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
	Owner string // "Иванов Иван Иванович", from the certificate
	// Certificate is what the person registers with, shown so they can see it is
	// the right one before a code is sent.
	Certificate CertificateInfo
	Flow        string // hidden field
	Action      string
	Error       string
	FieldErrors map[string]string // "login"
	BackURL     string
}

// CertificateInfo is a certificate as a person reads it: in the registration's
// contact step and in the cabinet's "Способы входа".
type CertificateInfo struct {
	Owner        string // "Иванов Иван Иванович"
	Organization string // "ООО «Ромашка»"; empty for a private person
	// OrganizationINN tells apart the certificates of one director of two companies.
	OrganizationINN string
	// IDs are the owner's numbers, present ones only: "СНИЛС 112-233-445 95",
	// "ИНН 771234567890", "ОГРНИП 304500116000157".
	IDs      []string
	Issuer   string // the CA's name
	NotAfter string // 02.01.2006
	Expired  bool
}

// OrganizationLine is the organization with its INN: "ООО «Ромашка» · ИНН 7701234567".
func (c CertificateInfo) OrganizationLine() string {
	if c.Organization == "" || c.OrganizationINN == "" {
		return c.Organization
	}
	return c.Organization + " · ИНН\u00a0" + c.OrganizationINN
}

// Numbers is IDs on one line: "СНИЛС 112-233-445 95 · ИНН 770000000000".
func (c CertificateInfo) Numbers() string { return strings.Join(c.IDs, " · ") }

// Validity is the issuer and the end of validity on one line: "Издатель: Тестовый
// УЦ · действителен до 31.12.2049", or "… · срок действия истек 01.01.2020".
func (c CertificateInfo) Validity() string {
	var parts []string
	if c.Issuer != "" {
		parts = append(parts, "Издатель: "+c.Issuer)
	}
	switch {
	case c.NotAfter == "":
	case c.Expired:
		parts = append(parts, "срок действия истек "+c.NotAfter)
	default:
		parts = append(parts, "действителен до "+c.NotAfter)
	}
	return strings.Join(parts, " · ")
}
