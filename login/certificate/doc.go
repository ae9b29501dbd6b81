// Package certificate is sign-in, linking and registration with an e-signature
// certificate (the "Сертификат" button), a part of the login app (login.Part).
//
// Every way starts at one page, which shows a challenge to sign:
//
//	GET  /certificate?mode=signin|link|register&authRequestID=…
//	    makes a challenge — 32 random bytes in an ASCII line that also names the
//	    issuer — keeps it as a single-use row (storage.OneTimeCode, purpose
//	    "certificate-challenge", 5 minutes) bound to this browser (a random value in
//	    an HttpOnly SameSite=Lax cookie, the row holding its hash), and renders the
//	    page. Its script (static/certificate.js; the CSP allows no inline script)
//	    asks the signing agent at IDP_CERT_AGENT_URL for its certificates
//	    (GET /certificates): no answer shows "Отсутствует соединение с
//	    Astral.Toolbox" and "Обновить"; otherwise "Выберите необходимый сертификат"
//	    lists them (described by POST /certificate/describe: owner, organization,
//	    issuer, validity, parsed by login/gost), and the chosen one signs the
//	    challenge (POST /sign). Without the agent, or without JavaScript, the page
//	    shows the challenge and takes a detached signature (base64 or PEM) made with
//	    any crypto provider. Either way the same form posts it:
//	POST /certificate  challenge=…&signature=…
//	    uses the challenge up first (a replay finds nothing), checks the browser
//	    binding, parses the CMS, verifies it over the exact challenge bytes, then the
//	    signer's chain to IDP_CERT_ROOTS with revocation (gost.Verifier), and:
//	    - signin: a linked certificate of an account that is not blocked signs the
//	      person in with amr ["swk"] (login.Host.FinishSignIn). A certificate linked
//	      to no account whose SNILS is that of a linked certificate (a renewed one,
//	      from a trusted CA — the chain was just verified) is offered for linking:
//	      it waits in a "certificate-pending-link" row bound to this browser, and
//	      the sign-in pages link it once the person signs in another way
//	      (login.PendingLinks). It is never linked silently. Any other unknown
//	      certificate gets a page that says so and offers to sign in and link it in
//	      the cabinet, or to register with it;
//	    - link: links the certificate to the account of the live session that
//	      asked; one linked to another account is refused;
//	    - register: keeps the verified certificate in a "certificate-register" row
//	      and asks for a phone or email:
//	GET|POST /certificate/register, /certificate/register/confirm, …/resend
//	    send a code (login/otp, purpose "register-certificate") and, once it is
//	    confirmed, create the account from the certificate's owner (family name
//	    from SN, given and middle names from G), its confirmed contact and the
//	    linked certificate in one transaction — no account exists before. A contact
//	    that already has an account gets a page telling to sign in and link the
//	    certificate in the cabinet; nothing is merged. The new account is signed in
//	    with amr ["swk"] and continues to the product.
//	GET  /certificate/proxy?authRequestID=…
//	    behind a TLS-terminating proxy that verified the client's certificate
//	    (IDP_CERT_PROXY_HEADER, from the addresses in IDP_CERT_PROXY_FROM — the TCP
//	    peer, never X-Forwarded-For): the certificate in the header is verified
//	    again (chain, revocation) and signs a linked account in, as above. The
//	    header from any other address is ignored and logged. The proxy must set the
//	    header itself on every request (nginx: proxy_set_header X-SSL-Client-Cert
//	    $ssl_client_escaped_cert;), so a client can never pass its own.
//
// A link is a storage.Identity (connector "certificate", subject the SHA-1
// thumbprint) with a storage.Certificate row beside it, so the cabinet lists and
// unlinks it like any way in. Every refusal is a Russian sentence on the page
// (gost.Explain) and a log line with the reason; attempts are rate-limited per IP.
package certificate
