package storage

import (
	"context"
	"database/sql"
	"maps"
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
		{&RefreshFamily{}, refreshFamilyColumns, refreshFamilyArgs(&RefreshFamily{})},
		{&AccessToken{}, accessTokenColumns, accessTokenDest(&AccessToken{})},
		{&RefreshFamily{}, refreshFamilyColumns, refreshFamilyDest(&RefreshFamily{})},
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

// The spend of a code returns the request and the rotation the family, each with the
// account, through column lists of their own: those must name every column but the
// ones the statement sets, and match what is scanned.
func TestReturnedColumnsMatchModels(t *testing.T) {
	sch, err := schema.Parse(&AuthRequest{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(sch.DBNames))
	got := slices.Sorted(slices.Values(append(slices.Clone(authRequestColumns), "code_used_at", "code_reused_at", "expires_at")))
	if !slices.Equal(got, want) {
		t.Errorf("auth_requests: spendCodeSQL returns %v and sets the rest; the model has %v", authRequestColumns, want)
	}
	for name, c := range map[string]struct {
		columns int
		dest    []any
	}{
		"spent code":     {len(authRequestColumns) + len(accountColumns), (&spentCode{}).dest()},
		"rotated family": {len(rotatedColumns) + len(accountColumns), (&rotatedFamily{}).dest()},
	} {
		if c.columns != len(c.dest) {
			t.Errorf("%s: %d columns returned but %d scanned", name, c.columns, len(c.dest))
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

// oldAccessToken and oldRefreshToken are the token tables as the previous schema made
// them: a row per refresh generation, and family_id on access tokens with the
// indexes that left out the family's access tokens.
type oldAccessToken struct {
	ID            string     `gorm:"primaryKey;size:64"`
	ClientID      string     `gorm:"index:idx_access_tokens_own_user_client,priority:2,where:user_id <> '' AND family_id = '';size:64"`
	UserID        string     `gorm:"index:idx_access_tokens_own_user_client,priority:1,where:user_id <> '' AND family_id = '';size:64"`
	SessionID     string     `gorm:"index:idx_access_tokens_own_session,where:session_id <> '' AND family_id = '';size:64"`
	FamilyID      string     `gorm:"index:idx_access_tokens_family,where:family_id <> '';size:64"`
	AuthRequestID string     `gorm:"index:idx_access_tokens_auth_request,where:auth_request_id <> '';size:64"`
	Scopes        StringList `gorm:"type:text"`
	Audience      StringList `gorm:"type:text"`
	Claims        string     `gorm:"type:text"`
	CreatedAt     time.Time
	ExpiresAt     time.Time `gorm:"index"`
	RevokedAt     *time.Time
}

func (oldAccessToken) TableName() string { return "access_tokens" }

type oldRefreshToken struct {
	ID              string     `gorm:"primaryKey;size:64"`
	FamilyID        string     `gorm:"index;size:64"`
	TokenHash       string     `gorm:"size:64"`
	ClientID        string     `gorm:"index:idx_refresh_tokens_user_client,priority:2;size:64"`
	UserID          string     `gorm:"index:idx_refresh_tokens_user_client,priority:1;size:64"`
	SessionID       string     `gorm:"index;size:64"`
	AuthRequestID   string     `gorm:"size:64"`
	Scopes          StringList `gorm:"type:text"`
	Audience        StringList `gorm:"type:text"`
	AuthTime        time.Time
	AMR             StringList `gorm:"column:amr;type:text"`
	ACR             string     `gorm:"column:acr;size:64"`
	IDP             string     `gorm:"column:idp;size:64"`
	Claims          string     `gorm:"type:text"`
	CreatedAt       time.Time
	ExpiresAt       time.Time
	FamilyExpiresAt time.Time
	SpentAt         *time.Time
	RevokedAt       *time.Time
}

func (oldRefreshToken) TableName() string { return "refresh_tokens" }

// An existing database loses the tables and indexes a newer schema dropped, keeps
// working on the tables it kept, and reopening one that already lost them is not an
// error.
func TestMigrationDropsIndexes(t *testing.T) {
	for name, newURL := range testBackends(t) {
		t.Run(name, func(t *testing.T) {
			dbURL := newURL(t)
			s := openTest(t, dbURL)
			ctx := t.Context()
			now := s.now()
			// The token tables as the previous schema left them, with rows.
			must(t, s.db.Migrator().DropTable(&AccessToken{}))
			must(t, s.db.AutoMigrate(&oldAccessToken{}, &oldRefreshToken{}))
			must(t, s.db.Create(&oldRefreshToken{ID: "r1", FamilyID: "f1", TokenHash: "h", ClientID: "report", UserID: "u1",
				ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(time.Hour)}).Error)
			must(t, s.db.Create(&oldAccessToken{ID: "family-access", ClientID: "report", UserID: "u1", FamilyID: "f1",
				ExpiresAt: now.Add(time.Hour)}).Error)
			must(t, s.db.Create(&oldAccessToken{ID: "own-access", ClientID: "report", UserID: "u1",
				ExpiresAt: now.Add(time.Hour)}).Error)
			// And the indexes of the schemas before it.
			for _, q := range []string{
				"CREATE INDEX idx_access_tokens_client_id ON access_tokens (client_id)",
				"CREATE INDEX idx_access_tokens_user ON access_tokens (user_id) WHERE user_id <> ''",
				"CREATE INDEX idx_access_tokens_user_client ON access_tokens (user_id, client_id) WHERE user_id <> ''",
				"CREATE INDEX idx_access_tokens_session ON access_tokens (session_id) WHERE session_id <> ''",
				"CREATE INDEX idx_refresh_tokens_client_id ON refresh_tokens (client_id)",
				"CREATE UNIQUE INDEX idx_refresh_tokens_token_hash ON refresh_tokens (token_hash)",
			} {
				must(t, s.db.Exec(q).Error)
			}
			// Every index and table an earlier schema had and this one has not; the
			// lists are written out, not taken from droppedIndexes and droppedTables, so
			// that an entry missing there fails here.
			oldIndexes := []string{
				"idx_access_tokens_client_id", "idx_access_tokens_user", "idx_access_tokens_user_client",
				"idx_access_tokens_session", "idx_access_tokens_own_user_client", "idx_access_tokens_own_session",
				"idx_access_tokens_family",
			}
			oldTables := []string{"refresh_tokens"}
			m := s.db.Migrator()
			for _, idx := range oldIndexes {
				if !m.HasIndex("access_tokens", idx) {
					t.Fatalf("the old index %s is not there to be dropped", idx)
				}
			}
			for _, idx := range droppedIndexes {
				if !slices.Contains(oldIndexes, idx) {
					t.Errorf("droppedIndexes has %s, which this test does not create", idx)
				}
			}
			must(t, s.Close())
			for round := range 2 {
				s = openTest(t, dbURL)
				m := s.db.Migrator()
				for _, table := range oldTables {
					if m.HasTable(table) {
						t.Errorf("round %d: table %s is still there after migration", round, table)
					}
				}
				for _, idx := range oldIndexes {
					if m.HasIndex("access_tokens", idx) {
						t.Errorf("round %d: index %s is still there after migration", round, idx)
					}
				}
				for idx, table := range map[string]string{
					"idx_access_tokens_person_client":   "access_tokens",
					"idx_access_tokens_person_session":  "access_tokens",
					"idx_access_tokens_auth_request":    "access_tokens",
					"idx_refresh_families_user_client":  "refresh_families",
					"idx_refresh_families_session":      "refresh_families",
					"idx_refresh_families_auth_request": "refresh_families",
					"idx_refresh_families_access_id":    "refresh_families",
				} {
					if !m.HasIndex(table, idx) {
						t.Errorf("round %d: index %s was not created", round, idx)
					}
				}
				// The kept access_tokens, with its leftover family_id column, takes
				// new rows and revocations; the new table takes families.
				a := &AccessToken{ClientID: "report", UserID: "u1", ExpiresAt: now.Add(time.Hour)}
				must(t, s.CreateAccessToken(ctx, a))
				if _, err := s.AccessTokenByID(ctx, a.ID); err != nil {
					t.Errorf("round %d: a new access token in the migrated table: %v", round, err)
				}
				f := &RefreshFamily{ClientID: "report", UserID: "u1", ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(time.Hour)}
				raw, err := s.CreateRefreshFamily(ctx, f)
				must(t, err)
				_, err = s.RotateRefreshFamily(ctx, f, now.Add(time.Hour), now.Add(time.Hour))
				must(t, err)
				must(t, s.RevokeUserTokens(ctx, "u1"))
				for _, id := range []string{a.ID, "own-access", "family-access"} {
					if _, err := s.AccessTokenByID(ctx, id); !IsNotFound(err) {
						t.Errorf("round %d: access token %s after its account's revocation: %v", round, id, err)
					}
				}
				if _, err := s.RefreshFamilyByToken(ctx, raw, "report"); !IsNotFound(err) {
					t.Errorf("round %d: a family after its account's revocation: %v", round, err)
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
// refresh_families. Removing a product is the one path allowed to scan them (an
// admin's rare act; see AccessToken), and cleanup, which matches unindexed columns.
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
			// A code exchange without a refresh token, and a product's own token.
			plain := &AccessToken{ClientID: "report", UserID: u.ID, SessionID: sess.ID, AuthRequestID: NewID(), ExpiresAt: now.Add(time.Hour)}
			must(t, s.CreateAccessToken(ctx, plain))
			_, err := s.AccessTokenByID(ctx, plain.ID)
			must(t, err)
			must(t, s.RevokeAccessToken(ctx, plain.ID))
			must(t, s.DenyAccessToken(ctx, "m-"+NewID(), "report", now.Add(time.Hour)))
			_, err = s.AccessTokenDenied(ctx, "m-"+NewID())
			must(t, err)
			// A family from a code: refresh, replay, a stale rotation.
			family := func() (*RefreshFamily, string) {
				f := &RefreshFamily{ClientID: "report", UserID: u.ID, SessionID: sess.ID, AuthRequestID: NewID(),
					ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(24 * time.Hour), AccessExpiresAt: now.Add(time.Hour)}
				raw, err := s.CreateRefreshFamily(ctx, f)
				must(t, err)
				return f, raw
			}
			f, raw := family()
			_, err = s.RefreshFamilyByToken(ctx, raw, "report")
			must(t, err)
			stale := *f
			_, err = s.RotateRefreshFamily(ctx, f, now.Add(time.Hour), now.Add(time.Hour))
			must(t, err)
			if _, _, err := s.RotateRefreshFamilyByToken(ctx, raw, "report", now.Add(time.Hour), now.Add(time.Hour)); !IsNotFound(err) {
				t.Fatalf("rotating a spent token by the token: %v", err)
			}
			_, err = s.RefreshFamilyByAccessID(ctx, f.AccessID)
			must(t, err)
			must(t, s.RevokeFamilyAccess(ctx, f.ID, f.Generation))
			if _, err := s.RefreshFamilyByToken(ctx, raw, "report"); !IsReused(err) { // replay: revokes the family
				t.Fatalf("replay: %v", err)
			}
			if _, err := s.RotateRefreshFamily(ctx, &stale, now.Add(time.Hour), now.Add(time.Hour)); !IsReused(err) {
				t.Fatalf("rotating a stale copy: %v", err)
			}
			_, err = s.FindRefreshFamily(ctx, raw)
			must(t, err)
			// Each revocation.
			f, _ = family()
			must(t, s.RevokeAuthRequestTokens(ctx, f.AuthRequestID))
			must(t, s.RevokeAuthRequestTokens(ctx, plain.AuthRequestID))
			must(t, s.RevokeRefreshFamily(ctx, f.ID))
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
			// The hand-written statements (hot.go), which bypass gorm's log.
			const id, ts = "'x'", "CURRENT_TIMESTAMP"
			statements = append(statements,
				inline(rotateSQL, id, ts, ts, ts, ts, id, "1", id, id, ts, ts),
				inline(hotReadSQL[rAccessToken], id, ts),
				inline(hotReadSQL[rAccessTokenDenied], id),
				inline(hotReadSQL[rRefreshFamily], id),
				inline(hotReadSQL[rFamilyByAccessID], id),
			)

			checked, tables := 0, map[string]bool{}
			for _, q := range statements {
				if !tokenTable.MatchString(q) || strings.HasPrefix(q, "INSERT") {
					continue
				}
				checked++
				for _, table := range tokenTable.FindAllString(q, -1) {
					tables[table] = true
				}
				if scan := s.fullScan(t, q); scan != "" {
					t.Errorf("%s\nis answered by a full scan: %s", q, scan)
				}
			}
			if checked < 20 || !tables["access_tokens"] || !tables["refresh_families"] {
				t.Errorf("only %d statements on the token tables %v were checked; the statement log is not working",
					checked, slices.Sorted(maps.Keys(tables)))
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

var tokenTable = regexp.MustCompile(`\b(access_tokens|refresh_families)\b`)

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
		explain, scan = "EXPLAIN ", regexp.MustCompile(`Seq Scan on (access_tokens|refresh_families)`)
	} else {
		explain, scan = "EXPLAIN QUERY PLAN ", regexp.MustCompile(`\bSCAN "?(access_tokens|refresh_families)"?\b`)
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
			f := &RefreshFamily{ClientID: "report", UserID: u.ID, ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(time.Hour)}
			raw, err := s.CreateRefreshFamily(ctx, f)
			must(t, err)
			at := &AccessToken{ClientID: "report", UserID: u.ID, ExpiresAt: now.Add(time.Hour)}
			must(t, s.CreateAccessToken(ctx, at))
			ar := &AuthRequest{ClientID: "report", ResponseType: "code", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			must(t, s.CreateAuthRequest(ctx, ar))
			must(t, s.CompleteAuthRequest(ctx, ar.ID, Authentication{UserID: u.ID, AuthTime: now, AMR: []string{"pwd"}}))
			code := NewSecret()
			must(t, s.SaveAuthCode(ctx, ar.ID, code, time.Minute))
			for _, q := range []string{
				"UPDATE users SET middle_name = NULL, password_hash = NULL, blocked = NULL",
				"UPDATE refresh_families SET claims = NULL, idp = NULL, acr = NULL",
				"UPDATE access_tokens SET claims = NULL",
				"UPDATE auth_requests SET claims = NULL, idp = NULL, acr = NULL, hint_subject = NULL, response_mode = NULL",
			} {
				must(t, s.db.Exec(q).Error)
			}
			if got, err := s.UserByID(ctx, u.ID); err != nil || got.MiddleName != "" || got.Blocked {
				t.Errorf("UserByID of an older row: %+v, %v", got, err)
			}
			if got, err := s.RefreshFamilyByToken(ctx, raw, "report"); err != nil || got.Claims != "" || got.IDP != "" || got.ACR != "" {
				t.Errorf("RefreshFamilyByToken of an older row: %+v, %v", got, err)
			}
			if got, err := s.RefreshFamilyByAccessID(ctx, f.AccessID); err != nil || got.Claims != "" {
				t.Errorf("RefreshFamilyByAccessID of an older row: %+v, %v", got, err)
			}
			if got, err := s.AccessTokenByID(ctx, at.ID); err != nil || got.Claims != "" {
				t.Errorf("AccessTokenByID of an older row: %+v, %v", got, err)
			}
			got, _, err := s.RotateRefreshFamilyByToken(ctx, raw, "report", now.Add(time.Hour), now.Add(time.Hour))
			if err != nil || got.Claims != "" || got.ACR != "" || got.Account == nil || got.Account.MiddleName != "" || got.Account.Blocked {
				t.Errorf("RotateRefreshFamilyByToken of an older row: %+v, %v", got, err)
			}
			if got, err := s.ExchangeCode(ctx, code, time.Hour); err != nil || got.ID != ar.ID || got.Claims != "" ||
				got.IDP != "" || got.Account == nil || got.Account.ID != u.ID || got.Account.Blocked {
				t.Errorf("ExchangeCode of an older row: %+v, %v", got, err)
			}
		})
	}
}

// Removing a product revokes the families of all its accounts in one transaction,
// however many accounts the product has: a revocation must take no lock per account
// (a server's lock table holds about max_locks_per_transaction × connections, 12,800
// on the test server, which overflows well before 200,000; row locks are not in it).
func TestRevocationOfManyAccounts(t *testing.T) {
	newURL, ok := testBackends(t)["postgres"]
	if !ok {
		t.Skip("PostgreSQL only (IDP_TEST_POSTGRES_URL is not set): its lock table is what would overflow")
	}
	s := openTest(t, newURL(t))
	ctx := t.Context()
	must(t, s.CreateClient(ctx, &Client{ID: "bulk", Name: "bulk", Type: "web"}))
	const accounts = 200000
	must(t, s.db.Exec(`INSERT INTO refresh_families (id, access_id, generation, token_hash, access_revoked_through,
		client_id, user_id, session_id, auth_request_id, scopes, audience, auth_time, amr, acr, idp, claims,
		created_at, rotated_at, expires_at, family_expires_at, access_expires_at)
		SELECT 'f' || n, 'a' || n, 1, 'h' || n, 0, 'bulk', 'u' || n, '', '', '[]', '[]', now(), '[]', '', '', '',
		now(), now(), now() + interval '1 hour', now() + interval '1 day', now() + interval '15 minutes'
		FROM generate_series(1, ?) AS n`, accounts).Error)
	must(t, s.DeleteClient(ctx, "bulk"))
	var live int64
	must(t, s.db.Model(&RefreshFamily{}).Where("client_id = 'bulk' AND revoked_at IS NULL").Count(&live).Error)
	if live != 0 {
		t.Errorf("%d of %d refresh families still live after the product was removed", live, accounts)
	}
}
