package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// Hit counts one event for key in the current fixed window of length window and
// returns the count including this one. The counter lives in the database, so limits
// hold across nodes and restarts.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration) (int64, error) {
	now := s.now()
	start := now.Truncate(window)
	c := RateCounter{Key: counterKey(key, window), WindowStart: start, Count: 1, ExpiresAt: start.Add(window)}
	err := s.db.WithContext(ctx).Clauses(
		clause.OnConflict{
			Columns:   []clause.Column{{Name: "key"}, {Name: "window_start"}},
			DoUpdates: clause.Assignments(map[string]any{"count": clause.Expr{SQL: "rate_counters.count + 1"}}),
		},
		clause.Returning{Columns: []clause.Column{{Name: "count"}}},
	).Create(&c).Error
	if err != nil {
		return 0, mapErr(err, fmt.Sprintf("count rate limit %q", key))
	}
	return c.Count, nil
}

// Count returns the events counted for key in the current window without adding one.
func (s *Store) Count(ctx context.Context, key string, window time.Duration) (int64, error) {
	start := s.now().Truncate(window)
	var c RateCounter
	err := s.db.WithContext(ctx).Where("key = ? AND window_start = ?", counterKey(key, window), start).Limit(1).Find(&c).Error
	return c.Count, mapErr(err, fmt.Sprintf("read rate limit %q", key))
}

// ResetLimit forgets key's counter in the current window (a successful sign-in clears
// the failure count).
func (s *Store) ResetLimit(ctx context.Context, key string, window time.Duration) error {
	start := s.now().Truncate(window)
	err := s.db.WithContext(ctx).Where("key = ? AND window_start = ?", counterKey(key, window), start).Delete(&RateCounter{}).Error
	return mapErr(err, fmt.Sprintf("reset rate limit %q", key))
}

// counterKey names key's counter for one window length: two limits on one key ("5 a
// minute, 20 an hour") have windows that start at the same instant and must not share
// a row. A key too long for the column is replaced by its hash.
func counterKey(key string, window time.Duration) string {
	k := key + "@" + window.String()
	if len(k) > 200 {
		k = HashSecret(key) + "@" + window.String()
	}
	return k
}
