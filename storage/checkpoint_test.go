package storage

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Token writes land in the WAL; the checkpointer, not a commit, copies them into the
// database file, well before the writer's own threshold (walBackstopPages) is reached.
func TestCheckpointerCopiesTheWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idp.db")
	s := openTest(t, "sqlite://"+path)
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Whatever migration left in the WAL is copied first.
	time.Sleep(3 * checkpointEvery)
	before := size()
	ctx := t.Context()
	for range 500 {
		must(t, s.CreateAccessToken(ctx, &AccessToken{ClientID: "report", ExpiresAt: s.now().Add(time.Hour)}))
	}
	deadline := time.Now().Add(5 * time.Second)
	for size() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("the database file stayed at %d bytes for 5 s after 500 token writes: nothing checkpointed the WAL", before)
		}
		time.Sleep(checkpointEvery)
	}
}
