#!/bin/sh
# make.sh rewrites every fixture in this folder with OpenSSL and Debian's GOST
# engine (libengine-gost-openssl). Run it from anywhere:
#
#   sh login/gost/gosttest/testdata/make.sh
#
# Keys are random, so each run writes new bytes, but the set, the names and
# the dates are the same. Dates are pinned (not "now") so that gosttest.Now()
# stays inside every certificate's validity except the expired one.
# No certificate here carries a CRL distribution point: the test that fetches
# CRLs makes its own certificates at test time.
set -eu

cd "$(dirname "$0")"
OPENSSL=${OPENSSL:-openssl}
ENG="-engine gost"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

START=20250101000000Z
END=20491231235959Z

# ca_config NAME: an `openssl ca` setup of its own in $WORK/NAME.
ca_config() {
	d="$WORK/$1"
	mkdir -p "$d/new"
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	echo 1000 >"$d/crlnumber"
	cat >"$d/ca.cnf" <<CNF
# INNLE (ИНН юридического лица) is newer than this OpenSSL's object table.
oid_section = oids
[ oids ]
INNLE = 1.2.643.100.4
[ ca ]
default_ca = this
[ this ]
dir = $d
database = $d/index.txt
new_certs_dir = $d/new
serial = $d/serial
crlnumber = $d/crlnumber
default_md = default
policy = anything
unique_subject = no
copy_extensions = none
default_crl_days = 8000
[ anything ]
commonName = optional
surname = optional
givenName = optional
organizationName = optional
title = optional
emailAddress = optional
SNILS = optional
INN = optional
OGRN = optional
OGRNIP = optional
INNLE = optional
countryName = optional
[ root ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ leaf ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = clientAuth,emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ nodigsig ]
basicConstraints = CA:false
keyUsage = critical,keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ noca ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature,keyCertSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ req ]
distinguished_name = dn
[ dn ]
CNF
}

# genkey FILE ALG: a fresh private key in PKCS#8 PEM.
genkey() {
	case "$2" in
	gost256) $OPENSSL genpkey $ENG -algorithm gost2012_256 -pkeyopt paramset:A -out "$1" ;;
	gost256tc) $OPENSSL genpkey $ENG -algorithm gost2012_256 -pkeyopt paramset:TCA -out "$1" ;;
	gost512) $OPENSSL genpkey $ENG -algorithm gost2012_512 -pkeyopt paramset:A -out "$1" ;;
	rsa) $OPENSSL genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" ;;
	ecdsa) $OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ;;
	esac
}

# selfsign CA NAME SUBJ ALG: a self-signed root in NAME.pem / NAME.key.
selfsign() {
	genkey "$2.key" "$4"
	$OPENSSL req $ENG -new -utf8 -key "$2.key" -subj "$3" -config "$WORK/$1/ca.cnf" -out "$WORK/$2.csr"
	$OPENSSL ca $ENG -batch -notext -utf8 -preserveDN -selfsign -config "$WORK/$1/ca.cnf" \
		-keyfile "$2.key" -in "$WORK/$2.csr" -extensions root \
		-startdate $START -enddate $END -out "$2.pem"
}

# issue CA CAFILE NAME SUBJ ALG EXT [START END]: NAME.pem / NAME.key issued by CAFILE.
issue() {
	genkey "$3.key" "$5"
	$OPENSSL req $ENG -new -utf8 -key "$3.key" -subj "$4" -config "$WORK/$1/ca.cnf" -out "$WORK/$3.csr"
	$OPENSSL ca $ENG -batch -notext -utf8 -preserveDN -config "$WORK/$1/ca.cnf" \
		-cert "$2.pem" -keyfile "$2.key" -in "$WORK/$3.csr" -extensions "$6" \
		-startdate "${7:-$START}" -enddate "${8:-$END}" -out "$3.pem"
}

ca_config root
ca_config other
ca_config noca

selfsign root root "/CN=Тестовый УЦ/O=АО «Тестовый УЦ»/C=RU/1.2.643.100.1=1027700000001/INNLE=7700000001" gost256tc

IVANOV="/SN=Иванов/GN=Иван Иванович/CN=Иванов Иван Иванович/O=ООО «Ромашка»/title=Генеральный директор/SNILS=11223344595/INN=771234567890/OGRN=1027700132195/INNLE=7701234567/emailAddress=ivanov@example.ru/C=RU"
issue root root ivanov "$IVANOV" gost256 leaf
issue root root ivanov-renewed "$IVANOV" gost256 leaf 20260101000000Z
issue root root petrov "/SN=Петров/GN=Петр Петрович/CN=Петров Петр Петрович/SNILS=12345678964/INN=500100732259/OGRNIP=304500116000157/C=RU" gost512 leaf
issue root root revoked "/SN=Сидоров/GN=Сидор Сидорович/CN=Сидоров Сидор Сидорович/SNILS=11122233345/C=RU" gost256 leaf
issue root root expired "/SN=Смирнов/GN=Семен Семенович/CN=Смирнов Семен Семенович/SNILS=22233344456/C=RU" gost256 leaf 20190101000000Z 20200101000000Z
issue root root future "/SN=Кузнецов/GN=Кузьма Кузьмич/CN=Кузнецов Кузьма Кузьмич/C=RU" gost256 leaf 20480101000000Z
issue root root nodigsig "/CN=Без подписи/C=RU" gost256 nodigsig
issue root root rsa "/SN=Васильев/GN=Василий Васильевич/CN=Васильев Василий Васильевич/SNILS=33344455567/C=RU" rsa leaf
issue root root ecdsa "/SN=Алексеев/GN=Алексей Алексеевич/CN=Алексеев Алексей Алексеевич/SNILS=44455566678/C=RU" ecdsa leaf
issue root root esia-client "/CN=ИС Астрал ID/O=АО «Калуга Астрал»/INNLE=4029017981/OGRN=1024001434049/C=RU" gost256 leaf
issue root root esia-service "/CN=ЕСИА/O=Минцифры России/OGRN=1047702026701/C=RU" gost256 leaf
# noca-issuer has no CA:true; noca-leaf claims it as issuer.
issue root root noca-issuer "/CN=Не УЦ/C=RU" gost256 noca
issue noca noca-issuer noca-leaf "/CN=Лист от не УЦ/C=RU" gost256 leaf

selfsign other other-root "/CN=Чужой УЦ/C=RU" gost256
issue other other-root untrusted "/SN=Чужой/GN=Чужой Чужович/CN=Чужой Чужой Чужович/SNILS=55566677789/C=RU" gost256 leaf

$OPENSSL ca $ENG -batch -config "$WORK/root/ca.cnf" -cert root.pem -keyfile root.key -revoke revoked.pem -crl_reason keyCompromise
$OPENSSL ca $ENG -batch -config "$WORK/root/ca.cnf" -cert root.pem -keyfile root.key -gencrl \
	-crl_lastupdate 20250101000000Z -crl_nextupdate $END -out root.crl

# A signature in BER with indefinite lengths, as CryptoPro CSP and CryptoAPI
# streaming write them: -stream makes openssl write indefinite lengths and
# the content in OCTET STRING chunks (attached: -stream embeds the content).
printf 'challenge: 7f3e Вход в Астрал.Отчет' >ber-content.txt
$OPENSSL cms $ENG -sign -binary -stream -md md_gost12_256 -nosmimecap -in ber-content.txt \
	-signer ivanov.pem -inkey ivanov.key -outform DER -out ivanov-ber.p7s

# The roots folder must not see other-root: keep it out of reach by name.
mv other-root.pem other-root.pem.untrusted
rm -f other-root.key
echo "fixtures written to $(pwd)"
