package ops

// The snapshot lifecycle kinds: restore a machine from its snapshot, and
// delete the snapshot (Leaseweb allows one per machine; a reinstall
// refuses a machine that has one).
const (
	// KindInstanceSnapshotRestore restores a public cloud instance from
	// its snapshot.
	KindInstanceSnapshotRestore = "instance:snapshot_restore"
	// KindVPSSnapshotRestore restores a VPS from its snapshot.
	KindVPSSnapshotRestore = "vps:snapshot_restore"
	// KindInstanceSnapshotDelete deletes a public cloud instance's
	// snapshot.
	KindInstanceSnapshotDelete = "instance:snapshot_delete"
	// KindVPSSnapshotDelete deletes a VPS's snapshot.
	KindVPSSnapshotDelete = "vps:snapshot_delete"
)

func init() {
	registerParams[InstanceSnapshotRestoreParams](
		`{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","snapshot_id":"95b0ae2e-4a8d-4b4d-9d5e-2f0a1c3b4d5e"}`,
		`{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","operation_id":"01938f4e-7a2b-7c3d-9e4f-5a6b7c8d9e0f"}`,
	)
	registerParams[VPSSnapshotRestoreParams](`{"vps_id":"999999999","snapshot_id":"95b0ae2e-4a8d-4b4d-9d5e-2f0a1c3b4d5e"}`)
	registerParams[InstanceSnapshotDeleteParams](`{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","snapshot_id":"95b0ae2e-4a8d-4b4d-9d5e-2f0a1c3b4d5e"}`)
	registerParams[VPSSnapshotDeleteParams](`{"vps_id":"999999999","snapshot_id":"95b0ae2e-4a8d-4b4d-9d5e-2f0a1c3b4d5e"}`)
}

// InstanceSnapshotRestoreParams are the params of
// instance:snapshot_restore on leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Restore instance snapshot")
type InstanceSnapshotRestoreParams struct {
	InstanceID string `json:"instance_id" jsonschema:"format=uuid"`
	// SnapshotID is the snapshot's id: the result of the instance:snapshot
	// operation that made it names it. Give it or OperationID.
	SnapshotID string `json:"snapshot_id,omitempty" jsonschema:"format=uuid"`
	// OperationID is the instance:snapshot operation that made the
	// snapshot. Give it or SnapshotID.
	OperationID string `json:"operation_id,omitempty" jsonschema:"format=uuid"`
}

// VPSSnapshotRestoreParams are the params of vps:snapshot_restore on
// leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/vps_v1.html ("Restore VPS snapshot")
type VPSSnapshotRestoreParams struct {
	VPSID string `json:"vps_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
	// SnapshotID is the snapshot's id: the result of the vps:snapshot
	// operation that made it names it. Give it or OperationID.
	SnapshotID string `json:"snapshot_id,omitempty" jsonschema:"format=uuid"`
	// OperationID is the vps:snapshot operation that made the snapshot.
	// Give it or SnapshotID.
	OperationID string `json:"operation_id,omitempty" jsonschema:"format=uuid"`
}

// InstanceSnapshotDeleteParams are the params of
// instance:snapshot_delete on leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Delete instance snapshot")
type InstanceSnapshotDeleteParams struct {
	InstanceID string `json:"instance_id" jsonschema:"format=uuid"`
	SnapshotID string `json:"snapshot_id" jsonschema:"format=uuid"`
}

// VPSSnapshotDeleteParams are the params of vps:snapshot_delete on
// leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/vps_v1.html ("Delete VPS snapshot")
type VPSSnapshotDeleteParams struct {
	VPSID      string `json:"vps_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
	SnapshotID string `json:"snapshot_id" jsonschema:"format=uuid"`
}

// SnapshotRestoreResult is the result of instance:snapshot_restore and
// vps:snapshot_restore: the machine as Leaseweb last reported it.
type SnapshotRestoreResult struct {
	MachineID  string `json:"machine_id"`
	SnapshotID string `json:"snapshot_id"`
	// StateBefore is the machine's state before the restore (RUNNING or
	// STOPPED): the restore ends when the machine reads it again.
	StateBefore string `json:"state_before"`
	// State is the machine's state now.
	State string `json:"state"`
	// ChangeSeen says whether the machine was seen leaving RUNNING during
	// the restore (a quick restore may not be).
	ChangeSeen bool `json:"change_seen"`
}

// SnapshotDeleteResult is the result of instance:snapshot_delete and
// vps:snapshot_delete.
type SnapshotDeleteResult struct {
	MachineID  string `json:"machine_id"`
	SnapshotID string `json:"snapshot_id"`
	// AlreadyGone is true when the snapshot did not exist when the
	// operation started (deleting it again is success, not failure).
	AlreadyGone bool `json:"already_gone"`
}

func validInstanceID(id string) error {
	switch {
	case id == "":
		return invalid("params.instance_id", "required")
	case !uuidRe.MatchString(id):
		return invalid("params.instance_id", "must be an instance UUID, got %q", id)
	}
	return nil
}

func validVPSID(id string) error {
	switch {
	case id == "":
		return invalid("params.vps_id", "required")
	case !serverIDRe.MatchString(id):
		return invalid("params.vps_id", "must be the numeric id of a VPS, got %q", id)
	}
	return nil
}

func validSnapshotID(id string) error {
	switch {
	case id == "":
		return invalid("params.snapshot_id", "required")
	case !uuidRe.MatchString(id):
		return invalid("params.snapshot_id", "must be a snapshot UUID, got %q", id)
	}
	return nil
}

func validMachineSnapshot(machine func(string) error, id, snapshot string) error {
	if err := machine(id); err != nil {
		return err
	}
	return validSnapshotID(snapshot)
}

// Validate checks the ids.
func (p *InstanceSnapshotRestoreParams) Validate() error {
	if err := validInstanceID(p.InstanceID); err != nil {
		return err
	}
	return oneRef("params.snapshot_id", p.SnapshotID, "params.operation_id", p.OperationID)
}

// Validate checks the ids.
func (p *VPSSnapshotRestoreParams) Validate() error {
	if err := validVPSID(p.VPSID); err != nil {
		return err
	}
	return oneRef("params.snapshot_id", p.SnapshotID, "params.operation_id", p.OperationID)
}

// SnapshotOperation is the snapshot operation named instead of the
// snapshot ("" when SnapshotID is given).
func (p *InstanceSnapshotRestoreParams) SnapshotOperation() string { return p.OperationID }

// SnapshotOperation is the snapshot operation named instead of the
// snapshot ("" when SnapshotID is given).
func (p *VPSSnapshotRestoreParams) SnapshotOperation() string { return p.OperationID }

// Validate checks the ids.
func (p *InstanceSnapshotDeleteParams) Validate() error {
	return validMachineSnapshot(validInstanceID, p.InstanceID, p.SnapshotID)
}

// Validate checks the ids.
func (p *VPSSnapshotDeleteParams) Validate() error {
	return validMachineSnapshot(validVPSID, p.VPSID, p.SnapshotID)
}

// Kind is KindInstanceSnapshotRestore.
func (*InstanceSnapshotRestoreParams) Kind() string { return KindInstanceSnapshotRestore }

// Kind is KindVPSSnapshotRestore.
func (*VPSSnapshotRestoreParams) Kind() string { return KindVPSSnapshotRestore }

// Kind is KindInstanceSnapshotDelete.
func (*InstanceSnapshotDeleteParams) Kind() string { return KindInstanceSnapshotDelete }

// Kind is KindVPSSnapshotDelete.
func (*VPSSnapshotDeleteParams) Kind() string { return KindVPSSnapshotDelete }

// Provider is ProviderLeaseweb.
func (*InstanceSnapshotRestoreParams) Provider() string { return ProviderLeaseweb }

// Provider is ProviderLeaseweb.
func (*VPSSnapshotRestoreParams) Provider() string { return ProviderLeaseweb }

// Provider is ProviderLeaseweb.
func (*InstanceSnapshotDeleteParams) Provider() string { return ProviderLeaseweb }

// Provider is ProviderLeaseweb.
func (*VPSSnapshotDeleteParams) Provider() string { return ProviderLeaseweb }

// Machine is the instance's id.
func (p *InstanceSnapshotRestoreParams) Machine() string { return p.InstanceID }

// Machine is the VPS's id.
func (p *VPSSnapshotRestoreParams) Machine() string { return p.VPSID }

// Machine is the instance's id.
func (p *InstanceSnapshotDeleteParams) Machine() string { return p.InstanceID }

// Machine is the VPS's id.
func (p *VPSSnapshotDeleteParams) Machine() string { return p.VPSID }

// Snapshot is the snapshot's id.
func (p *InstanceSnapshotRestoreParams) Snapshot() string { return p.SnapshotID }

// Snapshot is the snapshot's id.
func (p *VPSSnapshotRestoreParams) Snapshot() string { return p.SnapshotID }

// Snapshot is the snapshot's id.
func (p *InstanceSnapshotDeleteParams) Snapshot() string { return p.SnapshotID }

// Snapshot is the snapshot's id.
func (p *VPSSnapshotDeleteParams) Snapshot() string { return p.SnapshotID }

// NewResult returns a new *SnapshotRestoreResult.
func (*InstanceSnapshotRestoreParams) NewResult() any { return new(SnapshotRestoreResult) }

// NewResult returns a new *SnapshotRestoreResult.
func (*VPSSnapshotRestoreParams) NewResult() any { return new(SnapshotRestoreResult) }

// NewResult returns a new *SnapshotDeleteResult.
func (*InstanceSnapshotDeleteParams) NewResult() any { return new(SnapshotDeleteResult) }

// NewResult returns a new *SnapshotDeleteResult.
func (*VPSSnapshotDeleteParams) NewResult() any { return new(SnapshotDeleteResult) }
