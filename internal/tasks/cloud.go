package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	snapshot := poller.Policy{Initial: 10 * time.Second, Multiplier: 1.5, Max: time.Minute, Jitter: 0.1, Deadline: 2 * time.Hour}
	registerKind(Kind{Kind: TypeInstanceSnapshot, Provider: ops.ProviderLeaseweb, Policy: snapshot,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor { return NewLeasewebSnapshot(false, c.Leaseweb) })
		}})
	registerKind(Kind{Kind: TypeVPSSnapshot, Provider: ops.ProviderLeaseweb, Policy: snapshot,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor { return NewLeasewebSnapshot(true, c.Leaseweb) })
		}})
	registerKind(Kind{Kind: TypeASGScale, Provider: ops.ProviderLeaseweb,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor { return NewLeasewebASGScale(c.Leaseweb) })
		},
		Policy: poller.Policy{Initial: 5 * time.Second, Multiplier: 1.5, Max: 30 * time.Second, Jitter: 0.1, Deadline: time.Hour}})
	registerKind(Kind{Kind: TypeInstanceResize, Provider: ops.ProviderLeaseweb,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor { return NewLeasewebResize(c.Leaseweb) })
		},
		Policy: poller.Policy{Initial: 5 * time.Second, Multiplier: 1.5, Max: 30 * time.Second, Jitter: 0.1, Deadline: time.Hour}})
}

type lwClients map[string]*leaseweb.Client

func (c lwClients) get(account string) (*leaseweb.Client, error) {
	cl, ok := c[account]
	if !ok {
		return nil, Permanent(fmt.Errorf("account %q is not configured for provider leaseweb (providers.leaseweb.accounts)", account))
	}
	return cl, nil
}

// LeasewebSnapshot runs instance:snapshot (P *ops.InstanceSnapshotParams)
// and vps:snapshot (P *ops.VPSSnapshotParams).
type LeasewebSnapshot[P ops.Params] struct {
	machine string // leaseweb.MachineInstance or MachineVPS
	clients lwClients
	// fields reads the machine's id and the snapshot's settings.
	fields func(P) snapshotParams
}

// snapshotParams are what both snapshot kinds' params say.
type snapshotParams struct {
	ID, Name        string
	ReplaceExisting bool
}

// NewLeasewebSnapshot returns the executor for instances (vps false) or VPS.
func NewLeasewebSnapshot(vps bool, clients map[string]*leaseweb.Client) Executor {
	if vps {
		return Register[ops.VPSSnapshotParams](&LeasewebSnapshot[*ops.VPSSnapshotParams]{machine: leaseweb.MachineVPS, clients: clients,
			fields: func(p *ops.VPSSnapshotParams) snapshotParams {
				return snapshotParams{p.VPSID, p.Name, p.ReplaceExisting}
			}})
	}
	return Register[ops.InstanceSnapshotParams](&LeasewebSnapshot[*ops.InstanceSnapshotParams]{machine: leaseweb.MachineInstance, clients: clients,
		fields: func(p *ops.InstanceSnapshotParams) snapshotParams {
			return snapshotParams{p.InstanceID, p.Name, p.ReplaceExisting}
		}})
}

func (l *LeasewebSnapshot[P]) params(op Op[P]) (snapshotParams, string) {
	p := l.fields(op.Params)
	return p, p.ID
}

func (l *LeasewebSnapshot[P]) what() string {
	if l.machine == leaseweb.MachineVPS {
		return "VPS"
	}
	return "instance"
}

// LockKey keeps one operation per machine (snapshot, resize) at a time.
func (l *LeasewebSnapshot[P]) LockKey(op Op[P]) string {
	_, id := l.params(op)
	return "leaseweb:" + l.machine + ":" + id
}

// Launch checks the machine runs and has no snapshot (or replaces it, the
// deletion awaited), asks for the snapshot, and finds it by name: the
// create call has no documented answer body.
func (l *LeasewebSnapshot[P]) Launch(ctx context.Context, op Op[P], _ LaunchOptions) (string, error) {
	p, id := l.params(op)
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", err
	}
	m, err := c.PublicCloud.GetMachine(ctx, l.machine, id)
	if err != nil {
		return "", err
	}
	if m.State != leaseweb.InstanceRunning {
		return "", Permanent(fmt.Errorf("%s %s is %s: a snapshot needs it RUNNING", l.what(), id, m.State))
	}
	snaps, err := c.PublicCloud.ListSnapshots(ctx, l.machine, id)
	if err != nil {
		return "", err
	}
	for _, s := range snaps {
		if s.State == "DESTROYING" {
			return "", Wait(2*time.Second, fmt.Errorf("old snapshot %s is being deleted", s.ID))
		}
		if !p.ReplaceExisting {
			return "", Permanent(fmt.Errorf("%s %s already has snapshot %s (%q, %s) and only one is allowed: set replace_existing to replace it", l.what(), id, s.ID, s.DisplayName, s.State))
		}
		if err := c.PublicCloud.DeleteSnapshot(ctx, l.machine, id, s.ID); err != nil {
			return "", err
		}
		return "", Wait(time.Second, fmt.Errorf("deleting old snapshot %s first", s.ID))
	}
	if err := c.PublicCloud.CreateSnapshot(ctx, l.machine, id, p.Name); err != nil {
		return "", err
	}
	snaps, err = c.PublicCloud.ListSnapshots(ctx, l.machine, id)
	if err != nil {
		// The snapshot exists: the retry must reconcile (find it by name),
		// whatever this read's error says about itself.
		return "", fmt.Errorf("snapshot asked for, but listing it failed: %v", err)
	}
	for _, s := range snaps {
		if s.DisplayName == p.Name {
			return s.ID, nil
		}
	}
	return "", errors.New("snapshot created but not listed yet")
}

// Reconcile adopts the snapshot an interrupted launch created: same name,
// created since the attempt began (minus clock skew).
func (l *LeasewebSnapshot[P]) Reconcile(ctx context.Context, op Op[P], since time.Time) (string, bool, error) {
	p, id := l.params(op)
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", false, err
	}
	snaps, err := c.PublicCloud.ListSnapshots(ctx, l.machine, id)
	if err != nil {
		return "", false, err
	}
	for _, s := range snaps {
		created := leaseweb.ParseTime(s.Created)
		if s.DisplayName == p.Name && s.State != "DESTROYING" && !created.Before(since.Add(-2*time.Minute)) {
			return s.ID, true, nil
		}
	}
	return "", false, nil
}

// Poll reads the snapshot: READY succeeds; FAILED (or a snapshot gone)
// fails; anything else is still in progress.
func (l *LeasewebSnapshot[P]) Poll(ctx context.Context, op Op[P]) (PollResult, error) {
	_, id := l.params(op)
	c, err := l.clients.get(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	s, err := c.PublicCloud.GetSnapshot(ctx, l.machine, id, op.Handle)
	if err != nil {
		return PollResult{}, err
	}
	res := PollResult{Status: s.State}
	res.Result, _ = json.Marshal(ops.SnapshotResult{SnapshotID: s.ID, Name: s.DisplayName, State: s.State, Created: s.Created})
	switch s.State {
	case "READY":
		res.Done, res.Succeeded = true, true
	case "FAILED", "DESTROYED", "DESTROYING":
		res.Done, res.Error = true, fmt.Sprintf("snapshot %s of %s %s is %s", s.ID, l.what(), id, s.State)
	case "CREATING":
	default:
		res.Unknown = true
	}
	return res, nil
}

// LeasewebASGScale runs asg:scale.
type LeasewebASGScale struct{ clients lwClients }

// NewLeasewebASGScale returns the executor.
func NewLeasewebASGScale(clients map[string]*leaseweb.Client) Executor {
	return Register[ops.ASGScaleParams](&LeasewebASGScale{clients: clients})
}

// LockKey keeps one change per group at a time.
func (l *LeasewebASGScale) LockKey(op Op[*ops.ASGScaleParams]) string {
	return "leaseweb:asg:" + op.Params.ASGID
}

func amounts(g *leaseweb.AutoScalingGroup) *ops.ASGAmounts {
	return &ops.ASGAmounts{DesiredAmount: g.DesiredAmount, MinimumAmount: g.MinimumAmount, MaximumAmount: g.MaximumAmount,
		CPUThreshold: g.CPUThreshold, WarmupTime: g.WarmupTime, CooldownTime: g.CooldownTime, StartsAt: g.StartsAt, EndsAt: g.EndsAt}
}

// request decodes the operation's params and picks its account's client.
func (l *LeasewebASGScale) request(op Op[*ops.ASGScaleParams]) (*ops.ASGScaleParams, *leaseweb.Client, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return nil, nil, err
	}
	return op.Params, c, nil
}

// PreflightResult reads the group and checks the change against its type
// as Leaseweb documents it. It returns the group's type and amounts before
// the change, which the result keeps.
func (l *LeasewebASGScale) PreflightResult(ctx context.Context, op Op[*ops.ASGScaleParams]) (json.RawMessage, error) {
	p, c, err := l.request(op)
	if err != nil {
		return nil, err
	}
	g, err := c.PublicCloud.GetAutoScalingGroup(ctx, p.ASGID)
	if err != nil {
		return nil, err
	}
	if err := checkASGType(g.Type, p); err != nil {
		return nil, err
	}
	return json.Marshal(ops.ASGScaleResult{GroupType: g.Type, Before: amounts(g)})
}

// Launch updates the group (PreflightResult has checked the change).
func (l *LeasewebASGScale) Launch(ctx context.Context, op Op[*ops.ASGScaleParams], _ LaunchOptions) (string, error) {
	p, c, err := l.request(op)
	if err != nil {
		return "", err
	}
	req := &leaseweb.UpdateAutoScalingGroupRequest{DesiredAmount: p.DesiredAmount, MinimumAmount: p.MinimumAmount, MaximumAmount: p.MaximumAmount,
		CPUThreshold: p.CPUThreshold, WarmupTime: p.WarmupTime, CooldownTime: p.CooldownTime, StartsAt: p.StartsAt, EndsAt: p.EndsAt}
	if _, err := c.PublicCloud.UpdateAutoScalingGroup(ctx, p.ASGID, req); err != nil {
		return "", err
	}
	return p.ASGID, nil
}

// Reconcile adopts the change an interrupted launch made: when the group
// already holds every value the operation asks for, the earlier PUT took
// effect and is not sent again. The "before" amounts were saved with that
// attempt (PreflightResult).
func (l *LeasewebASGScale) Reconcile(ctx context.Context, op Op[*ops.ASGScaleParams], _ time.Time) (string, bool, error) {
	p, c, err := l.request(op)
	if err != nil {
		return "", false, err
	}
	g, err := c.PublicCloud.GetAutoScalingGroup(ctx, p.ASGID)
	if err != nil {
		return "", false, err
	}
	if !asgHolds(g, p) {
		return "", false, nil
	}
	return p.ASGID, true, nil
}

// asgHolds reports whether g already has every value p sets.
func asgHolds(g *leaseweb.AutoScalingGroup, p *ops.ASGScaleParams) bool {
	sameInt := func(want, have *int) bool { return want == nil || (have != nil && *have == *want) }
	sameTime := func(want, have *string) bool {
		if want == nil {
			return true
		}
		if have == nil {
			return false
		}
		w, err1 := time.Parse(time.RFC3339, *want)
		h, err2 := time.Parse(time.RFC3339, *have)
		if err1 != nil || err2 != nil {
			return *want == *have
		}
		return w.Equal(h)
	}
	return sameInt(p.DesiredAmount, g.DesiredAmount) && sameInt(p.MinimumAmount, g.MinimumAmount) &&
		sameInt(p.MaximumAmount, g.MaximumAmount) && sameInt(p.CPUThreshold, g.CPUThreshold) &&
		sameInt(p.WarmupTime, g.WarmupTime) && sameInt(p.CooldownTime, g.CooldownTime) &&
		sameTime(p.StartsAt, g.StartsAt) && sameTime(p.EndsAt, g.EndsAt)
}

// checkASGType applies Leaseweb's per-type rules: MANUAL and SCHEDULED groups scale by desired_amount;
// maximum_amount, cpu_threshold, warmup_time and cooldown_time exist for
// CPU_BASED groups only; starts_at/ends_at for SCHEDULED only.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Create Auto Scaling Group", "Update Auto Scaling Group")
func checkASGType(typ string, p *ops.ASGScaleParams) error {
	cpuOnly := map[string]*int{"maximum_amount": p.MaximumAmount, "cpu_threshold": p.CPUThreshold, "warmup_time": p.WarmupTime, "cooldown_time": p.CooldownTime}
	switch typ {
	case leaseweb.ASGManual, leaseweb.ASGScheduled:
		for _, f := range []string{"maximum_amount", "cpu_threshold", "warmup_time", "cooldown_time"} {
			if cpuOnly[f] != nil {
				return invalid("params."+f, "only for CPU_BASED groups; group %s is %s", p.ASGID, typ)
			}
		}
		if p.DesiredAmount == nil && (typ == leaseweb.ASGManual || p.StartsAt == nil) {
			return invalid("params.desired_amount", "required for %s groups", typ)
		}
		if typ == leaseweb.ASGManual && p.StartsAt != nil {
			return invalid("params.starts_at", "only for SCHEDULED groups; group %s is MANUAL", p.ASGID)
		}
	case leaseweb.ASGCPUBased:
		if p.DesiredAmount != nil {
			return invalid("params.desired_amount", "a CPU_BASED group sets its own size: change minimum_amount/maximum_amount")
		}
		if p.StartsAt != nil {
			return invalid("params.starts_at", "only for SCHEDULED groups; group %s is CPU_BASED", p.ASGID)
		}
	default:
		return Permanent(fmt.Errorf("group %s has unknown type %q", p.ASGID, typ))
	}
	return nil
}

// Poll waits for the group to settle (ACTIVE) and, for MANUAL groups, for
// its instance count to reach desired_amount.
func (l *LeasewebASGScale) Poll(ctx context.Context, op Op[*ops.ASGScaleParams]) (PollResult, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	g, err := c.PublicCloud.GetAutoScalingGroup(ctx, op.Handle)
	if err != nil {
		return PollResult{}, err
	}
	var launched ops.ASGScaleResult
	_ = json.Unmarshal(op.Result, &launched)
	res := PollResult{Status: g.State}
	result := ops.ASGScaleResult{GroupID: g.ID, GroupType: g.Type, State: g.State, Before: launched.Before, After: amounts(g)}
	switch g.State {
	case "ACTIVE":
		if g.Type == leaseweb.ASGManual && g.DesiredAmount != nil {
			inst, err := c.PublicCloud.ListAutoScalingGroupInstances(ctx, g.ID)
			if err != nil {
				return PollResult{}, err
			}
			n := len(inst)
			result.Instances = &n
			if len(inst) != *g.DesiredAmount {
				res.Progress, _ = json.Marshal(ops.Progress{Task: fmt.Sprintf("%d of %d instances", len(inst), *g.DesiredAmount)})
				break
			}
		}
		res.Done, res.Succeeded = true, true
	case "SCALING", "UPDATING", "CREATING", "CREATED":
	case "DESTROYING", "DESTROYED":
		res.Done, res.Error = true, fmt.Sprintf("auto scaling group %s is %s", g.ID, g.State)
	default:
		res.Unknown = true
	}
	res.Result, _ = json.Marshal(result)
	return res, nil
}

// LeasewebResize runs instance:resize.
type LeasewebResize struct{ clients lwClients }

// NewLeasewebResize returns the executor.
func NewLeasewebResize(clients map[string]*leaseweb.Client) Executor {
	return Register[ops.ResizeParams](&LeasewebResize{clients: clients})
}

// LockKey shares the instance's lock with snapshots.
func (l *LeasewebResize) LockKey(op Op[*ops.ResizeParams]) string {
	return "leaseweb:" + leaseweb.MachineInstance + ":" + op.Params.InstanceID
}

// Launch checks the target type is offered (instanceTypesUpdate) and
// changes it, unless the instance already has it.
func (l *LeasewebResize) Launch(ctx context.Context, op Op[*ops.ResizeParams], _ LaunchOptions) (string, error) {
	p := op.Params
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", err
	}
	m, err := c.PublicCloud.GetMachine(ctx, leaseweb.MachineInstance, p.InstanceID)
	if err != nil {
		return "", err
	}
	if m.Type == p.Type {
		return p.InstanceID, nil // already there (or a re-run after the change)
	}
	types, err := c.PublicCloud.ListInstanceTypesUpdate(ctx, p.InstanceID)
	if err != nil {
		return "", err
	}
	var allowed []string
	for _, t := range types {
		allowed = append(allowed, t.Name)
	}
	if !slices.Contains(allowed, p.Type) {
		return "", &ValidationError{Field: "params.type", Message: fmt.Sprintf("%s is not offered for instance %s (type %s); allowed: %s", p.Type, p.InstanceID, m.Type, strings.Join(allowed, ", "))}
	}
	if _, err := c.PublicCloud.UpdateInstanceType(ctx, p.InstanceID, p.Type); err != nil {
		return "", err
	}
	return p.InstanceID, nil
}

// Reconcile adopts the type change an interrupted launch made: the
// instance already has the target type, or is between stable states
// (STOPPING, STARTING, ...), which after our own PUT means the change is
// under way. Sending the PUT again would restart it, or be refused.
// The instance's lock (shared with snapshots) keeps other operations of
// ours off it meanwhile; a change begun outside opsworker in that window
// would be adopted, and the poll then waits for the target type until the
// deadline.
func (l *LeasewebResize) Reconcile(ctx context.Context, op Op[*ops.ResizeParams], _ time.Time) (string, bool, error) {
	p := op.Params
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", false, err
	}
	m, err := c.PublicCloud.GetMachine(ctx, leaseweb.MachineInstance, p.InstanceID)
	if err != nil {
		return "", false, err
	}
	if m.Type == p.Type || (m.State != leaseweb.InstanceRunning && m.State != leaseweb.InstanceStopped) {
		return p.InstanceID, true, nil
	}
	return "", false, nil
}

// Poll waits until the instance is stable (RUNNING or STOPPED) with the
// target type; FAILED fails.
func (l *LeasewebResize) Poll(ctx context.Context, op Op[*ops.ResizeParams]) (PollResult, error) {
	p := op.Params
	c, err := l.clients.get(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	m, err := c.PublicCloud.GetMachine(ctx, leaseweb.MachineInstance, p.InstanceID)
	if err != nil {
		return PollResult{}, err
	}
	res := PollResult{Status: m.State}
	res.Result, _ = json.Marshal(ops.ResizeResult{InstanceID: m.ID, Type: m.Type, TargetType: p.Type, State: m.State})
	switch {
	case m.State == leaseweb.InstanceFailed:
		res.Done, res.Error = true, fmt.Sprintf("instance %s is FAILED (type %s, target %s)", m.ID, m.Type, p.Type)
	case (m.State == leaseweb.InstanceRunning || m.State == leaseweb.InstanceStopped) && m.Type == p.Type:
		res.Done, res.Succeeded = true, true
	}
	return res, nil
}
