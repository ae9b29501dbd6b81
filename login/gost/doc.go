// Package gost verifies and makes the electronic signatures Russian users
// bring: GOST R 34.10-2012 (256- and 512-bit keys) with GOST R 34.11-2012
// (Streebog) digests, plus RSA and ECDSA through the standard library.
//
// It has one job — verify and sign — and four parts:
//
//   - digest.go, keys.go: Streebog digests and GOST/RSA/ECDSA keys (PKCS#8 as
//     `openssl genpkey -engine gost` writes it), Sign and Verify;
//   - cert.go: X.509 certificates with GOST keys and the Russian subject
//     attributes (SNILS, INN, OGRN…);
//   - cms.go, ber.go: detached CMS SignedData (RFC 5652), verify and sign;
//     BER input (indefinite lengths, chunked content, as CryptoPro CSP and
//     CryptoAPI streaming write it) is brought to DER first;
//   - verify.go, crl.go: a certificate chain to the trusted roots, with dates,
//     basic constraints, key usage, critical extensions and revocation by CRL.
//
// What VerifyDetached accepts: exactly one SignerInfo, named by issuer and
// serial number or by subject key identifier, whose certificate is in the
// SignedData; a digest of the key's family and size (Streebog-256 for a
// 256-bit GOST key, Streebog-512 for a 512-bit one, SHA-2 for RSA/ECDSA);
// eContentType id-data; signed attributes, when present, with contentType
// id-data and messageDigest (verified over their DER SET OF encoding).
//
// What Verifier.Verify refuses besides dates, constraints and key usage:
//
//   - a critical extension it does not process (ErrCriticalExtension, RFC
//     5280 §4.2). Handled: key usage, basic constraints, certificate
//     policies, key identifiers, subject alt name, CRL distribution points,
//     subjectSignTool and issuerSignTools (1.2.643.100.111/112, descriptive),
//     and extended key usage (critical: it must allow client
//     authentication, e-mail protection or any purpose). Not handled, so
//     refused when critical: name constraints, policy constraints and
//     mappings, inhibitAnyPolicy, and anything unknown. The trust anchor is
//     exempt;
//   - revocation: a CRL counts only when signed by the issuer (name and key),
//     complete (no delta CRL indicator, no issuingDistributionPoint of
//     partial scope, no critical extension or entry extension we do not
//     process) and current (thisUpdate reached, within 5 minutes of clock
//     skew; nextUpdate not passed). A stale CRL sends us to the distribution
//     points; if none yields a current CRL, the status is unknown
//     (ErrRevocationUnknown). Only a certificate without distribution points
//     is checked against a stale folder CRL, with a warning, or passes
//     without one, with a warning. A listed serial is revoked whatever its
//     revocation date: we verify at sign-in, not as of the signing time.
//
// The curve arithmetic and the hash come from github.com/ddulesov/gogost
// (GPL-3). Everything between bytes and those primitives is written here by
// hand, because no Go library does it: crypto/x509 parses a GOST certificate
// but cannot check a GOST signature or read a GOST key, and there is no
// maintained Go CMS package with GOST. The ASN.1 is read with
// golang.org/x/crypto/cryptobyte and encoding/asn1.
//
// Byte order, the usual trap (RFC 4491 §2.2.2, RFC 7091, and what OpenSSL's
// GOST engine does):
//
//   - a Streebog digest is the byte string the hash function outputs, as
//     `openssl dgst -md_gost12_256` prints it; for signing, that string is read
//     as a little-endian integer, so it is reversed before gogost (which reads
//     big-endian) sees it;
//   - a signature, in X.509 signatureValue and CMS SignerInfo.signature alike,
//     is s || r, each big-endian and padded to the key size (32 or 64 bytes) —
//     exactly what gogost's SignDigest returns, so it is used as is;
//   - a public key in SubjectPublicKeyInfo is an OCTET STRING with X then Y,
//     each little-endian; a private key in PKCS#8 is the little-endian scalar.
//
// Inputs are untrusted: every parser has a size limit, returns errors wrapped
// around the package's sentinel errors (ErrMalformed, ErrTooLarge…), and never
// panics. Explain turns those errors into a sentence for a person.
package gost
