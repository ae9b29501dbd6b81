// Package account is the account cabinet ("Личный кабинет") at /account: a part of
// the login app (login.Part) on the same pages, CSRF protection and sessions.
//
// Every page needs a live session; without one the browser goes to /login, and a
// sign-in without an authorization request lands back here. The sections:
//
//   - Профиль (/account): the name, and the phone and email with their verified
//     marks. A new phone or email gets a one-time code (login/otp, purpose
//     "contact-change": 60 s between codes, 5 an hour, 10 minutes, 5 tries) and
//     replaces the old one only when the code is confirmed. One that another account
//     holds is refused at once — the person is signed in, so this tells nothing a
//     stranger could use — without saying which account.
//   - Пароль (/account/password): change it with the current one, or set a first one
//     (an account made through an upstream identity). Either ends every other
//     session and revokes every token not issued to this browser's session, with
//     back-channel logout to their products; this browser stays signed in.
//   - Способы входа (/account/methods): the password, the phone and email, and the
//     linked upstream identities with "Отвязать" (the last way in is refused), and a
//     "Привязать" button per configured connector (login/upstream does the linking).
//   - Активные сеансы (/account/sessions): browser and OS (from the User-Agent), IP,
//     start, last activity and the products of each live session; end one, or every
//     other one. Ending revokes the session's tokens and tells its products.
//   - История входов (/account/history): the account's audit events, newest first,
//     20 a page, in Moscow time.
//   - Мои сервисы (/account/services): the products the account has used, with a
//     link to each one's home page and "Отозвать доступ" (revokes its tokens).
//
// Sensitive changes — setting a password, unlinking, a new phone or email — need a
// recent sign-in: when the session's auth_time is older than ten minutes the change
// waits in a short-lived, single-use row bound to the session, and the person proves
// who they are again — with the password, or with a code to the account's phone or
// email when it has none. The session is then re-authenticated (session.Manager.Start
// with the same account) and the change goes on. Changing the password needs the
// current one anyway, which is proof enough.
//
// Every change is recorded as an audit event of the account, and the history shows
// them with the sign-ins.
package account
