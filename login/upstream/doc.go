// Package upstream is sign-in through an identity someone else vouches for —
// Telegram, and later Gosuslugi or any OpenID Connect provider — and the linking of
// such identities to accounts. One piece of code serves every connector.
//
// A connector ([Connector]) knows one upstream: it builds the URL that sends the
// browser there and turns the upstream's answer at our callback into a verified
// [Identity]. Everything else is here, the same for every connector:
//
//	GET /upstream/{id}/start?mode=signin|link|register&authRequestID=…
//	    remembers the attempt as a short-lived, single-use row (a storage.OneTimeCode
//	    of purpose "upstream" whose ID is the OAuth state, with the nonce, the PKCE
//	    verifier, the mode, the authorization request and, to link, the account),
//	    binds it to this browser (a random value in an HttpOnly SameSite=Lax cookie;
//	    the row holds its hash) and sends the browser to the upstream.
//	GET /upstream/{id}/callback?state=…&code=…
//	    uses the row up (a replayed callback finds nothing), checks the browser
//	    binding and the upstream's error parameter, lets the connector verify the
//	    answer, and then:
//	    - signin: a linked identity of an account that is not blocked signs the person
//	      in with amr ["fed"] and the connector's id as the idp claim, and completes
//	      the product's authorization request (login.Host.FinishSignIn); an identity
//	      linked to no account gets a page that says so and offers to sign in another
//	      way: the verified identity waits in a "pending-link" row, bound to the same
//	      browser, and the sign-in page links it to the account that signs in
//	      (login.PendingLinks);
//	    - link: the identity is linked to the account of the live session, unless
//	      another account holds it; then the cabinet's list of sign-in methods;
//	    - register (only through a connector that is a [Registrar], such as
//	      Gosuslugi): a linked identity just signs in; otherwise an account is opened
//	      from the verified profile (names; the phone and email the upstream
//	      confirmed, confirmed here too), with the registration consents and the
//	      identity linked, in one transaction, and the person is signed in. A
//	      confirmed phone or email some account holds already is never merged into
//	      it: the person is asked to sign in to that account, which links the
//	      identity (a pending link), or to link it later in the cabinet.
//
// The state is a random UUID (version 4), the form ESIA requires. Every sign-in
// stores the identity's claims afresh (RefreshIdentity), so verified data a product
// reads is the upstream's latest.
//
// Every refusal is a Russian page for the person (4xx, or 502 when the upstream
// cannot be reached) and a log line with the reason.
//
// Connectors live in subpackages: [github.com/astral/idp/login/upstream/oidc] is any
// OpenID Connect provider, Telegram among them; [github.com/astral/idp/login/upstream/esia]
// is Gosuslugi.
package upstream
