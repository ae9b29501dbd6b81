package pgtest

import (
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

func open(t *testing.T, dsn string) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	return db
}

func databaseName(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	var n int64
	if err := open(t, adminURL(t)).Raw(`SELECT count(*) FROM pg_database WHERE datname = ?`, name).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n == 1
}

type note struct {
	ID   uint
	Text string
}

// TestURL: the database is new, empty, usable, and dropped after the test,
// even with a connection still open.
func TestURL(t *testing.T) {
	var name string
	t.Run("use", func(t *testing.T) {
		dsn := URL(t)
		name = databaseName(t, dsn)
		if !strings.HasPrefix(name, prefix) {
			t.Fatalf("database %q lacks the prefix %q", name, prefix)
		}
		db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
		if err != nil {
			t.Fatal(err)
		}
		// Deliberately not closed: DROP ... WITH (FORCE) must cope.
		var current string
		if err := db.Raw(`SELECT current_database()`).Scan(&current).Error; err != nil {
			t.Fatal(err)
		}
		if current != name {
			t.Fatalf("connected to %q, want %q", current, name)
		}
		var tables int64
		if err := db.Raw(`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&tables).Error; err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Fatalf("new database has %d tables, want 0", tables)
		}
		if err := db.AutoMigrate(&note{}); err != nil {
			t.Fatal(err)
		}
		if err := db.Create(&note{Text: "Привет"}).Error; err != nil {
			t.Fatal(err)
		}
		var got note
		if err := db.First(&got).Error; err != nil {
			t.Fatal(err)
		}
		if got.Text != "Привет" {
			t.Fatalf("read %q back", got.Text)
		}
		if !exists(t, name) {
			t.Fatalf("database %s is not listed in pg_database", name)
		}
	})
	if t.Failed() || t.Skipped() || name == "" {
		return
	}
	if exists(t, name) {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

// TestURLParallel: concurrent tests get distinct databases that do not see
// each other's tables.
func TestURLParallel(t *testing.T) {
	adminURL(t)
	var (
		mu    sync.Mutex
		names = map[string]bool{}
	)
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			dsn := URL(t)
			mu.Lock()
			name := databaseName(t, dsn)
			if names[name] {
				t.Errorf("database %s handed out twice", name)
			}
			names[name] = true
			mu.Unlock()

			db := open(t, dsn)
			if err := db.AutoMigrate(&note{}); err != nil {
				t.Fatal(err)
			}
			if err := db.Create(&note{Text: name}).Error; err != nil {
				t.Fatal(err)
			}
			var all []note
			if err := db.Find(&all).Error; err != nil {
				t.Fatal(err)
			}
			if len(all) != 1 || all[0].Text != name {
				t.Fatalf("database %s holds %+v, want only its own row", name, all)
			}
		})
	}
}

// recorder is a testing.TB that records Fatal and Skip instead of acting on
// the real test, so the rules for a missing server can be tested anywhere.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                   { r.TB.Helper() }
func (r *recorder) Fatal(args ...any)         { r.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...); runtime.Goexit() }
func (r *recorder) Skip(args ...any)          { r.skip = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Skipf(f string, a ...any)  { r.skip = fmt.Sprintf(f, a...); runtime.Goexit() }

func call(t *testing.T, f func(testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// TestURLWithoutServer: without IDP_TEST_POSTGRES_URL a test is skipped, or
// fails under CI=true. It needs no server, so it always runs.
func TestURLWithoutServer(t *testing.T) {
	t.Setenv(envURL, "")

	t.Setenv("CI", "")
	r := call(t, func(tb testing.TB) { URL(tb) })
	if r.fatal != "" || !strings.Contains(r.skip, "PostgreSQL suite skipped") {
		t.Errorf("without CI: fatal %q, skip %q; want a skip", r.fatal, r.skip)
	}

	t.Setenv("CI", "true")
	r = call(t, func(tb testing.TB) { URL(tb) })
	if r.skip != "" || !strings.Contains(r.fatal, "CI=true but IDP_TEST_POSTGRES_URL is not set") {
		t.Errorf("with CI=true: fatal %q, skip %q; want a failure", r.fatal, r.skip)
	}

	t.Setenv(envURL, "mysql://root@localhost/x")
	r = call(t, func(tb testing.TB) { URL(tb) })
	if !strings.Contains(r.fatal, "postgres://") {
		t.Errorf("with a mysql URL: fatal %q, skip %q; want a failure naming postgres://", r.fatal, r.skip)
	}
}

func TestWithDatabase(t *testing.T) {
	got, err := withDatabase("postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "idp_test_ab")
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://u:p@127.0.0.1:5432/idp_test_ab?sslmode=disable"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := withDatabase("host=localhost dbname=postgres", "x"); err == nil {
		t.Error("a key=value DSN was accepted")
	}
}
