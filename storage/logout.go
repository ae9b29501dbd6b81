package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ClaimLogoutDeliveries takes up to limit deliveries that are due and leases them for
// lease: their next attempt moves forward so another node does not take them too.
func (s *Store) ClaimLogoutDeliveries(ctx context.Context, limit int, lease time.Duration) ([]LogoutDelivery, error) {
	now := s.now()
	var claimed []LogoutDelivery
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var due []LogoutDelivery
		q := tx.Where("delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ?", now).
			Order("next_attempt_at").Limit(limit)
		if s.dialect == "postgres" {
			q = q.Clauses(lockingSkipLocked)
		}
		if err := q.Find(&due).Error; err != nil {
			return err
		}
		for _, d := range due {
			res := tx.Model(&LogoutDelivery{}).
				Where("id = ? AND next_attempt_at = ?", d.ID, d.NextAttemptAt).
				Updates(map[string]any{"next_attempt_at": now.Add(lease), "attempts": d.Attempts + 1})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 1 {
				d.Attempts++
				claimed = append(claimed, d)
			}
		}
		return nil
	})
	return claimed, mapErr(err, "claim logout deliveries")
}

// FinishLogoutDelivery records the outcome of one attempt: delivered, retry at next,
// or (next zero) given up.
func (s *Store) FinishLogoutDelivery(ctx context.Context, id string, delivered bool, lastError string, next time.Time) error {
	now := s.now()
	updates := map[string]any{"last_error": truncate(lastError, 1000)}
	switch {
	case delivered:
		updates["delivered_at"] = now
	case next.IsZero():
		updates["gave_up_at"] = now
	default:
		updates["next_attempt_at"] = next
	}
	err := s.db.WithContext(ctx).Model(&LogoutDelivery{}).Where("id = ?", id).Updates(updates).Error
	return mapErr(err, fmt.Sprintf("finish logout delivery %q", id))
}

// LogoutDeliveries lists the deliveries of a session, for tests and operators.
func (s *Store) LogoutDeliveries(ctx context.Context, sessionID string) ([]LogoutDelivery, error) {
	var out []LogoutDelivery
	err := s.db.WithContext(ctx).Where("session_id = ?", sessionID).Order("created_at").Find(&out).Error
	return out, mapErr(err, "list logout deliveries")
}
