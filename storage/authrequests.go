package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateAuthRequest stores a validated authorization request awaiting sign-in.
func (s *Store) CreateAuthRequest(ctx context.Context, r *AuthRequest) error {
	if r.ID == "" {
		r.ID = NewID()
	}
	return mapErr(s.db.WithContext(ctx).Create(r).Error, "create auth request")
}

// AuthRequestByID loads an unexpired authorization request.
func (s *Store) AuthRequestByID(ctx context.Context, id string) (*AuthRequest, error) {
	var r AuthRequest
	err := s.reader(ctx).Where("id = ? AND expires_at > ?", id, s.now()).Take(&r).Error
	return &r, mapErr(err, fmt.Sprintf("load auth request %q", id))
}

// Authentication is what a sign-in established about the person.
type Authentication struct {
	UserID    string
	SessionID string
	AuthTime  time.Time
	AMR       []string
	ACR       string
	IDP       string // upstream connector for amr "fed"
}

// CompleteAuthRequest marks a pending request as signed in by a and records that the
// request's product now shares the session. A request completes once.
func (s *Store) CompleteAuthRequest(ctx context.Context, id string, a Authentication) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var r AuthRequest
		if err := s.forUpdate(tx).Where("id = ? AND expires_at > ?", id, s.now()).Take(&r).Error; err != nil {
			return err
		}
		if r.Done {
			return ErrReused
		}
		res := tx.Model(&AuthRequest{}).Where("id = ? AND done = ?", id, false).Updates(map[string]any{
			"done": true, "user_id": a.UserID, "session_id": a.SessionID, "auth_time": a.AuthTime.UTC(),
			"amr": StringList(a.AMR), "acr": a.ACR, "idp": a.IDP,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrReused
		}
		if a.SessionID == "" {
			return nil
		}
		return tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&SessionClient{SessionID: a.SessionID, ClientID: r.ClientID, CreatedAt: s.now()}).Error
	})
	if errors.Is(err, ErrReused) {
		return fmt.Errorf("complete auth request %q: %w", id, ErrReused)
	}
	return mapErr(err, fmt.Sprintf("complete auth request %q", id))
}

// SaveAuthCode attaches an authorization code (only its hash is kept) to a completed
// request; the code is valid for ttl.
func (s *Store) SaveAuthCode(ctx context.Context, id, code string, ttl time.Duration) error {
	res := s.db.WithContext(ctx).Model(&AuthRequest{}).
		Where("id = ? AND done = ? AND code_hash IS NULL", id, true).
		Updates(map[string]any{"code_hash": HashSecret(code), "expires_at": s.now().Add(ttl)})
	if res.Error == nil && res.RowsAffected == 0 {
		res.Error = gorm.ErrRecordNotFound
	}
	return mapErr(res.Error, fmt.Sprintf("save code of auth request %q", id))
}

// ExchangeCode redeems an authorization code once. The row is kept for retain after
// the exchange so that a second presentation is recognised as reuse (ErrReused, with
// the request returned so its tokens can be revoked) rather than as an unknown code. A
// code whose session has ended is ErrNotFound. The request comes back with its
// account (AuthRequest.Account).
func (s *Store) ExchangeCode(ctx context.Context, code string, retain time.Duration) (*AuthRequest, error) {
	now := s.now()
	hash := HashSecret(code)
	var spent spentCode
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := s.queryRow(ctx, tx, qSpendCode, now, now.Add(retain), hash, now).Scan(spent.dest()...)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrReused // nothing matched, nothing written: the batch goes on
		}
		return err
	})
	if errors.Is(err, ErrReused) {
		return s.unspendable(ctx, hash)
	}
	if err != nil {
		return nil, mapErr(err, "exchange code")
	}
	r := spent.request()
	r.CodeUsedAt, r.ExpiresAt = &now, now.Add(retain)
	return r, nil
}

// unspendable tells why the code with hash could not be spent: used before (ErrReused,
// with the request, so that its tokens can be revoked), or unknown, expired or of an
// ended session (ErrNotFound).
func (s *Store) unspendable(ctx context.Context, hash string) (*AuthRequest, error) {
	var r AuthRequest
	if err := s.db.WithContext(ctx).Where("code_hash = ?", hash).Take(&r).Error; err != nil {
		return nil, mapErr(err, "exchange code")
	}
	if r.CodeUsedAt != nil {
		return &r, fmt.Errorf("exchange code of auth request %q: %w", r.ID, ErrReused)
	}
	return nil, fmt.Errorf("exchange code: expired or its session ended: %w", ErrNotFound)
}

// DeleteAuthRequest removes a request (abandoned or answered with an error).
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Where("id = ?", id).Delete(&AuthRequest{}).Error
	return mapErr(err, fmt.Sprintf("delete auth request %q", id))
}
