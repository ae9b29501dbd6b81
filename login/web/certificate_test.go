package web

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// TestCertificatePages renders the certificate pages (login/certificate) and holds
// them to every page's rules: real labels, no inline script or style, CSRF on forms.
func TestCertificatePages(t *testing.T) {
	r := newRenderer(t)
	r.now = func() time.Time { return time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		name, page string
		data       any
		want       []string
	}{
		{"sign-in", "certificate", CertificateData{
			Layout: Layout{Title: "Вход в Астрал.Отчет", CSRFToken: csrf}, Heading: "Вход в Астрал.Отчет",
			Action: "/certificate", Challenge: "https://id.example.ru certificate sign-in abc 2031-05-01T00:00:00Z",
			ChallengeID: "c1", ChallengeB64: "aGk=", Mode: "signin", AuthRequestID: "r1", AgentURL: "http://127.0.0.1:24321",
			DescribeURL: "/certificate/describe", RefreshURL: "/certificate?authRequestID=r1", Error: "Срок действия сертификата истек.",
			UpstreamsTitle: "или авторизуйтесь через", Upstreams: []UpstreamLink{{Name: "Email / Тел", URL: "/login?authRequestID=r1"}},
		}, []string{"Вход в Астрал.Отчет", "Отсутствует соединение с Astral.Toolbox", "Обновить", "Выберите необходимый сертификат",
			"Текст для подписи", "Подпись", "Срок действия сертификата истек.", "или авторизуйтесь через", "Email / Тел"}},
		{"registration contact", "certificate-register", CertificateRegisterData{
			Layout: Layout{Title: "Регистрация", CSRFToken: csrf}, ContactFields: ContactFields{Mode: "phone", SwitchURL: "/certificate/register?flow=f&mode=email"},
			Owner: "Иванов Иван Иванович", Flow: "f", Action: "/certificate/register", BackURL: "/certificate?mode=register",
		}, []string{"Регистрация", "Иванов Иван Иванович", "Телефон", "По email", "Создать аккаунт", "Лицензионного соглашения"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.Render(&buf, tc.page, tc.data); err != nil {
				t.Fatal(err)
			}
			doc, err := html.Parse(strings.NewReader(buf.String()))
			if err != nil {
				t.Fatal(err)
			}
			checkCommon(t, buf.String(), doc)
			text := textOf(doc)
			for _, s := range tc.want {
				if !strings.Contains(text, s) {
					t.Errorf("text %q missing:\n%s", s, text)
				}
			}
		})
	}
}
