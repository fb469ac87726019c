package ops

import (
	"encoding/json"
	"time"
)

// Timeline event types (TimelineEvent.Type).
const (
	TimelineSubmitted       = "submitted"
	TimelinePendingApproval = "pending_approval"
	TimelineApproved        = "approved"
	TimelineWaiting         = "waiting"
	TimelineLaunchAttempt   = "launch_attempt"
	TimelineLaunchFailed    = "launch_failed"
	TimelineLaunched        = "launched"
	TimelinePolled          = "polled"
	TimelineCallback        = "callback"
	TimelineCancelRequested = "cancel_requested"
	TimelineFinished        = "finished"
	TimelineWebhook         = "webhook"
)

// TimelineEvent is one step of an operation, as GET
// /v1/operations/{id}/events and `enqueue events` show them, oldest
// first. It never holds a secret: messages come from the redacted errors
// and records.
type TimelineEvent struct {
	At   time.Time `json:"at"`
	Type string    `json:"type" jsonschema:"enum=submitted,enum=pending_approval,enum=approved,enum=waiting,enum=launch_attempt,enum=launch_failed,enum=launched,enum=polled,enum=callback,enum=cancel_requested,enum=finished,enum=webhook"`
	// Message says what happened in words (a wait's reason, an error).
	Message string `json:"message,omitempty"`
	// Actor is who did it (submitted, cancel_requested).
	Actor *Actor `json:"actor,omitempty"`
	// State is the operation's state after the step.
	State State `json:"state,omitempty"`
	// Attempt is the launch attempt or poll number.
	Attempt int `json:"attempt,omitempty"`
	// ProviderStatus and Progress are the provider's, after a poll that
	// changed them.
	ProviderStatus string          `json:"provider_status,omitempty"`
	Progress       json.RawMessage `json:"progress,omitempty"`
	// Handle is the provider's job id (launched).
	Handle string `json:"handle,omitempty"`
	// ErrorClass is how a failed call was classed: retryable, permanent,
	// rate_limited, not_found….
	ErrorClass string `json:"error_class,omitempty"`
	// RequestID is the provider's correlation id of a failed call.
	RequestID string `json:"request_id,omitempty"`
	// Event, Destination and StatusCode describe a webhook attempt (0: no
	// answer).
	Event       string `json:"event,omitempty"`
	Destination string `json:"destination,omitempty"`
	StatusCode  int    `json:"status_code,omitempty"`
}
