package password

import (
	"context"
	"fmt"
	"time"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/storage"
)

// Users finds accounts.
type Users interface {
	UserByPhone(ctx context.Context, phone string) (*storage.User, error)
	UserByEmail(ctx context.Context, email string) (*storage.User, error)
}

// Limiter counts attempts in the database.
type Limiter interface {
	Hit(ctx context.Context, key string, window time.Duration) (int64, error)
	Count(ctx context.Context, key string, window time.Duration) (int64, error)
	ResetLimit(ctx context.Context, key string, window time.Duration) error
}

// Limits bound guessing.
type Limits struct {
	Window        time.Duration
	FailuresPerID int64 // wrong passwords for one phone/email in a window
	AttemptsPerIP int64 // sign-in attempts from one IP in a window
}

// DefaultLimits allow a person plenty of typos and an attacker very few guesses.
var DefaultLimits = Limits{Window: 15 * time.Minute, FailuresPerID: 10, AttemptsPerIP: 100}

// Problem is an outcome a person sees; its text is the Russian sentence of the page.
type Problem string

func (p Problem) Error() string { return string(p) }

// The outcomes of a failed sign-in.
const (
	ErrInvalidCredentials Problem = "Неверный номер телефона, email или пароль"
	ErrBlocked            Problem = "Учетная запись заблокирована. Обратитесь в службу поддержки"
	ErrTooManyAttempts    Problem = "Слишком много попыток входа. Попробуйте через 15 минут"
)

// Authenticator checks a contact and a password.
type Authenticator struct {
	users  Users
	limits Limiter
	hasher *Hasher
	policy Limits
}

// NewAuthenticator makes an authenticator.
func NewAuthenticator(users Users, limiter Limiter, hasher *Hasher, policy Limits) *Authenticator {
	return &Authenticator{users: users, limits: limiter, hasher: hasher, policy: policy}
}

// Authenticate returns the account whose contact and password match. Errors a person
// may see are ErrInvalidCredentials, ErrBlocked and ErrTooManyAttempts; anything else
// is an internal failure.
func (a *Authenticator) Authenticate(ctx context.Context, who contact.Contact, password, ip string) (*storage.User, error) {
	idKey := "pwd:id:" + who.Value
	ipKey := "pwd:ip:" + ip
	if n, err := a.limits.Hit(ctx, ipKey, a.policy.Window); err != nil {
		return nil, err
	} else if n > a.policy.AttemptsPerIP {
		return nil, ErrTooManyAttempts
	}
	if n, err := a.limits.Count(ctx, idKey, a.policy.Window); err != nil {
		return nil, err
	} else if n >= a.policy.FailuresPerID {
		return nil, ErrTooManyAttempts
	}
	if password == "" || len(password) > MaxLength {
		return nil, a.fail(ctx, idKey)
	}
	var u *storage.User
	var err error
	if who.Kind == contact.Email {
		u, err = a.users.UserByEmail(ctx, who.Value)
	} else {
		u, err = a.users.UserByPhone(ctx, who.Value)
	}
	if storage.IsNotFound(err) {
		_, _ = a.hasher.Verify(password, dummyHash)
		return nil, a.fail(ctx, idKey)
	}
	if err != nil {
		return nil, fmt.Errorf("find account: %w", err)
	}
	if u.PasswordHash == "" {
		_, _ = a.hasher.Verify(password, dummyHash)
		return nil, a.fail(ctx, idKey)
	}
	ok, err := a.hasher.Verify(password, u.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("verify password of user %q: %w", u.ID, err)
	}
	if !ok {
		return nil, a.fail(ctx, idKey)
	}
	if u.Blocked {
		return nil, ErrBlocked
	}
	if err := a.limits.ResetLimit(ctx, idKey, a.policy.Window); err != nil {
		return nil, err
	}
	return u, nil
}

func (a *Authenticator) fail(ctx context.Context, idKey string) error {
	if _, err := a.limits.Hit(ctx, idKey, a.policy.Window); err != nil {
		return err
	}
	return ErrInvalidCredentials
}
