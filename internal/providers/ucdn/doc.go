// Package ucdn is a client for the UCDN API v4 purge endpoints
// (https://api.ucdn.com/v4).
//
// UCDN API docs: https://api.ucdn.com/docs/
//
// The client makes exactly one attempt per call and classifies failures
// into *providers.Error; retrying is the caller's decision (asynq retries or
// the poller). The API token is sent in the X-UCDN-Token header, never in
// the URL, so it cannot leak through a logged URL or an error.
//
// A Client is safe for concurrent use.
package ucdn
