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
}

// AccessToken records an issued access token (a JWT whose jti is ID) so it can be
// revoked and introspected. Its person-related columns are indexed only where they
// matter: client_credentials tokens, the most frequent kind, then update two B-trees
// per insert (primary key, expiry) besides the table, and an access token issued with
// a refresh token generation (FamilyID set) is found through its family alone: the
// family's generations carry the same account, product and session, so revoking by
// any of those finds the family there (revokeTokensTx), and a refresh, the other most
// frequent insert, writes one index entry here instead of three. No request looks
// tokens up by client alone (only removing a product does, which may scan), so
// client_id is indexed behind user_id, where the cabinet and revoking a product's
// access need it.
type AccessToken struct {
	ID            string     `gorm:"primaryKey;size:64"`
	ClientID      string     `gorm:"index:idx_access_tokens_own_user_client,priority:2,where:user_id <> '' AND family_id = '';size:64"`
	UserID        string     `gorm:"index:idx_access_tokens_own_user_client,priority:1,where:user_id <> '' AND family_id = '';size:64"`
	SessionID     string     `gorm:"index:idx_access_tokens_own_session,where:session_id <> '' AND family_id = '';size:64"`
	FamilyID      string     `gorm:"index:idx_access_tokens_family,where:family_id <> '';size:64"` // refresh token family issued alongside, if any
	AuthRequestID string     `gorm:"index:idx_access_tokens_auth_request,where:auth_request_id <> '';size:64"`
	Scopes        StringList `gorm:"type:text"`
	Audience      StringList `gorm:"type:text"`
	Claims        string     `gorm:"type:text"` // the "claims" request parameter, for userinfo
	CreatedAt     time.Time
	ExpiresAt     time.Time `gorm:"index"`
	RevokedAt     *time.Time
}

// RefreshToken is one generation of a refresh token family. Rotation marks the old
// row spent and inserts a new one; presenting a spent row revokes the whole family.
//
// Every rotation inserts a row, so each index here is paid for on every refresh; the
// set is what revocation needs and no more: the family (replay, revocation), the
// session (logout) and the account with its product (block, reset, the cabinet). The
// token names its row (refreshValue), so the lookup is by primary key, and IDs in time
// order (newTokenID) put a batch's primary keys on the same last page. The code a
// family came from is found through its access tokens (see RevokeAuthRequestTokens);
// expiry is not indexed because cleanup also matches unindexed columns and scans
// anyway.
type RefreshToken struct {
	ID              string     `gorm:"primaryKey;size:64"`
	FamilyID        string     `gorm:"index;size:64"`
	TokenHash       string     `gorm:"size:64"` // of the whole token; found by ID (see refreshValue)
	ClientID        string     `gorm:"index:idx_refresh_tokens_user_client,priority:2;size:64"`
	UserID          string     `gorm:"index:idx_refresh_tokens_user_client,priority:1;size:64"`
	SessionID       string     `gorm:"index;size:64"`
	AuthRequestID   string     `gorm:"size:64"`
	Scopes          StringList `gorm:"type:text"`
	Audience        StringList `gorm:"type:text"`
	AuthTime        time.Time
	AMR             StringList `gorm:"column:amr;type:text"`
	ACR             string     `gorm:"column:acr;size:64"`
	IDP             string     `gorm:"column:idp;size:64"`
	Claims          string     `gorm:"type:text"` // the "claims" request parameter, kept for the family's access tokens
	CreatedAt       time.Time
	ExpiresAt       time.Time // idle expiry of this generation
	FamilyExpiresAt time.Time // absolute expiry of the family
	SpentAt         *time.Time
	RevokedAt       *time.Time
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
	&RefreshToken{}, &SigningKey{}, &RateCounter{}, &LogoutDelivery{}, &AuditEvent{},
	&OneTimeCode{}, &Consent{}, &Identity{}, &Certificate{},
}
