// Package e2e holds end-to-end tests: they build cmd/worker and
// cmd/enqueue, run the worker as a separate process on real Redis (or its
// embedded default) against the UCDN simulator, and drive it with the CLI
// exactly as a user would, including SIGKILL and SIGTERM.
package e2e
