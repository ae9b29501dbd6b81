package storage

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The token endpoint's writes, in plain SQL on database/sql. Every grant runs them, so
// they skip gorm's reflection, and on SQLite they are prepared once on the writer: a
// statement gorm first meets inside a transaction is prepared on that transaction and
// so parsed and planned again in every later one, while database/sql lets a
// transaction reuse a statement prepared on the pool when it runs on the same
// connection, which SQLite's single writer always is. PostgreSQL needs none of this:
// pgx keeps prepared statements per connection, inside transactions too.

type hotQuery int

const (
	qInsertAccessToken hotQuery = iota
	qInsertRefreshToken
	qSpendRefreshToken
	qUseCode
	nHotQueries
)

// accessTokenColumns and refreshTokenColumns are every column of the models, in the
// order of accessTokenArgs and refreshTokenArgs (a test compares them with the schema).
var (
	accessTokenColumns = []string{
		"id", "client_id", "user_id", "session_id", "family_id", "auth_request_id",
		"scopes", "audience", "claims", "created_at", "expires_at", "revoked_at",
	}
	refreshTokenColumns = []string{
		"id", "family_id", "token_hash", "client_id", "user_id", "session_id", "auth_request_id",
		"scopes", "audience", "auth_time", "amr", "acr", "idp", "claims",
		"created_at", "expires_at", "family_expires_at", "spent_at", "revoked_at",
	}
)

func accessTokenArgs(t *AccessToken) []any {
	return []any{
		t.ID, t.ClientID, t.UserID, t.SessionID, t.FamilyID, t.AuthRequestID,
		t.Scopes, t.Audience, t.Claims, t.CreatedAt, t.ExpiresAt, t.RevokedAt,
	}
}

func refreshTokenArgs(t *RefreshToken) []any {
	return []any{
		t.ID, t.FamilyID, t.TokenHash, t.ClientID, t.UserID, t.SessionID, t.AuthRequestID,
		t.Scopes, t.Audience, t.AuthTime, t.AMR, t.ACR, t.IDP, t.Claims,
		t.CreatedAt, t.ExpiresAt, t.FamilyExpiresAt, t.SpentAt, t.RevokedAt,
	}
}

// rotatePostgres is a whole rotation in one statement, one round trip instead of five
// (BEGIN, UPDATE, two INSERTs, COMMIT): the spend, the next generation and its access
// token, each inserted only if the one before it happened. A statement is atomic on
// its own, and the UPDATE takes the row lock, so of two racing rotations one spends
// the row and the other, re-checking the WHERE after the winner commits, inserts
// nothing. Arguments: now, the old id, now, refreshTokenArgs without family_id and
// family_expires_at, then accessTokenArgs without family_id. Returns the family and
// its expiry; no row means nothing was written.
var rotatePostgres = dollarPlaceholders(
	"WITH spent AS (UPDATE refresh_tokens SET spent_at = ?::timestamptz " +
		"WHERE id = ? AND spent_at IS NULL AND revoked_at IS NULL AND expires_at > ?::timestamptz " +
		"RETURNING family_id, family_expires_at), " +
		"next AS (INSERT INTO refresh_tokens (" + strings.Join(refreshTokenColumns, ", ") + ") " +
		"SELECT " + castList(refreshTokenColumns, map[string]string{
		"family_id": "spent.family_id", "family_expires_at": "spent.family_expires_at"}) +
		" FROM spent RETURNING family_id), " +
		"access AS (INSERT INTO access_tokens (" + strings.Join(accessTokenColumns, ", ") + ") " +
		"SELECT " + castList(accessTokenColumns, map[string]string{"family_id": "next.family_id"}) +
		" FROM next) " +
		"SELECT family_id, family_expires_at FROM spent")

// createFamilyPostgres stores a family's first generation and its access token in one
// statement (one round trip instead of four). Arguments: refreshTokenArgs, then
// accessTokenArgs.
var createFamilyPostgres = dollarPlaceholders(
	"WITH refresh AS (" + insertSQL("refresh_tokens", refreshTokenColumns) + ") " +
		insertSQL("access_tokens", accessTokenColumns))

// castList is a SELECT list of typed placeholders for columns, with some columns taken
// from elsewhere: in INSERT … SELECT PostgreSQL does not infer a placeholder's type
// from the column it goes to.
func castList(columns []string, from map[string]string) string {
	out := make([]string, len(columns))
	for i, c := range columns {
		switch {
		case from[c] != "":
			out[i] = from[c]
		case timeColumns[c]:
			out[i] = "?::timestamptz"
		default:
			out[i] = "?::text"
		}
	}
	return strings.Join(out, ", ")
}

var timeColumns = map[string]bool{
	"created_at": true, "expires_at": true, "revoked_at": true, "spent_at": true,
	"auth_time": true, "family_expires_at": true,
}

// without drops the arguments of the named columns.
func without(columns []string, args []any, drop ...string) []any {
	out := make([]any, 0, len(args))
	for i, c := range columns {
		if !slices.Contains(drop, c) {
			out = append(out, args[i])
		}
	}
	return out
}

func insertSQL(table string, columns []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES (?" +
		strings.Repeat(", ?", len(columns)-1) + ")"
}

// hotSQL is each statement with ? placeholders.
var hotSQL = [nHotQueries]string{
	qInsertAccessToken:  insertSQL("access_tokens", accessTokenColumns),
	qInsertRefreshToken: insertSQL("refresh_tokens", refreshTokenColumns),
	// A generation is spent at most once: the WHERE is the check, rows affected the
	// verdict, and RETURNING hands back the family in the same statement.
	qSpendRefreshToken: "UPDATE refresh_tokens SET spent_at = ? " +
		"WHERE id = ? AND spent_at IS NULL AND revoked_at IS NULL AND expires_at > ? " +
		"RETURNING family_id, family_expires_at",
	// A code is used at most once; its row stays until the new expiry so that a
	// second presentation is recognised.
	qUseCode: "UPDATE auth_requests SET code_used_at = ?, expires_at = ? WHERE id = ? AND code_used_at IS NULL",
}

// hotStatements holds the statements for one database.
type hotStatements struct {
	query [nHotQueries]string    // in the dialect's placeholders
	stmt  [nHotQueries]*sql.Stmt // prepared on the pool (SQLite only)
}

func (h *hotStatements) prepare(ctx context.Context, db *sql.DB, dialect string) error {
	for q, text := range hotSQL {
		if dialect == "postgres" {
			text = dollarPlaceholders(text)
		}
		h.query[q] = text
		if dialect != "sqlite" {
			continue
		}
		stmt, err := db.PrepareContext(ctx, text)
		if err != nil {
			h.close()
			return fmt.Errorf("prepare %q: %w", text, err)
		}
		h.stmt[q] = stmt
	}
	return nil
}

func (h *hotStatements) close() {
	for i, stmt := range h.stmt {
		if stmt != nil {
			_ = stmt.Close()
			h.stmt[i] = nil
		}
	}
}

// dollarPlaceholders numbers ? placeholders for PostgreSQL ($1, $2, …). The hot
// statements have no ? anywhere else.
func dollarPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// execer is a pool or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// exec runs q on the pool or on tx (nil: the pool).
func (s *Store) exec(ctx context.Context, tx *sql.Tx, q hotQuery, args ...any) error {
	_, err := s.execResult(ctx, tx, q, args...)
	return err
}

func (s *Store) execResult(ctx context.Context, tx *sql.Tx, q hotQuery, args ...any) (sql.Result, error) {
	switch stmt := s.hot.stmt[q]; {
	case stmt != nil && tx != nil:
		return tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	case stmt != nil:
		return stmt.ExecContext(ctx, args...)
	default:
		return s.conn(tx).ExecContext(ctx, s.hot.query[q], args...)
	}
}

// queryRow runs q on tx and scans its one row into dest; no row is sql.ErrNoRows.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, q hotQuery, args []any, dest ...any) error {
	if stmt := s.hot.stmt[q]; stmt != nil {
		return tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...).Scan(dest...)
	}
	return tx.QueryRowContext(ctx, s.hot.query[q], args...).Scan(dest...)
}

func (s *Store) conn(tx *sql.Tx) execer {
	if tx != nil {
		return tx
	}
	return s.sqlDB
}

// sqlTx runs fn in one database/sql transaction on the writer (on SQLite an immediate
// one, as the DSN asks, so it holds the write lock from its first statement).
func (s *Store) sqlTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
