// Package session keeps a browser's single sign-on session: a random value in an
// HttpOnly cookie, and a row in the database that holds only its hash. Every node
// reads the same rows, so a person signed in through one node is signed in on all.
package session

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/astral/idp/storage"
)

// CookieName is the session cookie.
const CookieName = "idp_session"

// Store is what sessions need from storage.
type Store interface {
	CreateSession(ctx context.Context, s *storage.Session, token string) error
	SessionByToken(ctx context.Context, token string) (*storage.Session, error)
	TouchSession(ctx context.Context, id string, seen, expiresAt time.Time) error
	ReauthenticateSession(ctx context.Context, id string, authTime time.Time, amr []string, acr, idp string) error
	EndSession(ctx context.Context, id string) (*storage.Session, error)
	UserByID(ctx context.Context, id string) (*storage.User, error)
	Now() time.Time
}

// Policy is how long sessions live.
type Policy struct {
	Idle     time.Duration // unused this long, a session ends
	Absolute time.Duration // a session never outlives this
	Touch    time.Duration // activity is written at most this often
}

// DefaultPolicy keeps a working day's session alive and asks again after two weeks.
var DefaultPolicy = Policy{Idle: 12 * time.Hour, Absolute: 14 * 24 * time.Hour, Touch: 5 * time.Minute}

// Manager reads and writes sessions.
type Manager struct {
	store  Store
	policy Policy
	secure bool // https issuer: Secure cookies
}

// NewManager makes a manager; secure sets the cookie's Secure flag.
func NewManager(store Store, policy Policy, secure bool) *Manager {
	return &Manager{store: store, policy: policy, secure: secure}
}

// Token returns the raw session cookie value of r, or "".
func Token(r *http.Request) string {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

// Current returns the live session of the request and its account, or nil when there
// is none (no cookie, ended, expired, or the account is blocked).
func (m *Manager) Current(ctx context.Context, r *http.Request) (*storage.Session, *storage.User, error) {
	token := Token(r)
	if token == "" || len(token) > 128 {
		return nil, nil, nil
	}
	s, err := m.store.SessionByToken(ctx, token)
	if storage.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load session: %w", err)
	}
	u, err := m.store.UserByID(ctx, s.UserID)
	if storage.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load user of session: %w", err)
	}
	if u.Blocked {
		return nil, nil, nil
	}
	now := m.store.Now()
	if now.Sub(s.LastSeenAt) >= m.policy.Touch {
		exp := m.expiry(s.CreatedAt, now)
		if err := m.store.TouchSession(ctx, s.ID, now, exp); err != nil {
			return nil, nil, err
		}
		s.LastSeenAt, s.ExpiresAt = now, exp
	}
	return s, u, nil
}

func (m *Manager) expiry(created, seen time.Time) time.Time {
	idle, abs := seen.Add(m.policy.Idle), created.Add(m.policy.Absolute)
	if idle.Before(abs) {
		return idle
	}
	return abs
}

// Proof is how a person proved who they are: the amr values (RFC 8176), the acr, and
// for a federated sign-in (amr "fed") the upstream connector.
type Proof struct {
	AMR []string
	ACR string
	IDP string
}

// Start records a sign-in. A live session of the same account is re-authenticated in
// place (its products stay signed in); a session of another account is ended first.
func (m *Manager) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, p Proof) (*storage.Session, error) {
	now := m.store.Now()
	amr, acr := p.AMR, p.ACR
	if cur, _, err := m.Current(ctx, r); err == nil && cur != nil {
		if cur.UserID == userID {
			if err := m.store.ReauthenticateSession(ctx, cur.ID, now, amr, acr, p.IDP); err != nil {
				return nil, err
			}
			cur.AuthTime, cur.AMR, cur.ACR, cur.IDP = now, amr, acr, p.IDP
			return cur, nil
		}
		if _, err := m.store.EndSession(ctx, cur.ID); err != nil && !storage.IsNotFound(err) {
			return nil, err
		}
	}
	token := storage.NewSecret()
	s := &storage.Session{
		UserID: userID, AuthTime: now, AMR: amr, ACR: acr, IDP: p.IDP,
		UserAgent: r.UserAgent(), IP: clientIP(r), // storage fits it to its column
		CreatedAt: now, LastSeenAt: now, ExpiresAt: m.expiry(now, now),
	}
	if err := m.store.CreateSession(ctx, s, token); err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: token, Path: "/", HttpOnly: true, Secure: m.secure,
		SameSite: http.SameSiteLaxMode, Expires: s.CreatedAt.Add(m.policy.Absolute),
	})
	return s, nil
}

// End ends the request's session, if any, and clears the cookie. It returns the ended
// session (nil if there was none).
func (m *Manager) End(ctx context.Context, w http.ResponseWriter, r *http.Request) (*storage.Session, error) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: m.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
	token := Token(r)
	if token == "" {
		return nil, nil
	}
	s, err := m.store.SessionByToken(ctx, token)
	if storage.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ended, err := m.store.EndSession(ctx, s.ID)
	if storage.IsNotFound(err) {
		return nil, nil
	}
	return ended, err
}

// clientIP is the peer address; the server's proxy middleware has already replaced
// RemoteAddr when a trusted proxy forwarded the request.
func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == ':' {
			return host[:i]
		}
	}
	return host
}
