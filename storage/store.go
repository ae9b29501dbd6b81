package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors that callers test with errors.Is.
var (
	// ErrNotFound means no live row matched: absent, expired, revoked or spent.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique value (phone, email, id) is already taken.
	ErrConflict = errors.New("already exists")
	// ErrReused means a one-time value (authorization code, refresh token) was presented again.
	ErrReused = errors.New("already used")
	// ErrLastMethod means a change would leave an account with no way in.
	ErrLastMethod = errors.New("the account's last way in")
)

// Store is the gorm-backed implementation of every repository.
type Store struct {
	db      *gorm.DB
	dialect string
	clock   atomic.Pointer[func() time.Time] // SetClock may run while requests do

	// rdb answers reads made outside a transaction. On an SQLite file it is a pool of
	// read-only connections beside the single writer, so reads neither queue behind
	// write transactions nor hold the writer; in WAL mode each statement there sees
	// every transaction committed before it began, so a request reads its own writes.
	// Elsewhere (PostgreSQL, SQLite :memory:) it is db.
	rdb *gorm.DB

	// sqlDB is db's pool, and hot the token endpoint's statements on it (see hot.go).
	sqlDB *sql.DB
	hot   hotStatements
	batch *writeBatcher // SQLite only: group commit of the token endpoint's writes
	ckpt  *checkpointer // SQLite files only: WAL checkpoints off the writer
}

// reader is the handle for a read outside a transaction.
func (s *Store) reader(ctx context.Context) *gorm.DB { return s.rdb.WithContext(ctx) }

// now reads the clock.
func (s *Store) now() time.Time { return (*s.clock.Load())() }

// Dialect names the backend: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// Open connects to databaseURL (sqlite://PATH or postgres://…) and migrates the schema.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	dialector, dialect, err := dialectorFor(databaseURL)
	if err != nil {
		return nil, err
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC() }, // replaced below by s.now
		SkipDefaultTransaction: true,
		// gorm's statement cache prepares a statement first seen in a transaction on
		// that transaction, so it is parsed and planned again in every transaction.
		// PostgreSQL needs no such cache: pgx keeps prepared statements per connection,
		// inside transactions too. SQLite (modernc) has none, and one connection.
		PrepareStmt: dialect == "sqlite",
	})
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	if dialect == "sqlite" {
		// SQLite has one writer. One connection turns lock contention (SQLITE_BUSY under
		// load) into a queue in database/sql, which is both correct and faster here.
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(32)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s := &Store{db: db, rdb: db, dialect: dialect, sqlDB: sqlDB}
	s.SetClock(time.Now)
	db.Config.NowFunc = s.now // gorm's own CreatedAt/UpdatedAt follow the clock too
	if err := s.Ping(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	if err := s.hot.prepare(ctx, sqlDB, dialect); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	if dialect == "sqlite" && !isMemory(databaseURL) {
		// Opened after the writer has created the file, switched it to WAL and migrated it.
		rdb, err := openSQLiteReader(databaseURL)
		if err != nil {
			s.hot.close()
			_ = sqlDB.Close()
			return nil, err
		}
		rdb.Config.NowFunc = s.now
		s.rdb = rdb
	}
	readPool, err := s.rdb.DB()
	if err == nil {
		err = s.hot.prepareReads(ctx, readPool, dialect)
	}
	if err != nil {
		s.hot.close()
		if s.rdb != s.db {
			if rdb, err := s.rdb.DB(); err == nil {
				_ = rdb.Close()
			}
		}
		_ = sqlDB.Close()
		return nil, fmt.Errorf("prepare reads: %w", err)
	}
	if dialect == "sqlite" && !isMemory(databaseURL) {
		if s.ckpt, err = startCheckpointer(databaseURL); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	if dialect == "sqlite" {
		s.batch = newWriteBatcher(s)
	}
	return s, nil
}

// readPoolSize is how many read-only SQLite connections serve reads at once: more than
// the CPUs, since a read also waits on the file system now and then.
func readPoolSize() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// openSQLiteReader opens the read-only pool over the same SQLite file.
func openSQLiteReader(databaseURL string) (*gorm.DB, error) {
	path := strings.TrimPrefix(databaseURL, "sqlite://")
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	// query_only makes a write through this pool an error instead of a second writer.
	q.Add("_pragma", "query_only(1)")
	q.Set("_timezone", "UTC") // times read back in UTC, as on the writer
	db, err := gorm.Open(sqlite.Dialector{DriverName: "sqlite", DSN: "file:" + path + "?" + q.Encode()}, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		PrepareStmt:            true, // outside transactions, so cached per connection
	})
	if err != nil {
		return nil, fmt.Errorf("open sqlite read pool: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite read pool: %w", err)
	}
	n := readPoolSize()
	sqlDB.SetMaxOpenConns(n)
	sqlDB.SetMaxIdleConns(n)
	return db, nil
}

func isMemory(databaseURL string) bool {
	return strings.TrimPrefix(databaseURL, "sqlite://") == ":memory:"
}

func dialectorFor(databaseURL string) (gorm.Dialector, string, error) {
	switch {
	case strings.HasPrefix(databaseURL, "sqlite://"):
		path := strings.TrimPrefix(databaseURL, "sqlite://")
		if path == "" {
			return nil, "", fmt.Errorf("database URL %q: empty SQLite path", databaseURL)
		}
		// WAL lets readers work while the single writer commits; NORMAL sync is
		// durable across process crashes, which is the failure that matters here.
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		if path != ":memory:" {
			q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walBackstopPages)) // see checkpointer
		}
		q.Set("_txlock", "immediate")
		// Times are stored as text and compared as text: write every one in UTC (this
		// also drops the monotonic suffix), or an instant in another zone compares wrongly.
		q.Set("_timezone", "UTC")
		dsn := "file:" + path + "?" + q.Encode()
		if path == ":memory:" {
			dsn = "file::memory:?" + q.Encode()
		}
		return sqlite.Dialector{DriverName: "sqlite", DSN: dsn}, "sqlite", nil
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return postgres.Open(databaseURL), "postgres", nil
	default:
		return nil, "", fmt.Errorf("database URL %q: want sqlite://PATH or postgres://…", redactURL(databaseURL))
	}
}

// redactURL hides a password in a database URL before it reaches a message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close releases the connections.
func (s *Store) Close() error {
	var errs []error
	if s.rdb != s.db {
		if rdb, err := s.rdb.DB(); err == nil {
			errs = append(errs, rdb.Close())
		}
	}
	if s.batch != nil {
		s.batch.close()
	}
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.close())
	}
	s.hot.close()
	return errors.Join(append(errs, s.sqlDB.Close())...)
}

// SetClock replaces the clock; tests use it to expire rows without sleeping.
func (s *Store) SetClock(now func() time.Time) {
	clock := func() time.Time { return now().UTC() }
	s.clock.Store(&clock)
}

// Now is the store's clock, in UTC.
func (s *Store) Now() time.Time { return s.now() }

func (s *Store) migrate(ctx context.Context) error {
	if err := s.db.WithContext(ctx).AutoMigrate(allModels...); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	// AutoMigrate only adds: indexes a newer schema no longer has are dropped here, or
	// an existing database would keep paying for them on every insert.
	for _, name := range droppedTables {
		if err := s.db.WithContext(ctx).Exec("DROP TABLE IF EXISTS " + name).Error; err != nil {
			return fmt.Errorf("migrate schema: drop table %s: %w", name, err)
		}
	}
	for _, name := range droppedIndexes {
		if err := s.db.WithContext(ctx).Exec("DROP INDEX IF EXISTS " + name).Error; err != nil {
			return fmt.Errorf("migrate schema: drop index %s: %w", name, err)
		}
	}
	return nil
}

// droppedIndexes are indexes of earlier schemas, each superseded or unused: token rows
// are inserted on every grant and each index is one more B-tree written per insert.
var droppedIndexes = []string{
	"idx_access_tokens_client_id",       // behind user_id in idx_access_tokens_user_client
	"idx_access_tokens_user",            // the leading column of idx_access_tokens_user_client
	"idx_access_tokens_user_client",     // idx_access_tokens_person_client replaces it
	"idx_access_tokens_session",         // idx_access_tokens_person_session replaces it
	"idx_access_tokens_own_user_client", // access tokens of refresh families have no rows now
	"idx_access_tokens_own_session",     // the same
	"idx_access_tokens_family",          // the same
}

// droppedTables are tables of earlier schemas: refresh_tokens held a row a generation
// (refresh_families holds one a family), and its tokens are no longer accepted.
var droppedTables = []string{"refresh_tokens"}

// tx runs fn in one transaction.
func (s *Store) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.db.WithContext(ctx).Transaction(fn)
}

// forUpdate locks the selected rows on PostgreSQL; SQLite's immediate transactions
// already hold the write lock, and it has no FOR UPDATE.
func (s *Store) forUpdate(q *gorm.DB) *gorm.DB {
	if s.dialect == "postgres" {
		return q.Clauses(lockingClause)
	}
	return q
}

// mapErr turns driver errors into the package's sentinels.
func mapErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("%s: %w", what, ErrConflict)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

func isUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqliteErr *sqlitedriver.Error
	if errors.As(err, &sqliteErr) {
		code := sqliteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// truncate fits free text from the outside (a User-Agent header, an upstream's display
// name, an error message) into a column of n bytes: invalid UTF-8 is replaced, since
// PostgreSQL refuses it, and the cut falls on a character boundary.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
