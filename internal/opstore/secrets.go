package opstore

import (
	"encoding/json"

	"github.com/opsworker/opsworker/ops"
)

// Redaction markers: what a rendering shows instead of a secret param, and
// what the stored record keeps once the secret is no longer needed.
const (
	Redacted = "REDACTED"
	Removed  = "REMOVED"
)

func encodeKeys(keys []string) string {
	if len(keys) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(keys)
	return string(b)
}

// decodeKeys reads the secret_params field; ok is false when the record
// has none (written by an earlier version).
func decodeKeys(v string) (keys []string, ok bool) {
	if v == "" {
		return nil, false
	}
	if json.Unmarshal([]byte(v), &keys) != nil {
		return nil, false
	}
	return keys, true
}

// replaceKeys returns params with the values of keys (top level) replaced
// by the JSON string with, or params itself when none is present. Params
// that are not a JSON object are replaced whole.
func replaceKeys(params json.RawMessage, keys []string, with string) json.RawMessage {
	if len(params) == 0 || len(keys) == 0 {
		return params
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(params, &m) != nil {
		b, _ := json.Marshal(with)
		return b
	}
	changed := false
	marker, _ := json.Marshal(with)
	for _, k := range keys {
		if _, ok := m[k]; ok {
			m[k] = marker
			changed = true
		}
	}
	if !changed {
		return params
	}
	b, err := json.Marshal(m)
	if err != nil {
		return marker
	}
	return b
}

// RemoveSecrets returns params with the secret keys' values replaced by
// "REMOVED", for storing once the launch no longer needs them; nil when
// params hold none of them (nothing to change).
func RemoveSecrets(params json.RawMessage, keys []string) json.RawMessage {
	out := replaceKeys(params, keys, Removed)
	if len(out) == len(params) && string(out) == string(params) {
		return nil
	}
	return out
}

// RedactedParams returns the params as every rendering shows them: secret
// values replaced by "REDACTED". A record written before secret keys were
// recorded shows no params at all.
func (o *Operation) RedactedParams() json.RawMessage {
	if len(o.Params) == 0 {
		return o.Params
	}
	if o.legacySecrets {
		return json.RawMessage(`"` + Redacted + `"`)
	}
	return replaceKeys(o.Params, o.SecretParams, Redacted)
}

// MarshalJSON renders the record with its secret params redacted and its
// callback URL cut to CallbackOrigin, so no status output, CLI output or
// webhook ever carries them. The stored record keeps both until the
// secrets are removed (launch, final state).
func (o Operation) MarshalJSON() ([]byte, error) { return json.Marshal(o.View()) }

// View is the operation as everything outside the worker sees it: secret
// params redacted, the callback URL cut to its origin.
func (o *Operation) View() ops.Operation {
	return ops.Operation{
		ID: o.ID, Kind: o.Kind, Provider: o.Provider, Account: o.Account,
		Params:      o.RedactedParams(),
		CallbackURL: CallbackOrigin(o.CallbackURL), IdempotencyKey: o.IdempotencyKey,
		State: o.State, Handle: o.Handle, Attempts: o.Attempts, Polls: o.Polls, ProviderStatus: o.Status,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, LaunchedAt: o.LaunchedAt, FinishedAt: o.FinishedAt, DeadlineAt: o.DeadlineAt,
		LastError: o.LastError, Result: o.Result, Progress: o.Progress, CancelRequested: o.CancelRequested,
		LaunchStartedAt: o.LaunchStartedAt,
		SubmittedBy:     o.SubmittedBy, CanceledBy: o.CanceledBy, Labels: o.Labels, Resource: o.Resource,
		ApprovedBy: o.ApprovedBy, ApprovalDeadline: o.ApprovalDeadline, Run: o.Run, RunStep: o.RunStep,
	}
}
