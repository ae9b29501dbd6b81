package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// OneTimeCode is a code sent to a phone or email to confirm it: registration, sign-in
// by code, password reset, a changed contact. Only a keyed hash of the code is kept.
type OneTimeCode struct {
	ID            string `gorm:"primaryKey;size:64"` // the flow id the browser carries
	Purpose       string `gorm:"size:32;index:idx_code_destination"`
	Channel       string `gorm:"size:16"` // sms | email
	Destination   string `gorm:"size:320;index:idx_code_destination"`
	CodeHash      string `gorm:"size:64"`
	Attempts      int
	ClientID      string `gorm:"size:64"`
	AuthRequestID string `gorm:"size:64"`
	UserID        string `gorm:"size:64"`   // the account a sign-in or reset code is for
	Payload       string `gorm:"type:text"` // what the flow must remember (JSON), e.g. a pending registration
	CreatedAt     time.Time
	ExpiresAt     time.Time `gorm:"index"`
	ConsumedAt    *time.Time
}

// Consent records that a person accepted a document: which version, when, from where.
type Consent struct {
	ID         uint64 `gorm:"primaryKey;autoIncrement"`
	UserID     string `gorm:"index;size:64"`
	Document   string `gorm:"size:64"`
	Version    string `gorm:"size:64"`
	AcceptedAt time.Time
	IP         string `gorm:"column:ip;size:64"`
	UserAgent  string `gorm:"size:512"`
}

// Errors of code verification.
var (
	// ErrWrongCode means the code did not match; the flow may try again.
	ErrWrongCode = errors.New("wrong code")
	// ErrCodeDead means the code was used up: too many wrong tries.
	ErrCodeDead = errors.New("code has no tries left")
)

// CreateCode stores an issued code. Throttling happens before, with Throttle and Hit.
func (s *Store) CreateCode(ctx context.Context, c *OneTimeCode) error {
	if c.ID == "" {
		c.ID = NewID()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	return mapErr(s.db.WithContext(ctx).Create(c).Error, "create one-time code")
}

// CodeByID loads a live code flow: not consumed, not expired.
func (s *Store) CodeByID(ctx context.Context, id string) (*OneTimeCode, error) {
	var c OneTimeCode
	err := s.db.WithContext(ctx).
		Where("id = ? AND consumed_at IS NULL AND expires_at > ?", id, s.now()).Take(&c).Error
	return &c, mapErr(err, "load one-time code")
}

// ReplaceCode puts a new code into a live flow (a resend): new hash, tries and expiry.
func (s *Store) ReplaceCode(ctx context.Context, id, codeHash string, expiresAt time.Time) error {
	res := s.db.WithContext(ctx).Model(&OneTimeCode{}).
		Where("id = ? AND consumed_at IS NULL", id).
		Updates(map[string]any{"code_hash": codeHash, "attempts": 0, "expires_at": expiresAt, "created_at": s.now()})
	if res.Error == nil && res.RowsAffected == 0 {
		res.Error = gorm.ErrRecordNotFound
	}
	return mapErr(res.Error, "replace one-time code")
}

// VerifyCode checks codeHash against a live flow in one transaction with the row
// locked, so parallel guesses cannot exceed maxAttempts. A match consumes the code and
// returns it; a miss returns ErrWrongCode with the tries left, and the last miss
// ErrCodeDead.
func (s *Store) VerifyCode(ctx context.Context, id, codeHash string, maxAttempts int) (*OneTimeCode, int, error) {
	var c OneTimeCode
	left := 0
	now := s.now()
	// The outcome leaves the transaction as a value: a wrong try must commit its
	// counted attempt, which returning an error from the closure would roll back.
	var outcome error
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.forUpdate(tx).Where("id = ? AND consumed_at IS NULL AND expires_at > ?", id, now).Take(&c).Error; err != nil {
			return err
		}
		if c.Attempts >= maxAttempts {
			outcome = ErrCodeDead
			return nil
		}
		if c.CodeHash == codeHash {
			c.ConsumedAt = &now
			return tx.Model(&OneTimeCode{}).Where("id = ?", id).Update("consumed_at", now).Error
		}
		c.Attempts++
		if err := tx.Model(&OneTimeCode{}).Where("id = ?", id).Update("attempts", c.Attempts).Error; err != nil {
			return err
		}
		left = maxAttempts - c.Attempts
		outcome = ErrWrongCode
		if left <= 0 {
			outcome = ErrCodeDead
		}
		return nil
	})
	if err != nil {
		return nil, 0, mapErr(err, "verify one-time code")
	}
	if outcome != nil {
		return &c, left, fmt.Errorf("verify one-time code: %w", outcome)
	}
	return &c, 0, nil
}

// Throttle lets one event of key through per interval, across every node: it reports
// whether this event may happen now and, if not, how long until it may.
func (s *Store) Throttle(ctx context.Context, key string, interval time.Duration) (bool, time.Duration, error) {
	now := s.now()
	// The row's count holds the time of the last allowed event, in Unix nanoseconds;
	// window_start is fixed so the key has one row.
	epoch := time.Unix(0, 0).UTC()
	db := s.db.WithContext(ctx)
	row := RateCounter{Key: counterKey("throttle:"+key, interval), WindowStart: epoch, Count: now.UnixNano(), ExpiresAt: now.Add(interval)}
	res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil {
		return false, 0, mapErr(res.Error, "throttle "+key)
	}
	if res.RowsAffected == 1 {
		return true, 0, nil
	}
	res = db.Model(&RateCounter{}).
		Where("key = ? AND window_start = ? AND count <= ?", row.Key, epoch, now.Add(-interval).UnixNano()).
		Updates(map[string]any{"count": now.UnixNano(), "expires_at": now.Add(interval)})
	if res.Error != nil {
		return false, 0, mapErr(res.Error, "throttle "+key)
	}
	if res.RowsAffected == 1 {
		return true, 0, nil
	}
	var cur RateCounter
	if err := db.Where("key = ? AND window_start = ?", row.Key, epoch).Take(&cur).Error; err != nil {
		return false, 0, mapErr(err, "throttle "+key)
	}
	wait := time.Unix(0, cur.Count).Add(interval).Sub(now)
	if wait < 0 {
		wait = 0
	}
	return false, wait, nil
}

// RecordConsents stores accepted documents of an account.
func (s *Store) RecordConsents(ctx context.Context, consents []Consent) error {
	if len(consents) == 0 {
		return nil
	}
	for i := range consents {
		consents[i].UserAgent = truncate(consents[i].UserAgent, 512)
	}
	return mapErr(s.db.WithContext(ctx).Create(&consents).Error, "record consents")
}

// UserConsents lists an account's accepted documents.
func (s *Store) UserConsents(ctx context.Context, userID string) ([]Consent, error) {
	var out []Consent
	err := s.db.WithContext(ctx).Where("user_id = ?", userID).Order("accepted_at, id").Find(&out).Error
	return out, mapErr(err, "list consents")
}

// CreateUserWithConsents creates an account and its consents in one transaction; a
// taken phone or email is ErrConflict and nothing is written.
func (s *Store) CreateUserWithConsents(ctx context.Context, u *User, consents []Consent) error {
	if u.ID == "" {
		u.ID = NewID()
	}
	err := s.tx(ctx, func(tx *gorm.DB) error { return createUserTx(tx, u, consents) })
	return mapErr(err, "create user")
}

// createUserTx writes an account and its consents in tx; every registration (by
// code, certificate or upstream) opens an account through it.
func createUserTx(tx *gorm.DB, u *User, consents []Consent) error {
	if err := tx.Create(u).Error; err != nil {
		return err
	}
	for i := range consents {
		consents[i].UserID = u.ID
		consents[i].UserAgent = truncate(consents[i].UserAgent, 512)
	}
	if len(consents) > 0 {
		return tx.Create(&consents).Error
	}
	return nil
}

// ConsumeCode uses up a live flow of purpose once, without a code: for a permission
// the flow itself is (a verified reset). A second call is ErrNotFound.
func (s *Store) ConsumeCode(ctx context.Context, id, purpose string) (*OneTimeCode, error) {
	var c OneTimeCode
	now := s.now()
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.forUpdate(tx).Where("id = ? AND purpose = ? AND consumed_at IS NULL AND expires_at > ?", id, purpose, now).
			Take(&c).Error; err != nil {
			return err
		}
		c.ConsumedAt = &now
		return tx.Model(&OneTimeCode{}).Where("id = ?", id).Update("consumed_at", now).Error
	})
	if err != nil {
		return nil, mapErr(err, "consume flow")
	}
	return &c, nil
}
