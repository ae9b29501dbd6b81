package storage_test

import (
	"os"
	"testing"

	"github.com/astral/idp/storage"
	"github.com/astral/idp/storage/conformance"
	"github.com/astral/idp/storage/pgtest"
)

var inCI = os.Getenv("CI") == "true"

func TestSQLite(t *testing.T) {
	conformance.Run(t, func(t *testing.T) *storage.Store {
		return open(t, "sqlite://"+t.TempDir()+"/idp.db")
	})
}

func TestPostgres(t *testing.T) {
	if os.Getenv("IDP_TEST_POSTGRES_URL") == "" {
		if inCI {
			t.Fatal("CI=true but IDP_TEST_POSTGRES_URL is not set: the PostgreSQL conformance suite must run in CI")
		}
		t.Skip("PostgreSQL conformance suite skipped: IDP_TEST_POSTGRES_URL is not set (task test:postgres starts a server; with CI=true this fails instead)")
	}
	conformance.Run(t, func(t *testing.T) *storage.Store {
		return open(t, pgtest.URL(t))
	})
}

func open(t *testing.T, databaseURL string) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}
