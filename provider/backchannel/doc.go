// Package backchannel delivers OpenID Connect Back-Channel Logout 1.0 notifications.
//
// Ending a session (logout, block, password reset) queues one delivery per product of
// that session in the same database transaction (storage.EndSession). A Worker on
// every node claims due deliveries with a lease, POSTs a signed logout token to the
// product's backchannel_logout_uri, and records the outcome; failures are retried with
// growing delays and given up after MaxAttempts. Nobody waits for a delivery: the
// person's logout has already finished when the worker starts.
package backchannel
