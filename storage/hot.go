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
	qInsertAccessTokenOfCode
	qInsertRefreshTokenOfCode
	nHotQueries
)

// The token endpoint's reads by primary key, on the read pool: every grant and every
// userinfo or introspection runs one or two of them, and gorm's statement building
// and reflection cost more than the read itself.
type hotRead int

const (
	rAccessToken hotRead = iota
	rRefreshToken
	rUser
	nHotReads
)

// selectByID reads columns into dest (one pointer a column) by primary key. A text or
// boolean column that an older schema did not have is NULL in the rows it left, and
// database/sql will not scan NULL into a string or a bool (gorm did, as the zero
// value): such columns are read through COALESCE. Pointer fields take NULL as nil.
func selectByID(table string, columns []string, dest []any, and string) string {
	list := make([]string, len(columns))
	for i, c := range columns {
		switch dest[i].(type) {
		case *string:
			list[i] = "COALESCE(" + c + ", '')"
		case *bool:
			list[i] = "COALESCE(" + c + ", false)"
		default:
			list[i] = c
		}
	}
	return "SELECT " + strings.Join(list, ", ") + " FROM " + table + " WHERE id = ?" + and
}

var hotReadSQL = [nHotReads]string{
	rAccessToken: selectByID("access_tokens", accessTokenColumns, accessTokenDest(&AccessToken{}),
		" AND revoked_at IS NULL AND expires_at > ?"),
	rRefreshToken: selectByID("refresh_tokens", refreshTokenColumns, refreshTokenDest(&RefreshToken{}), ""),
	rUser:         selectByID("users", userColumns, userDest(&User{}), ""),
}

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

// userColumns is every column of User, in the order of userDest.
var userColumns = []string{
	"id", "phone", "email", "phone_verified", "email_verified", "password_hash",
	"family_name", "given_name", "middle_name", "blocked", "created_at", "updated_at",
}

// accessTokenDest, refreshTokenDest and userDest are where a row of each read goes,
// in the order of the column lists.
func accessTokenDest(t *AccessToken) []any {
	return []any{
		&t.ID, &t.ClientID, &t.UserID, &t.SessionID, &t.FamilyID, &t.AuthRequestID,
		&t.Scopes, &t.Audience, &t.Claims, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt,
	}
}

func refreshTokenDest(t *RefreshToken) []any {
	return []any{
		&t.ID, &t.FamilyID, &t.TokenHash, &t.ClientID, &t.UserID, &t.SessionID, &t.AuthRequestID,
		&t.Scopes, &t.Audience, &t.AuthTime, &t.AMR, &t.ACR, &t.IDP, &t.Claims,
		&t.CreatedAt, &t.ExpiresAt, &t.FamilyExpiresAt, &t.SpentAt, &t.RevokedAt,
	}
}

func userDest(u *User) []any {
	return []any{
		&u.ID, &u.Phone, &u.Email, &u.PhoneVerified, &u.EmailVerified, &u.PasswordHash,
		&u.FamilyName, &u.GivenName, &u.MiddleName, &u.Blocked, &u.CreatedAt, &u.UpdatedAt,
	}
}

func refreshTokenArgs(t *RefreshToken) []any {
	return []any{
		t.ID, t.FamilyID, t.TokenHash, t.ClientID, t.UserID, t.SessionID, t.AuthRequestID,
		t.Scopes, t.Audience, t.AuthTime, t.AMR, t.ACR, t.IDP, t.Claims,
		t.CreatedAt, t.ExpiresAt, t.FamilyExpiresAt, t.SpentAt, t.RevokedAt,
	}
}

// spendableWhere is the WHERE of a rotation's spend, with arguments the old id and now
// (written as now, e.g. "?::timestamptz"). A generation is spent at most once, and
// only while it is live (a revoked family's rows all are revoked), its account not
// blocked and its session, if it has one, not ended. The provider checks the account
// before it rotates, but a block or logout may commit in between: checked here, in
// the statement that spends, it cannot. The other way round, a rotation that commits
// while a revocation runs is caught by it (see revokeTokensTx). Both subqueries are
// primary-key lookups. An absent account or session refuses nothing: accounts are
// never deleted, and an expired session's tokens outlive it (only ending one, which
// marks it, takes them away).
func spendableWhere(now string) string {
	return "refresh_tokens.id = ? AND refresh_tokens.spent_at IS NULL AND refresh_tokens.revoked_at IS NULL " +
		"AND refresh_tokens.expires_at > " + now + " " +
		"AND NOT EXISTS (SELECT 1 FROM users WHERE users.id = refresh_tokens.user_id AND users.blocked) " +
		"AND NOT EXISTS (SELECT 1 FROM sessions WHERE sessions.id = refresh_tokens.session_id AND sessions.ended_at IS NOT NULL)"
}

// rotationLockClass is the first key of the PostgreSQL advisory locks that order
// rotations and revocations of one account's refresh tokens (the second is the
// account's bucket; see revokeTokensTx). It spells "rfsh".
const rotationLockClass = 0x72667368

// rotationLockBucket maps an account id to the second key: one of 1,024 buckets, not
// one lock an account. A revocation holds a lock on every account it covers until it
// commits, and removing a product with a hundred thousand accounts would otherwise
// want more locks than PostgreSQL's lock table holds ("out of shared memory"). Two
// accounts that share a bucket only wait for each other's revocation, which is brief.
const rotationLockBucket = "(hashtext(%s) & 1023)"

// rotationLockPostgres is the rotation's part of that ordering, a predicate on the
// generation being spent: a shared, transaction-scoped advisory lock on its account's
// bucket, held until the rotation commits. Costlier than the other predicates, so
// PostgreSQL evaluates it last, on a generation that is otherwise spendable, and
// before it locks the row. It is in memory only: no row is written for it. The lock
// function returns nothing, hence the sub-select.
var rotationLockPostgres = fmt.Sprintf(" AND EXISTS (SELECT 1 FROM (SELECT pg_advisory_xact_lock_shared(%d, "+
	rotationLockBucket+")) AS rotation_lock)", rotationLockClass, "refresh_tokens.user_id")

// lockRotationsPostgres takes the revocation's part: exclusive locks on the buckets of
// the accounts of the refresh tokens matching a WHERE (appended), in one order so that
// two revocations cannot deadlock.
var lockRotationsPostgres = fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, k) FROM "+
	"(SELECT DISTINCT "+rotationLockBucket+" AS k FROM refresh_tokens WHERE user_id <> '' AND ", rotationLockClass, "user_id")

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
		"WHERE " + spendableWhere("?::timestamptz") + rotationLockPostgres + " " +
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

// Tokens made from an authorization code are inserted only while the code has not
// been presented again (auth_requests.code_reused_at, set by RevokeAuthRequestTokens
// before it revokes). A second presentation may revoke the code's tokens before the
// first has created them; the check in the inserting statement closes that gap. On
// SQLite writers take turns, so a NOT EXISTS suffices. On PostgreSQL (READ COMMITTED)
// the insert and the revocation could each miss the other's uncommitted write, so the
// insert share-locks the request's row, which the reuse's UPDATE locks exclusively:
// whichever comes second waits for the other to commit, then sees it (the locked row
// is re-read at its newest version, the revocation's next statement sees the tokens).
// A request with no row refuses nothing.
const (
	codeLockPostgres   = "ar AS MATERIALIZED (SELECT code_reused_at FROM auth_requests WHERE id = ? FOR SHARE)"
	codeUnusedPostgres = " WHERE NOT EXISTS (SELECT 1 FROM ar WHERE code_reused_at IS NOT NULL)"
	codeUnusedSQLite   = " WHERE NOT EXISTS (SELECT 1 FROM auth_requests WHERE id = ? AND code_reused_at IS NOT NULL)"
)

// createCodeFamilyPostgres is createFamilyPostgres for a family made from a code; the
// access token is inserted only if the generation was. Arguments: the auth request id,
// refreshTokenArgs, accessTokenArgs. No row affected means nothing was written.
var createCodeFamilyPostgres = dollarPlaceholders(
	"WITH " + codeLockPostgres + ", " +
		"refresh AS (INSERT INTO refresh_tokens (" + strings.Join(refreshTokenColumns, ", ") + ") " +
		"SELECT " + castList(refreshTokenColumns, nil) + codeUnusedPostgres + " RETURNING 1) " +
		"INSERT INTO access_tokens (" + strings.Join(accessTokenColumns, ", ") + ") " +
		"SELECT " + castList(accessTokenColumns, nil) + " FROM refresh")

// insertCodeAccessPostgres inserts an access token made from a code (no refresh
// token). Arguments: the auth request id, accessTokenArgs.
var insertCodeAccessPostgres = dollarPlaceholders(
	"WITH " + codeLockPostgres + " " +
		"INSERT INTO access_tokens (" + strings.Join(accessTokenColumns, ", ") + ") " +
		"SELECT " + castList(accessTokenColumns, nil) + codeUnusedPostgres)

// insertIfCodeUnused is an INSERT of columns that happens only while the code of the
// auth request (the last argument) has not been presented again (SQLite).
func insertIfCodeUnused(table string, columns []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") SELECT ?" +
		strings.Repeat(", ?", len(columns)-1) + codeUnusedSQLite
}

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
	qSpendRefreshToken: "UPDATE refresh_tokens SET spent_at = ? WHERE " + spendableWhere("?") +
		" RETURNING family_id, family_expires_at",
	// A code is used at most once; its row stays until the new expiry so that a
	// second presentation is recognised.
	qUseCode: "UPDATE auth_requests SET code_used_at = ?, expires_at = ? WHERE id = ? AND code_used_at IS NULL",
	// SQLite only; PostgreSQL uses createCodeFamilyPostgres and insertCodeAccessPostgres.
	qInsertAccessTokenOfCode:  insertIfCodeUnused("access_tokens", accessTokenColumns),
	qInsertRefreshTokenOfCode: insertIfCodeUnused("refresh_tokens", refreshTokenColumns),
}

// hotStatements holds the statements for one database.
type hotStatements struct {
	query [nHotQueries]string    // in the dialect's placeholders
	stmt  [nHotQueries]*sql.Stmt // prepared on the pool (SQLite only)

	readDB    *sql.DB              // the read pool
	readQuery [nHotReads]string    // in the dialect's placeholders
	readStmt  [nHotReads]*sql.Stmt // prepared on the read pool (SQLite only)
}

// postgresSQL replaces statements of hotSQL on PostgreSQL: a spend outside
// rotatePostgres (a rotation with no access token) takes the same account lock.
var postgresSQL = map[hotQuery]string{
	qSpendRefreshToken: "UPDATE refresh_tokens SET spent_at = ? WHERE " + spendableWhere("?") + rotationLockPostgres +
		" RETURNING family_id, family_expires_at",
}

func (h *hotStatements) prepare(ctx context.Context, db *sql.DB, dialect string) error {
	for q, text := range hotSQL {
		if dialect == "postgres" {
			if pg, ok := postgresSQL[hotQuery(q)]; ok {
				text = pg
			}
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

// prepareReads readies the reads on pool: the read-only pool on an SQLite file, the
// one pool elsewhere.
func (h *hotStatements) prepareReads(ctx context.Context, pool *sql.DB, dialect string) error {
	h.readDB = pool
	for q, text := range hotReadSQL {
		if dialect == "postgres" {
			text = dollarPlaceholders(text)
		}
		h.readQuery[q] = text
		if dialect != "sqlite" {
			continue
		}
		stmt, err := pool.PrepareContext(ctx, text)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", text, err)
		}
		h.readStmt[q] = stmt
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
	for i, stmt := range h.readStmt {
		if stmt != nil {
			_ = stmt.Close()
			h.readStmt[i] = nil
		}
	}
}

// read runs q on the read pool and scans its one row into dest; no row is
// sql.ErrNoRows.
func (s *Store) read(ctx context.Context, q hotRead, args []any, dest ...any) error {
	if stmt := s.hot.readStmt[q]; stmt != nil {
		return stmt.QueryRowContext(ctx, args...).Scan(dest...)
	}
	return s.hot.readDB.QueryRowContext(ctx, s.hot.readQuery[q], args...).Scan(dest...)
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
