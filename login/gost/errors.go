package gost

import "errors"

// The reasons a signature or certificate is refused. Every error this package
// returns wraps one of them (errors.Is), with details for the log around it.
var (
	// ErrMalformed: the input is not a well-formed certificate, key, CMS or CRL.
	ErrMalformed = errors.New("gost: malformed input")
	// ErrTooLarge: the input is over the size or count limits.
	ErrTooLarge = errors.New("gost: input too large")
	// ErrUnsupported: a well-formed input with an algorithm or form we do not handle.
	ErrUnsupported = errors.New("gost: unsupported algorithm")
	// ErrBadSignature: a signature does not verify with the key.
	ErrBadSignature = errors.New("gost: bad signature")
	// ErrDigestMismatch: the signature is over other data than the one given.
	ErrDigestMismatch = errors.New("gost: signed data does not match the content")
	// ErrExpired: a certificate in the chain is past its notAfter.
	ErrExpired = errors.New("gost: certificate expired")
	// ErrNotYetValid: a certificate in the chain is before its notBefore.
	ErrNotYetValid = errors.New("gost: certificate not yet valid")
	// ErrUntrusted: no chain to a trusted root.
	ErrUntrusted = errors.New("gost: certificate not issued by a trusted CA")
	// ErrNotCA: an issuer in the chain is not allowed to issue certificates.
	ErrNotCA = errors.New("gost: issuer is not a CA")
	// ErrKeyUsage: the leaf's key usage does not allow digital signatures.
	ErrKeyUsage = errors.New("gost: key usage does not allow signing")
	// ErrCriticalExtension: a certificate in the chain has an extension marked
	// critical that this package does not process (RFC 5280 §4.2).
	ErrCriticalExtension = errors.New("gost: certificate has an unknown critical extension")
	// ErrRevoked: a certificate in the chain is on its issuer's CRL.
	ErrRevoked = errors.New("gost: certificate revoked")
	// ErrRevocationUnknown: the revocation status could not be learned: the
	// CRL could not be fetched, or what was fetched is stale, not yet valid or
	// not a complete CRL for the certificate.
	ErrRevocationUnknown = errors.New("gost: revocation status unknown")
)

// explanations are ordered: the first sentinel found in the error wins, so
// the more specific reasons come first.
var explanations = []struct {
	err  error
	text string
}{
	{ErrRevoked, "Сертификат отозван удостоверяющим центром."},
	{ErrRevocationUnknown, "Не удалось проверить, не отозван ли сертификат: список отзыва удостоверяющего центра недоступен. Попробуйте позже."},
	{ErrExpired, "Срок действия сертификата истек."},
	{ErrNotYetValid, "Срок действия сертификата еще не начался."},
	{ErrUntrusted, "Сертификат выдан удостоверяющим центром, которому мы не доверяем."},
	{ErrNotCA, "Сертификат выдан организацией, которая не является удостоверяющим центром."},
	{ErrKeyUsage, "Сертификат не предназначен для электронной подписи."},
	{ErrCriticalExtension, "Сертификат содержит критическое расширение, которое мы не умеем проверять."},
	{ErrDigestMismatch, "Подпись сделана для других данных."},
	{ErrBadSignature, "Подпись не соответствует данным."},
	{ErrTooLarge, "Подпись или сертификат слишком большого размера."},
	{ErrUnsupported, "Алгоритм подписи не поддерживается."},
	{ErrMalformed, "Подпись или сертификат повреждены или имеют неизвестный формат."},
}

// Explain returns one Russian sentence for a person about why a signature or
// certificate was refused. An error from outside this package gets a general
// sentence; nil gets the empty string.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	for _, e := range explanations {
		if errors.Is(err, e.err) {
			return e.text
		}
	}
	return "Не удалось проверить подпись."
}
