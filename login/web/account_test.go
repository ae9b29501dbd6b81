package web

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

func cabinet(title string) Cabinet {
	return Cabinet{
		Layout: Layout{Title: title + " — Личный кабинет", CSRFToken: csrf},
		Nav: []NavItem{
			{Icon: "user", Text: "Профиль", URL: "/account", Current: title == "Профиль"},
			{Icon: "lock", Text: "Пароль", URL: "/account/password", Current: title == "Пароль"},
			{Icon: "login", Text: "Способы входа", URL: "/account/methods", Current: title == "Способы входа"},
		},
		Heading: title, UserName: "Иванов Иван", UserContact: "+7 (910) 594-08-99", LogoutAction: "/logout",
	}
}

func accountPageCases() []pageCase {
	profile := AccountData{
		Cabinet:       cabinet("Профиль"),
		ProfileAction: "/account/profile",
		Names: []NameField{
			{ID: "family_name", Label: "Фамилия", Autocomplete: "family-name", Value: "Иванов"},
			{ID: "given_name", Label: "Имя", Autocomplete: "given-name", Value: "Иван2", Error: "Используйте буквы, пробел, дефис или апостроф"},
			{ID: "middle_name", Label: "Отчество", Autocomplete: "additional-name"},
		},
		Contacts: []ContactItem{
			{Mode: "phone", Label: "Телефон", Value: "+7 (910) 594-08-99", Verified: true, Action: "/account/contact"},
			{Mode: "email", Label: "Email", Action: "/account/contact", Input: "taken@example.ru", Open: true,
				Error: "Этот email уже используется в другом аккаунте. Укажите другой адрес"},
		},
	}
	profile.Notice = "Данные сохранены"
	xss := profile
	xss.UserName = `<script>alert(1)</script>`
	xss.Contacts = []ContactItem{{Mode: "email", Label: "Email", Value: `"><img src=x onerror=alert(2)>`, Action: "/account/contact"}}
	return []pageCase{
		{
			name: "profile",
			page: "account",
			data: profile,
			want: []string{"Личный кабинет", "Иванов Иван", "+7 (910) 594-08-99", "Выйти", "Профиль", "Личные данные",
				"Фамилия", "Имя", "Отчество", "Сохранить", "Данные сохранены", "Телефон и email", "Подтвержден", "Не указан",
				"Добавить email", "Новый email", "Этот email уже используется в другом аккаунте. Укажите другой адрес", "Получить код"},
			raw: []string{`<title>Профиль — Личный кабинет</title>`, `aria-current="page"`, `<details class="row-more" open>`,
				`id="new-phone" name="login" type="tel"`, `data-mask="ru-phone"`, `role="status"`},
			check: func(t *testing.T, doc *html.Node) {
				wantAttrs(t, byID(doc, "given_name"), map[string]string{"value": "Иван2", "aria-invalid": "true", "aria-describedby": "given_name-error"})
				wantAttrs(t, byID(doc, "new-email"), map[string]string{"value": "taken@example.ru", "aria-invalid": "true"})
				if got := textOf(byID(doc, "new-email-error")); got != "Этот email уже используется в другом аккаунте. Укажите другой адрес" {
					t.Errorf("the email's error %q", got)
				}
				if byID(doc, "new-phone-error") != nil {
					t.Error("the phone has an error it was not given")
				}
			},
		},
		{
			name:   "profile escapes",
			page:   "account",
			data:   xss,
			want:   []string{`<script>alert(1)</script>`},
			notRaw: []string{"<script>alert", "<img src=x"},
		},
		{
			name: "password, change",
			page: "account-password",
			data: PasswordData{Cabinet: cabinet("Пароль"), HasPassword: true, Action: "/account/password",
				FieldErrors: map[string]string{"current_password": "Неверный пароль"}},
			want: []string{"Смена пароля", "Текущий пароль", "Новый пароль", "Неверный пароль", "Изменить пароль",
				"все другие сеансы входа завершатся"},
			raw: []string{`autocomplete="current-password"`, `autocomplete="new-password"`},
		},
		{
			name:    "password, first one",
			page:    "account-password",
			data:    PasswordData{Cabinet: cabinet("Пароль"), Action: "/account/password"},
			want:    []string{"Новый пароль", "Задать пароль", "У аккаунта нет пароля"},
			notWant: []string{"Текущий пароль", "Изменить пароль"},
		},
		{
			name: "sign-in methods",
			page: "account-methods",
			data: MethodsData{
				Cabinet: cabinet("Способы входа"),
				Methods: []SignInMethod{
					{Icon: "lock", Title: "Пароль", Status: "Не задан", Off: true, ManageURL: "/account/password", ManageText: "Задать"},
					{Icon: "plane", Title: "Telegram", Detail: "@ivanov", Status: "Привязан 22.11.2026", UnlinkAction: "/account/methods/unlink",
						ID: "id1", Error: "Это единственный способ входа в аккаунт."},
					{Icon: "key", Title: "Сертификат", Detail: "Иванов Иван Иванович, до 01.01.2020", Status: "Срок истек", Off: true,
						UnlinkAction: "/account/methods/unlink", ID: "id2", Certificate: &CertificateInfo{
							Owner: "Иванов Иван Иванович", Organization: "ООО «Ромашка»", OrganizationINN: "7701234567",
							IDs: []string{"СНИЛС 112-233-445 95", "ИНН 771234567890"}, Issuer: "Тестовый УЦ", NotAfter: "01.01.2020", Expired: true}},
				},
				Links: []UpstreamLink{{Name: "госуслуги", URL: "/upstream/esia/start?mode=link"}},
			},
			want: []string{"Вы можете войти", "Пароль", "Не задан", "Задать", "Telegram", "@ivanov", "Привязан 22.11.2026",
				"Отвязать", "Это единственный способ входа в аккаунт.", "Привязать госуслуги",
				// A certificate shows what it says, compactly, instead of its display name.
				"Сертификат Иванов Иван Иванович ООО «Ромашка» · ИНН\u00a07701234567 СНИЛС 112-233-445 95 · ИНН 771234567890 " +
					"Издатель: Тестовый УЦ · срок действия истек 01.01.2020 Срок истек Отвязать"},
			notWant: []string{"Иванов Иван Иванович, до 01.01.2020"},
			check: func(t *testing.T, doc *html.Node) {
				wantHidden(t, doc, "identity", "id1")
				wantLink(t, doc, "Привязать госуслуги", "/upstream/esia/start?mode=link")
				b := find(doc, func(n *html.Node) bool { return isEl(n, "button") && textOf(n) == "Отвязать" })
				if b == nil || attr(b, "aria-describedby") != "method-id1-error" {
					t.Error("«Отвязать» is not described by its refusal")
				}
			},
		},
		{
			name: "sessions",
			page: "account-sessions",
			data: SessionsData{
				Cabinet: cabinet("Активные сеансы"), EndAction: "/account/sessions/end", EndOthersAction: "/account/sessions/end-others", Others: 1,
				Sessions: []SessionItem{
					{ID: "s1", Browser: "Chrome 131", OS: "Windows 10", IP: "203.0.113.7", Started: "22.11.2026 14:05", LastActive: "22.11.2026 15:00", Current: true},
					{ID: "s2", Browser: "Safari 17", OS: "iOS 17.5 (iPhone)", Mobile: true, IP: "198.51.100.1", Started: "21.11.2026 09:00",
						LastActive: "21.11.2026 10:00", Products: []string{"Астрал.Отчет", "Астрал.Подпись"}},
				},
			},
			want: []string{"Chrome 131, Windows 10", "Этот сеанс", "Safari 17, iOS 17.5 (iPhone)", "IP-адрес", "198.51.100.1",
				"Вход", "21.11.2026 09:00", "Активность", "Астрал.Отчет, Астрал.Подпись", "Завершить", "Завершить все другие сеансы"},
			check: func(t *testing.T, doc *html.Node) {
				if n := len(findAll(doc, func(n *html.Node) bool { return isEl(n, "button") && textOf(n) == "Завершить" })); n != 1 {
					t.Errorf("%d «Завершить» buttons, want 1 (not on this session)", n)
				}
				wantHidden(t, doc, "session", "s2")
			},
		},
		{
			name: "history",
			page: "account-history",
			data: HistoryData{
				Cabinet: cabinet("История входов"), Page: 2, Pages: 3,
				LaterURL: "/account/history", EarlierURL: "/account/history?page=3",
				Events: []EventItem{
					{Time: "22.11.2026 14:05", ISO: "2026-11-22T14:05:00+03:00", What: "Вход", Method: "Пароль", Product: "Астрал.Отчет", IP: "203.0.113.7", Result: "Успешно"},
					{Time: "22.11.2026 14:00", ISO: "2026-11-22T14:00:00+03:00", What: "Неудачная попытка входа", Method: "Пароль", IP: "203.0.113.7", Result: "Неверный пароль", Failed: true},
				},
			},
			want: []string{"Дата и время", "Событие", "Способ", "Сервис", "IP-адрес", "Результат", "22.11.2026 14:05", "Вход",
				"Неверный пароль", "← Позже", "Страница 2 из 3", "Ранее →"},
			raw: []string{`data-label="Результат"`, `class="history-failed"`},
			check: func(t *testing.T, doc *html.Node) {
				if tm := find(doc, func(n *html.Node) bool { return isEl(n, "time") }); tm == nil || attr(tm, "datetime") != "2026-11-22T14:05:00+03:00" {
					t.Error("no <time datetime> with the instant")
				}
				wantLink(t, doc, "← Позже", "/account/history")
				wantLink(t, doc, "Ранее →", "/account/history?page=3")
			},
		},
		{
			name:    "history, empty",
			page:    "account-history",
			data:    HistoryData{Cabinet: cabinet("История входов"), Page: 1, Pages: 1},
			want:    []string{"Событий пока нет."},
			notWant: []string{"Позже", "Ранее", "Страница"},
		},
		{
			name: "services",
			page: "account-services",
			data: ServicesData{Cabinet: cabinet("Мои сервисы"), RevokeAction: "/account/services/revoke", Services: []ServiceItem{
				{ID: "report", Name: "Астрал.Отчет", HomeURL: "https://online.astral.ru/", LastUsed: "22.11.2026 14:05", Active: true},
				{ID: "poa", Name: "Астрал. Доверенность", LastUsed: "01.11.2026 10:00"},
			}},
			want: []string{"Астрал.Отчет", "Последнее использование: 22.11.2026 14:05", "Открыть", "Отозвать доступ",
				"Астрал. Доверенность", "Нет активного доступа"},
			check: func(t *testing.T, doc *html.Node) {
				wantLink(t, doc, "Открыть", "https://online.astral.ru/")
				wantHidden(t, doc, "client", "report")
			},
		},
		{
			name:    "services, none",
			page:    "account-services",
			data:    ServicesData{Cabinet: cabinet("Мои сервисы")},
			want:    []string{"Вы пока не входили ни в один сервис Астрал с этим аккаунтом."},
			notWant: []string{"Отозвать доступ"},
		},
		{
			name: "re-authentication with the password",
			page: "reauth",
			data: ReauthData{Layout: Layout{Title: "Подтвердите, что это Вы", CSRFToken: csrf}, Heading: "Подтвердите, что это Вы",
				Lead: "Чтобы изменить email, введите пароль.", Action: "/account/reauth", Pending: "p1", PasswordError: "Неверный пароль",
				BackURL: "/account"},
			want:    []string{"← Вернуться в Личный кабинет", "Подтвердите, что это Вы", "Пароль", "Неверный пароль", "Продолжить"},
			notWant: []string{"Войти по коду"},
			check: func(t *testing.T, doc *html.Node) {
				wantHidden(t, doc, "pending", "p1")
				wantAttrs(t, byID(doc, "password"), map[string]string{"autocomplete": "current-password", "aria-invalid": "true"})
			},
		},
		{
			name: "re-authentication by code",
			page: "reauth",
			data: ReauthData{Layout: Layout{CSRFToken: csrf}, Heading: "Подтвердите, что это Вы", Pending: "p1", BackURL: "/account/password",
				Codes: []CodeOption{{Action: "/account/reauth/code", Channel: "phone", Label: "Войти по коду", To: "+7 (910) ***-**-99"}}},
			want:    []string{"Войти по коду", "Код придет на +7 (910) ***-**-99"},
			notWant: []string{"Пароль", "Продолжить"},
			check: func(t *testing.T, doc *html.Node) {
				wantHidden(t, doc, "channel", "phone")
			},
		},
	}
}

func TestAccountPages(t *testing.T) {
	r := newRenderer(t)
	r.now = func() time.Time { return time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC) }
	for _, tc := range accountPageCases() {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.Render(&buf, tc.page, tc.data); err != nil {
				t.Fatalf("Render: %v", err)
			}
			raw := buf.String()
			doc, err := html.Parse(strings.NewReader(raw))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			text := textOf(doc)
			for _, s := range tc.want {
				if !strings.Contains(text, s) {
					t.Errorf("text %q missing; page text:\n%s", s, text)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(text, s) {
					t.Errorf("text %q present, want absent", s)
				}
			}
			for _, s := range tc.raw {
				if !strings.Contains(raw, s) {
					t.Errorf("raw HTML %q missing", s)
				}
			}
			for _, s := range tc.notRaw {
				if strings.Contains(raw, s) {
					t.Errorf("raw HTML %q present, want absent", s)
				}
			}
			checkCommon(t, raw, doc)
			if tc.check != nil {
				tc.check(t, doc)
			}
		})
	}
}
