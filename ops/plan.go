package ops

import "encoding/json"

// What a dry run found the operation would do (Plan.Outcome).
const (
	PlanLaunch = "launch"
	PlanWait   = "wait"
	PlanFail   = "fail"
)

// Plan is the answer of a dry run: what submitting the operation would do
// now, found without launching anything. Secrets read REDACTED.
type Plan struct {
	Kind     string `json:"kind"`
	Provider string `json:"provider"`
	Account  string `json:"account"`
	Resource string `json:"resource"`
	// Params as they would be stored, secret values redacted.
	Params json.RawMessage `json:"params"`
	// Outcome is launch, wait or fail, and Reason says why it would wait
	// or fail.
	Outcome string `json:"outcome" jsonschema:"enum=launch,enum=wait,enum=fail"`
	Reason  string `json:"reason,omitempty"`
	// Checks are what the dry run checked, in order.
	Checks []PlanCheck `json:"checks"`
	// Calls are the provider calls: the reads the pre-flight made (sent
	// true) and the first write the launch would send (sent false). Writes
	// after it depend on its answer and are not listed.
	Calls []PlanCall `json:"calls"`
	// NeedsApproval says the operation would wait in pending_approval.
	NeedsApproval bool `json:"needs_approval,omitempty"`
}

// PlanCheck is one check of a dry run.
type PlanCheck struct {
	Name string `json:"name"`
	// OK is false when the check would hold the operation back or end it.
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// PlanCall is one provider call of a dry run.
type PlanCall struct {
	Op     string          `json:"op"`
	Method string          `json:"method"`
	URL    string          `json:"url"`
	Body   json.RawMessage `json:"body,omitempty"`
	Sent   bool            `json:"sent"`
}
