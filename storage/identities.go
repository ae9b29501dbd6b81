package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Identity is an upstream identity (Telegram, Gosuslugi, …) linked to an account: the
// connector vouches that the person holds Subject there.
type Identity struct {
	ID          string `gorm:"primaryKey;size:64"`
	UserID      string `gorm:"index;size:64"`
	Connector   string `gorm:"size:32;uniqueIndex:idx_identity_subject"`
	Subject     string `gorm:"size:255;uniqueIndex:idx_identity_subject"`
	DisplayName string `gorm:"size:255"`
	Claims      string `gorm:"type:text"` // what the connector returned, JSON
	CreatedAt   time.Time
	LastUsedAt  *time.Time
}

// LinkIdentity links an identity to an account; an identity linked to any account
// already is ErrConflict.
func (s *Store) LinkIdentity(ctx context.Context, id *Identity) error {
	if id.ID == "" {
		id.ID = NewID()
	}
	if id.CreatedAt.IsZero() {
		id.CreatedAt = s.now()
	}
	id.DisplayName = truncate(id.DisplayName, 255)
	return mapErr(s.db.WithContext(ctx).Create(id).Error, fmt.Sprintf("link %s identity", id.Connector))
}

// IdentityBySubject finds the account link of an upstream identity.
func (s *Store) IdentityBySubject(ctx context.Context, connector, subject string) (*Identity, error) {
	var id Identity
	err := s.db.WithContext(ctx).Where("connector = ? AND subject = ?", connector, subject).Take(&id).Error
	return &id, mapErr(err, fmt.Sprintf("load %s identity", connector))
}

// UserIdentities lists an account's linked identities, oldest first.
func (s *Store) UserIdentities(ctx context.Context, userID string) ([]Identity, error) {
	var out []Identity
	err := s.db.WithContext(ctx).Where("user_id = ?", userID).Order("created_at, id").Find(&out).Error
	return out, mapErr(err, "list identities")
}

// TouchIdentity records a sign-in through an identity.
func (s *Store) TouchIdentity(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Model(&Identity{}).Where("id = ?", id).Update("last_used_at", s.now()).Error
	return mapErr(err, "touch identity")
}

// UnlinkIdentity removes one of an account's identities, unless it is the account's
// last way in: an account with no password, no verified phone or email and no other
// identity could never be entered again (ErrLastMethod).
func (s *Store) UnlinkIdentity(ctx context.Context, userID, identityID string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var u User
		if err := s.forUpdate(tx).Where("id = ?", userID).Take(&u).Error; err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&Identity{}).Where("user_id = ?", userID).Count(&n).Error; err != nil {
			return err
		}
		canEnter := u.PasswordHash != "" || (u.Phone != nil && u.PhoneVerified) || (u.Email != nil && u.EmailVerified)
		if !canEnter && n <= 1 {
			return ErrLastMethod
		}
		res := tx.Where("id = ? AND user_id = ?", identityID, userID).Delete(&Identity{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		return nil
	})
	if err == ErrLastMethod {
		return fmt.Errorf("unlink identity %q: %w", identityID, ErrLastMethod)
	}
	return mapErr(err, fmt.Sprintf("unlink identity %q", identityID))
}

// CreateUserWithIdentity creates an account, its consents and its first linked
// identity in one transaction (registration through an upstream). A taken phone or
// email, or an identity linked already, is ErrConflict and nothing is written.
func (s *Store) CreateUserWithIdentity(ctx context.Context, u *User, consents []Consent, id *Identity) error {
	if u.ID == "" {
		u.ID = NewID()
	}
	if id.ID == "" {
		id.ID = NewID()
	}
	if id.CreatedAt.IsZero() {
		id.CreatedAt = s.now()
	}
	id.UserID = u.ID
	id.DisplayName = truncate(id.DisplayName, 255)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := createUserTx(tx, u, consents); err != nil {
			return err
		}
		return tx.Create(id).Error
	})
	return mapErr(err, fmt.Sprintf("create user with %s identity", id.Connector))
}

// RefreshIdentity records a sign-in through an identity together with what the
// upstream says of the person now: its display name and claims (JSON) replace the
// stored ones, so verified data never goes stale.
func (s *Store) RefreshIdentity(ctx context.Context, id, displayName, claims string) error {
	err := s.db.WithContext(ctx).Model(&Identity{}).Where("id = ?", id).Updates(map[string]any{
		"display_name": truncate(displayName, 255), "claims": claims, "last_used_at": s.now(),
	}).Error
	return mapErr(err, "refresh identity")
}
