package storage

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// CreateUser inserts a new account; a taken phone or email is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	if u.ID == "" {
		u.ID = NewID()
	}
	return mapErr(s.db.WithContext(ctx).Create(u).Error, "create user")
}

// UserByID loads an account.
func (s *Store) UserByID(ctx context.Context, id string) (*User, error) {
	var u User
	err := s.read(ctx, rUser, []any{id}, userDest(&u)...) // every token request reads it
	return &u, mapErr(err, fmt.Sprintf("load user %q", id))
}

// UserByPhone loads the account with an E.164 phone number.
func (s *Store) UserByPhone(ctx context.Context, phone string) (*User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("phone = ?", phone).Take(&u).Error
	return &u, mapErr(err, "load user by phone")
}

// UserByEmail loads the account with a (lower-case) email address.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("email = ?", email).Take(&u).Error
	return &u, mapErr(err, "load user by email")
}

// ListUsers returns accounts ordered by creation, for the admin CLI.
func (s *Store) ListUsers(ctx context.Context, offset, limit int) ([]User, error) {
	var users []User
	err := s.db.WithContext(ctx).Order("created_at, id").Offset(offset).Limit(limit).Find(&users).Error
	return users, mapErr(err, "list users")
}

// UpdateUser changes an account in one transaction with the row locked: fn gets the
// current row and edits it in place.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(u *User) error) (*User, error) {
	var u User
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.forUpdate(tx).Where("id = ?", id).Take(&u).Error; err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		u.ID = id
		u.UpdatedAt = s.now()
		return tx.Save(&u).Error
	})
	return &u, mapErr(err, fmt.Sprintf("update user %q", id))
}

// SetUserBlocked blocks or unblocks an account. Blocking ends every session and
// revokes every token of the account in the same transaction, and returns the
// sessions it ended so their products can be told.
func (s *Store) SetUserBlocked(ctx context.Context, id string, blocked bool) ([]Session, error) {
	var ended []Session
	err := s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&User{}).Where("id = ?", id).Updates(map[string]any{"blocked": blocked, "updated_at": s.now()})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		if !blocked {
			return nil
		}
		var err error
		ended, err = s.endSessionsTx(tx, "user_id = ?", id)
		if err != nil {
			return err
		}
		return s.revokeTokensTx(tx, "user_id = ? AND user_id <> ''", id)
	})
	return ended, mapErr(err, fmt.Sprintf("set user %q blocked=%v", id, blocked))
}

// RecordEvent appends an audit event.
func (s *Store) RecordEvent(ctx context.Context, e *AuditEvent) error {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now()
	}
	e.UserAgent, e.Detail = truncate(e.UserAgent, 512), truncate(e.Detail, 512)
	return mapErr(s.db.WithContext(ctx).Create(e).Error, "record audit event")
}

// UserEvents returns an account's audit events, newest first.
func (s *Store) UserEvents(ctx context.Context, userID string, offset, limit int) ([]AuditEvent, error) {
	var events []AuditEvent
	err := s.db.WithContext(ctx).Where("user_id = ?", userID).
		Order("created_at DESC, id DESC").Offset(offset).Limit(limit).Find(&events).Error
	return events, mapErr(err, "list audit events")
}
