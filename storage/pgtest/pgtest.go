// Package pgtest gives a test a fresh, empty PostgreSQL database.
//
// The server comes from the environment variable IDP_TEST_POSTGRES_URL, an
// admin URL such as
//
//	postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable
//
// `task test:postgres` and .ci/run start a throwaway server and set it (see
// .ci/postgres.sh). Without the variable, a test that calls [URL] is skipped
// on a developer's machine and fails when CI=true, so that CI never passes
// with the PostgreSQL suite silently skipped.
//
// Use:
//
//	func TestRepo(t *testing.T) {
//		db, err := gorm.Open(postgres.Open(pgtest.URL(t)), &gorm.Config{})
//		...
//	}
//
// Each call creates its own database, so tests may run in parallel.
package pgtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// envURL names the environment variable with the admin URL of the server.
const envURL = "IDP_TEST_POSTGRES_URL"

// prefix starts the name of every database that URL creates.
const prefix = "idp_test_"

// URL creates a uniquely named empty database (idp_test_<random hex>) on the
// server that IDP_TEST_POSTGRES_URL names, and returns a URL for it. The
// database is dropped when the test and its subtests end (t.Cleanup), with
// WITH (FORCE), so connections that the test left open do not keep it.
//
// Without IDP_TEST_POSTGRES_URL the test is skipped, or fails when CI=true.
// A server that cannot be reached fails the test.
func URL(t testing.TB) string {
	t.Helper()
	admin := adminURL(t)

	name, err := randomName()
	if err != nil {
		t.Fatal("pgtest: ", err)
	}
	dbURL, err := withDatabase(admin, name)
	if err != nil {
		t.Fatal("pgtest: ", err)
	}
	if err := exec(admin, `CREATE DATABASE "`+name+`"`); err != nil {
		t.Fatal("pgtest: create database ", name, ": ", err)
	}
	t.Cleanup(func() {
		if err := exec(admin, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			t.Error("pgtest: drop database ", name, ": ", err)
		}
	})
	return dbURL
}

// adminURL returns IDP_TEST_POSTGRES_URL, or skips or fails the test when it
// is not set.
func adminURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(envURL)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but IDP_TEST_POSTGRES_URL is not set: .ci/run must start PostgreSQL")
		}
		t.Skip("PostgreSQL suite skipped: set IDP_TEST_POSTGRES_URL=postgres://… (task test:postgres starts one)")
	}
	if _, err := withDatabase(admin, "postgres"); err != nil {
		t.Fatal("pgtest: IDP_TEST_POSTGRES_URL: ", err)
	}
	return admin
}

func randomName() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b), nil
}

// withDatabase returns the URL rawURL with its database replaced by name.
func withDatabase(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("want a postgres:// URL, got %q", u.Redacted())
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// exec runs one statement on a short-lived connection to the admin database.
// CREATE and DROP DATABASE cannot run inside a transaction, and gorm's Exec
// runs them outside one.
func exec(admin, stmt string) error {
	db, err := gorm.Open(postgres.Open(admin), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(admin), err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	return db.Exec(stmt).Error
}

func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}
