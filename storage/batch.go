package storage

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// writeBatcher commits the token endpoint's writes on SQLite in shared transactions
// (group commit). SQLite has one writer and every commit writes each page it dirtied
// to the WAL, one system call or two a page: the table's last page, the expiry index's
// last page and the header are written once a batch instead of once a grant. There is
// no timer: a batch is whatever requests are already waiting for the writer when it
// becomes free, so a lone request waits for nobody.
//
// Each write reports success only after its batch committed. A write that fails
// (other than ErrReused, which a write returns only before it wrote anything) rolls
// the batch back, and every write of that batch is then retried alone, so one bad
// write never takes another's rows with it or into the database.
type writeBatcher struct {
	s     *Store
	queue chan *batchWrite // unbuffered: a send succeeds only while the loop runs
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// maxBatch bounds one transaction, so that a burst does not hold every waiter until
// its whole commit is done.
const maxBatch = 64

// batchWrite is one request's writes and where its outcome goes.
type batchWrite struct {
	ctx context.Context
	fn  func(ctx context.Context, tx *sql.Tx) error
	out chan error
}

var errStoreClosed = errors.New("store closed")

func newWriteBatcher(s *Store) *writeBatcher {
	b := &writeBatcher{s: s, queue: make(chan *batchWrite), quit: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

// write runs fn in a transaction shared with other waiting writes.
func (b *writeBatcher) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	w := &batchWrite{ctx: ctx, fn: fn, out: make(chan error, 1)}
	select {
	case b.queue <- w:
	case <-b.quit:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once taken, the write may commit: wait for the verdict whatever ctx says.
	return <-w.out
}

func (b *writeBatcher) loop() {
	defer close(b.done)
	for {
		var first *batchWrite
		select {
		case first = <-b.queue:
		case <-b.quit:
			return
		}
		batch := []*batchWrite{first}
	collect:
		for len(batch) < maxBatch {
			select {
			case w := <-b.queue:
				batch = append(batch, w)
			default:
				break collect
			}
		}
		b.run(batch)
	}
}

func (b *writeBatcher) run(batch []*batchWrite) {
	live := batch[:0:0]
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.out <- err // given up before anything was written
			continue
		}
		live = append(live, w)
	}
	if len(live) == 0 {
		return
	}
	// The shared transaction runs on no request's context: one request going away
	// must not roll back the others' writes.
	ctx := context.Background()
	results := make([]error, len(live))
	err := b.s.sqlTx(ctx, func(tx *sql.Tx) error {
		for i, w := range live {
			results[i] = w.fn(ctx, tx)
			if results[i] != nil && !errors.Is(results[i], ErrReused) {
				return results[i]
			}
		}
		return nil
	})
	if err == nil {
		for i, w := range live {
			w.out <- results[i]
		}
		return
	}
	if len(live) == 1 {
		live[0].out <- err
		return
	}
	for _, w := range live {
		w.out <- b.s.sqlTx(ctx, func(tx *sql.Tx) error { return w.fn(ctx, tx) })
	}
}

// close stops the loop; writes still waiting get errStoreClosed.
func (b *writeBatcher) close() {
	b.once.Do(func() {
		close(b.quit)
		<-b.done
	})
}

// write runs fn, which runs one statement: on SQLite files in a transaction shared
// with other writes (tx), elsewhere alone on the pool (tx nil), where one statement
// needs no BEGIN and COMMIT around it. fn must return ErrReused only before it has
// written anything.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.batch != nil {
		return s.batch.write(ctx, fn)
	}
	return fn(ctx, nil)
}
