package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opsworker/opsworker/ops"
)

// Labels sets the operation's labels, kept on it and searchable.
func Labels(labels map[string]string) SubmitOption {
	return func(r *submitRequest) { r.Labels = labels }
}

// SubmitJSON creates an operation of kind on provider from params given
// as JSON, as a command line or another system has them. Unlike Submit,
// nothing is checked before sending: the API validates the request and
// answers a *Problem naming the bad field.
func (c *Client) SubmitJSON(ctx context.Context, kind, provider string, params json.RawMessage, opts ...SubmitOption) (*ops.Operation, *Response, error) {
	var op ops.Operation
	resp, err := c.submitRaw(ctx, kind, provider, params, false, opts, &op)
	if err != nil {
		return nil, resp, err
	}
	return &op, resp, nil
}

// DryRunJSON asks what submitting kind on provider with params would do:
// the checks, the pre-flight reads and the call it would send. Nothing is
// stored or launched.
func (c *Client) DryRunJSON(ctx context.Context, kind, provider string, params json.RawMessage, opts ...SubmitOption) (*ops.Plan, *Response, error) {
	var plan ops.Plan
	resp, err := c.submitRaw(ctx, kind, provider, params, true, opts, &plan)
	if err != nil {
		return nil, resp, err
	}
	return &plan, resp, nil
}

func (c *Client) submitRaw(ctx context.Context, kind, provider string, params json.RawMessage, dryRun bool, opts []SubmitOption, out any) (*Response, error) {
	req := submitRequest{TaskType: kind, Provider: provider, Params: params, DryRun: dryRun}
	for _, o := range opts {
		o(&req)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	return c.do(ctx, http.MethodPost, "/v1/operations", nil, body, out)
}

// Events returns an operation's timeline, oldest step first.
func (c *Client) Events(ctx context.Context, id string) ([]ops.TimelineEvent, *Response, error) {
	var page struct {
		Events []ops.TimelineEvent `json:"events"`
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/operations/"+url.PathEscape(id)+"/events", nil, nil, &page)
	if err != nil {
		return nil, resp, err
	}
	if page.Events == nil {
		page.Events = []ops.TimelineEvent{}
	}
	return page.Events, resp, nil
}

// Approve lets an operation waiting in pending_approval go on. The token
// that submitted it cannot approve it (a 403 *Problem).
func (c *Client) Approve(ctx context.Context, id string) (*ops.Operation, *Response, error) {
	var op ops.Operation
	resp, err := c.do(ctx, http.MethodPost, "/v1/operations/"+url.PathEscape(id)+"/approve", nil, nil, &op)
	if err != nil {
		return nil, resp, err
	}
	return &op, resp, nil
}

// Reject ends an operation waiting in pending_approval, canceled. The
// rejection is queued: the returned operation is as it was before.
func (c *Client) Reject(ctx context.Context, id string) (*ops.Operation, *Response, error) {
	var op ops.Operation
	resp, err := c.do(ctx, http.MethodPost, "/v1/operations/"+url.PathEscape(id)+"/reject", nil, nil, &op)
	if err != nil {
		return nil, resp, err
	}
	return &op, resp, nil
}

// AccountPause is the answer of PauseAccount and ResumeAccount.
type AccountPause struct {
	Provider string `json:"provider"`
	Account  string `json:"account"`
	// Paused is whether the account's calls are now held back.
	Paused bool `json:"paused"`
	// WasPaused is whether it was paused before.
	WasPaused bool `json:"was_paused"`
}

// PauseAccount holds a provider account's calls back on every worker
// until it is resumed; its operations wait without using attempts.
func (c *Client) PauseAccount(ctx context.Context, provider, account string) (*AccountPause, *Response, error) {
	return c.pause(ctx, provider, account, "pause")
}

// ResumeAccount lets a paused account's calls go out again.
func (c *Client) ResumeAccount(ctx context.Context, provider, account string) (*AccountPause, *Response, error) {
	return c.pause(ctx, provider, account, "resume")
}

func (c *Client) pause(ctx context.Context, provider, account, verb string) (*AccountPause, *Response, error) {
	var out AccountPause
	resp, err := c.do(ctx, http.MethodPost, "/v1/providers/"+url.PathEscape(provider)+"/accounts/"+url.PathEscape(account)+"/"+verb, nil, nil, &out)
	if err != nil {
		return nil, resp, err
	}
	return &out, resp, nil
}

// Run is a runbook run as the API shows it. Raw is the whole answer, for
// the fields this type leaves out (an inline run's definition).
type Run struct {
	ID      string            `json:"id"`
	Runbook string            `json:"runbook"`
	State   string            `json:"state"`
	Inputs  map[string]any    `json:"inputs"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Error names the step that failed the run, and why.
	Error           string     `json:"error,omitempty"`
	Steps           []RunStep  `json:"steps"`
	SubmittedBy     *ops.Actor `json:"submitted_by,omitempty"`
	CanceledBy      *ops.Actor `json:"canceled_by,omitempty"`
	CancelRequested bool       `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	FinishedAt      *time.Time `json:"finished_at,omitempty"`

	Raw json.RawMessage `json:"-"`
}

// RunStep is one step of a run.
type RunStep struct {
	ID    string `json:"id"`
	Phase string `json:"phase"`
	// State is pending, skipped or refused before (or instead of) an
	// operation, then its operation's state.
	State       string `json:"state"`
	OperationID string `json:"operation_id,omitempty"`
	Error       string `json:"error,omitempty"`
	// Gate is a gate's message.
	Gate      string     `json:"gate,omitempty"`
	Deadline  *time.Time `json:"deadline,omitempty"`
	DecidedBy *ops.Actor `json:"decided_by,omitempty"`
}

// RunEvent is one entry of a run's timeline.
type RunEvent struct {
	At          time.Time  `json:"at"`
	Type        string     `json:"type"`
	Step        string     `json:"step,omitempty"`
	Phase       string     `json:"phase,omitempty"`
	State       string     `json:"state,omitempty"`
	OperationID string     `json:"operation_id,omitempty"`
	Actor       *ops.Actor `json:"actor,omitempty"`
	Message     string     `json:"message,omitempty"`
}

// RunOptions say how to start a run.
type RunOptions struct {
	Inputs map[string]any    `json:"inputs,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// CallbackURL receives the run's runbook.* webhooks.
	CallbackURL string `json:"callback_url,omitempty"`
	// IdempotencyKey: the same key from the same token answers the first
	// run instead of starting another.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// StartRun starts a run of the runbook the workers' config names.
func (c *Client) StartRun(ctx context.Context, runbook string, o RunOptions) (*Run, *Response, error) {
	body, err := json.Marshal(o)
	if err != nil {
		return nil, nil, err
	}
	return c.run(ctx, http.MethodPost, "/v1/runbooks/"+url.PathEscape(runbook)+"/runs", nil, body)
}

// StartInlineRun starts a run of the runbook definition given (JSON, as
// under runbooks: in the config); the API checks it as it checks a
// configured one.
func (c *Client) StartInlineRun(ctx context.Context, definition json.RawMessage, o RunOptions) (*Run, *Response, error) {
	body, err := json.Marshal(struct {
		Runbook json.RawMessage `json:"runbook"`
		RunOptions
	}{definition, o})
	if err != nil {
		return nil, nil, err
	}
	return c.run(ctx, http.MethodPost, "/v1/runs", nil, body)
}

// GetRun returns one run and its steps.
func (c *Client) GetRun(ctx context.Context, id string) (*Run, *Response, error) {
	return c.run(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id), nil, nil)
}

// ListRuns returns the newest runs, newest first (limit 1..200; 0: the
// API's default, 20).
func (c *Client) ListRuns(ctx context.Context, limit int) ([]*Run, *Response, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var page struct {
		Runs []json.RawMessage `json:"runs"`
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/runs", q, nil, &page)
	if err != nil {
		return nil, resp, err
	}
	out := make([]*Run, 0, len(page.Runs))
	for _, raw := range page.Runs {
		r, err := decodeRun(raw)
		if err != nil {
			return nil, resp, err
		}
		out = append(out, r)
	}
	return out, resp, nil
}

// RunEvents returns a run's timeline, oldest first.
func (c *Client) RunEvents(ctx context.Context, id string) ([]RunEvent, *Response, error) {
	var page struct {
		Events []RunEvent `json:"events"`
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id)+"/events", nil, nil, &page)
	if err != nil {
		return nil, resp, err
	}
	if page.Events == nil {
		page.Events = []RunEvent{}
	}
	return page.Events, resp, nil
}

// CancelRun cancels a run: its running steps are canceled, then (with
// compensate) its on_failure and finally steps run.
func (c *Client) CancelRun(ctx context.Context, id string, compensate bool) (*Run, *Response, error) {
	body, err := json.Marshal(map[string]bool{"compensate": compensate})
	if err != nil {
		return nil, nil, err
	}
	return c.run(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(id)+"/cancel", nil, body)
}

// DecideGate continues (cont) or aborts a run waiting at the gate step.
func (c *Client) DecideGate(ctx context.Context, id, step string, cont bool) (*Run, *Response, error) {
	verb := "abort"
	if cont {
		verb = "continue"
	}
	return c.run(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(id)+"/gates/"+url.PathEscape(step)+"/"+verb, nil, nil)
}

func (c *Client) run(ctx context.Context, method, path string, q url.Values, body []byte) (*Run, *Response, error) {
	var raw json.RawMessage
	resp, err := c.do(ctx, method, path, q, body, &raw)
	if err != nil {
		return nil, resp, err
	}
	r, err := decodeRun(raw)
	return r, resp, err
}

func decodeRun(raw json.RawMessage) (*Run, error) {
	var r Run
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	r.Raw = raw
	return &r, nil
}
