package provider

import (
	"encoding/json"
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
