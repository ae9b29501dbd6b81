package backchannel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/astral/idp/storage"
)

// Store is what the worker needs from storage.
type Store interface {
	ClaimLogoutDeliveries(ctx context.Context, limit int, lease time.Duration) ([]storage.LogoutDelivery, error)
	FinishLogoutDelivery(ctx context.Context, id string, delivered bool, lastError string, next time.Time) error
	Now() time.Time
}

// Signer signs a logout token.
type Signer interface {
	SignJWT(ctx context.Context, claims any, typ string) (string, error)
}

// Metrics counts delivery outcomes.
type Metrics interface {
	LogoutDelivery(result string)
}

// MaxAttempts bounds the retries of one delivery.
const MaxAttempts = 8

// Worker delivers queued logout notifications.
type Worker struct {
	store   Store
	signer  Signer
	issuer  string
	client  *http.Client
	metrics Metrics
	kick    chan struct{}
	// Poll is how often the queue is checked without a kick.
	Poll time.Duration
}

// NewWorker makes a worker; client should have a short timeout.
func NewWorker(store Store, signer Signer, issuer string, client *http.Client, metrics Metrics) *Worker {
	return &Worker{store: store, signer: signer, issuer: issuer, client: client, metrics: metrics,
		kick: make(chan struct{}, 1), Poll: 5 * time.Second}
}

// Kick asks the worker to look at the queue now; it never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	for {
		w.DeliverDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
	}
}

// DeliverDue makes one pass over the due deliveries.
func (w *Worker) DeliverDue(ctx context.Context) {
	for {
		batch, err := w.store.ClaimLogoutDeliveries(ctx, 16, time.Minute)
		if err != nil {
			if ctx.Err() == nil {
				slog.ErrorContext(ctx, "claim back-channel logouts", "err", err)
			}
			return
		}
		if len(batch) == 0 {
			return
		}
		var wg sync.WaitGroup
		for _, d := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.deliver(ctx, d)
			}()
		}
		wg.Wait()
	}
}

// backoff is the delay after a failed attempt n (1-based): 10 s, 30 s, 1.5 min, … capped at 1 h.
func backoff(n int) time.Duration {
	d := 10 * time.Second
	for i := 1; i < n; i++ {
		d *= 3
		if d > time.Hour {
			return time.Hour
		}
	}
	return d
}

func (w *Worker) deliver(ctx context.Context, d storage.LogoutDelivery) {
	err := w.post(ctx, d)
	if err == nil {
		w.finish(ctx, d, true, "", time.Time{})
		w.metrics.LogoutDelivery("delivered")
		slog.InfoContext(ctx, "back-channel logout delivered", "client_id", d.ClientID, "sid", d.SessionID, "attempt", d.Attempts)
		return
	}
	var next time.Time
	result := "gave_up"
	if d.Attempts < MaxAttempts {
		next = w.store.Now().Add(backoff(d.Attempts))
		result = "retry"
	}
	w.finish(ctx, d, false, err.Error(), next)
	w.metrics.LogoutDelivery(result)
	slog.WarnContext(ctx, "back-channel logout failed", "client_id", d.ClientID, "sid", d.SessionID,
		"attempt", d.Attempts, "result", result, "err", err)
}

func (w *Worker) finish(ctx context.Context, d storage.LogoutDelivery, ok bool, msg string, next time.Time) {
	if err := w.store.FinishLogoutDelivery(ctx, d.ID, ok, msg, next); err != nil {
		slog.ErrorContext(ctx, "record back-channel logout", "id", d.ID, "err", err)
	}
}

// logoutClaims are the claims of a logout token (Back-Channel Logout 1.0 §2.4).
type logoutClaims struct {
	Issuer   string         `json:"iss"`
	Subject  string         `json:"sub,omitempty"`
	Audience string         `json:"aud"`
	IssuedAt int64          `json:"iat"`
	Expires  int64          `json:"exp"`
	ID       string         `json:"jti"`
	Events   map[string]any `json:"events"`
	SID      string         `json:"sid,omitempty"`
}

// EventBackchannelLogout is the event member every logout token carries.
const EventBackchannelLogout = "http://schemas.openid.net/event/backchannel-logout"

func (w *Worker) post(ctx context.Context, d storage.LogoutDelivery) error {
	now := w.store.Now()
	token, err := w.signer.SignJWT(ctx, logoutClaims{
		Issuer: w.issuer, Subject: d.UserID, Audience: d.ClientID, IssuedAt: now.Unix(),
		Expires: now.Add(2 * time.Minute).Unix(), ID: storage.NewID(),
		Events: map[string]any{EventBackchannelLogout: map[string]any{}}, SID: d.SessionID,
	}, "logout+jwt")
	if err != nil {
		return fmt.Errorf("sign logout token: %w", err)
	}
	form := url.Values{"logout_token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URI, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", d.URI, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	// §2.8: 200 OK on success; 204 is accepted as well since many frameworks send it.
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("post to %s: status %d", d.URI, resp.StatusCode)
	}
	return nil
}
