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
	qInsertRefreshFamily
	qRotateRefreshFamily
	qSpendCode
	qInsertAccessTokenOfCode
	qInsertRefreshFamilyOfCode
	nHotQueries
)

// The token endpoint's reads by key, on the read pool: every grant and every userinfo
// or introspection runs one or two of them, and gorm's statement building and
// reflection cost more than the read itself.
type hotRead int

const (
	rAccessToken hotRead = iota
	rAccessTokenDenied
	rRefreshFamily
	rFamilyByAccessID
	rUser
	nHotReads
)

// selectBy reads columns into dest (one pointer a column) by the key column.
func selectBy(table, key string, columns []string, dest []any, and string) string {
	return "SELECT " + strings.Join(nullSafe(columns, dest), ", ") + " FROM " + table + " WHERE " + key + " = ?" + and
}

// nullSafe is columns as a select list for dest (one pointer a column).
func nullSafe(columns []string, dest []any) []string {
	list := make([]string, len(columns))
	for i, c := range columns {
		list[i] = nullSafeExpr(c, dest[i])
	}
	return list
}

// nullSafeExpr is expr as read into dest. A text or boolean column that an older
// schema did not have is NULL in the rows it left, and database/sql will not scan NULL
// into a string or a bool (gorm did, as the zero value): such columns are read through
// COALESCE. Pointer fields take NULL as nil.
func nullSafeExpr(expr string, dest any) string {
	switch dest.(type) {
	case *string:
		return "COALESCE(" + expr + ", '')"
	case *bool:
		return "COALESCE(" + expr + ", false)"
	}
	return expr
}

var hotReadSQL = [nHotReads]string{
	rAccessToken: selectBy("access_tokens", "id", accessTokenColumns, accessTokenDest(&AccessToken{}),
		" AND revoked_at IS NULL AND expires_at > ?"),
	rAccessTokenDenied: "SELECT 1 FROM access_tokens WHERE id = ? AND revoked_at IS NOT NULL",
	rRefreshFamily:     selectBy("refresh_families", "id", refreshFamilyColumns, refreshFamilyDest(&RefreshFamily{}), ""),
	rFamilyByAccessID:  selectBy("refresh_families", "access_id", refreshFamilyColumns, refreshFamilyDest(&RefreshFamily{}), ""),
	rUser:              selectBy("users", "id", userColumns, userDest(&User{}), ""),
}

// accessTokenColumns and refreshFamilyColumns are every column of the models, in the
// order of accessTokenArgs and refreshFamilyArgs (a test compares them with the schema).
var (
	accessTokenColumns = []string{
		"id", "client_id", "user_id", "session_id", "auth_request_id",
		"scopes", "audience", "claims", "created_at", "expires_at", "revoked_at",
	}
	refreshFamilyColumns = []string{
		"id", "access_id", "generation", "token_hash", "access_revoked_through",
		"client_id", "user_id", "session_id", "auth_request_id",
		"scopes", "audience", "auth_time", "amr", "acr", "idp", "claims",
		"created_at", "rotated_at", "expires_at", "family_expires_at", "access_expires_at", "revoked_at",
	}
)

func accessTokenArgs(t *AccessToken) []any {
	return []any{
		t.ID, t.ClientID, t.UserID, t.SessionID, t.AuthRequestID,
		t.Scopes, t.Audience, t.Claims, t.CreatedAt, t.ExpiresAt, t.RevokedAt,
	}
}

// userColumns is every column of User, in the order of userDest.
var userColumns = []string{
	"id", "phone", "email", "phone_verified", "email_verified", "password_hash",
	"family_name", "given_name", "middle_name", "blocked", "created_at", "updated_at",
}

// accessTokenDest, refreshFamilyDest and userDest are where a row of each read goes,
// in the order of the column lists.
func accessTokenDest(t *AccessToken) []any {
	return []any{
		&t.ID, &t.ClientID, &t.UserID, &t.SessionID, &t.AuthRequestID,
		&t.Scopes, &t.Audience, &t.Claims, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt,
	}
}

func refreshFamilyDest(f *RefreshFamily) []any {
	return []any{
		&f.ID, &f.AccessID, &f.Generation, &f.TokenHash, &f.AccessRevokedThrough,
		&f.ClientID, &f.UserID, &f.SessionID, &f.AuthRequestID,
		&f.Scopes, &f.Audience, &f.AuthTime, &f.AMR, &f.ACR, &f.IDP, &f.Claims,
		&f.CreatedAt, &f.RotatedAt, &f.ExpiresAt, &f.FamilyExpiresAt, &f.AccessExpiresAt, &f.RevokedAt,
	}
}

func userDest(u *User) []any {
	return []any{
		&u.ID, &u.Phone, &u.Email, &u.PhoneVerified, &u.EmailVerified, &u.PasswordHash,
		&u.FamilyName, &u.GivenName, &u.MiddleName, &u.Blocked, &u.CreatedAt, &u.UpdatedAt,
	}
}

func refreshFamilyArgs(f *RefreshFamily) []any {
	return []any{
		f.ID, f.AccessID, f.Generation, f.TokenHash, f.AccessRevokedThrough,
		f.ClientID, f.UserID, f.SessionID, f.AuthRequestID,
		f.Scopes, f.Audience, f.AuthTime, f.AMR, f.ACR, f.IDP, f.Claims,
		f.CreatedAt, f.RotatedAt, f.ExpiresAt, f.FamilyExpiresAt, f.AccessExpiresAt, f.RevokedAt,
	}
}

// rotateSQL is a whole rotation, one UPDATE of one row that changes no indexed column:
// the generation a token names is spent and the next one stored in the same statement,
// and the family comes back by RETURNING. Its WHERE is the check and no row the
// verdict: of two racing rotations of one generation exactly one matches (on
// PostgreSQL the second waits for the first's row lock, then re-checks the WHERE
// against the row as committed). It names the generation by the token's hash and the
// product presenting it, so that it can also rotate a token nobody has read yet; the
// hash is compared by the database, not in constant time, which for a SHA-256 of a
// 256-bit secret tells an attacker nothing usable. The idle expiry is capped by the
// family's absolute one, and the family must be live (liveFamilyWhere). Arguments: the
// new token hash, rotated_at, the idle expiry twice, access_expires_at; the family's
// id, the token's generation and hash, the product; now twice.
var (
	rotateSQL = "UPDATE refresh_families SET generation = generation + 1, token_hash = ?, rotated_at = ?, " +
		"expires_at = CASE WHEN family_expires_at < ? THEN family_expires_at ELSE ? END, access_expires_at = ? " +
		"WHERE id = ? AND generation = ? AND token_hash = ? AND client_id = ? AND " + liveFamilyWhere +
		" RETURNING " + strings.Join(nullSafe(rotatedColumns, (&rotatedFamily{}).dest()), ", ") + returningAccount("refresh_families")
	// liveFamilyWhere: not revoked, not expired (arguments: now twice), its account not
	// blocked and its session, if it has one, not ended. The provider checks the
	// account before it rotates, but a block or logout may commit in between: checked
	// here, in the statement that rotates, it cannot; and a revocation's UPDATE of the
	// same row waits for, or is waited for by, the rotation. Both subqueries are
	// primary-key lookups. An absent account or session refuses nothing: accounts are
	// never deleted, and an expired session's tokens outlive it (only ending one, which
	// marks it, takes them away).
	liveFamilyWhere = "revoked_at IS NULL AND expires_at > ? AND family_expires_at > ? " +
		"AND NOT EXISTS (SELECT 1 FROM users WHERE users.id = refresh_families.user_id AND users.blocked) " +
		"AND NOT EXISTS (SELECT 1 FROM sessions WHERE sessions.id = refresh_families.session_id AND sessions.ended_at IS NOT NULL)"
)

// rotatedColumns are the columns rotateSQL returns, in the order of rotatedFamily.dest:
// every column of the family but revoked_at, which a rotated family has not set.
var rotatedColumns = without(refreshFamilyColumns, "revoked_at")

// without is columns, in their order, less the names given.
func without(columns []string, names ...string) []string {
	return slices.DeleteFunc(slices.Clone(columns), func(c string) bool { return slices.Contains(names, c) })
}

// rotatedFamily scans rotateSQL's row. SQLite gives RETURNING columns no declared
// type, so its times come back as text (columnTime reads both).
type rotatedFamily struct {
	f                                                                 RefreshFamily
	authTime, created, rotated, expires, familyExpires, accessExpires columnTime
	account                                                           returnedAccount
}

func (r *rotatedFamily) dest() []any {
	f := &r.f
	return append([]any{&f.ID, &f.AccessID, &f.Generation, &f.TokenHash, &f.AccessRevokedThrough,
		&f.ClientID, &f.UserID, &f.SessionID, &f.AuthRequestID, &f.Scopes, &f.Audience, &r.authTime,
		&f.AMR, &f.ACR, &f.IDP, &f.Claims, &r.created, &r.rotated, &r.expires, &r.familyExpires, &r.accessExpires},
		r.account.dest()...)
}

// scanRotated reads rotateSQL's RETURNING row into f.
func scanRotated(row *sql.Row, f *RefreshFamily) error {
	var r rotatedFamily
	if err := row.Scan(r.dest()...); err != nil {
		return err
	}
	*f = r.f
	f.AuthTime, f.CreatedAt, f.RotatedAt = r.authTime.Time, r.created.Time, r.rotated.Time
	f.ExpiresAt, f.FamilyExpiresAt, f.AccessExpiresAt = r.expires.Time, r.familyExpires.Time, r.accessExpires.Time
	f.Account = r.account.user()
	return nil
}

// A grant's ID token carries claims of the account, and a grant must refuse a blocked
// one, so the statement that spends a code or rotates a refresh token also returns
// the account: on SQLite a read on the read pool costs more than the statement's own
// work (its page cache starts cold after every commit), and on PostgreSQL it is a
// round trip. Each column is a scalar subquery on the primary key, which both
// databases allow in RETURNING (SQLite does not allow a joined table there). The
// password hash stays behind.
var accountColumns = without(userColumns, "password_hash")

// returningAccount is the RETURNING list's tail that reads the account of table's
// user_id.
func returningAccount(table string) string {
	var b strings.Builder
	for i, dest := range (&returnedAccount{}).dest() {
		// The subquery goes inside COALESCE, so an absent account reads as the zero value.
		b.WriteString(", " + nullSafeExpr("(SELECT "+accountColumns[i]+" FROM users WHERE users.id = "+table+".user_id)", dest))
	}
	return b.String()
}

// returnedAccount scans returningAccount's columns.
type returnedAccount struct {
	u                User
	created, updated columnTime
}

func (a *returnedAccount) dest() []any {
	u := &a.u
	return []any{&u.ID, &u.Phone, &u.Email, &u.PhoneVerified, &u.EmailVerified,
		&u.FamilyName, &u.GivenName, &u.MiddleName, &u.Blocked, &a.created, &a.updated}
}

// user is the account read, or nil when the row names none that exists.
func (a *returnedAccount) user() *User {
	if a.u.ID == "" {
		return nil
	}
	u := a.u
	u.CreatedAt, u.UpdatedAt = a.created.Time, a.updated.Time
	return &u
}

// spendCodeSQL redeems a code: it marks it used, keeps the row until the new expiry so
// that a second presentation is recognised, and returns the request with its
// account. Of two racing exchanges exactly one changes the row. A code whose session
// has ended since (a logout) is not spent. Arguments: used at, the new expiry, the
// code's hash, now.
var spendCodeSQL = "UPDATE auth_requests SET code_used_at = ?, expires_at = ? " +
	"WHERE code_hash = ? AND code_used_at IS NULL AND expires_at > ? " +
	"AND NOT EXISTS (SELECT 1 FROM sessions WHERE sessions.id = auth_requests.session_id AND sessions.ended_at IS NOT NULL) " +
	"RETURNING " +
	strings.Join(nullSafe(authRequestColumns, (&spentCode{}).dest()), ", ") + returningAccount("auth_requests")

// authRequestColumns are the columns of AuthRequest that spendCodeSQL returns, in the
// order of spentCode.dest.
var authRequestColumns = []string{
	"id", "client_id", "redirect_uri", "state", "nonce", "scopes", "response_type", "response_mode",
	"code_challenge", "code_challenge_method", "prompt", "max_age", "login_hint", "ui_locales",
	"acr_values", "claims", "hint_subject", "user_id", "session_id", "auth_time", "amr", "acr", "idp",
	"done", "code_hash", "created_at",
}

// spentCode scans spendCodeSQL's row.
type spentCode struct {
	r                 AuthRequest
	authTime, created columnTime
	account           returnedAccount
}

func (c *spentCode) dest() []any {
	r := &c.r
	return append([]any{&r.ID, &r.ClientID, &r.RedirectURI, &r.State, &r.Nonce, &r.Scopes, &r.ResponseType,
		&r.ResponseMode, &r.CodeChallenge, &r.CodeChallengeMethod, &r.Prompt, &r.MaxAge, &r.LoginHint,
		&r.UILocales, &r.ACRValues, &r.Claims, &r.HintSubject, &r.UserID, &r.SessionID, &c.authTime,
		&r.AMR, &r.ACR, &r.IDP, &r.Done, &r.CodeHash, &c.created}, c.account.dest()...)
}

func (c *spentCode) request() *AuthRequest {
	r := c.r
	r.AuthTime, r.CreatedAt = c.authTime.Time, c.created.Time
	r.Account = c.account.user()
	return &r
}

// Tokens made from an authorization code are inserted only while the code has not
// been presented again (auth_requests.code_reused_at, set by RevokeAuthRequestTokens
// before it revokes), its account is not blocked and its session not ended. Each of
// those revokes what exists when it commits, and the code's tokens are created after
// the code was spent, so a second presentation, a block or a logout may come in
// between and revoke nothing of them; the check in the inserting statement closes that
// gap. On SQLite writers take turns, so NOT EXISTS suffices. On PostgreSQL (READ
// COMMITTED) the insert and the revocation could each miss the other's uncommitted
// write, so the insert share-locks the rows (request, account, session) that the
// revoking UPDATE locks exclusively: whichever comes second waits for the other to
// commit, then sees it (the locked row is re-read at its newest version, the
// revocation's next statement sees the tokens). A row that does not exist refuses
// nothing.
const (
	codeLockPostgres = "ar AS MATERIALIZED (SELECT code_reused_at FROM auth_requests WHERE id = ? FOR SHARE), " +
		"acct AS MATERIALIZED (SELECT blocked FROM users WHERE id = ? FOR SHARE), " +
		"sess AS MATERIALIZED (SELECT ended_at FROM sessions WHERE id = ? FOR SHARE)"
	codeUnusedPostgres = " WHERE NOT EXISTS (SELECT 1 FROM ar WHERE code_reused_at IS NOT NULL)" +
		" AND NOT EXISTS (SELECT 1 FROM acct WHERE blocked)" +
		" AND NOT EXISTS (SELECT 1 FROM sess WHERE ended_at IS NOT NULL)"
	codeUnusedSQLite = " WHERE NOT EXISTS (SELECT 1 FROM auth_requests WHERE id = ? AND code_reused_at IS NOT NULL)" +
		" AND NOT EXISTS (SELECT 1 FROM users WHERE id = ? AND blocked)" +
		" AND NOT EXISTS (SELECT 1 FROM sessions WHERE id = ? AND ended_at IS NOT NULL)"
)

// insertIfCodeUnused is an INSERT of columns that happens only while the code of the
// auth request has not been presented again and its sign-in stands. Arguments (see
// withCode): on SQLite the columns' values, then the auth request, account and
// session ids; on PostgreSQL those three ids first.
func insertIfCodeUnused(table string, columns []string, dialect string) string {
	into := "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") "
	if dialect == "postgres" {
		return "WITH " + codeLockPostgres + " " + into + "SELECT " + castList(columns) + codeUnusedPostgres
	}
	return into + "SELECT ?" + strings.Repeat(", ?", len(columns)-1) + codeUnusedSQLite
}

// withCode adds the auth request, account and session ids to the arguments of an
// insertIfCodeUnused statement: first on PostgreSQL, last on SQLite.
func (s *Store) withCode(authRequestID, userID, sessionID string, args []any) []any {
	ids := []any{authRequestID, userID, sessionID}
	if s.dialect == "postgres" {
		return append(ids, args...)
	}
	return append(args, ids...)
}

// castList is a SELECT list of typed placeholders for columns: in INSERT … SELECT
// PostgreSQL does not infer a placeholder's type from the column it goes to.
func castList(columns []string) string {
	out := make([]string, len(columns))
	for i, c := range columns {
		switch {
		case timeColumns[c]:
			out[i] = "?::timestamptz"
		case c == "generation" || c == "access_revoked_through":
			out[i] = "?::bigint"
		default:
			out[i] = "?::text"
		}
	}
	return strings.Join(out, ", ")
}

var timeColumns = map[string]bool{
	"created_at": true, "rotated_at": true, "expires_at": true, "revoked_at": true,
	"auth_time": true, "family_expires_at": true, "access_expires_at": true,
}

func insertSQL(table string, columns []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES (?" +
		strings.Repeat(", ?", len(columns)-1) + ")"
}

// hotSQL is each statement with ? placeholders, in the dialect's form.
func hotSQL(dialect string) [nHotQueries]string {
	return [nHotQueries]string{
		qInsertAccessToken:   insertSQL("access_tokens", accessTokenColumns),
		qInsertRefreshFamily: insertSQL("refresh_families", refreshFamilyColumns),
		qRotateRefreshFamily: rotateSQL,
		// A code is used at most once; its row stays until the new expiry so that a
		// second presentation is recognised.
		qSpendCode:                 spendCodeSQL,
		qInsertAccessTokenOfCode:   insertIfCodeUnused("access_tokens", accessTokenColumns, dialect),
		qInsertRefreshFamilyOfCode: insertIfCodeUnused("refresh_families", refreshFamilyColumns, dialect),
	}
}

// hotStatements holds the statements for one database.
type hotStatements struct {
	query [nHotQueries]string    // in the dialect's placeholders
	stmt  [nHotQueries]*sql.Stmt // prepared on the pool (SQLite only)

	readDB    *sql.DB              // the read pool
	readQuery [nHotReads]string    // in the dialect's placeholders
	readStmt  [nHotReads]*sql.Stmt // prepared on the read pool (SQLite only)
}

func (h *hotStatements) prepare(ctx context.Context, db *sql.DB, dialect string) error {
	texts := hotSQL(dialect)
	if err := prepareAll(ctx, db, dialect, texts[:], h.query[:], h.stmt[:]); err != nil {
		h.close()
		return err
	}
	return nil
}

// prepareReads readies the reads on pool: the read-only pool on an SQLite file, the
// one pool elsewhere.
func (h *hotStatements) prepareReads(ctx context.Context, pool *sql.DB, dialect string) error {
	h.readDB = pool
	return prepareAll(ctx, pool, dialect, hotReadSQL[:], h.readQuery[:], h.readStmt[:])
}

// prepareAll puts each of texts into queries in the dialect's placeholders and, on
// SQLite, prepares it on db into stmts.
func prepareAll(ctx context.Context, db *sql.DB, dialect string, texts, queries []string, stmts []*sql.Stmt) error {
	for q, text := range texts {
		if dialect == "postgres" {
			text = dollarPlaceholders(text)
		}
		queries[q] = text
		if dialect != "sqlite" {
			continue
		}
		stmt, err := db.PrepareContext(ctx, text)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", text, err)
		}
		stmts[q] = stmt
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

// execResult runs q on the pool or on tx (nil: the pool).
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

// queryRow runs q on the pool or on tx (nil: the pool) and returns its one row.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, q hotQuery, args ...any) *sql.Row {
	switch stmt := s.hot.stmt[q]; {
	case stmt != nil && tx != nil:
		return tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...)
	case stmt != nil:
		return stmt.QueryRowContext(ctx, args...)
	default:
		return s.conn(tx).QueryRowContext(ctx, s.hot.query[q], args...)
	}
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
