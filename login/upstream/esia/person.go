package esia

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/upstream"
)

// person is what ESIA says of the person: prns/{oid} and its verified contacts.
type person struct {
	LastName   string `json:"lastName"`
	FirstName  string `json:"firstName"`
	MiddleName string `json:"middleName"`
	BirthDate  string `json:"birthDate"` // dd.MM.yyyy
	SNILS      string `json:"snils"`
	Trusted    bool   `json:"trusted"`

	phone, email string // verified ones only, normalised
}

// contacts is prns/{oid}/ctts?embed=(elements).
type contacts struct {
	Elements []struct {
		Type   string `json:"type"`   // MBT mobile, EML email, PHN home phone, CEM work email
		Value  string `json:"value"`  // "+7(910)5940899", "a@b.ru"
		Status string `json:"vrfStu"` // VERIFIED, NOT_VERIFIED
	} `json:"elements"`
}

// person reads the person and the contacts with the access token.
func (c *Connector) person(ctx context.Context, oid, accessToken string) (*person, error) {
	var p person
	if err := c.getJSON(ctx, PathPersons+oid, accessToken, "person", &p); err != nil {
		return nil, err
	}
	var cs contacts
	if err := c.getJSON(ctx, PathPersons+oid+"/ctts?embed=(elements)", accessToken, "contacts", &cs); err != nil {
		return nil, err
	}
	for _, e := range cs.Elements {
		if e.Status != "VERIFIED" {
			continue
		}
		switch e.Type {
		case "MBT":
			if ct, err := contact.ParsePhone(e.Value); err == nil && p.phone == "" {
				p.phone = ct.Value
			}
		case "EML":
			if ct, err := contact.ParseEmail(e.Value); err == nil && p.email == "" {
				p.email = ct.Value
			}
		}
	}
	return &p, nil
}

func (c *Connector) getJSON(ctx context.Context, path, accessToken, what string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("%s request: %w", what, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	body, err := c.do(req, what)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s answer: %w", what, err)
	}
	return nil
}

// identity checks what ESIA said and makes the identity of it.
func (p *person) identity(oid string) (upstream.Identity, error) {
	names := []*string{&p.LastName, &p.FirstName, &p.MiddleName}
	for _, n := range names {
		*n = strings.TrimSpace(*n)
		if !utf8.ValidString(*n) || len(*n) > 100 {
			return upstream.Identity{}, errors.New("person: a name that is not a name")
		}
	}
	if p.LastName == "" || p.FirstName == "" {
		return upstream.Identity{}, errors.New("person without a name (scope fullname not granted?)")
	}
	claims := map[string]any{
		ClaimFamilyName: p.LastName, ClaimGivenName: p.FirstName, ClaimTrusted: p.Trusted,
	}
	display := p.LastName + " " + p.FirstName
	if p.MiddleName != "" {
		claims[ClaimMiddleName] = p.MiddleName
		display += " " + p.MiddleName
	}
	if p.BirthDate != "" {
		d, err := time.Parse("02.01.2006", p.BirthDate)
		if err != nil {
			return upstream.Identity{}, fmt.Errorf("person: birth date %.20q is not dd.MM.yyyy", p.BirthDate)
		}
		claims[ClaimBirthdate] = d.Format(time.DateOnly)
	}
	if p.SNILS != "" {
		if !validSNILS(p.SNILS) {
			return upstream.Identity{}, fmt.Errorf("person: SNILS of %d characters is not one", len(p.SNILS))
		}
		claims[ClaimSNILS] = p.SNILS
	}
	if p.phone != "" {
		claims[ClaimPhone] = p.phone
	}
	if p.email != "" {
		claims[ClaimEmail] = p.email
	}
	return upstream.Identity{Connector: "esia", Subject: oid, DisplayName: display, Phone: p.phone, Email: p.email,
		Claims: claims}, nil
}

// validSNILS: 11 digits, written "123-456-789 64" by ESIA; the check number is
// ESIA's business, the form ours.
func validSNILS(s string) bool {
	if len(s) > 20 {
		return false
	}
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '-' || r == ' ':
		default:
			return false
		}
	}
	return digits == 11
}

// Profile implements upstream.Registrar: the names and the contacts ESIA verified.
func (c *Connector) Profile(id upstream.Identity) upstream.Profile {
	str := func(k string) string { s, _ := id.Claims[k].(string); return s }
	return upstream.Profile{FamilyName: str(ClaimFamilyName), GivenName: str(ClaimGivenName),
		MiddleName: str(ClaimMiddleName), Phone: id.Phone, Email: id.Email}
}
