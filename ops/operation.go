package ops

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Operation is an operation as the HTTP API, the CLI's JSON output and
// webhook events show it. Secret params read "REDACTED" and CallbackURL
// is cut to its origin (scheme and host): nothing here is a secret.
type Operation struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Provider string `json:"provider"`
	Account  string `json:"account"`
	// Params as stored: re-encoded from the kind's params type, secret
	// values redacted. A record written by an earlier version shows the
	// string "REDACTED" instead.
	Params         json.RawMessage `json:"params"`
	CallbackURL    string          `json:"callback_url,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	State          State           `json:"state"`
	// Handle is the provider's id of the asynchronous job (UCDN job_id…).
	Handle string `json:"handle,omitempty"`
	// Attempts counts launch attempts.
	Attempts int `json:"attempts"`
	// Polls counts status checks at the provider.
	Polls int `json:"polls"`
	// ProviderStatus is the provider's last reported status value.
	ProviderStatus string     `json:"provider_status,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	LaunchedAt     *time.Time `json:"launched_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	DeadlineAt     *time.Time `json:"deadline_at,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
	// Result is the kind's result (a snapshot's id, a group's amounts
	// before and after…).
	Result json.RawMessage `json:"result,omitempty"`
	// Progress is the provider's progress of a running job, if it reports
	// one (e.g. {"percentage": 42, "task": "Install operating system"}).
	Progress json.RawMessage `json:"progress,omitempty"`
	// CancelRequested is "cancel" or "expire" once a cancellation was
	// asked for.
	CancelRequested string `json:"cancel_requested,omitempty"`
	// LaunchStartedAt is when the latest launch attempt began.
	LaunchStartedAt *time.Time `json:"launch_started_at,omitempty"`
	// SubmittedBy is who asked for the operation; absent on records of
	// earlier versions.
	SubmittedBy *Actor `json:"submitted_by,omitempty"`
	// CanceledBy is who asked for its cancellation (or rejected it).
	CanceledBy *Actor `json:"canceled_by,omitempty"`
	// ApprovedBy is who approved it, for kinds that need an approval.
	ApprovedBy *Actor `json:"approved_by,omitempty"`
	// ApprovalDeadline is when an operation still pending_approval ends
	// canceled.
	ApprovalDeadline *time.Time `json:"approval_deadline,omitempty"`
	// Labels are the submitter's key/value labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Run and RunStep name the runbook run and step the operation is.
	Run     string `json:"run,omitempty"`
	RunStep string `json:"run_step,omitempty"`
	// Resource is what the operation acts on at the provider, as
	// provider:type:id (leaseweb:server:12345, ucdn:zone:shop); search by it.
	Resource string `json:"resource,omitempty"`
}

// Ways an actor reaches opsworker (Actor.Via).
const (
	ViaAPI      = "api"
	ViaCLI      = "cli"
	ViaTask     = "task"
	ViaSchedule = "schedule"
)

// Actor is who asked for something: an HTTP API token (its name), a
// schedule, or a name the CLI or a raw task declared, which nothing
// checked (Authenticated false).
type Actor struct {
	Name string `json:"name"`
	// Via is api, cli, task or schedule.
	Via           string `json:"via" jsonschema:"enum=api,enum=cli,enum=task,enum=schedule"`
	Authenticated bool   `json:"authenticated"`
}

// String renders a for logs and tables: "token ci", "cli alice
// (unauthenticated)", "schedule nightly".
func (a *Actor) String() string {
	if a == nil {
		return ""
	}
	s := a.Via + " " + a.Name
	if a.Via == ViaAPI {
		s = "token " + a.Name
	}
	if !a.Authenticated {
		s += " (unauthenticated)"
	}
	return s
}

// Event types of webhook deliveries.
const (
	// EventPendingApproval: the operation waits for an approval (its
	// kind needs one); approval_deadline says until when.
	EventPendingApproval = "operation.pending_approval"
	EventRunning         = "operation.running"
	EventSucceeded       = "operation.succeeded"
	EventFailed          = "operation.failed"
	EventTimedOut        = "operation.timed_out"
	EventCanceled        = "operation.canceled"
)

// Event types of a provider account's health, sent to the subscriptions
// that name them in their events (never to an operation's callback_url).
// Data is a ProviderHealth.
const (
	// EventProviderDegraded: the account's circuit breaker opened; its
	// calls wait until a probe succeeds.
	EventProviderDegraded = "provider.degraded"
	// EventProviderRecovered: a probe succeeded and the breaker closed.
	EventProviderRecovered = "provider.recovered"
)

// ProviderHealth is the data of provider.degraded and provider.recovered.
type ProviderHealth struct {
	Provider string `json:"provider"`
	Account  string `json:"account"`
	// Breaker is the account's circuit breaker now: open (degraded) or
	// closed (recovered).
	Breaker string `json:"breaker" jsonschema:"enum=open,enum=closed"`
	// Reason says what changed it.
	Reason string `json:"reason"`
	// DegradedAt is when the breaker opened: the same in both events of
	// one outage.
	DegradedAt time.Time `json:"degraded_at"`
	// RecoveredAt is when it closed again (provider.recovered only).
	RecoveredAt *time.Time `json:"recovered_at,omitempty"`
}

// Event is the JSON body of a webhook delivery (Standard Webhooks; verify
// it with the webhookverify package).
type Event struct {
	// ID is stable for one event: the same on every retry (webhook-id).
	ID string `json:"id"`
	// Type is one of the Event* constants.
	Type string `json:"type"`
	// Timestamp is when the event happened (the operation launched or
	// finished).
	Timestamp time.Time `json:"timestamp"`
	// Data is the operation, as Operation shows it (operation.* events),
	// or a ProviderHealth (provider.* events).
	Data json.RawMessage `json:"data"`
}

// DecodeResult decodes o.Result into the result type of o's kind and
// provider (a *SnapshotResult for instance:snapshot, …; see
// ResultReporter). It returns nil, nil when there is no result yet.
// Fields a later version adds are ignored.
func (o *Operation) DecodeResult() (any, error) {
	if !present(o.Result) {
		return nil, nil
	}
	for _, pt := range paramsTypes {
		if pt.Kind == o.Kind && pt.Provider == o.Provider {
			v := pt.NewResult()
			if err := json.Unmarshal(o.Result, v); err != nil {
				return nil, fmt.Errorf("result of %s on %s: %w", o.Kind, o.Provider, err)
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("result: %s on %s is not a known kind", o.Kind, o.Provider)
}

// DecodeProgress decodes o.Progress; nil, nil when there is none.
func (o *Operation) DecodeProgress() (*Progress, error) {
	if !present(o.Progress) {
		return nil, nil
	}
	var p Progress
	if err := json.Unmarshal(o.Progress, &p); err != nil {
		return nil, fmt.Errorf("progress: %w", err)
	}
	return &p, nil
}

func present(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null"
}
