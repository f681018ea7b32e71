// Package webhooktest holds fakes and fixtures for testing the webhook: deciders that block or panic, a
// certificate generator, and a helper that runs webhook.Server over TLS on loopback.
package webhooktest
