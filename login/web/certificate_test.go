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
	signIn := func(via, errText string) CertificateData {
		return CertificateData{
			Layout: Layout{Title: "Вход в Астрал.Отчет", CSRFToken: csrf}, Heading: "Вход в Астрал.Отчет",
			Action: "/certificate", Challenge: "https://id.example.ru certificate sign-in abc 2031-05-01T00:00:00Z",
			ChallengeID: "c1", ChallengeB64: "aGk=", Mode: "signin", AuthRequestID: "r1", AgentURL: "http://127.0.0.1:24321",
			DescribeURL: "/certificate/describe", RefreshURL: "/certificate?authRequestID=r1", Error: errText, Via: via,
			UpstreamsTitle: "или авторизуйтесь через", Upstreams: []UpstreamLink{{Name: "Email / Тел", URL: "/login?authRequestID=r1"}},
		}
	}
	// Where a refusal goes: over the agent's list when a listed certificate signed
	// (the manual form folded), else next to the signature field, which it describes
	// (the form open, the person sees what they pasted was refused).
	refusedAt := func(agent bool) func(t *testing.T, doc *html.Node) {
		return func(t *testing.T, doc *html.Node) {
			overList, nextToField := byID(doc, "cert-error"), byID(doc, "signature-error")
			manual, field := byID(doc, "cert-manual"), byID(doc, "signature")
			if agent {
				if overList == nil || !contains(byID(doc, "cert-agent"), overList) || nextToField != nil {
					t.Error("a refusal from the agent's list is not shown over the list (alone)")
				}
				if manual == nil || hasAttr(manual, "open") {
					t.Error("after a refusal from the agent's list the manual form is open")
				}
				return
			}
			if nextToField == nil || overList != nil || closest(nextToField, "div") != closest(field, "div") {
				t.Error("a refusal of a pasted signature is not next to the signature field (alone)")
			}
			wantAttrs(t, field, map[string]string{"aria-invalid": "true", "aria-describedby": "signature-error"})
			if manual == nil || !hasAttr(manual, "open") {
				t.Error("after a refused pasted signature the manual form is folded")
			}
		}
	}
	cases := []struct {
		name, page string
		data       any
		want       []string
		check      func(t *testing.T, doc *html.Node)
	}{
		{"sign-in", "certificate", signIn("", ""), []string{"Вход в Астрал.Отчет", "Отсутствует соединение с Astral.Toolbox",
			"Для входа с помощью электронной подписи необходимо установить и включить Astral.Toolbox.", "Обновить",
			"Выберите необходимый сертификат", "Обновить список", "Подписать без Astral.Toolbox",
			"Текст для подписи", "Пример команды OpenSSL", "Подпись", "Проверить подпись", "или авторизуйтесь через", "Email / Тел"},
			func(t *testing.T, doc *html.Node) {
				if byID(doc, "cert-error") != nil || byID(doc, "signature-error") != nil {
					t.Error("a refusal shown with no error")
				}
				if !hasAttr(byID(doc, "cert-agent"), "hidden") || !hasAttr(byID(doc, "cert-manual"), "open") {
					t.Error("without the script the page must show the manual form and hide the agent's part")
				}
			}},
		{"refused from the list", "certificate", signIn("agent", "Срок действия сертификата истек."),
			[]string{"Срок действия сертификата истек."}, refusedAt(true)},
		{"refused pasted", "certificate", signIn("", "Подпись сделана для других данных."),
			[]string{"Подпись сделана для других данных.", "Текст обновлен: подпишите этот новый текст."}, refusedAt(false)},
		{"registration contact", "certificate-register", CertificateRegisterData{
			Layout: Layout{Title: "Регистрация", CSRFToken: csrf}, ContactFields: ContactFields{Mode: "phone", SwitchURL: "/certificate/register?flow=f&mode=email"},
			Owner: "Иванов Иван Иванович", Flow: "f", Action: "/certificate/register", BackURL: "/certificate?mode=register",
			Certificate: CertificateInfo{Owner: "Иванов Иван Иванович", Organization: "ООО «Ромашка»", OrganizationINN: "7701234567",
				IDs: []string{"СНИЛС 112-233-445 95"}, Issuer: "Тестовый УЦ", NotAfter: "31.12.2049"},
		}, []string{"← Выбрать другой сертификат", "Регистрация", "Иванов Иван Иванович ООО «Ромашка» · ИНН\u00a07701234567 СНИЛС 112-233-445 95 " +
			"Издатель: Тестовый УЦ · действителен до 31.12.2049", "Телефон", "По email", "Создать аккаунт", "Лицензионного соглашения"}, nil},
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
			if tc.check != nil {
				tc.check(t, doc)
			}
		})
	}
}

func hasAttr(n *html.Node, key string) bool {
	if n == nil {
		return false
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}
