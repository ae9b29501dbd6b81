// Package otp issues and checks one-time codes sent by SMS or email: for
// registration, for sign-in by code ("У меня есть код"), for a password reset.
//
// The flow: Start throttles (one code per phone/email a minute, five an hour, a limit
// per IP — all counted in the database, so they hold across nodes), stores a keyed
// hash of a fresh six-digit code with the flow, and sends the code; the browser then
// carries only the flow id. Verify checks a typed code under a row lock: five wrong
// tries kill the code, ten minutes expire it, a match consumes it. Resend puts a new
// code into the same flow, under the same throttles. Nothing is sent while a database
// transaction is open.
package otp
