package storage

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// checkpointer copies the SQLite WAL back into the database file from a connection of
// its own. SQLite's automatic checkpoint runs inside the commit that crosses its
// threshold, on the one writer: every grant waiting for the writer then also waits for
// the pages to be copied and the file synced, which is where the token endpoint's
// slowest requests came from. A passive checkpoint here takes no write lock; it
// copies what no reader still needs while the writer goes on committing. The writer
// keeps an automatic checkpoint at a far higher threshold (walBackstopPages), for when
// this one falls behind.
type checkpointer struct {
	db   *sql.DB
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

const (
	// checkpointEvery is how often the WAL is copied back.
	checkpointEvery = 100 * time.Millisecond
	// walBackstopPages is the writer's own automatic checkpoint threshold in pages,
	// reached only when the checkpointer cannot keep up.
	walBackstopPages = 16384
)

// startCheckpointer opens the file as the writer does and checkpoints it until close.
func startCheckpointer(databaseURL string) (*checkpointer, error) {
	dialector, _, err := dialectorFor(databaseURL)
	if err != nil {
		return nil, err
	}
	gdb, err := gorm.Open(dialector, &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	db, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c, nil
}

func (c *checkpointer) loop() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
		var busy, frames, copied int64
		if err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
			slog.Warn("sqlite checkpoint", "err", err)
		}
	}
}

// close stops the loop and closes the connection; closing again is a no-op.
func (c *checkpointer) close() error {
	var err error
	c.once.Do(func() {
		close(c.quit)
		<-c.done
		err = c.db.Close()
	})
	return err
}
