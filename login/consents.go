package login

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/astral/idp/storage"
)

// RegistrationConsents are the consents a person gives by registering: the documents
// in force (registrationDocuments), accepted at now from this request. Parts that open
// accounts of their own (registration through an upstream) record the same ones as
// the registration form does.
func RegistrationConsents(c echo.Context, now time.Time) []storage.Consent {
	out := make([]storage.Consent, 0, len(registrationDocuments))
	for _, d := range registrationDocuments {
		out = append(out, storage.Consent{Document: d.Name, Version: d.Version, AcceptedAt: now,
			IP: c.RealIP(), UserAgent: c.Request().UserAgent()})
	}
	return out
}
