// Package esia is the Gosuslugi upstream (ЕСИА, the Unified Identification and
// Authentication System), an upstream.Connector with the id "esia" and the title
// "госуслуги". It speaks ESIA's current OAuth 2.0 protocol:
//
//  1. LoginURL sends the browser to {IDP_ESIA_URL}/aas/oauth2/v2/ac with
//     client_id, scope, response_type=code, redirect_uri, state (the attempt's random
//     UUID), access_type=online, timestamp ("2006.01.02 15:04:05 -0700"),
//     client_certificate_hash and client_secret: the raw GOST R 34.10-2012 (256)
//     signature, base64url, of client_id + scope + scope_org + timestamp + state +
//     redirect_uri, made by a Signer (the key file, or an external command where a
//     certified crypto provider must sign).
//  2. ESIA asks the person, and returns to {issuer}/upstream/esia/callback with
//     code and state (the upstream Part checks the state's single-use row and the
//     browser binding first).
//  3. HandleCallback POSTs the code to {IDP_ESIA_URL}/aas/oauth2/v3/te, signed the
//     same way with the code appended and a fresh state of its own, which the answer
//     must echo. The access and ID tokens it returns are verified with ESIA's
//     certificate (IDP_ESIA_TOKEN_CERT_FILE; GOST3410_2012_256 or RS256): signature,
//     iss, the audience (our client_id), exp and nbf with a small skew; the person is
//     the access token's urn:esia:sbj_id (the oid).
//  4. With the access token it reads the person, GET /rs/prns/{oid} (names, birth
//     date, SNILS, whether the account is confirmed — "trusted"), and the contacts,
//     GET /rs/prns/{oid}/ctts?embed=(elements): only the mobile (MBT) and email (EML)
//     ESIA marks VERIFIED are taken.
//
// Every call to ESIA has a timeout and a size limit on the answer; ESIA that cannot
// be reached, or answers 5xx, is upstream.ErrUnavailable, anything else we refuse is
// another error. The identity's claims (family_name, given_name, middle_name,
// birthdate as YYYY-MM-DD, snils, gosuslugi_trusted) are what the provider releases
// to a product allowed the "gosuslugi" scope. The connector is an upstream.Registrar:
// an account may be opened from what ESIA verified.
//
// Byte orders, which every ESIA client gets wrong once: the signature is s||r, each
// 32 bytes big-endian — RFC 4491 §2.2.2's order, the one OpenSSL's GOST engine writes
// and X.509/CMS carry, so the gost package's output is sent as it is. ESIA's own
// JWT signatures come in the same order. See the comments at signString and
// CertificateHash for the sources.
package esia
