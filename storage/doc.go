// Package storage keeps everything the identity provider must remember: accounts,
// browser sessions, pending authorization requests, tokens, signing keys, clients,
// rate-limit counters and back-channel logout deliveries.
//
// It is implemented once with gorm and runs on SQLite (the embedded default) and on
// PostgreSQL. Nothing here is cached in process memory, so several provider nodes can
// share one database. Secrets (refresh tokens, session cookies, authorization codes)
// are stored only as SHA-256 hashes; the raw values never reach the database.
//
// Callers define the small interfaces they need (see provider and login) and depend on
// those; *Store satisfies them all. The conformance suite in storage/conformance runs
// against every backend.
package storage
