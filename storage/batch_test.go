package storage

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// One failing write in a batch costs the others nothing: they commit, and of the
// failing write nothing is kept.
func TestBatchIsolatesFailures(t *testing.T) {
	t.Run("failure", func(t *testing.T) { testBatch(t, true) })
	t.Run("no failure", func(t *testing.T) { testBatch(t, false) })
}

func testBatch(t *testing.T, withFailure bool) {
	s := openTest(t, "sqlite://"+t.TempDir()+"/idp.db")
	ctx := t.Context()
	boom := errors.New("boom")
	insert := func(id string, fail error) *batchWrite {
		return &batchWrite{ctx: ctx, out: make(chan error, 1), fn: func(ctx context.Context, tx *sql.Tx) error {
			if errors.Is(fail, ErrReused) {
				return fail // as a write must: before writing anything
			}
			t := &AccessToken{ID: id, ClientID: "report", CreatedAt: s.now(), ExpiresAt: s.now().Add(time.Hour)}
			if _, err := s.execResult(ctx, tx, qInsertAccessToken, accessTokenArgs(t)...); err != nil {
				return err
			}
			return fail
		}}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	gone := insert("gone", nil)
	gone.ctx = cancelled
	var bFails error
	if withFailure {
		bFails = boom
	}
	batch := []*batchWrite{insert("a", nil), insert("b", bFails), insert("c", nil), insert("d", ErrReused), gone}
	s.batch.run(batch)
	want := map[string]error{"a": nil, "b": bFails, "c": nil, "d": ErrReused, "gone": context.Canceled}
	for i, id := range []string{"a", "b", "c", "d", "gone"} {
		if err := <-batch[i].out; !errors.Is(err, want[id]) {
			t.Errorf("write %s: got %v; want %v", id, err, want[id])
		}
		_, err := s.AccessTokenByID(ctx, id)
		if kept := err == nil; kept != (want[id] == nil) {
			t.Errorf("write %s: kept=%v (err %v)", id, kept, err)
		}
	}
}

// A store closed while a write waits fails the write instead of leaving it hanging.
func TestBatchClosed(t *testing.T) {
	s, err := Open(t.Context(), "sqlite://"+t.TempDir()+"/idp.db")
	must(t, err)
	must(t, s.Close())
	err = s.batch.write(t.Context(), func(context.Context, *sql.Tx) error { return nil })
	if !errors.Is(err, errStoreClosed) {
		t.Errorf("write after close: %v; want errStoreClosed", err)
	}
}
