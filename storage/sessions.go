package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateSession inserts a browser session. token is the raw cookie value; only its
// hash is stored.
func (s *Store) CreateSession(ctx context.Context, sess *Session, token string) error {
	if sess.ID == "" {
		sess.ID = NewID()
	}
	sess.TokenHash = HashSecret(token)
	sess.UserAgent = truncate(sess.UserAgent, 512)
	now := s.now()
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = now
	}
	if sess.LastSeenAt.IsZero() {
		sess.LastSeenAt = now
	}
	return mapErr(s.db.WithContext(ctx).Create(sess).Error, "create session")
}

// SessionByToken loads the live session of a cookie value: not ended, not expired.
func (s *Store) SessionByToken(ctx context.Context, token string) (*Session, error) {
	var sess Session
	err := s.db.WithContext(ctx).
		Where("token_hash = ? AND ended_at IS NULL AND expires_at > ?", HashSecret(token), s.now()).
		Take(&sess).Error
	return &sess, mapErr(err, "load session")
}

// SessionByID loads a live session by its public id.
func (s *Store) SessionByID(ctx context.Context, id string) (*Session, error) {
	var sess Session
	err := s.db.WithContext(ctx).
		Where("id = ? AND ended_at IS NULL AND expires_at > ?", id, s.now()).
		Take(&sess).Error
	return &sess, mapErr(err, fmt.Sprintf("load session %q", id))
}

// TouchSession records activity and moves the (idle) expiry.
func (s *Store) TouchSession(ctx context.Context, id string, seen, expiresAt time.Time) error {
	err := s.db.WithContext(ctx).Model(&Session{}).
		Where("id = ? AND ended_at IS NULL", id).
		Updates(map[string]any{"last_seen_at": seen, "expires_at": expiresAt}).Error
	return mapErr(err, fmt.Sprintf("touch session %q", id))
}

// ReauthenticateSession records a fresh proof of identity in a live session (a
// sign-in with prompt=login or max_age, or a second method).
func (s *Store) ReauthenticateSession(ctx context.Context, id string, authTime time.Time, amr []string, acr, idp string) error {
	res := s.db.WithContext(ctx).Model(&Session{}).
		Where("id = ? AND ended_at IS NULL", id).
		Updates(map[string]any{"auth_time": authTime, "amr": StringList(amr), "acr": acr, "idp": idp, "last_seen_at": authTime})
	if res.Error == nil && res.RowsAffected == 0 {
		res.Error = gorm.ErrRecordNotFound
	}
	return mapErr(res.Error, fmt.Sprintf("re-authenticate session %q", id))
}

// UserSessions lists an account's live sessions, newest first.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]Session, error) {
	var out []Session
	err := s.db.WithContext(ctx).
		Where("user_id = ? AND ended_at IS NULL AND expires_at > ?", userID, s.now()).
		Order("created_at DESC").Find(&out).Error
	return out, mapErr(err, "list sessions")
}

// AddSessionClient remembers that a product signed in through a session.
func (s *Store) AddSessionClient(ctx context.Context, sessionID, clientID string) error {
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&SessionClient{SessionID: sessionID, ClientID: clientID, CreatedAt: s.now()}).Error
	return mapErr(err, "add session client")
}

// SessionClients lists the products that signed in through a session.
func (s *Store) SessionClients(ctx context.Context, sessionID string) ([]string, error) {
	var ids []string
	err := s.db.WithContext(ctx).Model(&SessionClient{}).Where("session_id = ?", sessionID).
		Order("created_at").Pluck("client_id", &ids).Error
	return ids, mapErr(err, "list session clients")
}

// EndSession ends one session: its refresh and access tokens are revoked and a
// back-channel logout is queued for every product of the session that registered a
// logout URI, all in one transaction. Ending an ended session is not an error.
func (s *Store) EndSession(ctx context.Context, id string) (*Session, error) {
	var ended []Session
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		ended, err = s.endSessionsTx(tx, "id = ?", id)
		return err
	})
	if err != nil {
		return nil, mapErr(err, fmt.Sprintf("end session %q", id))
	}
	if len(ended) == 0 {
		var sess Session
		err := s.db.WithContext(ctx).Where("id = ?", id).Take(&sess).Error
		return &sess, mapErr(err, fmt.Sprintf("end session %q", id))
	}
	return &ended[0], nil
}

// EndUserSessions ends every live session of an account except keep (may be empty).
func (s *Store) EndUserSessions(ctx context.Context, userID, keep string) ([]Session, error) {
	var ended []Session
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		if keep == "" {
			ended, err = s.endSessionsTx(tx, "user_id = ?", userID)
		} else {
			ended, err = s.endSessionsTx(tx, "user_id = ? AND id <> ?", userID, keep)
		}
		return err
	})
	return ended, mapErr(err, "end user sessions")
}

// endSessionsTx ends the live sessions matching where, revokes their tokens and queues
// their back-channel logouts.
func (s *Store) endSessionsTx(tx *gorm.DB, where string, args ...any) ([]Session, error) {
	now := s.now()
	var sessions []Session
	if err := s.forUpdate(tx.Where(where, args...).Where("ended_at IS NULL")).Find(&sessions).Error; err != nil {
		return nil, err
	}
	if len(sessions) == 0 {
		return nil, nil
	}
	ids := make([]string, len(sessions))
	for i := range sessions {
		ids[i] = sessions[i].ID
		sessions[i].EndedAt = &now
	}
	if err := tx.Model(&Session{}).Where("id IN ?", ids).Update("ended_at", now).Error; err != nil {
		return nil, err
	}
	if err := s.revokeTokensTx(tx, "session_id IN ? AND session_id <> ''", ids); err != nil {
		return nil, err
	}
	// Only a live session's products are owed a logout: an expired session's
	// products already stopped trusting it.
	var targets []struct {
		SessionID            string
		ClientID             string
		BackchannelLogoutURI string
	}
	err := tx.Table("session_clients").
		Select("session_clients.session_id, session_clients.client_id, clients.backchannel_logout_uri").
		Joins("JOIN clients ON clients.id = session_clients.client_id").
		Where("session_clients.session_id IN ? AND clients.backchannel_logout_uri <> ''", ids).
		Scan(&targets).Error
	if err != nil {
		return nil, err
	}
	liveUser := make(map[string]string, len(sessions)) // session id → account, unexpired sessions only
	for _, sess := range sessions {
		if now.Before(sess.ExpiresAt) {
			liveUser[sess.ID] = sess.UserID
		}
	}
	for _, t := range targets {
		userID, live := liveUser[t.SessionID]
		if !live {
			continue
		}
		d := LogoutDelivery{
			ID: NewID(), ClientID: t.ClientID, UserID: userID, SessionID: t.SessionID,
			URI: t.BackchannelLogoutURI, NextAttemptAt: now, CreatedAt: now,
		}
		if err := tx.Create(&d).Error; err != nil {
			return nil, err
		}
	}
	return sessions, nil
}

// IsNotFound reports whether err means a missing, expired or ended row.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err means a unique value is already taken.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsReused reports whether err means a one-time value was presented again.
func IsReused(err error) bool { return errors.Is(err, ErrReused) }
