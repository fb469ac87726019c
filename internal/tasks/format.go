package tasks

import (
	"encoding/json"
	"slices"

	"github.com/opsworker/opsworker/internal/opstore"
)

// hiddenPayload is what FormatPayload shows for a payload it cannot show
// safely.
const hiddenPayload = `"(payload not shown)"`

// FormatPayload renders a task payload for the queue UI (asynqmon's
// PayloadFormatter) with nothing a reader should not see. opsworker's own
// tasks carry no secret, but raw tasks from other systems may: their
// params are shown re-encoded from the kind's type with the secret params
// replaced by "REDACTED" (params that do not decode are not shown at
// all), a callback URL is cut to its origin, and fields the worker does
// not know are left out.
func FormatPayload(taskType string, payload []byte) string {
	var out any
	switch {
	case slices.Contains(Kinds(), taskType):
		out = formatEnvelope(taskType, payload)
	case taskType == TypeWebhookDeliver:
		return reencode[WebhookPayload](payload)
	case taskType == TypePoll:
		return reencode[PollPayload](payload)
	case taskType == TypeBatchPoll:
		return reencode[BatchPollPayload](payload)
	case taskType == TypeCancel:
		return reencode[CancelPayload](payload)
	case taskType == TypeWebhookReplay:
		return reencode[ReplayPayload](payload)
	default:
		return hiddenPayload
	}
	b, err := json.Marshal(out)
	if err != nil {
		return hiddenPayload
	}
	return string(b)
}

// reencode shows payload as its type T encodes it: the known fields only.
func reencode[T any](payload []byte) string {
	var v T
	if json.Unmarshal(payload, &v) != nil {
		return hiddenPayload
	}
	b, err := json.Marshal(v)
	if err != nil {
		return hiddenPayload
	}
	return string(b)
}

// formatEnvelope is FormatPayload for an operation kind's task.
func formatEnvelope(kind string, payload []byte) any {
	env, err := DecodeEnvelope(payload)
	if err != nil {
		return "(payload not shown: " + err.Error() + ")"
	}
	shown := struct {
		OperationID    string          `json:"operation_id,omitempty"`
		Provider       string          `json:"provider,omitempty"`
		Account        string          `json:"account,omitempty"`
		Params         json.RawMessage `json:"params,omitempty"`
		CallbackURL    string          `json:"callback_url,omitempty"`
		IdempotencyKey string          `json:"idempotency_key,omitempty"`
	}{OperationID: env.OperationID, Provider: env.Provider, Account: env.Account,
		CallbackURL: opstore.CallbackOrigin(env.CallbackURL), IdempotencyKey: env.IdempotencyKey}
	if hasParams(env.Params) {
		shown.Params = json.RawMessage(`"` + opstore.Redacted + `"`)
		if spec, err := LookupSpec(kind, env.Provider); err == nil {
			if canon, err := spec.canonicalParams(env.Params); err == nil {
				op := opstore.Operation{Params: canon, SecretParams: spec.SecretParams()}
				shown.Params = op.RedactedParams()
			}
		}
	}
	return shown
}
