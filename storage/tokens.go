package storage

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// CreateAccessToken records an issued access token.
func (s *Store) CreateAccessToken(ctx context.Context, t *AccessToken) error {
	return mapErr(s.db.WithContext(ctx).Create(t).Error, "create access token")
}

// AccessTokenByID loads a live access token: not revoked, not expired.
func (s *Store) AccessTokenByID(ctx context.Context, id string) (*AccessToken, error) {
	var t AccessToken
	err := s.db.WithContext(ctx).
		Where("id = ? AND revoked_at IS NULL AND expires_at > ?", id, s.now()).Take(&t).Error
	return &t, mapErr(err, "load access token")
}

// RevokeAccessToken revokes one access token; an unknown id is not an error (RFC 7009).
func (s *Store) RevokeAccessToken(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Model(&AccessToken{}).
		Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", s.now()).Error
	return mapErr(err, "revoke access token")
}

// CreateRefreshToken stores the first generation of a new family (raw is the token
// handed to the client; only its hash is stored), with the access token issued alongside.
func (s *Store) CreateRefreshToken(ctx context.Context, t *RefreshToken, raw string, access *AccessToken) error {
	if t.ID == "" {
		t.ID = NewID()
	}
	if t.FamilyID == "" {
		t.FamilyID = NewID()
	}
	t.TokenHash = HashSecret(raw)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(t).Error; err != nil {
			return err
		}
		if access != nil {
			access.FamilyID = t.FamilyID
			return tx.Create(access).Error
		}
		return nil
	})
	return mapErr(err, "create refresh token")
}

// RefreshTokenByToken loads the live generation a raw refresh token names. A spent
// generation presented again is a replay: the whole family is revoked and ErrReused
// returned. Revoked and expired tokens are ErrNotFound.
func (s *Store) RefreshTokenByToken(ctx context.Context, raw string) (*RefreshToken, error) {
	var t RefreshToken
	err := s.db.WithContext(ctx).Where("token_hash = ?", HashSecret(raw)).Take(&t).Error
	if err != nil {
		return nil, mapErr(err, "load refresh token")
	}
	now := s.now()
	switch {
	case t.RevokedAt != nil:
		return nil, fmt.Errorf("load refresh token: revoked: %w", ErrNotFound)
	case t.SpentAt != nil:
		if err := s.RevokeRefreshFamily(ctx, t.FamilyID); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("refresh token of family %q replayed: %w", t.FamilyID, ErrReused)
	case !now.Before(t.ExpiresAt) || !now.Before(t.FamilyExpiresAt):
		return nil, fmt.Errorf("load refresh token: expired: %w", ErrNotFound)
	}
	return &t, nil
}

// RefreshTokenByID loads a refresh token generation whatever its state.
func (s *Store) RefreshTokenByID(ctx context.Context, id string) (*RefreshToken, error) {
	var t RefreshToken
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&t).Error
	return &t, mapErr(err, "load refresh token")
}

// RotateRefreshToken spends generation oldID and stores next (raw is its token) with
// the access token issued alongside, in one transaction. The spend is a conditional
// UPDATE: of two racing rotations exactly one wins; the loser is treated as a replay
// and revokes the family.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, next *RefreshToken, raw string, access *AccessToken) error {
	if next.ID == "" {
		next.ID = NewID()
	}
	next.TokenHash = HashSecret(raw)
	now := s.now()
	var familyID string
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var old RefreshToken
		if err := tx.Where("id = ?", oldID).Take(&old).Error; err != nil {
			return err
		}
		familyID = old.FamilyID
		res := tx.Model(&RefreshToken{}).
			Where("id = ? AND spent_at IS NULL AND revoked_at IS NULL AND expires_at > ?", oldID, now).
			Update("spent_at", now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrReused
		}
		next.FamilyID = old.FamilyID
		next.FamilyExpiresAt = old.FamilyExpiresAt
		if err := tx.Create(next).Error; err != nil {
			return err
		}
		if access != nil {
			access.FamilyID = old.FamilyID
			return tx.Create(access).Error
		}
		return nil
	})
	if errors.Is(err, ErrReused) {
		if rerr := s.RevokeRefreshFamily(ctx, familyID); rerr != nil {
			return rerr
		}
		return fmt.Errorf("rotate refresh token of family %q: %w", familyID, ErrReused)
	}
	return mapErr(err, "rotate refresh token")
}

// RevokeRefreshFamily revokes every generation of a family and the access tokens
// issued with them.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) error {
	if familyID == "" {
		return nil // an empty id would match every token outside a family
	}
	err := s.tx(ctx, func(tx *gorm.DB) error { return s.revokeTokensTx(tx, "family_id = ? AND family_id <> ''", familyID) })
	return mapErr(err, fmt.Sprintf("revoke refresh family %q", familyID))
}

// RevokeAuthRequestTokens revokes every token issued from one authorization code
// (RFC 6749 §4.1.2: a code used twice should revoke what it produced).
func (s *Store) RevokeAuthRequestTokens(ctx context.Context, authRequestID string) error {
	if authRequestID == "" {
		return nil // an empty id would match every client_credentials token
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var families []string
		if err := tx.Model(&RefreshToken{}).Where("auth_request_id = ?", authRequestID).
			Distinct().Pluck("family_id", &families).Error; err != nil {
			return err
		}
		if err := s.revokeTokensTx(tx, "auth_request_id = ? AND auth_request_id <> ''", authRequestID); err != nil {
			return err
		}
		if len(families) > 0 {
			return s.revokeTokensTx(tx, "family_id IN ? AND family_id <> ''", families)
		}
		return nil
	})
	return mapErr(err, fmt.Sprintf("revoke tokens of auth request %q", authRequestID))
}

// RevokeUserClientTokens revokes every token a product holds for an account.
func (s *Store) RevokeUserClientTokens(ctx context.Context, userID, clientID string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		return s.revokeTokensTx(tx, "user_id = ? AND user_id <> '' AND client_id = ?", userID, clientID)
	})
	return mapErr(err, "revoke user tokens of client")
}

// RevokeUserTokens revokes every token of an account (password reset, block).
func (s *Store) RevokeUserTokens(ctx context.Context, userID string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error { return s.revokeTokensTx(tx, "user_id = ? AND user_id <> ''", userID) })
	return mapErr(err, "revoke user tokens")
}

// revokeTokensTx revokes the refresh and access tokens matching where; both tables
// share the column names used in where. access_tokens indexes user_id, session_id,
// family_id and auth_request_id only where they are set (a machine's token has none of
// them), so a where on those columns must also say "<column> <> ”" for the database
// to use the index.
func (s *Store) revokeTokensTx(tx *gorm.DB, where string, args ...any) error {
	now := s.now()
	if err := tx.Model(&RefreshToken{}).Where(where, args...).Where("revoked_at IS NULL").
		Update("revoked_at", now).Error; err != nil {
		return err
	}
	return tx.Model(&AccessToken{}).Where(where, args...).Where("revoked_at IS NULL").
		Update("revoked_at", now).Error
}

// FindRefreshToken finds a refresh token generation by raw token or by id, whatever
// its state, without the replay handling of RefreshTokenByToken (revocation and
// introspection use it).
func (s *Store) FindRefreshToken(ctx context.Context, rawOrID string) (*RefreshToken, error) {
	var t RefreshToken
	err := s.db.WithContext(ctx).Where("token_hash = ? OR id = ?", HashSecret(rawOrID), rawOrID).Take(&t).Error
	return &t, mapErr(err, "find refresh token")
}
