package ops

import (
	"strings"
)

// The auto scaling group lifecycle kinds (asg:scale changes one).
const (
	// KindASGCreate creates an auto scaling group.
	KindASGCreate = "asg:create"
	// KindASGDelete deletes an auto scaling group.
	KindASGDelete = "asg:delete"
)

func init() {
	registerParams[ASGCreateParams](
		`{"type":"MANUAL","instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","reference":"web-pool","desired_amount":3}`,
		`{"type":"CPU_BASED","instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","reference":"api-pool","minimum_amount":2,"maximum_amount":6,"cpu_threshold":70,"warmup_time":300,"cooldown_time":600}`,
		`{"type":"SCHEDULED","instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","reference":"sale-pool","desired_amount":5,"starts_at":"2026-12-01T08:00:00Z","ends_at":"2026-12-01T20:00:00Z"}`,
	)
	registerParams[ASGDeleteParams](`{"asg_id":"90b9f2cc-c655-40ea-b01a-58c00e175c96"}`)
}

// ASGCreateParams are the params of asg:create on leaseweb. Which
// amounts a group takes depends on its type, as Leaseweb documents it:
// MANUAL needs desired_amount; SCHEDULED desired_amount, starts_at and
// ends_at; CPU_BASED minimum_amount, maximum_amount, cpu_threshold,
// warmup_time and cooldown_time. The reference names the group: a lost
// answer is found again by it, so it must be unique.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Create Auto Scaling Group")
type ASGCreateParams struct {
	Type string `json:"type" jsonschema:"enum=MANUAL,enum=SCHEDULED,enum=CPU_BASED"`
	// InstanceID is the base instance (RUNNING or STOPPED).
	InstanceID    string  `json:"instance_id" jsonschema:"format=uuid"`
	Reference     string  `json:"reference" jsonschema:"minLength=1,maxLength=255"`
	DesiredAmount *int    `json:"desired_amount,omitempty" jsonschema:"minimum=1,maximum=1000"`
	StartsAt      *string `json:"starts_at,omitempty" jsonschema:"format=date-time"`
	EndsAt        *string `json:"ends_at,omitempty" jsonschema:"format=date-time"`
	MinimumAmount *int    `json:"minimum_amount,omitempty" jsonschema:"minimum=1,maximum=1000"`
	MaximumAmount *int    `json:"maximum_amount,omitempty" jsonschema:"minimum=1,maximum=1000"`
	CPUThreshold  *int    `json:"cpu_threshold,omitempty" jsonschema:"minimum=1,maximum=100"`
	WarmupTime    *int    `json:"warmup_time,omitempty" jsonschema:"minimum=60,maximum=900"`
	CooldownTime  *int    `json:"cooldown_time,omitempty" jsonschema:"minimum=300,maximum=900"`
}

// ASGDeleteParams are the params of asg:delete on leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Delete Auto Scaling Group")
type ASGDeleteParams struct {
	ASGID string `json:"asg_id" jsonschema:"format=uuid"`
}

// ASGCreateResult is the result of asg:create: the group as Leaseweb
// last reported it.
type ASGCreateResult struct {
	GroupID   string      `json:"group_id"`
	Type      string      `json:"type"`
	State     string      `json:"state"`
	Reference string      `json:"reference"`
	Amounts   *ASGAmounts `json:"amounts"`
}

// ASGDeleteResult is the result of asg:delete.
type ASGDeleteResult struct {
	GroupID string `json:"group_id"`
	// AlreadyGone is true when the group did not exist when the operation
	// started (deleting it again is success, not failure).
	AlreadyGone bool `json:"already_gone"`
}

// Validate checks the params per type as Leaseweb documents them.
func (p *ASGCreateParams) Validate() error {
	if err := validInstanceID(p.InstanceID); err != nil {
		return err
	}
	if p.Reference == "" || len(p.Reference) > 255 || strings.ContainsFunc(p.Reference, isControlOrBreak) {
		return invalid("params.reference", "required; 1-255 characters without control characters")
	}
	if err := validAmounts(p.DesiredAmount, p.MinimumAmount, p.MaximumAmount, p.CPUThreshold, p.WarmupTime, p.CooldownTime); err != nil {
		return err
	}
	cpu := map[string]bool{"minimum_amount": p.MinimumAmount != nil, "maximum_amount": p.MaximumAmount != nil,
		"cpu_threshold": p.CPUThreshold != nil, "warmup_time": p.WarmupTime != nil, "cooldown_time": p.CooldownTime != nil}
	switch p.Type {
	case "MANUAL", "SCHEDULED":
		for _, f := range []string{"minimum_amount", "maximum_amount", "cpu_threshold", "warmup_time", "cooldown_time"} {
			if cpu[f] {
				return invalid("params."+f, "only for CPU_BASED groups")
			}
		}
		if p.DesiredAmount == nil {
			return invalid("params.desired_amount", "required for %s groups", p.Type)
		}
		if p.Type == "MANUAL" && (p.StartsAt != nil || p.EndsAt != nil) {
			return invalid("params.starts_at", "only for SCHEDULED groups")
		}
		if p.Type == "SCHEDULED" {
			return validSchedule(p.StartsAt, p.EndsAt)
		}
	case "CPU_BASED":
		for _, f := range []string{"minimum_amount", "maximum_amount", "cpu_threshold", "warmup_time", "cooldown_time"} {
			if !cpu[f] {
				return invalid("params."+f, "required for CPU_BASED groups")
			}
		}
		if p.DesiredAmount != nil {
			return invalid("params.desired_amount", "a CPU_BASED group sets its own size: give minimum_amount and maximum_amount")
		}
		if p.StartsAt != nil || p.EndsAt != nil {
			return invalid("params.starts_at", "only for SCHEDULED groups")
		}
	case "":
		return invalid("params.type", "required: MANUAL, SCHEDULED or CPU_BASED")
	default:
		return invalid("params.type", "must be MANUAL, SCHEDULED or CPU_BASED, got %q", p.Type)
	}
	return nil
}

// validSchedule checks a SCHEDULED group's times: both, RFC 3339, ends
// after starts.
func validSchedule(startsAt, endsAt *string) error {
	if startsAt == nil {
		return invalid("params.starts_at", "required for SCHEDULED groups")
	}
	if endsAt == nil {
		return invalid("params.ends_at", "required for SCHEDULED groups")
	}
	return validTimes(*startsAt, *endsAt)
}

// Validate checks the group id.
func (p *ASGDeleteParams) Validate() error { return validASGID(p.ASGID) }

// Kind is KindASGCreate.
func (*ASGCreateParams) Kind() string { return KindASGCreate }

// Kind is KindASGDelete.
func (*ASGDeleteParams) Kind() string { return KindASGDelete }

// Provider is ProviderLeaseweb.
func (*ASGCreateParams) Provider() string { return ProviderLeaseweb }

// Provider is ProviderLeaseweb.
func (*ASGDeleteParams) Provider() string { return ProviderLeaseweb }

// NewResult returns a new *ASGCreateResult.
func (*ASGCreateParams) NewResult() any { return new(ASGCreateResult) }

// NewResult returns a new *ASGDeleteResult.
func (*ASGDeleteParams) NewResult() any { return new(ASGDeleteResult) }
