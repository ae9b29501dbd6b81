package storage

import (
	"context"
	"database/sql"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"

	"github.com/astral/idp/storage/pgtest"
)

// The token endpoint writes through hand-written SQL (hot.go): its column lists must
// name every column of the models, or a field added later would silently not be stored.
func TestHotColumnsMatchModels(t *testing.T) {
	for _, c := range []struct {
		model   any
		columns []string
		args    []any
	}{
		{&AccessToken{}, accessTokenColumns, accessTokenArgs(&AccessToken{})},
		{&RefreshToken{}, refreshTokenColumns, refreshTokenArgs(&RefreshToken{})},
		{&AccessToken{}, accessTokenColumns, accessTokenDest(&AccessToken{})},
		{&RefreshToken{}, refreshTokenColumns, refreshTokenDest(&RefreshToken{})},
		{&User{}, userColumns, userDest(&User{})},
	} {
		sch, err := schema.Parse(c.model, &sync.Map{}, schema.NamingStrategy{})
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(slices.Values(sch.DBNames))
		got := slices.Sorted(slices.Values(c.columns))
		if !slices.Equal(got, want) {
			t.Errorf("%s: hot.go lists columns %v; the model has %v", sch.Table, got, want)
		}
		if len(c.args) != len(c.columns) {
			t.Errorf("%s: %d columns but %d arguments", sch.Table, len(c.columns), len(c.args))
		}
	}
}

func testBackends(t *testing.T) map[string]func(t *testing.T) string {
	b := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite://" + t.TempDir() + "/idp.db" },
	}
	if os.Getenv("IDP_TEST_POSTGRES_URL") != "" || os.Getenv("CI") == "true" {
		b["postgres"] = func(t *testing.T) string { return pgtest.URL(t) }
	}
	return b
}

func openTest(t *testing.T, databaseURL string) *Store {
	t.Helper()
	s, err := Open(t.Context(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// An existing database loses the indexes a newer schema dropped, and reopening one
// that already lost them is not an error.
func TestMigrationDropsIndexes(t *testing.T) {
	for name, newURL := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			dbURL := newURL(t)
			s := openTest(t, dbURL)
			// The indexes as the previous schema created them.
			for _, q := range []string{
				"CREATE INDEX idx_access_tokens_client_id ON access_tokens (client_id)",
				"CREATE INDEX idx_access_tokens_user ON access_tokens (user_id) WHERE user_id <> ''",
				"CREATE INDEX idx_refresh_tokens_client_id ON refresh_tokens (client_id)",
				"CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens (user_id)",
				"CREATE INDEX idx_refresh_tokens_auth_request_id ON refresh_tokens (auth_request_id)",
				"CREATE INDEX idx_refresh_tokens_expires_at ON refresh_tokens (expires_at)",
				"CREATE UNIQUE INDEX idx_refresh_tokens_token_hash ON refresh_tokens (token_hash)",
				"CREATE INDEX idx_access_tokens_user_client ON access_tokens (user_id, client_id) WHERE user_id <> ''",
				"CREATE INDEX idx_access_tokens_session ON access_tokens (session_id) WHERE session_id <> ''",
			} {
				if err := s.db.Exec(q).Error; err != nil {
					t.Fatal(err)
				}
			}
			must(t, s.Close())
			for range 2 {
				s = openTest(t, dbURL)
				m := s.db.Migrator()
				for _, idx := range droppedIndexes {
					table := "access_tokens"
					if strings.HasPrefix(idx, "idx_refresh_tokens") {
						table = "refresh_tokens"
					}
					if m.HasIndex(table, idx) {
						t.Errorf("index %s is still there after migration", idx)
					}
				}
				for idx, table := range map[string]string{
					"idx_access_tokens_own_user_client": "access_tokens", "idx_access_tokens_own_session": "access_tokens",
					"idx_refresh_tokens_user_client": "refresh_tokens",
				} {
					if !m.HasIndex(table, idx) {
						t.Errorf("index %s was not created", idx)
					}
				}
				must(t, s.Close())
			}
		})
	}
}

// statementLog keeps every statement gorm runs, with its values inlined.
type statementLog struct {
	logger.Interface
	mu  sync.Mutex
	sql []string
}

func (l *statementLog) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	q, _ := fc()
	l.mu.Lock()
	l.sql = append(l.sql, q)
	l.mu.Unlock()
}

// Every query the token, revocation, introspection, logout and block paths run on
// the token tables is answered by an index: no plan scans access_tokens or
// refresh_tokens. Removing a product is the one path allowed to scan them (an admin's
// rare act; see droppedIndexes).
func TestTokenQueriesUseIndexes(t *testing.T) {
	for name, newURL := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			s := openTest(t, newURL(t))
			ctx := t.Context()
			log := &statementLog{Interface: logger.Discard}
			s.db.Logger, s.rdb.Logger = log, log

			now := s.now()
			u := &User{ID: NewID()}
			must(t, s.CreateUser(ctx, u))
			sess := &Session{ID: NewID(), UserID: u.ID, ExpiresAt: now.Add(time.Hour)}
			must(t, s.CreateSession(ctx, sess, NewSecret()))
			machine := &AccessToken{ClientID: "report", ExpiresAt: now.Add(time.Hour)}
			must(t, s.CreateAccessToken(ctx, machine))
			_, err := s.AccessTokenByID(ctx, machine.ID)
			must(t, err)
			must(t, s.RevokeAccessToken(ctx, machine.ID))
			family := func() (*RefreshToken, string) {
				ar := NewID()
				rt := &RefreshToken{ClientID: "report", UserID: u.ID, SessionID: sess.ID, AuthRequestID: ar,
					ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(24 * time.Hour)}
				at := &AccessToken{ClientID: "report", UserID: u.ID, SessionID: sess.ID, AuthRequestID: ar, ExpiresAt: now.Add(time.Hour)}
				raw, err := s.CreateRefreshToken(ctx, rt, at)
				must(t, err)
				return rt, raw
			}
			rt, raw := family()
			_, err = s.RefreshTokenByToken(ctx, raw)
			must(t, err)
			next := &RefreshToken{ClientID: "report", UserID: u.ID, SessionID: sess.ID, ExpiresAt: now.Add(time.Hour)}
			_, err = s.RotateRefreshToken(ctx, rt.ID, next, &AccessToken{ClientID: "report", UserID: u.ID, ExpiresAt: now.Add(time.Hour)})
			must(t, err)
			if _, err := s.RefreshTokenByToken(ctx, raw); !IsReused(err) { // replay: revokes the family
				t.Fatalf("replay: %v", err)
			}
			if _, err := s.RotateRefreshToken(ctx, rt.ID, &RefreshToken{}, nil); !IsReused(err) {
				t.Fatalf("rotating a spent generation: %v", err)
			}
			_, err = s.FindRefreshToken(ctx, raw)
			must(t, err)
			rt, _ = family()
			must(t, s.RevokeAuthRequestTokens(ctx, rt.AuthRequestID))
			must(t, s.RevokeRefreshFamily(ctx, rt.FamilyID))
			must(t, s.RevokeUserClientTokens(ctx, u.ID, "report"))
			_, err = s.UserClients(ctx, u.ID)
			must(t, err)
			_, err = s.EndSession(ctx, sess.ID)
			must(t, err)
			_, err = s.EndOtherSessions(ctx, u.ID, "")
			must(t, err)
			_, err = s.SetUserBlocked(ctx, u.ID, true)
			must(t, err)
			must(t, s.RevokeUserTokens(ctx, u.ID))

			log.mu.Lock()
			statements := slices.Clone(log.sql)
			log.mu.Unlock()
			// The hand-written statements, which bypass gorm's log.
			statements = append(statements, inline(hotSQL[qSpendRefreshToken], "CURRENT_TIMESTAMP", "'x'", "CURRENT_TIMESTAMP"))

			checked := 0
			for _, q := range statements {
				if !tokenTable.MatchString(q) || strings.HasPrefix(q, "INSERT") {
					continue
				}
				checked++
				if scan := s.fullScan(t, q); scan != "" {
					t.Errorf("%s\nis answered by a full scan: %s", q, scan)
				}
			}
			if checked < 15 {
				t.Errorf("only %d statements on the token tables were checked; the statement log is not working", checked)
			}
		})
	}
}

// inline replaces q's ? placeholders, in order, with literals.
func inline(q string, literals ...string) string {
	for _, l := range literals {
		q = strings.Replace(q, "?", l, 1)
	}
	return q
}

var tokenTable = regexp.MustCompile(`\b"?(access_tokens|refresh_tokens)"?\b`)

// fullScan explains q and returns the plan line that scans a token table whole, if any.
func (s *Store) fullScan(t *testing.T, q string) string {
	t.Helper()
	ctx := t.Context()
	conn, err := s.sqlDB.Conn(ctx)
	must(t, err)
	defer conn.Close()
	var explain string
	var scan *regexp.Regexp
	if s.dialect == "postgres" {
		// An empty table is cheaper to read whole: ask the planner what it would do
		// if scanning cost what it does on a big one.
		_, err := conn.ExecContext(ctx, "SET enable_seqscan = off")
		must(t, err)
		defer conn.ExecContext(context.Background(), "RESET enable_seqscan") //nolint:errcheck
		explain, scan = "EXPLAIN ", regexp.MustCompile(`Seq Scan on (access_tokens|refresh_tokens)`)
	} else {
		explain, scan = "EXPLAIN QUERY PLAN ", regexp.MustCompile(`\bSCAN "?(access_tokens|refresh_tokens)"?\b`)
	}
	rows, err := conn.QueryContext(ctx, explain+q)
	must(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	must(t, err)
	for rows.Next() {
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(sql.NullString)
		}
		must(t, rows.Scan(vals...))
		line := vals[len(vals)-1].(*sql.NullString).String
		if scan.MatchString(line) {
			return line
		}
	}
	must(t, rows.Err())
	return ""
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Rows an older schema left have NULL in the columns added since; the hot reads take
// them as gorm did, with the zero value.
func TestHotReadsTakeOlderRows(t *testing.T) {
	for name, newURL := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			s := openTest(t, newURL(t))
			ctx := t.Context()
			now := s.now()
			u := &User{}
			must(t, s.CreateUser(ctx, u))
			rt := &RefreshToken{ClientID: "report", UserID: u.ID, ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(time.Hour)}
			at := &AccessToken{ClientID: "report", UserID: u.ID, ExpiresAt: now.Add(time.Hour)}
			raw, err := s.CreateRefreshToken(ctx, rt, at)
			must(t, err)
			for _, q := range []string{
				"UPDATE users SET middle_name = NULL, password_hash = NULL, blocked = NULL",
				"UPDATE refresh_tokens SET claims = NULL, idp = NULL, acr = NULL",
				"UPDATE access_tokens SET claims = NULL",
			} {
				must(t, s.db.Exec(q).Error)
			}
			if got, err := s.UserByID(ctx, u.ID); err != nil || got.MiddleName != "" || got.Blocked {
				t.Errorf("UserByID of an older row: %+v, %v", got, err)
			}
			if got, err := s.RefreshTokenByToken(ctx, raw); err != nil || got.Claims != "" || got.IDP != "" {
				t.Errorf("RefreshTokenByToken of an older row: %+v, %v", got, err)
			}
			if got, err := s.AccessTokenByID(ctx, at.ID); err != nil || got.Claims != "" {
				t.Errorf("AccessTokenByID of an older row: %+v, %v", got, err)
			}
		})
	}
}

// Removing a product revokes the tokens of all its accounts in one transaction. On
// PostgreSQL that transaction orders itself against rotations with advisory locks
// (revokeTokensTx); there must never be more of them than the server's lock table
// holds (about max_locks_per_transaction × connections: 12,800 on the test server,
// which overflows well before 200,000), however many accounts the product has.
func TestRevocationOfManyAccounts(t *testing.T) {
	newURL, ok := testBackends(t)["postgres"]
	if !ok {
		t.Skip("PostgreSQL only (IDP_TEST_POSTGRES_URL is not set): SQLite takes no advisory locks")
	}
	s := openTest(t, newURL(t))
	ctx := t.Context()
	must(t, s.CreateClient(ctx, &Client{ID: "bulk", Name: "bulk", Type: "web"}))
	const accounts = 200000
	must(t, s.db.Exec(`INSERT INTO refresh_tokens (id, family_id, token_hash, client_id, user_id, session_id,
		auth_request_id, scopes, audience, auth_time, amr, acr, idp, claims, created_at, expires_at, family_expires_at)
		SELECT 'r' || n, 'f' || n, 'h' || n, 'bulk', 'u' || n, '', '', '[]', '[]', now(), '[]', '', '', '', now(),
		now() + interval '1 hour', now() + interval '1 day' FROM generate_series(1, ?) AS n`, accounts).Error)
	must(t, s.DeleteClient(ctx, "bulk"))
	var live int64
	must(t, s.db.Model(&RefreshToken{}).Where("client_id = 'bulk' AND revoked_at IS NULL").Count(&live).Error)
	if live != 0 {
		t.Errorf("%d of %d refresh tokens still live after the product was removed", live, accounts)
	}
}
