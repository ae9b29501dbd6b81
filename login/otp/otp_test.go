package otp

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/astral/idp/login/contact"
	"github.com/astral/idp/login/notify"
	"github.com/astral/idp/storage"
)

type captured struct {
	mu   sync.Mutex
	msgs []notify.Message
	fail error
}

func (c *captured) Send(_ context.Context, m notify.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.msgs = append(c.msgs, m)
	return nil
}

func (c *captured) last(t *testing.T) notify.Message {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) == 0 {
		t.Fatal("nothing was sent")
	}
	return c.msgs[len(c.msgs)-1]
}

type clock struct{ t time.Time }

func setup(t *testing.T) (*Service, *captured, *storage.Store, *clock) {
	t.Helper()
	s, err := storage.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "otp.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c := &clock{t: time.Date(2026, 11, 22, 12, 0, 30, 0, time.UTC)}
	s.SetClock(func() time.Time { return c.t })
	sent := &captured{}
	return New(s, sent, []byte("0123456789abcdef0123456789abcdef"), DefaultPolicy), sent, s, c
}

var phone = contact.Contact{Kind: contact.Phone, Value: "+79105940899"}

func TestStartSendsNamedCode(t *testing.T) {
	svc, sent, _, _ := setup(t)
	ctx := context.Background()
	tests := []struct {
		purpose string
		to      contact.Contact
		want    string
		channel notify.Channel
	}{
		{SignIn, phone, "Код для входа в Астрал.Отчет: ", notify.SMS},
		{Register, contact.Contact{Kind: contact.Email, Value: "a@astral.ru"}, "Код для регистрации в Астрал.Отчет: ", notify.Email},
		{Reset, contact.Contact{Kind: contact.Email, Value: "b@astral.ru"}, "Код для восстановления пароля в Астрал.Отчет: ", notify.Email},
	}
	for _, tt := range tests {
		t.Run(tt.purpose, func(t *testing.T) {
			flow, err := svc.Start(ctx, Request{Purpose: tt.purpose, To: tt.to, ClientName: "Астрал.Отчет", IP: "10.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			m := sent.last(t)
			if m.Channel != tt.channel || m.To != tt.to.Value || len(m.Code) != 6 ||
				!regexp.MustCompile(regexp.QuoteMeta(tt.want)+m.Code).MatchString(m.Text) {
				t.Fatalf("message %+v", m)
			}
			if tt.channel == notify.Email && m.Subject == "" {
				t.Fatal("email without subject")
			}
			if flow.CodeHash == "" || flow.CodeHash == m.Code {
				t.Fatal("code stored in the clear")
			}
		})
	}
}

func TestVerify(t *testing.T) {
	svc, sent, _, c := setup(t)
	ctx := context.Background()
	flow, err := svc.Start(ctx, Request{Purpose: SignIn, To: phone, IP: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	code := sent.last(t).Code
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	var wc *WrongCode
	if _, err := svc.Verify(ctx, flow.ID, wrong); !errors.As(err, &wc) || wc.Left != 4 {
		t.Fatalf("wrong code: %v", err)
	}
	if _, err := svc.Verify(ctx, flow.ID, ""); err != ErrEmptyCode {
		t.Fatalf("empty code: %v", err)
	}
	got, err := svc.Verify(ctx, flow.ID, code[:3]+" "+code[3:])
	if err != nil || got.ID != flow.ID {
		t.Fatalf("right code with a space: %v", err)
	}
	if _, err := svc.Verify(ctx, flow.ID, code); err != ErrExpired {
		t.Fatalf("a used code again: %v", err)
	}
	// Expiry after ten minutes.
	c.t = c.t.Add(2 * time.Minute)
	flow2, err := svc.Start(ctx, Request{Purpose: SignIn, To: phone, IP: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(11 * time.Minute)
	if _, err := svc.Verify(ctx, flow2.ID, sent.last(t).Code); err != ErrExpired {
		t.Fatalf("expired code: %v", err)
	}
}

func TestFiveWrongTriesKillTheCode(t *testing.T) {
	svc, sent, _, _ := setup(t)
	ctx := context.Background()
	flow, err := svc.Start(ctx, Request{Purpose: SignIn, To: phone})
	if err != nil {
		t.Fatal(err)
	}
	code := sent.last(t).Code
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := 1; i <= 4; i++ {
		var wc *WrongCode
		if _, err := svc.Verify(ctx, flow.ID, wrong); !errors.As(err, &wc) || wc.Left != 5-i {
			t.Fatalf("try %d: %v", i, err)
		}
	}
	if _, err := svc.Verify(ctx, flow.ID, wrong); err != ErrDead {
		t.Fatalf("fifth wrong try: %v", err)
	}
	if _, err := svc.Verify(ctx, flow.ID, code); err != ErrDead {
		t.Fatalf("right code after five wrong: %v", err)
	}
}

func TestParallelGuessesAreBounded(t *testing.T) {
	svc, sent, _, _ := setup(t)
	ctx := context.Background()
	flow, err := svc.Start(ctx, Request{Purpose: SignIn, To: phone})
	if err != nil {
		t.Fatal(err)
	}
	code := sent.last(t).Code
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrongAnswers := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			guess := "00000" + string(rune('0'+i%10))
			if guess == code {
				return
			}
			_, err := svc.Verify(ctx, flow.ID, guess)
			var wc *WrongCode
			if errors.As(err, &wc) {
				mu.Lock()
				wrongAnswers++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if wrongAnswers > 4 {
		t.Fatalf("%d guesses were answered 'wrong, try again'; at most 4 may be", wrongAnswers)
	}
}

func TestThrottles(t *testing.T) {
	svc, sent, _, c := setup(t)
	ctx := context.Background()
	flow, err := svc.Start(ctx, Request{Purpose: SignIn, To: phone, IP: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var soon *TooSoon
	if _, err := svc.Resend(ctx, flow.ID, "", "10.0.0.1", false); !errors.As(err, &soon) || soon.Wait <= 0 || soon.Wait > time.Minute {
		t.Fatalf("resend at once: %v", err)
	}
	c.t = c.t.Add(61 * time.Second)
	before := len(sent.msgs)
	if _, err := svc.Resend(ctx, flow.ID, "", "10.0.0.1", false); err != nil {
		t.Fatalf("resend after a minute: %v", err)
	}
	if len(sent.msgs) != before+1 {
		t.Fatal("resend sent nothing")
	}
	// Five codes an hour per phone: three more pass, the sixth is refused.
	for i := 0; i < 3; i++ {
		c.t = c.t.Add(61 * time.Second)
		if _, err := svc.Start(ctx, Request{Purpose: SignIn, To: phone, IP: "10.0.0.1"}); err != nil {
			t.Fatalf("code %d: %v", i+3, err)
		}
	}
	c.t = c.t.Add(61 * time.Second)
	if _, err := svc.Start(ctx, Request{Purpose: SignIn, To: phone, IP: "10.0.0.1"}); err != ErrTooMany {
		t.Fatalf("sixth code in an hour: %v", err)
	}
}

func TestSilentAndFailedDelivery(t *testing.T) {
	svc, sent, store, _ := setup(t)
	ctx := context.Background()
	if _, err := svc.Start(ctx, Request{Purpose: Reset, To: phone, Silent: true}); err != nil {
		t.Fatal(err)
	}
	if len(sent.msgs) != 0 {
		t.Fatal("a silent flow sent a message")
	}
	sent.fail = errors.New("gateway down")
	other := contact.Contact{Kind: contact.Phone, Value: "+79035550000"}
	if _, err := svc.Start(ctx, Request{Purpose: SignIn, To: other}); !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("failed delivery: %v", err)
	}
	_ = store
}

func TestMaskedDestination(t *testing.T) {
	tests := []struct{ channel, dest, want string }{
		{"phone", "+79105940899", "+7 (910) ***-**-99"},
		{"email", "mashin@astral.ru", "ma***@astral.ru"},
		{"email", "ab@astral.ru", "a***@astral.ru"},
	}
	for _, tt := range tests {
		if got := MaskedDestination(tt.channel, tt.dest); got != tt.want {
			t.Errorf("MaskedDestination(%q) = %q, want %q", tt.dest, got, tt.want)
		}
	}
}
