package storage

import (
	"context"
	"fmt"
	"time"
)

// Retention is how long finished rows stay after they stop mattering, so that admins
// and the audit trail can still see them.
type Retention struct {
	Sessions   time.Duration // ended or expired sessions
	Tokens     time.Duration // expired or revoked tokens
	Deliveries time.Duration // delivered or abandoned back-channel logouts
	Events     time.Duration // audit events
}

// DefaultRetention keeps a week of finished sessions and tokens and a year of audit.
var DefaultRetention = Retention{
	Sessions: 7 * 24 * time.Hour, Tokens: 7 * 24 * time.Hour,
	Deliveries: 7 * 24 * time.Hour, Events: 365 * 24 * time.Hour,
}

// DeleteExpired removes rows that no longer matter and returns how many per table.
func (s *Store) DeleteExpired(ctx context.Context, r Retention) (map[string]int64, error) {
	now := s.now()
	db := s.db.WithContext(ctx)
	steps := []struct {
		table string
		model any
		where string
		args  []any
	}{
		{"auth_requests", &AuthRequest{}, "expires_at <= ?", []any{now}},
		{"rate_counters", &RateCounter{}, "expires_at <= ?", []any{now}},
		{"one_time_codes", &OneTimeCode{}, "expires_at <= ?", []any{now}},
		{"access_tokens", &AccessToken{}, "expires_at <= ?", []any{now.Add(-r.Tokens)}},
		// A family outlives its refresh token by its last access token's lifetime.
		{"refresh_families", &RefreshFamily{}, "(expires_at <= ? OR family_expires_at <= ? OR revoked_at <= ?) AND access_expires_at <= ?",
			[]any{now.Add(-r.Tokens), now.Add(-r.Tokens), now.Add(-r.Tokens), now.Add(-r.Tokens)}},
		{"sessions", &Session{}, "expires_at <= ? OR ended_at <= ?", []any{now.Add(-r.Sessions), now.Add(-r.Sessions)}},
		{"session_clients", &SessionClient{}, "session_id NOT IN (SELECT id FROM sessions)", nil},
		{"logout_deliveries", &LogoutDelivery{}, "delivered_at <= ? OR gave_up_at <= ?",
			[]any{now.Add(-r.Deliveries), now.Add(-r.Deliveries)}},
		{"signing_keys", &SigningKey{}, "expires_at <= ?", []any{now}},
		{"audit_events", &AuditEvent{}, "created_at <= ?", []any{now.Add(-r.Events)}},
	}
	counts := make(map[string]int64, len(steps))
	for _, st := range steps {
		res := db.Where(st.where, st.args...).Delete(st.model)
		if res.Error != nil {
			return counts, fmt.Errorf("delete expired %s: %w", st.table, res.Error)
		}
		counts[st.table] = res.RowsAffected
	}
	return counts, nil
}
