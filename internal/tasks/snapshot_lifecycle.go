package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	restore := poller.Policy{Initial: 10 * time.Second, Multiplier: 1.5, Max: time.Minute, Jitter: 0.1, Deadline: 2 * time.Hour}
	remove := poller.Policy{Initial: 5 * time.Second, Multiplier: 1.5, Max: 30 * time.Second, Jitter: 0.1, Deadline: 30 * time.Minute}
	registerKind(Kind{Kind: ops.KindInstanceSnapshotRestore, Provider: ops.ProviderLeaseweb, Policy: restore,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.InstanceSnapshotRestoreParams](&LeasewebSnapshotRestore[*ops.InstanceSnapshotRestoreParams]{machine: leaseweb.MachineInstance, clients: c.Leaseweb})
			})
		}})
	registerKind(Kind{Kind: ops.KindVPSSnapshotRestore, Provider: ops.ProviderLeaseweb, Policy: restore,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.VPSSnapshotRestoreParams](&LeasewebSnapshotRestore[*ops.VPSSnapshotRestoreParams]{machine: leaseweb.MachineVPS, clients: c.Leaseweb})
			})
		}})
	registerKind(Kind{Kind: ops.KindInstanceSnapshotDelete, Provider: ops.ProviderLeaseweb, Policy: remove,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.InstanceSnapshotDeleteParams](&LeasewebSnapshotDelete[*ops.InstanceSnapshotDeleteParams]{machine: leaseweb.MachineInstance, clients: c.Leaseweb})
			})
		}})
	registerKind(Kind{Kind: ops.KindVPSSnapshotDelete, Provider: ops.ProviderLeaseweb, Policy: remove,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.VPSSnapshotDeleteParams](&LeasewebSnapshotDelete[*ops.VPSSnapshotDeleteParams]{machine: leaseweb.MachineVPS, clients: c.Leaseweb})
			})
		}})
}

// SnapshotParams are the params of a kind that acts on a machine's
// snapshot.
type SnapshotParams interface {
	ops.Params
	Machine() string
	Snapshot() string
}

// machineName is "instance" or "VPS", for messages.
func machineName(machine string) string {
	if machine == leaseweb.MachineVPS {
		return "VPS"
	}
	return "instance"
}

// isNotFound reports a provider's 404.
func isNotFound(err error) bool {
	var perr *providers.Error
	return errors.As(err, &perr) && perr.StatusCode == 404
}

// LeasewebSnapshotRestore runs instance:snapshot_restore and
// vps:snapshot_restore: pre-flight checks the snapshot is READY, the PUT
// starts the restore, and the machine reading RUNNING again ends it.
//
// A second restore would throw away what changed on the machine since the
// first, so a restore whose answer was lost is adopted while the machine
// is mid-change and never sent again when it reads RUNNING: the
// operation fails and says so.
type LeasewebSnapshotRestore[P RestoreParams] struct {
	machine string
	clients lwClients
}

// RestoreParams are the params of a restore kind: the snapshot, or the
// snapshot operation that made it.
type RestoreParams interface {
	SnapshotParams
	SnapshotOperation() string
}

// snapshotOf finds the snapshot to restore: snapshot_id, or the handle of
// the snapshot operation operation_id names (same machine, launched).
func (l *LeasewebSnapshotRestore[P]) snapshotOf(ctx context.Context, op Op[P]) (string, error) {
	if id := op.Params.Snapshot(); id != "" {
		return id, nil
	}
	ref, err := op.Lookup(ctx, "params.operation_id", op.Params.SnapshotOperation())
	if err != nil {
		return "", err
	}
	want, field := ops.KindInstanceSnapshot, "instance_id"
	if l.machine == leaseweb.MachineVPS {
		want, field = ops.KindVPSSnapshot, "vps_id"
	}
	var rp map[string]any
	_ = json.Unmarshal(ref.Params, &rp)
	switch {
	case ref.Kind != want || ref.Provider != ops.ProviderLeaseweb:
		return "", &ValidationError{Field: "params.operation_id", Message: fmt.Sprintf("operation %s is a %s on %s, not a %s", ref.ID, ref.Kind, ref.Provider, want)}
	case rp[field] != op.Params.Machine():
		return "", &ValidationError{Field: "params.operation_id", Message: fmt.Sprintf("operation %s snapshotted %s %v, not %s", ref.ID, machineName(l.machine), rp[field], op.Params.Machine())}
	case ref.Handle == "":
		return "", &ValidationError{Field: "params.operation_id", Message: fmt.Sprintf("operation %s (%s) has made no snapshot", ref.ID, ref.State)}
	}
	return ref.Handle, nil
}

// restoring is the snapshot the pre-flight found (kept on the record).
func restoring[P RestoreParams](op Op[P]) string {
	var r ops.SnapshotRestoreResult
	if json.Unmarshal(op.Result, &r) == nil && r.SnapshotID != "" {
		return r.SnapshotID
	}
	return op.Params.Snapshot()
}

// restoreGracePolls is how many polls a restore that reads RUNNING
// without having been seen changing waits before it counts as done.
const restoreGracePolls = 3

// restoreChanging marks, in the progress a restore stores, that the
// machine was seen changing.
const restoreChanging = "restoring"

// LockKey is the machine: one change (snapshot, resize, restore) at a
// time.
func (l *LeasewebSnapshotRestore[P]) LockKey(op Op[P]) string {
	return "leaseweb:" + l.machine + ":" + op.Params.Machine()
}

// PreflightResult refuses a snapshot that is not READY (or not there)
// and a machine that is changing, and keeps the machine's state before
// the restore, which the restore ends in.
func (l *LeasewebSnapshotRestore[P]) PreflightResult(ctx context.Context, op Op[P]) (json.RawMessage, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return nil, err
	}
	snap, err := l.snapshotOf(ctx, op)
	if err != nil {
		return nil, err
	}
	s, err := c.PublicCloud.GetSnapshot(ctx, l.machine, op.Params.Machine(), snap)
	if isNotFound(err) {
		return nil, Permanent(fmt.Errorf("%s %s has no snapshot %s", machineName(l.machine), op.Params.Machine(), snap))
	}
	if err != nil {
		return nil, err
	}
	if s.State != "READY" {
		return nil, Permanent(fmt.Errorf("snapshot %s of %s %s is %s: only a READY snapshot can be restored", s.ID, machineName(l.machine), op.Params.Machine(), s.State))
	}
	m, err := c.PublicCloud.GetMachine(ctx, l.machine, op.Params.Machine())
	if err != nil {
		return nil, err
	}
	if m.State != leaseweb.InstanceRunning && m.State != leaseweb.InstanceStopped {
		return nil, Wait(10*time.Second, fmt.Errorf("%s %s is %s; a restore waits for RUNNING or STOPPED", machineName(l.machine), m.ID, m.State))
	}
	return json.Marshal(ops.SnapshotRestoreResult{MachineID: m.ID, SnapshotID: s.ID, StateBefore: m.State, State: m.State})
}

// Reconcile adopts a restore under way (the machine is not RUNNING).
func (l *LeasewebSnapshotRestore[P]) Reconcile(ctx context.Context, op Op[P], since time.Time) (string, bool, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", false, err
	}
	m, err := c.PublicCloud.GetMachine(ctx, l.machine, op.Params.Machine())
	if err != nil {
		return "", false, err
	}
	switch m.State {
	case leaseweb.InstanceStopping, leaseweb.InstanceStarting:
		return restoring(op), true, nil
	case leaseweb.InstanceRunning, leaseweb.InstanceStopped:
		return "", false, Permanent(fmt.Errorf("the answer to the restore of %s %s was lost and it reads %s: it may be restored already; a second restore was not sent (submit again to restore it)",
			machineName(l.machine), op.Params.Machine(), m.State))
	}
	return "", false, nil
}

// Launch asks for the restore; the handle is the snapshot's id.
func (l *LeasewebSnapshotRestore[P]) Launch(ctx context.Context, op Op[P], _ LaunchOptions) (string, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", err
	}
	snap := restoring(op)
	if err := c.PublicCloud.RestoreSnapshot(ctx, l.machine, op.Params.Machine(), snap); err != nil {
		return "", err
	}
	return snap, nil
}

// Poll reads the machine: STOPPING, STARTING (or STOPPED, for a machine
// that was running) is the restore under way; its state before the
// restore, or RUNNING, after that (or at the third poll) ends it; FAILED
// fails it.
func (l *LeasewebSnapshotRestore[P]) Poll(ctx context.Context, op Op[P]) (PollResult, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	m, err := c.PublicCloud.GetMachine(ctx, l.machine, op.Params.Machine())
	if err != nil {
		return PollResult{}, err
	}
	var result ops.SnapshotRestoreResult
	_ = json.Unmarshal(op.Result, &result) // StateBefore, from the pre-flight
	if result.StateBefore == "" {
		result.StateBefore = leaseweb.InstanceRunning
	}
	result.MachineID, result.SnapshotID, result.State = m.ID, restoring(op), m.State
	var res PollResult
	res, result.ChangeSeen = settleMachine(m, result.StateBefore, changeSeen(op.Progress, restoreChanging), false, op.PollSeq, restoreChanging,
		fmt.Sprintf("%s %s is FAILED after the restore of snapshot %s", machineName(l.machine), m.ID, restoring(op)))
	res.Result, _ = json.Marshal(result)
	return res, nil
}

// settleMachine is one poll of a machine change (a restore, a
// reinstall): FAILED fails it; the state before (or RUNNING) ends it once
// the machine was seen changing, or early says the change shows, or at
// the third poll (a change quicker than the polls); STOPPING, STARTING,
// STOPPED or CREATING is the change under way, remembered in the progress
// as marker. It returns whether the change has been seen.
func settleMachine(m *leaseweb.Instance, stateBefore string, seen, early bool, pollSeq int, marker, failure string) (PollResult, bool) {
	res := PollResult{Status: m.State}
	settled := m.State == stateBefore || m.State == leaseweb.InstanceRunning
	switch {
	case m.State == leaseweb.InstanceFailed:
		res.Done, res.Error = true, failure
	case settled && (seen || early || pollSeq >= restoreGracePolls):
		res.Done, res.Succeeded = true, true
	case settled:
	case m.State == leaseweb.InstanceStopping, m.State == leaseweb.InstanceStarting, m.State == leaseweb.InstanceStopped, m.State == "CREATING":
		seen = true
		res.Progress, _ = json.Marshal(ops.Progress{Percentage: 50, Task: marker})
	default:
		res.Unknown = true
	}
	return res, seen
}

// changeSeen reports whether a progress stored by settleMachine says the
// change was seen.
func changeSeen(progress json.RawMessage, marker string) bool {
	var p ops.Progress
	return json.Unmarshal(progress, &p) == nil && p.Task == marker
}

// LeasewebSnapshotDelete runs instance:snapshot_delete and
// vps:snapshot_delete: a DELETE, then the snapshot answering 404 ends it.
// A snapshot already gone is success. Deleting again changes nothing, so
// a retry after a lost answer sends the DELETE again.
type LeasewebSnapshotDelete[P SnapshotParams] struct {
	machine string
	clients lwClients
}

// LockKey is the machine: one change at a time.
func (l *LeasewebSnapshotDelete[P]) LockKey(op Op[P]) string {
	return "leaseweb:" + l.machine + ":" + op.Params.Machine()
}

// goneHandle is the handle of a delete that found the snapshot gone.
const goneHandle = "gone"

// Launch deletes the snapshot; one already gone needs nothing.
func (l *LeasewebSnapshotDelete[P]) Launch(ctx context.Context, op Op[P], _ LaunchOptions) (string, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", err
	}
	err = c.PublicCloud.DeleteSnapshot(ctx, l.machine, op.Params.Machine(), op.Params.Snapshot())
	if isNotFound(err) {
		return goneHandle, nil
	}
	if err != nil {
		return "", err
	}
	return op.Params.Snapshot(), nil
}

// Poll waits for the snapshot to answer 404 (DESTROYING meanwhile).
func (l *LeasewebSnapshotDelete[P]) Poll(ctx context.Context, op Op[P]) (PollResult, error) {
	result := ops.SnapshotDeleteResult{MachineID: op.Params.Machine(), SnapshotID: op.Params.Snapshot(), AlreadyGone: op.Handle == goneHandle}
	b, _ := json.Marshal(result)
	if op.Handle == goneHandle {
		return PollResult{Status: "gone", Done: true, Succeeded: true, Result: b}, nil
	}
	c, err := l.clients.get(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	s, err := c.PublicCloud.GetSnapshot(ctx, l.machine, op.Params.Machine(), op.Params.Snapshot())
	if isNotFound(err) {
		return PollResult{Status: "gone", Done: true, Succeeded: true, Result: b}, nil
	}
	if err != nil {
		return PollResult{}, err
	}
	res := PollResult{Status: s.State, Result: b}
	if s.State == "FAILED" {
		res.Done, res.Error = true, fmt.Sprintf("snapshot %s of %s %s is FAILED instead of deleted", s.ID, machineName(l.machine), op.Params.Machine())
	}
	return res, nil
}
