package certificate

import (
	"reflect"
	"testing"
	"time"

	"github.com/astral/idp/login/web"
	"github.com/astral/idp/storage"
)

// TestDescribe: what the cabinet and the registration show of a certificate — the
// organization with its INN, the owner's SNILS (written as people know it) and
// INN, the issuer and validity; an entrepreneur is not named twice.
func TestDescribe(t *testing.T) {
	now := time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
	cases := []struct {
		name string
		in   storage.Certificate
		want web.CertificateInfo
	}{
		{"director", storage.Certificate{Owner: "Иванов Иван Иванович", Organization: "ООО «Ромашка»", SNILS: "11223344595",
			INN: "771234567890", INNLE: "7701234567", OGRN: "1027700132195", Issuer: "Тестовый УЦ", NotAfter: until},
			web.CertificateInfo{Owner: "Иванов Иван Иванович", Organization: "ООО «Ромашка»", OrganizationINN: "7701234567",
				IDs: []string{"СНИЛС\u00a0112-233-445\u00a095", "ИНН\u00a0771234567890"}, Issuer: "Тестовый УЦ", NotAfter: "31.12.2049"}},
		{"entrepreneur, expired", storage.Certificate{Owner: "Петров Петр Петрович", Organization: "Петров Петр Петрович",
			OGRNIP: "304500116000157", SNILS: "123", Issuer: "Тестовый УЦ", NotAfter: now.Add(-time.Hour)},
			web.CertificateInfo{Owner: "Петров Петр Петрович", IDs: []string{"СНИЛС\u00a0123", "ОГРНИП\u00a0304500116000157"},
				Issuer: "Тестовый УЦ", NotAfter: "30.04.2031", Expired: true}},
		{"bare", storage.Certificate{Owner: "Сидоров"}, web.CertificateInfo{Owner: "Сидоров"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Describe(&tc.in, now); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Describe = %+v\nwant %+v", got, tc.want)
			}
		})
	}
	info := cases[0].want
	if got, want := info.OrganizationLine(), "ООО «Ромашка» · ИНН\u00a07701234567"; got != want {
		t.Errorf("OrganizationLine = %q, want %q", got, want)
	}
	if got, want := info.Validity(), "Издатель: Тестовый УЦ · действителен до 31.12.2049"; got != want {
		t.Errorf("Validity = %q, want %q", got, want)
	}
	if got, want := cases[1].want.Validity(), "Издатель: Тестовый УЦ · срок действия истек 30.04.2031"; got != want {
		t.Errorf("Validity of an expired one = %q, want %q", got, want)
	}
}
