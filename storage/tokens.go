package storage

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateAccessToken records an issued access token. One made from an authorization
// code whose reuse was already detected (see RevokeAuthRequestTokens), or whose
// account has been blocked or session ended since, is refused with ErrReused.
func (s *Store) CreateAccessToken(ctx context.Context, t *AccessToken) error {
	s.stampAccess(t)
	return s.insertToken(ctx, "access token", qInsertAccessToken, qInsertAccessTokenOfCode, accessTokenArgs(t),
		t.AuthRequestID, t.UserID, t.SessionID)
}

// insertToken inserts one token row (args, by plain); a row made from a code
// (authRequestID set) goes in by ofCode, guarded by the code and its sign-in (see
// insertIfCodeUnused), and is refused with ErrReused. On SQLite writers take turns, so
// what the guard checked stands until the insert's transaction commits.
func (s *Store) insertToken(ctx context.Context, what string, plain, ofCode hotQuery, args []any, authRequestID, userID, sessionID string) error {
	q := plain
	if authRequestID != "" {
		q, args = ofCode, s.withCode(authRequestID, userID, sessionID, args)
	}
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return wroteOne(s.execResult(ctx, tx, q, args...))
	})
	if errors.Is(err, ErrReused) {
		return fmt.Errorf("create %s of auth request %q: code reused, account blocked or session ended: %w", what, authRequestID, ErrReused)
	}
	return mapErr(err, "create "+what)
}

// wroteOne turns a statement's result into ErrReused when it changed no row (a
// guarded insert refused). Nothing was written.
func wroteOne(res sql.Result, err error) error {
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

// DenyAccessToken records that the access token id, which has no row of its own (a
// product's client_credentials token), is revoked until expiresAt, when it would have
// expired anyway. Denying it twice is not an error.
func (s *Store) DenyAccessToken(ctx context.Context, id, clientID string, expiresAt time.Time) error {
	now := s.now()
	row := &AccessToken{ID: id, ClientID: clientID, CreatedAt: now, ExpiresAt: expiresAt, RevokedAt: &now}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(row).Error
	return mapErr(err, fmt.Sprintf("deny access token %q", id))
}

// AccessTokenDenied reports whether DenyAccessToken recorded id: a primary-key read on
// the read pool.
func (s *Store) AccessTokenDenied(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.read(ctx, rAccessTokenDenied, []any{id}, &one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up denied access token %q: %w", id, err)
	}
	return true, nil
}

// CreateRefreshFamily stores a new family at its first generation and returns the
// refresh token to hand to the client (only its hash is stored; see refreshValue). The
// store gives the family its ids. A family made from a code whose reuse was already
// detected, or whose account has been blocked or session ended since, is refused with
// ErrReused, nothing written.
func (s *Store) CreateRefreshFamily(ctx context.Context, f *RefreshFamily) (string, error) {
	if f.CreatedAt.IsZero() {
		f.CreatedAt = s.now()
	}
	if f.RotatedAt.IsZero() {
		f.RotatedAt = f.CreatedAt
	}
	if f.ID == "" {
		f.ID = newTokenID(f.CreatedAt)
	}
	if f.AccessID == "" {
		f.AccessID = NewID()
	}
	f.Generation = 1
	raw := refreshValue(f.ID, f.Generation)
	f.TokenHash = HashSecret(raw)
	if err := s.insertToken(ctx, "refresh family", qInsertRefreshFamily, qInsertRefreshFamilyOfCode, refreshFamilyArgs(f),
		f.AuthRequestID, f.UserID, f.SessionID); err != nil {
		return "", err
	}
	return raw, nil
}

// refreshValue makes the refresh token a client holds for a family's generation: the
// family's id, the generation, and 256 random bits, dot-separated. The id makes finding
// the family a primary-key read (the alternative, a unique index on the hash, is a
// random B-tree page written on every rotation); the generation tells a replay from
// the live token; the hash of the whole value, compared in constant time, proves the
// live token.
func refreshValue(id string, generation int64) string {
	return id + "." + strconv.FormatInt(generation, 10) + "." + NewSecret()
}

// parseRefreshValue is the family and generation raw names, if it has the form of
// refreshValue.
func parseRefreshValue(raw string) (id string, generation int64, ok bool) {
	id, rest, ok := strings.Cut(raw, ".")
	if !ok || id == "" || len(id) > 64 {
		return "", 0, false
	}
	gen, secret, ok := strings.Cut(rest, ".")
	if !ok || len(secret) != secretLength {
		return "", 0, false
	}
	generation, err := strconv.ParseInt(gen, 10, 64)
	if err != nil || generation < 1 {
		return "", 0, false
	}
	return id, generation, true
}

// RefreshFamilyByToken loads the family whose live token raw is, presented by the
// product clientID. A token of an earlier generation presented again by the family's
// own product is a replay: the family is revoked and ErrReused returned. Revoked and
// expired families are ErrNotFound, and so is anything that is not a refresh token
// this store made (a wrong secret for the live generation, or a generation not yet
// issued, revokes nothing).
//
// An earlier generation is recognised by its number alone: its secret is no longer
// stored. Its family's id is in every refresh token of the family (access tokens name
// it by AccessID instead), so it is the product the family was issued to, and no
// other, whose presentation of it counts as a replay: a confidential product proves it
// with its secret, and could revoke the family by RFC 7009 anyway.
func (s *Store) RefreshFamilyByToken(ctx context.Context, raw, clientID string) (*RefreshFamily, error) {
	f, generation, err := s.familyByValue(ctx, raw)
	if err != nil {
		return nil, err
	}
	now := s.now()
	switch {
	case f.RevokedAt != nil:
		return nil, fmt.Errorf("load refresh token: revoked: %w", ErrNotFound)
	case generation < f.Generation && f.ClientID != clientID:
		return nil, fmt.Errorf("load refresh token: an earlier generation from another product: %w", ErrNotFound)
	case generation < f.Generation:
		if err := s.RevokeRefreshFamily(ctx, f.ID); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("refresh token of family %q replayed: %w", f.AccessID, ErrReused)
	case !now.Before(f.ExpiresAt) || !now.Before(f.FamilyExpiresAt):
		return nil, fmt.Errorf("load refresh token: expired: %w", ErrNotFound)
	}
	return f, nil
}

// familyByValue loads the family raw names, in whatever state, with the generation
// raw names: the live one only if raw is its token, an earlier one by its number.
func (s *Store) familyByValue(ctx context.Context, raw string) (*RefreshFamily, int64, error) {
	id, generation, ok := parseRefreshValue(raw)
	if !ok {
		return nil, 0, fmt.Errorf("load refresh token: not a refresh token: %w", ErrNotFound)
	}
	f, err := s.RefreshFamilyByID(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case generation > f.Generation:
		return nil, 0, fmt.Errorf("load refresh token: generation %d not issued: %w", generation, ErrNotFound)
	case generation == f.Generation && subtle.ConstantTimeCompare([]byte(f.TokenHash), []byte(HashSecret(raw))) != 1:
		return nil, 0, fmt.Errorf("load refresh token: wrong secret: %w", ErrNotFound)
	}
	return f, generation, nil
}

// RefreshFamilyByID loads a family whatever its state.
func (s *Store) RefreshFamilyByID(ctx context.Context, id string) (*RefreshFamily, error) {
	var f RefreshFamily
	err := s.read(ctx, rRefreshFamily, []any{id}, refreshFamilyDest(&f)...)
	return &f, mapErr(err, "load refresh family")
}

// RefreshFamilyByAccessID loads the family whose access tokens are named by accessID,
// whatever its state (userinfo and introspection of those access tokens).
func (s *Store) RefreshFamilyByAccessID(ctx context.Context, accessID string) (*RefreshFamily, error) {
	var f RefreshFamily
	err := s.read(ctx, rFamilyByAccessID, []any{accessID}, refreshFamilyDest(&f)...)
	return &f, mapErr(err, "load refresh family by access id")
}

// RotateRefreshFamily spends f's live generation, as read by RefreshFamilyByToken, and
// returns the next generation's token, with f updated to it. expiresAt is the next
// generation's idle expiry (capped by the family's absolute expiry) and accessExpiresAt
// the exp of the access token issued with it. Of two racing rotations exactly one
// wins; the loser is treated as a replay and revokes the family (ErrReused). A family
// that is revoked or expired, or whose account is blocked or session ended, is refused
// with ErrNotFound, and revoked too.
func (s *Store) RotateRefreshFamily(ctx context.Context, f *RefreshFamily, expiresAt, accessExpiresAt time.Time) (string, error) {
	next := refreshValue(f.ID, f.Generation+1)
	rotated, err := s.rotate(ctx, f.ID, f.Generation, f.TokenHash, f.ClientID, next, expiresAt, accessExpiresAt)
	if errors.Is(err, ErrReused) {
		return "", s.refused(ctx, f.ID, f.Generation)
	}
	if err != nil {
		return "", mapErr(err, "rotate refresh token")
	}
	*f = *rotated
	return next, nil
}

// RotateRefreshFamilyByToken spends the live generation whose token raw is, for the
// product clientID, without reading the family first, and returns the family at its
// next generation with that generation's token. expiresAt and accessExpiresAt are as
// for RotateRefreshFamily. Anything else — not the live token, another product's, a
// family revoked, expired, or whose account is blocked or session ended, the losing
// side of a race — is ErrNotFound with nothing written or revoked:
// RefreshFamilyByToken then tells which, and handles a replay.
func (s *Store) RotateRefreshFamilyByToken(ctx context.Context, raw, clientID string, expiresAt, accessExpiresAt time.Time) (*RefreshFamily, string, error) {
	id, generation, ok := parseRefreshValue(raw)
	if !ok {
		return nil, "", fmt.Errorf("rotate refresh token: not a refresh token: %w", ErrNotFound)
	}
	next := refreshValue(id, generation+1)
	f, err := s.rotate(ctx, id, generation, HashSecret(raw), clientID, next, expiresAt, accessExpiresAt)
	if errors.Is(err, ErrReused) {
		return nil, "", fmt.Errorf("rotate refresh token: not the live token of a live family: %w", ErrNotFound)
	}
	if err != nil {
		return nil, "", mapErr(err, "rotate refresh token")
	}
	return f, next, nil
}

// rotate runs rotateSQL on generation of family id, whose token has hash and was issued
// to clientID, storing next as the next generation's token. ErrReused: nothing matched,
// nothing written.
func (s *Store) rotate(ctx context.Context, id string, generation int64, hash, clientID, next string, expiresAt, accessExpiresAt time.Time) (*RefreshFamily, error) {
	now := s.now()
	var f RefreshFamily
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := scanRotated(s.queryRow(ctx, tx, qRotateRefreshFamily,
			HashSecret(next), now, expiresAt, expiresAt, accessExpiresAt,
			id, generation, hash, clientID, now, now), &f)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrReused // no row matched, nothing written: the batch goes on
		}
		return err
	})
	return &f, err
}

// refused tells why a rotation of generation of family id wrote nothing, and revokes
// the family: the losing side of a race or a spent generation (a replay) is ErrReused;
// a revoked or expired family, or one whose account or session was taken away since
// the provider looked, ErrNotFound. A family's generation only grows, so reading it
// after the fact tells the two apart.
func (s *Store) refused(ctx context.Context, id string, generation int64) error {
	var f RefreshFamily
	if err := s.db.WithContext(ctx).Select("access_id", "generation").Where("id = ?", id).Take(&f).Error; err != nil {
		return mapErr(err, "rotate refresh token")
	}
	if err := s.RevokeRefreshFamily(ctx, id); err != nil {
		return err
	}
	if f.Generation == generation {
		return fmt.Errorf("rotate refresh token of family %q: revoked, expired, or its account or session taken away: %w",
			f.AccessID, ErrNotFound)
	}
	return fmt.Errorf("rotate refresh token of family %q: %w", f.AccessID, ErrReused)
}

// RevokeRefreshFamily revokes a family, and with it every access token issued with it.
func (s *Store) RevokeRefreshFamily(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Model(&RefreshFamily{}).Where("id = ? AND revoked_at IS NULL", id).
		Update("revoked_at", s.now()).Error
	return mapErr(err, "revoke a refresh family")
}

// RevokeFamilyAccess revokes the access tokens a family issued with generations up to
// generation, and not the family itself (RFC 7009 on an access token): the later ones
// are the product's current tokens, and earlier ones could not outlive them.
func (s *Store) RevokeFamilyAccess(ctx context.Context, id string, generation int64) error {
	// A generation not yet issued revokes nothing: its token would be born revoked.
	err := s.db.WithContext(ctx).Model(&RefreshFamily{}).
		Where("id = ? AND access_revoked_through < ? AND generation >= ?", id, generation, generation).
		Update("access_revoked_through", generation).Error
	// The family's id is not for logs: with it, any generation number is a replay.
	return mapErr(err, "revoke access tokens of a refresh family")
}

// FindRefreshFamily finds the family a raw refresh token names, whatever its state,
// without the replay handling of RefreshFamilyByToken (revocation uses it). Only the
// whole live token finds it, or one of an earlier generation by its number (see
// RefreshFamilyByToken): the id alone is the visible half of the token.
func (s *Store) FindRefreshFamily(ctx context.Context, raw string) (*RefreshFamily, error) {
	f, _, err := s.familyByValue(ctx, raw)
	return f, mapErr(err, "find refresh token")
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
		// row (see codeLockPostgres) and the statements below see its rows.
		if err := tx.Model(&AuthRequest{}).Where("id = ? AND code_reused_at IS NULL", authRequestID).
			Update("code_reused_at", s.now()).Error; err != nil {
			return err
		}
		return s.revokeTokensTx(tx, "auth_request_id = ? AND auth_request_id <> ''", authRequestID)
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

// revokeTokensTx revokes the refresh families and the access tokens matching where, a
// condition on columns both tables have (and index only where set, so a condition on
// one of them must also say "<column> <> ”" for the database to use the index). An
// access token issued with a family ends with the family.
//
// A rotation racing the revocation cannot leave a live generation behind: it updates
// the family's row in place, so on PostgreSQL the revocation's UPDATE waits for the
// rotation's row lock and then revokes the row as rotated, or the rotation waits and
// then finds it revoked; on SQLite writers take turns.
func (s *Store) revokeTokensTx(tx *gorm.DB, where string, args ...any) error {
	now := s.now()
	if err := tx.Model(&RefreshFamily{}).Where(where, args...).Where("revoked_at IS NULL").
		Update("revoked_at", now).Error; err != nil {
		return err
	}
	return tx.Model(&AccessToken{}).Where(where, args...).Where("revoked_at IS NULL").Update("revoked_at", now).Error
}
