package storage

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Queries of the account cabinet: a page of the sign-in history with its total, the
// products an account has used, and ending every other session of an account.

// UserEventsPage returns one page of an account's audit events, newest first, and how
// many events the account has in all.
func (s *Store) UserEventsPage(ctx context.Context, userID string, offset, limit int) ([]AuditEvent, int64, error) {
	var total int64
	if err := s.db.WithContext(ctx).Model(&AuditEvent{}).Where("user_id = ?", userID).Count(&total).Error; err != nil {
		return nil, 0, mapErr(err, "count audit events")
	}
	if total == 0 || offset >= int(total) {
		return nil, total, nil
	}
	events, err := s.UserEvents(ctx, userID, offset, limit)
	return events, total, err
}

// UserClient is a product an account has used.
type UserClient struct {
	Client   Client
	LastUsed time.Time // the latest of its tokens, session sign-ins and audit events
	// Active means the product holds a live refresh or access token for the account:
	// revoking its access changes something.
	Active bool
}

// usedKinds are the audit events that show an account used a product: it signed in
// (or registered) there. A failed attempt or a revoked access is no use.
var usedKinds = []string{"signin", "registered"}

// UserClients lists the products an account has used — it was issued tokens for them,
// signed in to them through a session, or its audit events show a sign-in there —
// most recently used first. Products no longer registered are left out.
func (s *Store) UserClients(ctx context.Context, userID string) ([]UserClient, error) {
	db := s.db.WithContext(ctx)
	last := map[string]time.Time{}
	note := func(rows []clientTime) {
		for _, r := range rows {
			if r.ClientID != "" && r.LastUsed.After(last[r.ClientID]) {
				last[r.ClientID] = r.LastUsed.Time
			}
		}
	}
	var rows []clientTime
	if err := db.Model(&RefreshFamily{}).Select("client_id, MAX(rotated_at) AS last_used").
		Where("user_id = ?", userID).Group("client_id").Scan(&rows).Error; err != nil {
		return nil, mapErr(err, "list products of refresh tokens")
	}
	note(rows)
	rows = nil
	if err := db.Model(&AccessToken{}).Select("client_id, MAX(created_at) AS last_used").
		Where("user_id = ? AND user_id <> ''", userID).Group("client_id").Scan(&rows).Error; err != nil {
		return nil, mapErr(err, "list products of access tokens")
	}
	note(rows)
	rows = nil
	if err := db.Table("session_clients").Select("session_clients.client_id AS client_id, MAX(session_clients.created_at) AS last_used").
		Joins("JOIN sessions ON sessions.id = session_clients.session_id").
		Where("sessions.user_id = ?", userID).Group("session_clients.client_id").Scan(&rows).Error; err != nil {
		return nil, mapErr(err, "list products of sessions")
	}
	note(rows)
	rows = nil
	if err := db.Model(&AuditEvent{}).Select("client_id, MAX(created_at) AS last_used").
		Where("user_id = ? AND client_id <> '' AND kind IN ?", userID, usedKinds).Group("client_id").Scan(&rows).Error; err != nil {
		return nil, mapErr(err, "list products of audit events")
	}
	note(rows)
	if len(last) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(last))
	for id := range last {
		ids = append(ids, id)
	}
	var clients []Client
	if err := db.Where("id IN ?", ids).Find(&clients).Error; err != nil {
		return nil, mapErr(err, "load products of an account")
	}
	now := s.now()
	var live []string
	// A family's access token may outlive its refresh token by minutes, when the
	// family's absolute expiry comes first.
	if err := db.Model(&RefreshFamily{}).Distinct().
		Where("user_id = ? AND revoked_at IS NULL AND ((expires_at > ? AND family_expires_at > ?) OR "+
			"(access_expires_at > ? AND access_revoked_through < generation))", userID, now, now, now).
		Pluck("client_id", &live).Error; err != nil {
		return nil, mapErr(err, "list live refresh tokens")
	}
	var liveAccess []string
	if err := db.Model(&AccessToken{}).Distinct().
		Where("user_id = ? AND user_id <> '' AND revoked_at IS NULL AND expires_at > ?", userID, now).
		Pluck("client_id", &liveAccess).Error; err != nil {
		return nil, mapErr(err, "list live access tokens")
	}
	live = append(live, liveAccess...)
	out := make([]UserClient, 0, len(clients))
	for _, c := range clients {
		out = append(out, UserClient{Client: c, LastUsed: last[c.ID], Active: slices.Contains(live, c.ID)})
	}
	slices.SortFunc(out, func(a, b UserClient) int {
		if c := b.LastUsed.Compare(a.LastUsed); c != 0 {
			return c
		}
		return strings.Compare(a.Client.ID, b.Client.ID)
	})
	return out, nil
}

// clientTime is a product and the latest instant of something it did.
type clientTime struct {
	ClientID string
	LastUsed columnTime
}

// columnTime scans an aggregate of a time column: PostgreSQL returns a time, SQLite
// the stored text (an aggregate has no declared type for the driver to go by).
type columnTime struct{ time.Time }

// sqliteTimeLayouts are the forms SQLite keeps times in: how the driver writes a
// time.Time (its String form), then modernc.org/sqlite's list of what it reads.
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// Scan implements sql.Scanner.
func (t *columnTime) Scan(src any) error {
	var text string
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
		return nil
	case time.Time:
		t.Time = v.UTC()
		return nil
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		return fmt.Errorf("scan a time from %T", src)
	}
	for _, layout := range sqliteTimeLayouts {
		if v, err := time.Parse(layout, text); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	return fmt.Errorf("scan a time from %q", text)
}

// Value implements driver.Valuer (gorm requires a scanner field to be a valuer too).
func (t columnTime) Value() (driver.Value, error) { return t.Time, nil }

// EndOtherSessions ends every session of an account but keep, and revokes every token
// of the account that was not issued through keep — also tokens of sessions that ended
// or expired before and tokens issued without a session — in one transaction. The
// products of the ended live sessions are owed a back-channel logout (queued here);
// the ended sessions are returned. A changed password calls it: whoever knew the old
// one is out, the browser that changed it stays in.
func (s *Store) EndOtherSessions(ctx context.Context, userID, keep string) ([]Session, error) {
	var ended []Session
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		ended, err = s.endSessionsTx(tx, "user_id = ? AND id <> ?", userID, keep)
		if err != nil {
			return err
		}
		return s.revokeTokensTx(tx, "user_id = ? AND user_id <> '' AND session_id <> ?", userID, keep)
	})
	return ended, mapErr(err, "end other sessions")
}
