// Package ops holds opsworker's domain types for other Go systems: the
// operation kinds and providers, a params type per (kind, provider) with
// a Validate that names the bad field, the payload envelope that goes on
// the queue, the operation states, the operation as the API and webhooks
// show it, and the webhook event types.
//
// The worker, its CLI and its HTTP API use these same types, so a value
// that validates here is one the worker accepts. Submit one through the
// HTTP API with the client package, or enqueue the envelope as an asynq
// task whose type is the kind.
//
// Params keys are matched exactly as their json tags spell them (see
// DecodeParams): "PASSWORD" is not "password". Fields tagged
// `secret:"true"` (a root password, SSH keys, a post-install script) are
// sent to the provider and never shown again.
package ops
