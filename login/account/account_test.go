package account

import (
	"testing"
	"time"

	"github.com/astral/idp/storage"
)

func TestParseDevice(t *testing.T) {
	tests := []struct {
		ua     string
		want   device
		reason string
	}{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 YaBrowser/24.12.0.0 Safari/537.36",
			device{Browser: "Яндекс Браузер 24", OS: "Windows 10"}, "Yandex Browser by its Russian name"},
		{"Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
			device{Browser: "Chrome 109", OS: "Windows 7"}, "Windows NT 6.1 is Windows 7"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
			device{Browser: "Safari 17", OS: "iOS 17.5 (iPhone)", Mobile: true}, "an iPhone"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
			device{Browser: "Safari 17", OS: "macOS"}, "the frozen macOS version is not shown"},
		{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
			device{Browser: "Chrome 131", OS: "Android 14", Mobile: true}, "Android"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
			device{Browser: "Microsoft Edge 131", OS: "Windows 10"}, "Edge"},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
			device{Browser: "Firefox 133", OS: "Linux"}, "Firefox on Linux"},
		{"", device{Browser: "Неизвестный браузер"}, "no header"},
	}
	for _, tt := range tests {
		if got := parseDevice(tt.ua); got != tt.want {
			t.Errorf("%s: parseDevice = %+v, want %+v", tt.reason, got, tt.want)
		}
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want, problem string
	}{
		{"  Иванов  ", "Иванов", ""},
		{"Салтыков-Щедрин", "Салтыков-Щедрин", ""},
		{"д’Артаньян", "д’Артаньян", ""},
		{"Анна  Мария", "Анна Мария", ""},
		{"O'Neil", "O'Neil", ""},
		{"", "", ""},
		{"Иван2", "Иван2", msgNameLetters},
		{"<script>", "<script>", msgNameLetters},
		{"\xff", "\xff", msgNameLetters},
		{stringOf('я', 101), stringOf('я', 101), msgNameTooLong},
	}
	for _, tt := range tests {
		got, problem := cleanName(tt.in)
		if got != tt.want || problem != tt.problem {
			t.Errorf("cleanName(%q) = %q, %q; want %q, %q", tt.in, got, problem, tt.want, tt.problem)
		}
	}
}

func stringOf(r rune, n int) string {
	out := make([]rune, n)
	for i := range out {
		out[i] = r
	}
	return string(out)
}

func TestFormatTime(t *testing.T) {
	p := New(Config{})
	at := time.Date(2026, time.November, 22, 11, 5, 59, 0, time.UTC)
	if got := p.formatTime(at); got != "22.11.2026 14:05" {
		t.Errorf("formatTime = %q, want Moscow time 22.11.2026 14:05", got)
	}
	if got := p.formatDate(at.Add(13 * time.Hour)); got != "23.11.2026" {
		t.Errorf("formatDate of 00:05 in Moscow = %q, want the Moscow day", got)
	}
	if got := p.formatTime(time.Time{}); got != "—" {
		t.Errorf("formatTime of no time = %q", got)
	}
}

func TestEventItem(t *testing.T) {
	p := New(Config{Links: []LinkOption{{ID: "telegram", Title: "Telegram"}}})
	names := map[string]string{"report": "Астрал.Отчет"}
	tests := []struct {
		e                             storage.AuditEvent
		what, method, product, result string
		failed                        bool
	}{
		{storage.AuditEvent{Kind: "signin", Method: "pwd", Detail: "ok"}, "Вход", "Пароль", "Личный кабинет", "Успешно", false},
		{storage.AuditEvent{Kind: "signin", Method: "otp", Detail: "email", ClientID: "report"}, "Вход", "Код из письма", "Астрал.Отчет", "Успешно", false},
		{storage.AuditEvent{Kind: "signin", Method: "fed", Detail: "telegram"}, "Вход", "Telegram", "Личный кабинет", "Успешно", false},
		{storage.AuditEvent{Kind: "signin_failed", Method: "pwd", Detail: "invalid +7***99"}, "Неудачная попытка входа", "Пароль", "Личный кабинет", "Неверный пароль", true},
		{storage.AuditEvent{Kind: "signin_failed", Method: "pwd", Detail: "rate_limited +7***99"}, "Неудачная попытка входа", "Пароль", "Личный кабинет", "Слишком много попыток", true},
		{storage.AuditEvent{Kind: "password_changed", Method: "pwd"}, "Смена пароля", "Пароль", "", "Успешно", false},
		{storage.AuditEvent{Kind: "access_revoked", ClientID: "gone"}, "Отзыв доступа сервиса", "", "gone", "Успешно", false},
		{storage.AuditEvent{Kind: "something_new"}, "something_new", "", "", "Успешно", false},
	}
	for _, tt := range tests {
		got := p.eventItem(tt.e, names)
		if got.What != tt.what || got.Method != tt.method || got.Product != tt.product || got.Result != tt.result || got.Failed != tt.failed {
			t.Errorf("%+v: %+v", tt.e, got)
		}
	}
}

func TestDisplayName(t *testing.T) {
	phone, email := "+79105940899", "ivan@example.ru"
	tests := []struct {
		u         storage.User
		name, sub string
	}{
		{storage.User{FamilyName: "Иванов", GivenName: "Иван", MiddleName: "Петрович", Phone: &phone}, "Иванов Иван Петрович", "+7 (910) 594-08-99"},
		{storage.User{GivenName: "Иван", Email: &email}, "Иван", "ivan@example.ru"},
		{storage.User{Email: &email}, "ivan@example.ru", ""},
		{storage.User{}, "Ваш аккаунт", ""},
	}
	for _, tt := range tests {
		if name, sub := displayName(&tt.u); name != tt.name || sub != tt.sub {
			t.Errorf("displayName = %q, %q; want %q, %q", name, sub, tt.name, tt.sub)
		}
	}
}
