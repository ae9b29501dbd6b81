package storage

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

var (
	lockingClause     = clause.Locking{Strength: "UPDATE"}
	lockingSkipLocked = clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"}
)

// StringList is a list of strings kept as one JSON text column: lists here are short,
// always read whole, and never queried by element.
type StringList []string

// Value implements driver.Valuer.
func (l StringList) Value() (driver.Value, error) {
	if l == nil {
		return "[]", nil
	}
	b, err := json.Marshal([]string(l))
	return string(b), err
}

// Scan implements sql.Scanner.
func (l *StringList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*l = nil
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan StringList from %T", src)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("scan StringList: %w", err)
	}
	*l = out
	return nil
}

// GormDataType tells gorm the column type.
func (StringList) GormDataType() string { return "text" }

// User is a person's account.
type User struct {
	ID            string  `gorm:"primaryKey;size:64"`
	Phone         *string `gorm:"uniqueIndex;size:32"`  // E.164
	Email         *string `gorm:"uniqueIndex;size:320"` // lower-case
	PhoneVerified bool
	EmailVerified bool
	PasswordHash  string `gorm:"size:256"`
	FamilyName    string `gorm:"size:200"`
	GivenName     string `gorm:"size:200"`
	MiddleName    string `gorm:"size:200"`
	Blocked       bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Client is a product registered with the provider.
type Client struct {
	ID                     string     `gorm:"primaryKey;size:64"`
	Name                   string     `gorm:"size:200"`
	SecretHash             string     `gorm:"size:128"` // keyed SHA-256, hex; empty for public clients
	Type                   string     `gorm:"size:16"`  // web | spa | native
	RedirectURIs           StringList `gorm:"column:redirect_uris;type:text"`
	PostLogoutRedirectURIs StringList `gorm:"column:post_logout_redirect_uris;type:text"`
	GrantTypes             StringList `gorm:"type:text"`
	Scopes                 StringList `gorm:"type:text"`
	BackchannelLogoutURI   string     `gorm:"column:backchannel_logout_uri;size:2048"`
	HomeURL                string     `gorm:"column:home_url;size:2048"`
	Source                 string     `gorm:"size:16"` // "file" (clients.yaml) or "cli"
	CreatedAt              time.Time
	UpdatedAt              time.Time
}

// Session is a browser's single sign-on session. The cookie carries a random value;
// the row keeps only its hash.
type Session struct {
	ID         string     `gorm:"primaryKey;size:64"` // public id, the "sid" claim
	TokenHash  string     `gorm:"uniqueIndex;size:64"`
	UserID     string     `gorm:"index;size:64"`
	AuthTime   time.Time  // when the person last proved who they are
	AMR        StringList `gorm:"column:amr;type:text"`
	ACR        string     `gorm:"column:acr;size:64"`
	IDP        string     `gorm:"column:idp;size:32"` // upstream connector of a federated sign-in
	UserAgent  string     `gorm:"size:512"`
	IP         string     `gorm:"column:ip;size:64"`
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time  `gorm:"index"`
	EndedAt    *time.Time `gorm:"index"`
}

// SessionClient records that a product received tokens through a session, so logout
// knows whom to tell.
type SessionClient struct {
	SessionID string `gorm:"primaryKey;size:64"`
	ClientID  string `gorm:"primaryKey;size:64"`
	CreatedAt time.Time
}

// AuthRequest is a pending (or completed) OpenID Connect authorization request.
type AuthRequest struct {
	ID                  string     `gorm:"primaryKey;size:64"`
	ClientID            string     `gorm:"size:64"`
	RedirectURI         string     `gorm:"type:text"`
	State               string     `gorm:"type:text"`
	Nonce               string     `gorm:"type:text"`
	Scopes              StringList `gorm:"type:text"`
	ResponseType        string     `gorm:"size:64"`
	ResponseMode        string     `gorm:"size:32"`
	CodeChallenge       string     `gorm:"type:text"`
	CodeChallengeMethod string     `gorm:"size:16"`
	Prompt              StringList `gorm:"type:text"`
	MaxAge              *int64
	LoginHint           string     `gorm:"type:text"`
	UILocales           StringList `gorm:"column:ui_locales;type:text"`
	ACRValues           StringList `gorm:"column:acr_values;type:text"`
	Claims              string     `gorm:"type:text"` // the "claims" request parameter, JSON
	HintSubject         string     `gorm:"size:64"`   // sub of a valid id_token_hint
	UserID              string     `gorm:"size:64"`
	SessionID           string     `gorm:"size:64"`
	AuthTime            time.Time
	AMR                 StringList `gorm:"column:amr;type:text"`
	ACR                 string     `gorm:"column:acr;size:64"`
	IDP                 string     `gorm:"column:idp;size:64"` // upstream connector name for amr "fed"
	Done                bool
	CodeHash            *string `gorm:"uniqueIndex;size:64"`
	CodeUsedAt          *time.Time
	// CodeReusedAt is when the code was presented again. Token creation from the
	// request checks it in the same statement as its inserts, so a winner that creates
	// its tokens after the second presentation revoked them is refused.
	CodeReusedAt *time.Time
	CreatedAt    time.Time
	ExpiresAt    time.Time `gorm:"index"`
	// Account is the request's account as ExchangeCode found it when it spent the
	// code (nil otherwise, and when there is none).
	Account *User `gorm:"-"`
}

// AccessToken records an access token (a JWT whose jti is ID) that a row must be
// able to end before its exp: a person's token from a code exchange without a refresh
// token, found by account, session, code or product when those are revoked. The
// tokens issued most often have no row: a product's own (client_credentials), whose
// revocation adds a row here that only denies it (see Store.DenyAccessToken), and one
// issued with a refresh token, whose state is its family's row (RefreshFamily). No
// request looks tokens up by client alone (only removing a product does, which may
// scan), so client_id is indexed behind user_id, where the cabinet and revoking a
// product's access need it.
type AccessToken struct {
	ID            string     `gorm:"primaryKey;size:64"`
	ClientID      string     `gorm:"index:idx_access_tokens_person_client,priority:2,where:user_id <> '';size:64"`
	UserID        string     `gorm:"index:idx_access_tokens_person_client,priority:1,where:user_id <> '';size:64"`
	SessionID     string     `gorm:"index:idx_access_tokens_person_session,where:session_id <> '';size:64"`
	AuthRequestID string     `gorm:"index:idx_access_tokens_auth_request,where:auth_request_id <> '';size:64"`
	Scopes        StringList `gorm:"type:text"`
	Audience      StringList `gorm:"type:text"`
	Claims        string     `gorm:"type:text"` // the "claims" request parameter, for userinfo
	CreatedAt     time.Time
	ExpiresAt     time.Time `gorm:"index"`
	RevokedAt     *time.Time
}

// RefreshFamily is a refresh token and every token rotated from it: one row, whatever
// the number of rotations. The client holds "<ID>.<Generation>.<secret>" (see
// refreshValue); a rotation increments Generation and replaces TokenHash in place, so a
// refresh writes one row of one table and no index (the indexed columns never change
// after the family is made). A token of an earlier generation presented again is a
// replay, recognised by its number, and revokes the family.
//
// The access tokens issued with the family's generations have no rows: their jti is
// "<AccessID>.<generation>", and they live while the family is not revoked and their
// generation is above AccessRevokedThrough. AccessID is a second identifier because an
// access token is shown to the product's APIs, while ID is known only to holders of
// the family's refresh tokens.
//
// The indexes are what revocation needs and no more: the account with its product
// (block, reset, the cabinet), the session (logout), the code it came from (a reused
// code), and the access tokens' identifier. Expiry is not indexed: cleanup matches
// unindexed columns too and scans anyway.
type RefreshFamily struct {
	ID         string `gorm:"primaryKey;size:64"`
	AccessID   string `gorm:"uniqueIndex;size:64"`
	Generation int64  // the live generation; every earlier one is spent
	TokenHash  string `gorm:"size:64"` // of the live generation's whole token
	// AccessRevokedThrough: the access tokens of generations up to this one were
	// revoked on their own (RFC 7009); 0 for none.
	AccessRevokedThrough int64
	ClientID             string     `gorm:"index:idx_refresh_families_user_client,priority:2;size:64"`
	UserID               string     `gorm:"index:idx_refresh_families_user_client,priority:1;size:64"`
	SessionID            string     `gorm:"index:idx_refresh_families_session,where:session_id <> '';size:64"`
	AuthRequestID        string     `gorm:"index:idx_refresh_families_auth_request,where:auth_request_id <> '';size:64"`
	Scopes               StringList `gorm:"type:text"`
	Audience             StringList `gorm:"type:text"`
	AuthTime             time.Time
	AMR                  StringList `gorm:"column:amr;type:text"`
	ACR                  string     `gorm:"column:acr;size:64"`
	IDP                  string     `gorm:"column:idp;size:64"`
	Claims               string     `gorm:"type:text"` // the "claims" request parameter, kept for the family's access tokens
	CreatedAt            time.Time
	RotatedAt            time.Time // when the live generation was issued
	ExpiresAt            time.Time // idle expiry of the live generation
	FamilyExpiresAt      time.Time // absolute expiry
	AccessExpiresAt      time.Time // exp of the access token issued with the live generation
	RevokedAt            *time.Time
	// Account is the family's account as a rotation found it (nil otherwise, and when
	// there is none).
	Account *User `gorm:"-"`
}

// SigningKey is a token-signing key. The private key is encrypted with the master key.
type SigningKey struct {
	ID            string `gorm:"primaryKey;size:64"` // kid
	Algorithm     string `gorm:"uniqueIndex:idx_key_generation;size:16"`
	Generation    int64  `gorm:"uniqueIndex:idx_key_generation"` // one key per algorithm and rotation period
	PublicKeyDER  []byte `gorm:"column:public_key_der"`
	PrivateKeyEnc []byte
	CreatedAt     time.Time
	ActiveAt      time.Time // signs from here on (published in JWKS before that)
	RetireAt      time.Time // stops signing
	ExpiresAt     time.Time `gorm:"index"` // leaves JWKS; every token it signed has expired
}

// RateCounter counts events of one key in one fixed window.
type RateCounter struct {
	Key         string    `gorm:"primaryKey;size:200"`
	WindowStart time.Time `gorm:"primaryKey"`
	Count       int64
	ExpiresAt   time.Time `gorm:"index"`
}

// LogoutDelivery is one back-channel logout notification owed to a product.
type LogoutDelivery struct {
	ID            string `gorm:"primaryKey;size:64"`
	ClientID      string `gorm:"size:64"`
	UserID        string `gorm:"size:64"`
	SessionID     string `gorm:"size:64"`
	URI           string `gorm:"column:uri;size:2048"`
	Attempts      int
	NextAttemptAt time.Time `gorm:"index"`
	DeliveredAt   *time.Time
	GaveUpAt      *time.Time
	LastError     string `gorm:"size:1024"`
	CreatedAt     time.Time
}

// AuditEvent is one security-relevant event of an account (sign-in, failure, block).
type AuditEvent struct {
	ID        uint64    `gorm:"primaryKey;autoIncrement"`
	UserID    string    `gorm:"index:idx_audit_user_time;size:64"`
	Kind      string    `gorm:"size:32"` // signin, signin_failed, blocked, …
	Method    string    `gorm:"size:32"` // pwd, otp, swk, fed
	ClientID  string    `gorm:"size:64"`
	IP        string    `gorm:"column:ip;size:64"`
	UserAgent string    `gorm:"size:512"`
	Detail    string    `gorm:"size:512"`
	CreatedAt time.Time `gorm:"index:idx_audit_user_time"`
}

var allModels = []any{
	&User{}, &Client{}, &Session{}, &SessionClient{}, &AuthRequest{}, &AccessToken{},
	&RefreshFamily{}, &SigningKey{}, &RateCounter{}, &LogoutDelivery{}, &AuditEvent{},
	&OneTimeCode{}, &Consent{}, &Identity{}, &Certificate{},
}
