package otp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/notify"
	"github.com/astral/idp/storage"
)

// Purposes of a code.
const (
	Register = "register"
	SignIn   = "signin"
	Reset    = "reset"
	// ContactChange confirms a new phone or email of a signed-in account (the cabinet).
	ContactChange = "contact-change"
	// Reauth proves again who a signed-in person is before a sensitive change.
	Reauth = "reauth"
	// RegisterCertificate confirms the contact of an account registered with an
	// e-signature certificate (login/certificate): its own purpose, so that its flow
	// never passes for a password registration's.
	RegisterCertificate = "register-certificate"
)

// Store is what codes need from storage.
type Store interface {
	CreateCode(ctx context.Context, c *storage.OneTimeCode) error
	CodeByID(ctx context.Context, id string) (*storage.OneTimeCode, error)
	ReplaceCode(ctx context.Context, id, codeHash string, expiresAt time.Time) error
	VerifyCode(ctx context.Context, id, codeHash string, maxAttempts int) (*storage.OneTimeCode, int, error)
	Throttle(ctx context.Context, key string, interval time.Duration) (bool, time.Duration, error)
	Hit(ctx context.Context, key string, window time.Duration) (int64, error)
	Now() time.Time
}

// Sender delivers a message (login/notify).
type Sender interface {
	Send(ctx context.Context, m notify.Message) error
}

// Policy bounds codes.
type Policy struct {
	TTL            time.Duration // a code is valid this long
	MaxAttempts    int           // wrong tries before a code dies
	ResendAfter    time.Duration // the soonest a new code goes to the same phone/email
	PerDestination int64         // codes to one phone/email per hour
	PerIP          int64         // codes requested from one IP per hour
}

// DefaultPolicy is DESIGN.md's: 10 minutes, 5 tries, 60 s, 5 an hour.
var DefaultPolicy = Policy{TTL: 10 * time.Minute, MaxAttempts: 5, ResendAfter: time.Minute, PerDestination: 5, PerIP: 30}

// Problem is an outcome a person sees; its text is the sentence on the page.
type Problem string

func (p Problem) Error() string { return string(p) }

// The problems of a code flow. Wrong codes are a *WrongCode.
const (
	ErrTooSoon      Problem = "Новый код можно запросить через минуту после предыдущего"
	ErrTooMany      Problem = "Слишком много кодов за час. Попробуйте позже"
	ErrExpired      Problem = "Срок действия кода истек. Запросите новый код"
	ErrDead         Problem = "Код больше не действует: слишком много неверных попыток. Запросите новый код"
	ErrEmptyCode    Problem = "Введите код подтверждения"
	ErrNotDelivered Problem = "Не удалось отправить код. Попробуйте еще раз через минуту"
)

// WrongCode is a mistyped code with tries left.
type WrongCode struct{ Left int }

func (w *WrongCode) Error() string {
	return fmt.Sprintf("Неверный код. Осталось попыток: %d", w.Left)
}

// TooSoon says how long until a resend is allowed.
type TooSoon struct{ Wait time.Duration }

func (t *TooSoon) Error() string {
	s := int(t.Wait.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprintf("Новый код можно запросить через %d с", s)
}

// Service issues and checks codes.
type Service struct {
	store  Store
	sender Sender
	key    []byte
	policy Policy
}

// New makes the service; key keys the code hashes (a six-digit code is trivial to
// brute-force from a plain hash).
func New(store Store, sender Sender, key []byte, policy Policy) *Service {
	return &Service{store: store, sender: sender, key: key, policy: policy}
}

// Policy returns the limits in force.
func (s *Service) Policy() Policy { return s.policy }

func (s *Service) hash(flowID, code string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(flowID))
	mac.Write([]byte{0})
	mac.Write([]byte(code))
	return hex.EncodeToString(mac.Sum(nil))
}

func newCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
	return fmt.Sprintf("%06d", n.Int64())
}

// Request starts a flow.
type Request struct {
	Purpose       string
	To            contact.Contact
	ClientName    string // for the message: "Код для входа в Астрал.Отчет"
	ClientID      string
	AuthRequestID string
	UserID        string // the account, for sign-in and reset
	Payload       string
	IP            string
	// Silent creates the flow without sending anything: for a sign-in or reset to a
	// contact with no account, so the page looks the same either way.
	Silent bool
}

// Start throttles, stores and sends a code, and returns the flow.
func (s *Service) Start(ctx context.Context, r Request) (*storage.OneTimeCode, error) {
	if err := s.throttle(ctx, r.Purpose, r.To.Value, r.IP); err != nil {
		return nil, err
	}
	now := s.store.Now()
	flow := &storage.OneTimeCode{
		ID: storage.NewID(), Purpose: r.Purpose, Channel: string(r.To.Kind), Destination: r.To.Value,
		ClientID: r.ClientID, AuthRequestID: r.AuthRequestID, UserID: r.UserID, Payload: r.Payload,
		CreatedAt: now, ExpiresAt: now.Add(s.policy.TTL),
	}
	code := newCode()
	if r.Silent {
		code = newCode() + "x" // a code nobody can type
	}
	flow.CodeHash = s.hash(flow.ID, code)
	if err := s.store.CreateCode(ctx, flow); err != nil {
		return nil, err
	}
	if !r.Silent {
		if err := s.send(ctx, flow, code, r.ClientName); err != nil {
			return nil, err
		}
	}
	return flow, nil
}

// Resend puts a new code into a live flow and sends it. silent flows stay silent.
func (s *Service) Resend(ctx context.Context, flowID, clientName, ip string, silent bool) (*storage.OneTimeCode, error) {
	flow, err := s.store.CodeByID(ctx, flowID)
	if err != nil {
		if storage.IsNotFound(err) {
			return nil, ErrExpired
		}
		return nil, err
	}
	if err := s.throttle(ctx, flow.Purpose, flow.Destination, ip); err != nil {
		return nil, err
	}
	code := newCode()
	if silent {
		code += "x"
	}
	exp := s.store.Now().Add(s.policy.TTL)
	if err := s.store.ReplaceCode(ctx, flow.ID, s.hash(flow.ID, code), exp); err != nil {
		return nil, err
	}
	flow.ExpiresAt, flow.Attempts = exp, 0
	if !silent {
		if err := s.send(ctx, flow, code, clientName); err != nil {
			return nil, err
		}
	}
	return flow, nil
}

func (s *Service) throttle(ctx context.Context, purpose, dest, ip string) error {
	ok, wait, err := s.store.Throttle(ctx, "otp:"+purpose+":"+dest, s.policy.ResendAfter)
	if err != nil {
		return err
	}
	if !ok {
		return &TooSoon{Wait: wait}
	}
	if n, err := s.store.Hit(ctx, "otp:dest:"+dest, time.Hour); err != nil {
		return err
	} else if n > s.policy.PerDestination {
		return ErrTooMany
	}
	if ip != "" {
		if n, err := s.store.Hit(ctx, "otp:ip:"+ip, time.Hour); err != nil {
			return err
		} else if n > s.policy.PerIP {
			return ErrTooMany
		}
	}
	return nil
}

// messageText names the product, as the seeds' messages do.
func messageText(purpose, clientName, code string) (subject, text string) {
	// "вход в Личный кабинет", but "регистрация в Личном кабинете": a product's name
	// stays as it is.
	where, in := "Личный кабинет Астрал", "Личном кабинете Астрал"
	if clientName != "" {
		where, in = clientName, clientName
	}
	switch purpose {
	case Register, RegisterCertificate:
		subject = "Код подтверждения регистрации"
		text = fmt.Sprintf("Код для регистрации в %s: %s", in, code)
	case Reset:
		subject = "Код для восстановления пароля"
		text = fmt.Sprintf("Код для восстановления пароля в %s: %s", in, code)
	case ContactChange:
		subject = "Код подтверждения"
		text = fmt.Sprintf("Код для подтверждения в %s: %s", in, code)
	default:
		subject = "Код для входа"
		text = fmt.Sprintf("Код для входа в %s: %s", where, code)
	}
	return subject, text + ". Никому не сообщайте этот код."
}

func (s *Service) send(ctx context.Context, flow *storage.OneTimeCode, code, clientName string) error {
	subject, text := messageText(flow.Purpose, clientName, code)
	m := notify.Message{Channel: notify.SMS, To: flow.Destination, Text: text, Code: code}
	if flow.Channel == string(contact.Email) {
		m.Channel, m.Subject = notify.Email, subject
	}
	if err := s.sender.Send(ctx, m); err != nil {
		return fmt.Errorf("%w: %v", ErrNotDelivered, err)
	}
	return nil
}

// Flow loads a live flow.
func (s *Service) Flow(ctx context.Context, flowID string) (*storage.OneTimeCode, error) {
	if flowID == "" || len(flowID) > 64 {
		return nil, ErrExpired
	}
	flow, err := s.store.CodeByID(ctx, flowID)
	if storage.IsNotFound(err) {
		return nil, ErrExpired
	}
	return flow, err
}

// Verify checks a typed code; on success the flow is consumed and returned.
func (s *Service) Verify(ctx context.Context, flowID, code string) (*storage.OneTimeCode, error) {
	code = normalizeCode(code)
	if code == "" {
		return nil, ErrEmptyCode
	}
	if len(code) != 6 {
		// Counted like any wrong code, so that malformed input is no free probe.
		code = "malformed"
	}
	flow, left, err := s.store.VerifyCode(ctx, flowID, s.hash(flowID, code), s.policy.MaxAttempts)
	switch {
	case err == nil:
		return flow, nil
	case errors.Is(err, storage.ErrWrongCode):
		return nil, &WrongCode{Left: left}
	case errors.Is(err, storage.ErrCodeDead):
		return nil, ErrDead
	case storage.IsNotFound(err):
		return nil, ErrExpired
	}
	return nil, err
}

// normalizeCode keeps the digits of what was typed ("123 456", "123-456").
func normalizeCode(s string) string {
	if len(s) > 32 {
		return "malformed"
	}
	out := make([]byte, 0, 6)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			out = append(out, c)
		case c == ' ' || c == '-':
		default:
			return "malformed"
		}
	}
	return string(out)
}

// MaskedDestination is how the confirmation page names where the code went:
// "+7 (910) ***-**-99" or "ma***@astral.ru".
func MaskedDestination(channel, dest string) string {
	if channel == string(contact.Email) {
		at := -1
		for i := len(dest) - 1; i >= 0; i-- {
			if dest[i] == '@' {
				at = i
				break
			}
		}
		if at < 1 {
			return dest
		}
		keep := 2
		if at <= 2 {
			keep = 1
		}
		return dest[:keep] + "***" + dest[at:]
	}
	if len(dest) == 12 && dest[:2] == "+7" {
		return "+7 (" + dest[2:5] + ") ***-**-" + dest[10:12]
	}
	if len(dest) > 4 {
		return dest[:len(dest)-4] + "**" + dest[len(dest)-2:]
	}
	return dest
}
