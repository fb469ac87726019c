package ops

// The types below are the result and progress objects an operation
// reports (Operation.Result and Operation.Progress, and the same fields in
// webhook events). The worker builds them from the provider's answers; a
// params type's NewResult says which one its operations report. Result
// and progress objects may gain fields in later versions: decode them
// leniently.

// ResultReporter is a params type whose operations report a typed result.
// Every params type in this package is one.
type ResultReporter interface {
	// NewResult returns a pointer to a new zero value of the result type,
	// to decode Operation.Result into.
	NewResult() any
}

// Progress is how far a running job is, as the provider reports it
// (server:install and server:rescue, cdn:purge on edgio, asg:scale while
// instances start).
type Progress struct {
	// Percentage is the share of the job done, 0 to 100.
	Percentage int `json:"percentage" jsonschema:"minimum=0,maximum=100"`
	// Task names the step under way (the first unfinished task of a
	// server job), or counts what is done ("3/5 complete").
	Task string `json:"task"`
	// Finished counts the server job's finished tasks (server jobs only).
	Finished *int `json:"finished,omitempty"`
	// Total counts the server job's tasks (server jobs only).
	Total *int `json:"total,omitempty"`
}

// ServerJobResult is the result of server:install and server:rescue: the
// Leaseweb job as it ended.
type ServerJobResult struct {
	// JobUUID is Leaseweb's id of the job.
	JobUUID string `json:"job_uuid"`
	// Type is the job's type (install, rescueMode).
	Type string `json:"type"`
	// Status is the job's final status (FINISHED, FAILED, CANCELED,
	// EXPIRED).
	Status string `json:"status"`
	// ServerID is the dedicated server's id.
	ServerID  string `json:"server_id"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	// Progress counts the job's tasks by state.
	Progress ServerJobTasks `json:"progress"`
}

// ServerJobTasks counts a Leaseweb server job's tasks by state, as
// Leaseweb reports them.
type ServerJobTasks struct {
	Canceled   int `json:"canceled"`
	Expired    int `json:"expired"`
	Failed     int `json:"failed"`
	Finished   int `json:"finished"`
	InProgress int `json:"inprogress"`
	Pending    int `json:"pending"`
	Percentage int `json:"percentage"`
	Total      int `json:"total"`
	Waiting    int `json:"waiting"`
}

// SnapshotResult is the result of instance:snapshot and vps:snapshot: the
// snapshot as Leaseweb last reported it.
type SnapshotResult struct {
	// SnapshotID is Leaseweb's id of the snapshot.
	SnapshotID string `json:"snapshot_id"`
	// Name is the snapshot's display name.
	Name string `json:"name"`
	// State is the snapshot's state (CREATING, READY, FAILED…).
	State string `json:"state"`
	// Created is when Leaseweb created it.
	Created string `json:"created"`
}

// ASGScaleResult is the result of asg:scale: the group's type and amounts
// before the change, and once polled its state and amounts after.
type ASGScaleResult struct {
	// GroupType is MANUAL, SCHEDULED or CPU_BASED.
	GroupType string `json:"group_type"`
	// Before holds the amounts read before the change.
	Before *ASGAmounts `json:"before" jsonschema:"nullable"`
	// GroupID is the auto scaling group's id (once polled).
	GroupID string `json:"group_id,omitempty"`
	// State is the group's state (once polled).
	State string `json:"state,omitempty"`
	// After holds the amounts the group reports (once polled).
	After *ASGAmounts `json:"after,omitempty"`
	// Instances counts a MANUAL group's instances (once polled while
	// ACTIVE).
	Instances *int `json:"instances,omitempty"`
}

// ASGAmounts are an auto scaling group's amounts and schedule; null where
// the group's type has none.
type ASGAmounts struct {
	DesiredAmount *int    `json:"desired_amount" jsonschema:"nullable"`
	MinimumAmount *int    `json:"minimum_amount" jsonschema:"nullable"`
	MaximumAmount *int    `json:"maximum_amount" jsonschema:"nullable"`
	CPUThreshold  *int    `json:"cpu_threshold" jsonschema:"nullable"`
	WarmupTime    *int    `json:"warmup_time" jsonschema:"nullable"`
	CooldownTime  *int    `json:"cooldown_time" jsonschema:"nullable"`
	StartsAt      *string `json:"starts_at" jsonschema:"nullable"`
	EndsAt        *string `json:"ends_at" jsonschema:"nullable"`
}

// ResizeResult is the result of instance:resize: the instance's type and
// state as Leaseweb last reported them.
type ResizeResult struct {
	InstanceID string `json:"instance_id"`
	// Type is the instance's type now.
	Type string `json:"type"`
	// TargetType is the type asked for.
	TargetType string `json:"target_type"`
	// State is the instance's state.
	State string `json:"state"`
}

// UCDNPurgeResult is the result of cdn:purge on ucdn: the purge job as it
// ended.
type UCDNPurgeResult struct {
	// JobID is UCDN's id of the purge job.
	JobID string `json:"job_id"`
	// Status is the job's final status.
	Status string `json:"status"`
	// Files are the purged files, as absolute URLs on the zone's CDN
	// domain.
	Files []string `json:"files" jsonschema:"nullable"`
	// CreatedAt is when UCDN created the job (Unix seconds).
	CreatedAt int64 `json:"created_at"`
}

// EdgioPurgeResult is the result of cdn:purge on edgio: each purge request
// as Edgio last reported it.
type EdgioPurgeResult struct {
	Purges []EdgioPurge `json:"purges"`
}

// EdgioPurge is one Edgio purge request, in Edgio's own field names.
type EdgioPurge struct {
	ID           string  `json:"Id"`
	MediaPath    string  `json:"MediaPath,omitempty"`
	MediaType    int     `json:"MediaType,omitempty"`
	InDate       string  `json:"InDate,omitempty"`
	CompleteDate *string `json:"CompleteDate"`
}

// InvalidateResult is the result of cdn:invalidate on leaseweb: the
// invalidation action as Leaseweb last reported it.
type InvalidateResult struct {
	// ActionID is Leaseweb's id of the action.
	ActionID string `json:"action_id"`
	// InvalidationID is the invalidation's id ("" until Leaseweb names
	// it).
	InvalidationID string `json:"invalidation_id"`
	// Status is the action's status.
	Status string `json:"status"`
	// URLStatus is each URL's outcome (null until Leaseweb reports it).
	URLStatus []InvalidationURLStatus `json:"url_status" jsonschema:"nullable"`
}

// InvalidationURLStatus is one URL's outcome in a Leaseweb invalidation.
type InvalidationURLStatus struct {
	DistributionGroupID string `json:"distribution_group_id"`
	URL                 string `json:"url,omitempty"`
	Status              string `json:"status"`
	Message             string `json:"message"`
}

// DistributionResult is the result of cdn:distribution_ensure on ionos:
// the distribution as IONOS last reported it.
type DistributionResult struct {
	DistributionID string `json:"distribution_id"`
	// State is the distribution's state (AVAILABLE once deployed).
	State string `json:"state"`
	// Message is IONOS's message about the state, if any.
	Message string `json:"message"`
	Domain  string `json:"domain"`
}

// NewResult returns a new *UCDNPurgeResult.
func (*UCDNPurgeParams) NewResult() any { return new(UCDNPurgeResult) }

// NewResult returns a new *EdgioPurgeResult.
func (*EdgioPurgeParams) NewResult() any { return new(EdgioPurgeResult) }

// NewResult returns a new *InvalidateResult.
func (*InvalidateParams) NewResult() any { return new(InvalidateResult) }

// NewResult returns a new *DistributionResult.
func (*DistributionParams) NewResult() any { return new(DistributionResult) }

// NewResult returns a new *SnapshotResult.
func (*InstanceSnapshotParams) NewResult() any { return new(SnapshotResult) }

// NewResult returns a new *SnapshotResult.
func (*VPSSnapshotParams) NewResult() any { return new(SnapshotResult) }

// NewResult returns a new *ASGScaleResult.
func (*ASGScaleParams) NewResult() any { return new(ASGScaleResult) }

// NewResult returns a new *ResizeResult.
func (*ResizeParams) NewResult() any { return new(ResizeResult) }

// NewResult returns a new *ServerJobResult.
func (*ServerInstallParams) NewResult() any { return new(ServerJobResult) }

// NewResult returns a new *ServerJobResult.
func (*ServerRescueParams) NewResult() any { return new(ServerJobResult) }
