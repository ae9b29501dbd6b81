package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/astral/idp/storage"
)

// claimScope says which scope grants each claim we know; a claim asked for through the
// "claims" request parameter is released only when the client may have its scope.
var claimScope = map[string]string{
	"name": oidc.ScopeProfile, "family_name": oidc.ScopeProfile, "given_name": oidc.ScopeProfile,
	"middle_name": oidc.ScopeProfile, "preferred_username": oidc.ScopeProfile, "updated_at": oidc.ScopeProfile,
	"email": oidc.ScopeEmail, "email_verified": oidc.ScopeEmail,
	"phone_number": oidc.ScopePhone, "phone_number_verified": oidc.ScopePhone,
	// Asking for these by name never releases them to a client not allowed the scope:
	// effectiveScopes adds the scope only where the client may have it.
	"birthdate": ScopeGosuslugi, "snils": ScopeGosuslugi, ClaimGosuslugiTrusted: ScopeGosuslugi,
}

// claimsRequest is the OpenID Connect "claims" request parameter (Core §5.5): only
// the claim names matter here; "essential" does not change what we may release.
type claimsRequest struct {
	UserInfo map[string]json.RawMessage `json:"userinfo"`
	IDToken  map[string]json.RawMessage `json:"id_token"`
}

// parseClaimsRequest reads the parameter; a malformed one is an invalid_request.
func parseClaimsRequest(raw string) (*claimsRequest, error) {
	if raw == "" {
		return &claimsRequest{}, nil
	}
	var cr claimsRequest
	if err := json.Unmarshal([]byte(raw), &cr); err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("claims parameter is not valid JSON").WithParent(err)
	}
	return &cr, nil
}

// effectiveScopes adds to scopes the scopes of the claims asked for by name in target
// ("userinfo" or "id_token"), where the client may have them.
func effectiveScopes(scopes []string, rawClaims, target string, allowed func(string) bool) []string {
	cr, err := parseClaimsRequest(rawClaims)
	if err != nil {
		return scopes
	}
	asked := cr.UserInfo
	if target == "id_token" {
		asked = cr.IDToken
	}
	out := slices.Clone(scopes)
	for name := range asked {
		if sc, ok := claimScope[name]; ok && allowed(sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// fillUserinfo writes the claims of u that scopes grant.
func fillUserinfo(info *oidc.UserInfo, u *storage.User, scopes []string) {
	info.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.FamilyName = u.FamilyName
			info.GivenName = u.GivenName
			info.MiddleName = u.MiddleName
			info.Name = fullName(u)
			info.PreferredUsername = preferredUsername(u)
			info.UpdatedAt = oidc.FromTime(u.UpdatedAt)
		case oidc.ScopeEmail:
			if u.Email != nil {
				info.Email = *u.Email
				info.EmailVerified = oidc.Bool(u.EmailVerified)
			}
		case oidc.ScopePhone:
			if u.Phone != nil {
				info.PhoneNumber = *u.Phone
				info.PhoneNumberVerified = oidc.Bool(u.PhoneVerified)
			}
		}
	}
}

// fullName is the Russian order: Фамилия Имя Отчество.
func fullName(u *storage.User) string {
	parts := make([]string, 0, 3)
	for _, p := range []string{u.FamilyName, u.GivenName, u.MiddleName} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, " ")
}

func preferredUsername(u *storage.User) string {
	switch {
	case u.Email != nil && *u.Email != "":
		return *u.Email
	case u.Phone != nil:
		return *u.Phone
	}
	return ""
}

// ClaimGosuslugiTrusted says whether the person's Gosuslugi account is confirmed
// (ESIA's "trusted": identity proven in person or by a qualified signature).
const ClaimGosuslugiTrusted = "gosuslugi_trusted"

// gosuslugiConnector is the connector id of ESIA's linked identities
// (login/upstream/esia; the provider cannot import it: login imports the provider).
const gosuslugiConnector = "esia"

// gosuslugiClaims are the claims of a linked ESIA identity released with the scope
// gosuslugi, as the connector stores them: family_name, given_name, middle_name,
// birthdate (YYYY-MM-DD), snils ("123-456-789 64") and gosuslugi_trusted.
var gosuslugiClaims = []string{"family_name", "given_name", "middle_name", "birthdate", "snils", ClaimGosuslugiTrusted}

// fillGosuslugi writes the Gosuslugi-verified claims of u's linked ESIA identity when
// scopes has gosuslugi (only a client allowed the scope ever gets it in its scopes).
// They replace the account's own names: a product asking for them wants what the
// state verified. An account without a linked identity gets none of them.
func (s *opStorage) fillGosuslugi(ctx context.Context, info *oidc.UserInfo, u *storage.User, scopes []string) error {
	if !slices.Contains(scopes, ScopeGosuslugi) {
		return nil
	}
	claims, err := gosuslugiOnce(ctx, u.ID, s.loadGosuslugi)
	if err != nil {
		return err
	}
	for name, v := range claims { // loadGosuslugi kept only gosuslugiClaims
		str, _ := v.(string)
		switch name {
		case "family_name":
			info.FamilyName = str
		case "given_name":
			info.GivenName = str
		case "middle_name":
			info.MiddleName = str
		case "birthdate":
			info.Birthdate = str
		default:
			info.AppendClaims(name, v)
		}
	}
	return nil
}

// loadGosuslugi reads the claims of the account's linked ESIA identity (nil when none).
func (s *opStorage) loadGosuslugi(ctx context.Context, userID string) (map[string]any, error) {
	ids, err := s.store.UserIdentities(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("load identities: %w", err)
	}
	for _, id := range ids {
		if id.Connector != gosuslugiConnector || id.Claims == "" {
			continue
		}
		var all map[string]any
		if err := json.Unmarshal([]byte(id.Claims), &all); err != nil {
			return nil, fmt.Errorf("claims of identity %s: %w", id.ID, err)
		}
		out := make(map[string]any, len(gosuslugiClaims))
		for _, name := range gosuslugiClaims {
			if v, ok := all[name]; ok {
				out[name] = v
			}
		}
		return out, nil
	}
	return nil, nil
}
