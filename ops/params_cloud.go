package ops

import (
	"regexp"
	"strings"
	"time"
)

func init() {
	registerParams[InstanceSnapshotParams](
		`{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","name":"nightly","replace_existing":true}`,
	)
	registerParams[VPSSnapshotParams](
		`{"vps_id":"4242","name":"before-upgrade"}`,
	)
	registerParams[ASGScaleParams](
		`{"asg_id":"90b9f2cc-c655-40ea-b01a-58c00e175c96","desired_amount":3}`,
		`{"asg_id":"90b9f2cc-c655-40ea-b01a-58c00e175c96","minimum_amount":2,"maximum_amount":6,"cpu_threshold":70,"warmup_time":300,"cooldown_time":600}`,
		`{"asg_id":"90b9f2cc-c655-40ea-b01a-58c00e175c96","desired_amount":5,"starts_at":"2026-12-01T08:00:00Z","ends_at":"2026-12-01T20:00:00Z"}`,
	)
	registerParams[ResizeParams](
		`{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","type":"lsw.m3.xlarge"}`,
	)
}

var (
	uuidRe         = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	instanceTypeRe = regexp.MustCompile(`^lsw\.[a-z0-9]+\.[a-z0-9]+$`)
)

// InstanceSnapshotParams are the params of instance:snapshot on
// leaseweb.
type InstanceSnapshotParams struct {
	// InstanceID is the public cloud instance's UUID.
	InstanceID string `json:"instance_id" jsonschema:"format=uuid"`
	// Name is the snapshot's display name; the snapshot is found by it.
	Name string `json:"name" jsonschema:"minLength=1,maxLength=255"`
	// ReplaceExisting deletes the machine's snapshot first (only one is
	// allowed per machine) and waits for the deletion.
	ReplaceExisting bool `json:"replace_existing,omitempty"`
}

// VPSSnapshotParams are the params of vps:snapshot on leaseweb.
type VPSSnapshotParams struct {
	// VPSID is the VPS's numeric id.
	VPSID string `json:"vps_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
	// Name is the snapshot's display name; the snapshot is found by it.
	Name string `json:"name" jsonschema:"minLength=1,maxLength=255"`
	// ReplaceExisting deletes the machine's snapshot first (only one is
	// allowed per machine) and waits for the deletion.
	ReplaceExisting bool `json:"replace_existing,omitempty"`
}

// Validate checks the params as Leaseweb documents them.
func (p *InstanceSnapshotParams) Validate() error {
	if err := validInstanceID(p.InstanceID); err != nil {
		return err
	}
	return validSnapshotName(p.Name)
}

// Validate checks the params as Leaseweb documents them.
func (p *VPSSnapshotParams) Validate() error {
	if err := validVPSID(p.VPSID); err != nil {
		return err
	}
	return validSnapshotName(p.Name)
}

func validSnapshotName(name string) error {
	switch {
	case name == "":
		return invalid("params.name", "required")
	case len(name) > 255 || strings.ContainsFunc(name, isControlOrBreak):
		return invalid("params.name", "must be 1-255 characters without control characters")
	}
	return nil
}

// ASGScaleParams are the params of asg:scale; give at least one change.
type ASGScaleParams struct {
	ASGID         string  `json:"asg_id" jsonschema:"format=uuid"`
	DesiredAmount *int    `json:"desired_amount,omitempty" jsonschema:"minimum=1,maximum=1000"`
	MinimumAmount *int    `json:"minimum_amount,omitempty" jsonschema:"minimum=1,maximum=1000"`
	MaximumAmount *int    `json:"maximum_amount,omitempty" jsonschema:"minimum=1,maximum=1000"`
	CPUThreshold  *int    `json:"cpu_threshold,omitempty" jsonschema:"minimum=1,maximum=100"`
	WarmupTime    *int    `json:"warmup_time,omitempty" jsonschema:"minimum=60,maximum=900"`
	CooldownTime  *int    `json:"cooldown_time,omitempty" jsonschema:"minimum=300,maximum=900"`
	StartsAt      *string `json:"starts_at,omitempty" jsonschema:"format=date-time"`
	EndsAt        *string `json:"ends_at,omitempty" jsonschema:"format=date-time"`
}

// Validate checks the params as Leaseweb documents them.
func (p *ASGScaleParams) Validate() error {
	if err := validASGID(p.ASGID); err != nil {
		return err
	}
	if p.DesiredAmount == nil && p.MinimumAmount == nil && p.MaximumAmount == nil && p.CPUThreshold == nil &&
		p.WarmupTime == nil && p.CooldownTime == nil && p.StartsAt == nil && p.EndsAt == nil {
		return invalid("params", "give at least one of desired_amount, minimum_amount, maximum_amount, cpu_threshold, warmup_time, cooldown_time, starts_at/ends_at")
	}
	if err := validAmounts(p.DesiredAmount, p.MinimumAmount, p.MaximumAmount, p.CPUThreshold, p.WarmupTime, p.CooldownTime); err != nil {
		return err
	}
	if (p.StartsAt == nil) != (p.EndsAt == nil) {
		return invalid("params.ends_at", "starts_at and ends_at change together")
	}
	if p.StartsAt != nil {
		return validTimes(*p.StartsAt, *p.EndsAt)
	}
	return nil
}

func validASGID(id string) error {
	switch {
	case id == "":
		return invalid("params.asg_id", "required")
	case !uuidRe.MatchString(id):
		return invalid("params.asg_id", "must be an auto scaling group UUID, got %q", id)
	}
	return nil
}

// validAmounts checks an auto scaling group's amounts against the ranges
// Leaseweb documents (nil: not given).
func validAmounts(desired, minimum, maximum, cpu, warmup, cooldown *int) error {
	for _, r := range []struct {
		field  string
		v      *int
		lo, hi int
	}{
		{"desired_amount", desired, 1, 1000}, {"minimum_amount", minimum, 1, 1000}, {"maximum_amount", maximum, 1, 1000},
		{"cpu_threshold", cpu, 1, 100}, {"warmup_time", warmup, 60, 900}, {"cooldown_time", cooldown, 300, 900},
	} {
		if r.v != nil && (*r.v < r.lo || *r.v > r.hi) {
			return invalid("params."+r.field, "must be %d..%d, got %d", r.lo, r.hi, *r.v)
		}
	}
	if minimum != nil && maximum != nil && *minimum > *maximum {
		return invalid("params.minimum_amount", "must not exceed maximum_amount")
	}
	return nil
}

// validTimes checks a schedule: RFC 3339 times, ends after starts.
func validTimes(startsAt, endsAt string) error {
	s, err := time.Parse(time.RFC3339, startsAt)
	if err != nil {
		return invalid("params.starts_at", "must be an RFC 3339 time (UTC), e.g. 2026-12-01T08:00:00Z")
	}
	e, err := time.Parse(time.RFC3339, endsAt)
	if err != nil {
		return invalid("params.ends_at", "must be an RFC 3339 time (UTC), e.g. 2026-12-01T20:00:00Z")
	}
	if !e.After(s) {
		return invalid("params.ends_at", "must be after starts_at")
	}
	return nil
}

// ResizeParams are the params of instance:resize.
type ResizeParams struct {
	InstanceID string `json:"instance_id" jsonschema:"format=uuid"`
	Type       string `json:"type" jsonschema:"pattern=^lsw\\.[a-z0-9]+\\.[a-z0-9]+$"`
}

// Validate checks the params as Leaseweb documents them.
func (p *ResizeParams) Validate() error {
	if err := validInstanceID(p.InstanceID); err != nil {
		return err
	}
	switch {
	case p.Type == "":
		return invalid("params.type", "required (e.g. lsw.m3.xlarge)")
	case !instanceTypeRe.MatchString(p.Type):
		return invalid("params.type", "must be a Leaseweb instance type such as lsw.m3.xlarge, got %q", p.Type)
	}
	return nil
}

// Kind is KindInstanceSnapshot.
func (*InstanceSnapshotParams) Kind() string { return KindInstanceSnapshot }

// Provider is ProviderLeaseweb.
func (*InstanceSnapshotParams) Provider() string { return ProviderLeaseweb }

// Kind is KindVPSSnapshot.
func (*VPSSnapshotParams) Kind() string { return KindVPSSnapshot }

// Provider is ProviderLeaseweb.
func (*VPSSnapshotParams) Provider() string { return ProviderLeaseweb }

// Kind is KindASGScale.
func (*ASGScaleParams) Kind() string { return KindASGScale }

// Provider is ProviderLeaseweb.
func (*ASGScaleParams) Provider() string { return ProviderLeaseweb }

// Kind is KindInstanceResize.
func (*ResizeParams) Kind() string { return KindInstanceResize }

// Provider is ProviderLeaseweb.
func (*ResizeParams) Provider() string { return ProviderLeaseweb }
