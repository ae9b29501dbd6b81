package certificate

import (
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/login/gost"
	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

// thumbprint is a certificate's SHA-1 thumbprint as stored: lower-case hex.
func thumbprint(c *gost.Certificate) string { return strings.ToLower(c.Thumbprint) }

// issuerName names the issuing CA for a person: its common name, or organization.
func issuerName(c *gost.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.Organization
}

// record is what storage keeps of a linked certificate.
func record(c *gost.Certificate) *storage.Certificate {
	r := &storage.Certificate{
		Thumbprint: thumbprint(c), Owner: c.Subject.Owner(), Organization: c.Subject.Organization,
		SNILS: c.Subject.SNILS, INN: c.Subject.INN, INNLE: c.Subject.INNLE, OGRN: c.Subject.OGRN, OGRNIP: c.Subject.OGRNIP,
		Issuer: issuerName(c), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), DER: c.Raw,
	}
	if c.X509 != nil && c.X509.SerialNumber != nil {
		r.Serial = c.X509.SerialNumber.Text(16)
	}
	return r
}

// displayName is the line the cabinet shows for a linked certificate.
func displayName(c *gost.Certificate) string {
	parts := []string{c.Subject.Owner()}
	if o := c.Subject.Organization; o != "" && o != parts[0] {
		parts = append(parts, o)
	}
	parts = append(parts, "до "+c.NotAfter.UTC().Format("02.01.2006"))
	return strings.Join(parts, ", ")
}

// personName splits the owner's name: the family name from SN, the given and middle
// names from G ("Иван Иванович"), as Russian qualified certificates write them; a
// certificate without them falls back to the common name "Иванов Иван Иванович".
func personName(n gost.Name) (family, given, middle string) {
	family = strings.TrimSpace(n.Surname)
	g := strings.Fields(n.GivenName)
	if family == "" && len(g) == 0 {
		f := strings.Fields(n.CommonName)
		if len(f) == 0 {
			return "", "", ""
		}
		family, g = f[0], f[1:]
	}
	if len(g) > 0 {
		given = g[0]
		middle = strings.Join(g[1:], " ")
	}
	return family, given, middle
}

// description is one certificate of the agent's list as the page shows it.
type description struct {
	Owner        string `json:"owner"`
	Organization string `json:"organization,omitempty"`
	Issuer       string `json:"issuer,omitempty"`
	NotAfter     string `json:"not_after,omitempty"` // 02.01.2006
	Expired      bool   `json:"expired,omitempty"`
}

// describe: POST /certificate/describe with der=… (base64, repeated) answers what
// each certificate says, in order; one that does not parse reads as unknown. The
// page's script shows these, parsed by the code that verifies the signatures,
// whatever names the agent gives.
func (p *Part) describe(c echo.Context) error {
	if err := c.Request().ParseForm(); err != nil {
		return c.JSON(http.StatusBadRequest, map[string]string{"error": "bad form"})
	}
	ders := c.Request().PostForm["der"]
	if len(ders) > maxDescribe {
		ders = ders[:maxDescribe]
	}
	now := p.cfg.Store.Now()
	out := make([]description, 0, len(ders))
	for _, text := range ders {
		d := description{Owner: "Сертификат не распознан"}
		if len(text) <= maxDERText {
			if der, err := base64.StdEncoding.DecodeString(text); err == nil {
				if cert, err := gost.ParseCertificate(der); err == nil {
					d = description{Owner: cert.Subject.Owner(), Organization: cert.Subject.Organization,
						Issuer: issuerName(cert), NotAfter: cert.NotAfter.UTC().Format("02.01.2006"), Expired: now.After(cert.NotAfter)}
				}
			}
		}
		out = append(out, d)
	}
	return c.JSON(http.StatusOK, out)
}

// Describe is a linked certificate as a person reads it (the cabinet's "Способы
// входа", the registration's contact step): owner, organization with its INN, the
// owner's SNILS and INN (OGRNIP), issuer and validity at now. The organization's
// OGRN is left out: its INN already names it, and the lines stay short.
func Describe(c *storage.Certificate, now time.Time) web.CertificateInfo {
	info := web.CertificateInfo{Owner: c.Owner, Issuer: c.Issuer, Expired: !c.NotAfter.IsZero() && now.After(c.NotAfter)}
	if c.Organization != c.Owner {
		// An entrepreneur's certificate names him twice.
		info.Organization, info.OrganizationINN = c.Organization, c.INNLE
	}
	if !c.NotAfter.IsZero() {
		info.NotAfter = c.NotAfter.UTC().Format("02.01.2006")
	}
	for _, n := range []struct{ label, value string }{
		{"СНИЛС", formatSNILS(c.SNILS)}, {"ИНН", c.INN}, {"ОГРНИП", c.OGRNIP},
	} {
		if n.value != "" {
			info.IDs = append(info.IDs, n.label+"\u00a0"+n.value) // the label never wraps away from its number
		}
	}
	return info
}

// formatSNILS writes the 11 digits of a SNILS as people know it: 112-233-445 95.
// Anything else is shown as the certificate has it.
func formatSNILS(s string) string {
	if len(s) != 11 || strings.Trim(s, "0123456789") != "" {
		return s
	}
	return s[0:3] + "-" + s[3:6] + "-" + s[6:9] + "\u00a0" + s[9:11]
}
