package storage

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// CreateAccessToken records an issued access token. One made from an authorization
// code whose reuse was already detected is refused with ErrReused (see
// RevokeAuthRequestTokens).
func (s *Store) CreateAccessToken(ctx context.Context, t *AccessToken) error {
	s.stampAccess(t)
	args := accessTokenArgs(t)
	var err error
	switch {
	case t.AuthRequestID != "" && s.dialect == "postgres":
		err = insertedOne(s.sqlDB.ExecContext(ctx, insertCodeAccessPostgres, append([]any{t.AuthRequestID}, args...)...))
	case t.AuthRequestID != "":
		err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			return insertedOne(s.execResult(ctx, tx, qInsertAccessTokenOfCode, append(args, t.AuthRequestID)...))
		})
	case s.batch != nil:
		err = s.batch.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			return s.exec(ctx, tx, qInsertAccessToken, args...)
		})
	default:
		err = s.exec(ctx, nil, qInsertAccessToken, args...)
	}
	if errors.Is(err, ErrReused) {
		return fmt.Errorf("create access token of auth request %q: code reused: %w", t.AuthRequestID, ErrReused)
	}
	return mapErr(err, "create access token")
}

// insertedOne turns a guarded insert's result into ErrReused when it inserted nothing
// (the code was reused; nothing was written).
func insertedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrReused
	}
	return nil
}

// stampAccess fills what gorm's Create would have: an id and the creation time.
func (s *Store) stampAccess(t *AccessToken) {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	if t.ID == "" {
		t.ID = newTokenID(t.CreatedAt)
	}
}

// AccessTokenByID loads a live access token: not revoked, not expired. It reads the
// read pool: a revocation is committed before it returns, so it is seen here.
func (s *Store) AccessTokenByID(ctx context.Context, id string) (*AccessToken, error) {
	var t AccessToken
	err := s.read(ctx, rAccessToken, []any{id, s.now()}, accessTokenDest(&t)...)
	return &t, mapErr(err, "load access token")
}

// RevokeAccessToken revokes one access token; an unknown id is not an error (RFC 7009).
func (s *Store) RevokeAccessToken(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Model(&AccessToken{}).
		Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", s.now()).Error
	return mapErr(err, "revoke access token")
}

// CreateRefreshToken stores the first generation of a new family, with the access token
// issued alongside, and returns the refresh token to hand to the client (only its hash
// is stored; see refreshValue). A family made from an authorization code needs that
// access token: it is what ties the family to its code when a reused code revokes what
// it produced. A family made from a code whose reuse was already detected is refused
// with ErrReused, nothing written.
func (s *Store) CreateRefreshToken(ctx context.Context, t *RefreshToken, access *AccessToken) (string, error) {
	if t.AuthRequestID != "" && (access == nil || access.AuthRequestID != t.AuthRequestID) {
		return "", fmt.Errorf("create refresh token: a family from auth request %q needs its access token", t.AuthRequestID)
	}
	s.stampRefresh(t)
	if t.FamilyID == "" {
		t.FamilyID = newTokenID(t.CreatedAt)
	}
	raw := refreshValue(t.ID)
	t.TokenHash = HashSecret(raw)
	if access != nil {
		access.FamilyID = t.FamilyID
		s.stampAccess(access)
	}
	var err error
	switch {
	case s.dialect == "postgres" && t.AuthRequestID != "":
		args := append([]any{t.AuthRequestID}, refreshTokenArgs(t)...)
		err = insertedOne(s.sqlDB.ExecContext(ctx, createCodeFamilyPostgres, append(args, accessTokenArgs(access)...)...))
	case s.dialect == "postgres" && access != nil:
		_, err = s.sqlDB.ExecContext(ctx, createFamilyPostgres, append(refreshTokenArgs(t), accessTokenArgs(access)...)...)
	default:
		err = s.createFamily(ctx, t, access)
	}
	if errors.Is(err, ErrReused) {
		return "", fmt.Errorf("create refresh token of auth request %q: code reused: %w", t.AuthRequestID, ErrReused)
	}
	if err != nil {
		return "", mapErr(err, "create refresh token")
	}
	return raw, nil
}

// createFamily is CreateRefreshToken in one write transaction.
func (s *Store) createFamily(ctx context.Context, t *RefreshToken, access *AccessToken) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if t.AuthRequestID != "" {
			// Writers take turns on SQLite: checked by the first insert, the code
			// stays unreused until this transaction commits.
			if err := insertedOne(s.execResult(ctx, tx, qInsertRefreshTokenOfCode, append(refreshTokenArgs(t), t.AuthRequestID)...)); err != nil {
				return err // ErrReused: nothing written
			}
		} else if err := s.exec(ctx, tx, qInsertRefreshToken, refreshTokenArgs(t)...); err != nil {
			return err
		}
		if access != nil {
			return s.exec(ctx, tx, qInsertAccessToken, accessTokenArgs(access)...)
		}
		return nil
	})
}

func (s *Store) stampRefresh(t *RefreshToken) {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	if t.ID == "" {
		t.ID = newTokenID(t.CreatedAt)
	}
}

// RefreshTokenByToken loads the live generation a raw refresh token names. A spent
// generation presented again is a replay: the whole family is revoked and ErrReused
// returned. Revoked and expired tokens are ErrNotFound, and so is anything that is not
// a refresh token this store made (a wrong secret for a real generation revokes
// nothing: only the holder of the token can replay it).
func (s *Store) RefreshTokenByToken(ctx context.Context, raw string) (*RefreshToken, error) {
	t, err := s.refreshByValue(ctx, raw)
	if err != nil {
		return nil, err
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
	return t, nil
}

// refreshValue makes the refresh token a client holds for generation id: the id, a
// dot, and 256 random bits. The id makes finding the generation a primary-key read;
// the alternative, a unique index on the hash, is a random B-tree page that every
// rotation writes. The hash of the whole value, compared in constant time, is what
// proves the token.
func refreshValue(id string) string { return id + "." + NewSecret() }

// refreshValueID is the generation a raw refresh token names, if it has the form of
// refreshValue: an id of at most 64 characters, a dot, and the secret.
func refreshValueID(raw string) (string, bool) {
	id, secret, ok := strings.Cut(raw, ".")
	if !ok || id == "" || len(id) > 64 || len(secret) != secretLength {
		return "", false
	}
	return id, true
}

// refreshByValue loads the generation raw names, in whatever state, if raw is its token.
func (s *Store) refreshByValue(ctx context.Context, raw string) (*RefreshToken, error) {
	id, ok := refreshValueID(raw)
	if !ok {
		return nil, fmt.Errorf("load refresh token: not a refresh token: %w", ErrNotFound)
	}
	t, err := s.RefreshTokenByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(t.TokenHash), []byte(HashSecret(raw))) != 1 {
		return nil, fmt.Errorf("load refresh token: wrong secret: %w", ErrNotFound)
	}
	return t, nil
}

// RefreshTokenByID loads a refresh token generation whatever its state.
func (s *Store) RefreshTokenByID(ctx context.Context, id string) (*RefreshToken, error) {
	var t RefreshToken
	err := s.read(ctx, rRefreshToken, []any{id}, refreshTokenDest(&t)...)
	return &t, mapErr(err, "load refresh token")
}

// RotateRefreshToken spends generation oldID and stores next with the access token
// issued alongside, in one transaction, and returns next's refresh token. The spend is
// a conditional UPDATE: of two racing rotations exactly one wins; the loser is treated
// as a replay and revokes the family (ErrReused). A generation that is revoked or
// expired, or whose account is blocked or session ended, is refused with ErrNotFound,
// its family revoked too.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, next *RefreshToken, access *AccessToken) (string, error) {
	s.stampRefresh(next)
	raw := refreshValue(next.ID)
	next.TokenHash = HashSecret(raw)
	if access != nil {
		s.stampAccess(access)
	}
	now := s.now()
	var err error
	if s.dialect == "postgres" && access != nil {
		err = s.rotatePostgres(ctx, oldID, next, access, now)
	} else {
		err = s.rotate(ctx, oldID, next, access, now)
	}
	if errors.Is(err, ErrReused) {
		return "", s.refused(ctx, oldID)
	}
	if err != nil {
		return "", mapErr(err, "rotate refresh token")
	}
	return raw, nil
}

// refused tells why a rotation of oldID wrote nothing and revokes its family: the
// losing side of a race or a spent generation (a replay) is ErrReused; a revoked or
// expired one, or one whose account or session was taken away since the provider
// looked, ErrNotFound. The family of a generation never changes, and a spent one stays
// spent, so both are read after the fact.
func (s *Store) refused(ctx context.Context, oldID string) error {
	var old RefreshToken
	if err := s.db.WithContext(ctx).Select("family_id", "spent_at").Where("id = ?", oldID).Take(&old).Error; err != nil {
		return mapErr(err, "rotate refresh token")
	}
	if err := s.RevokeRefreshFamily(ctx, old.FamilyID); err != nil {
		return err
	}
	if old.SpentAt == nil {
		return fmt.Errorf("rotate refresh token of family %q: revoked, expired, or its account or session taken away: %w",
			old.FamilyID, ErrNotFound)
	}
	return fmt.Errorf("rotate refresh token of family %q: %w", old.FamilyID, ErrReused)
}

// rotatePostgres is rotate in one statement (see rotatePostgres in hot.go).
func (s *Store) rotatePostgres(ctx context.Context, oldID string, next *RefreshToken, access *AccessToken, now time.Time) error {
	args := []any{now, oldID, now}
	args = append(args, without(refreshTokenColumns, refreshTokenArgs(next), "family_id", "family_expires_at")...)
	args = append(args, without(accessTokenColumns, accessTokenArgs(access), "family_id")...)
	var familyID string
	var familyExpiresAt time.Time
	err := s.sqlDB.QueryRowContext(ctx, rotatePostgres, args...).Scan(&familyID, &familyExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrReused
	}
	if err != nil {
		return err
	}
	next.FamilyID, next.FamilyExpiresAt, access.FamilyID = familyID, familyExpiresAt.UTC(), familyID
	return nil
}

// rotate spends generation oldID and stores next and access in one write transaction.
func (s *Store) rotate(ctx context.Context, oldID string, next *RefreshToken, access *AccessToken, now time.Time) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var familyID string
		var familyExpiresAt columnTime // SQLite gives RETURNING columns no declared type: text
		err := s.queryRow(ctx, tx, qSpendRefreshToken, []any{now, oldID, now}, &familyID, &familyExpiresAt)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrReused // or no such generation: told apart below
		}
		if err != nil {
			return err
		}
		next.FamilyID, next.FamilyExpiresAt = familyID, familyExpiresAt.Time
		if err := s.exec(ctx, tx, qInsertRefreshToken, refreshTokenArgs(next)...); err != nil {
			return err
		}
		if access != nil {
			access.FamilyID = familyID
			return s.exec(ctx, tx, qInsertAccessToken, accessTokenArgs(access)...)
		}
		return nil
	})
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
// (RFC 6749 §4.1.2: a code used twice should revoke what it produced), and marks the
// code reused so that tokens its first exchange creates later are refused: the two
// exchanges run at once, and the second may get here before the first has created
// its tokens.
func (s *Store) RevokeAuthRequestTokens(ctx context.Context, authRequestID string) error {
	if authRequestID == "" {
		return nil // an empty id would match every client_credentials token
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		// First, so that on PostgreSQL it waits for a token insert that holds the
		// row (see createCodeFamilyPostgres) and the statements below see its rows.
		if err := tx.Model(&AuthRequest{}).Where("id = ? AND code_reused_at IS NULL", authRequestID).
			Update("code_reused_at", s.now()).Error; err != nil {
			return err
		}
		// Every family a code produced was created with an access token that names
		// both (CreateRefreshToken), and refresh_tokens keeps no index on the code.
		var families []string
		if err := tx.Model(&AccessToken{}).
			Where("auth_request_id = ? AND auth_request_id <> '' AND family_id <> ''", authRequestID).
			Distinct().Pluck("family_id", &families).Error; err != nil {
			return err
		}
		if err := tx.Model(&AccessToken{}).Where("auth_request_id = ? AND auth_request_id <> ''", authRequestID).
			Where("revoked_at IS NULL").Update("revoked_at", s.now()).Error; err != nil {
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

// revokeTokensTx revokes the refresh and access tokens matching where, a condition on
// columns both tables have. An access token issued with a generation is revoked
// through its family: access_tokens indexes user_id and session_id only for tokens
// outside a family (and, like family_id and auth_request_id, only where set, since a
// machine's token has none of them), so a where on those columns must also say
// "<column> <> ”" for the database to use the index.
//
// A rotation racing the revocation must not leave a live generation behind. On
// SQLite writers take turns: the rotation commits wholly before the revocation (which
// then sees its rows) or after it (and finds its generation revoked). PostgreSQL runs
// each statement here on its own snapshot (READ COMMITTED): an UPDATE that meets a
// generation a rotation has locked waits for the rotation to commit, then revokes
// that generation, but not the next one the rotation inserted, which its snapshot
// does not hold; repeating the UPDATE only chases a client that keeps refreshing. So
// on PostgreSQL the revocation first takes an exclusive advisory lock on each account
// concerned (on its bucket: rotationLockBucket), which every rotation holds shared
// while it runs (rotationLockPostgres):
// a rotation already running commits before the UPDATEs below take their snapshots,
// and they see what it inserted; one that starts later waits for this transaction to
// commit and then finds its generation revoked. That is one more statement, on the
// revocation path only.
func (s *Store) revokeTokensTx(tx *gorm.DB, where string, args ...any) error {
	now := s.now()
	if s.dialect == "postgres" {
		if err := tx.Exec(lockRotationsPostgres+"("+where+") ORDER BY k) AS accounts", args...).Error; err != nil {
			return err
		}
	}
	// The families whose generations this revokes come back from the same statement, so
	// a family that commits in between cannot have its generation revoked and its
	// access token missed (PostgreSQL's statements each take their own snapshot). A
	// family revoked earlier had its access tokens revoked then.
	var families []string
	if err := tx.Raw("UPDATE refresh_tokens SET revoked_at = ? WHERE ("+where+") AND revoked_at IS NULL RETURNING family_id",
		append([]any{now}, args...)...).Scan(&families).Error; err != nil {
		return err
	}
	slices.Sort(families)
	families = slices.Compact(families)
	if err := tx.Model(&AccessToken{}).Where(where, args...).Where("family_id = '' AND revoked_at IS NULL").
		Update("revoked_at", now).Error; err != nil {
		return err
	}
	for chunk := range slices.Chunk(families, 500) {
		if err := tx.Model(&AccessToken{}).Where("family_id IN ? AND family_id <> '' AND revoked_at IS NULL", chunk).
			Update("revoked_at", now).Error; err != nil {
			return err
		}
	}
	return nil
}

// FindRefreshToken finds the generation a raw refresh token names, whatever its state,
// without the replay handling of RefreshTokenByToken (revocation uses it). Only the
// whole token finds it: the id alone is the visible half of the token, and revoking by
// it would let anyone who saw that half end the family.
func (s *Store) FindRefreshToken(ctx context.Context, raw string) (*RefreshToken, error) {
	t, err := s.refreshByValue(ctx, raw)
	return t, mapErr(err, "find refresh token")
}
