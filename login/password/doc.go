// Package password is sign-in by phone or email and password.
//
// The flow: the login page posts the contact and the password; Authenticator checks
// the limits (per contact and per IP, counted in the database so they hold across
// nodes), finds the account, and verifies the argon2id hash. An unknown account costs
// the same hash as a known one and gets the same answer as a wrong password, so the
// page reveals nothing about who has an account. A blocked account is named only after
// the right password. On success the login app starts the session with amr ["pwd"].
package password
