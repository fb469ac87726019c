package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	policy := poller.Policy{Initial: 10 * time.Second, Multiplier: 1.5, Max: time.Minute, Jitter: 0.1, Deadline: time.Hour}
	registerKind(Kind{Kind: ops.KindInstanceReinstall, Provider: ops.ProviderLeaseweb, Policy: policy,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.InstanceReinstallParams](&LeasewebReinstall[*ops.InstanceReinstallParams]{machine: leaseweb.MachineInstance, clients: c.Leaseweb})
			})
		}})
	registerKind(Kind{Kind: ops.KindVPSReinstall, Provider: ops.ProviderLeaseweb, Policy: policy,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.VPSReinstallParams](&LeasewebReinstall[*ops.VPSReinstallParams]{machine: leaseweb.MachineVPS, clients: c.Leaseweb})
			})
		}})
}

// ReinstallParams are the params of a reinstall kind.
type ReinstallParams interface {
	ops.Params
	Machine() string
	Image() (id, app string, deleteSnapshot bool)
}

// LeasewebReinstall runs instance:reinstall and vps:reinstall. A
// reinstall wipes the disk, so it runs exactly once, like a server
// install:
//   - pre-flight keeps the machine's image and state before, and refuses
//     a machine with a snapshot (Leaseweb does) unless
//     delete_snapshot_first, which deletes it in the launch and waits for
//     the deletion;
//   - a lost answer is adopted when the machine is mid-change or already
//     runs the new image it did not run before; when it reads settled on
//     its old image the call never took effect and is sent again; when
//     the old and new image are the same and it reads settled, nobody can
//     tell, so the operation fails and says so rather than wipe twice.
type LeasewebReinstall[P ReinstallParams] struct {
	machine string
	clients lwClients
}

// LockKey is the machine: one change at a time.
func (l *LeasewebReinstall[P]) LockKey(op Op[P]) string {
	return "leaseweb:" + l.machine + ":" + op.Params.Machine()
}

// PreflightResult checks the machine and keeps its image and state.
func (l *LeasewebReinstall[P]) PreflightResult(ctx context.Context, op Op[P]) (json.RawMessage, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return nil, err
	}
	m, err := c.PublicCloud.GetMachine(ctx, l.machine, op.Params.Machine())
	if err != nil {
		return nil, err
	}
	if m.State != leaseweb.InstanceRunning && m.State != leaseweb.InstanceStopped {
		return nil, Wait(10*time.Second, fmt.Errorf("%s %s is %s; a reinstall waits for RUNNING or STOPPED", machineName(l.machine), m.ID, m.State))
	}
	_, _, deleteFirst := op.Params.Image()
	if !deleteFirst {
		snaps, err := c.PublicCloud.ListSnapshots(ctx, l.machine, m.ID)
		if err != nil {
			return nil, err
		}
		for _, s := range snaps {
			return nil, Permanent(fmt.Errorf("%s %s has snapshot %s (%q, %s) and Leaseweb reinstalls no machine that has one: delete it (%s:snapshot_delete) or set delete_snapshot_first",
				machineName(l.machine), m.ID, s.ID, s.DisplayName, s.State, kindPrefix(l.machine)))
		}
	}
	return json.Marshal(ops.ReinstallResult{MachineID: m.ID, ImageBefore: m.ImageID(), StateBefore: m.State, ImageID: m.ImageID(), State: m.State})
}

func kindPrefix(machine string) string {
	if machine == leaseweb.MachineVPS {
		return "vps"
	}
	return "instance"
}

// before is what the pre-flight kept (on the record as the result).
func before(raw json.RawMessage) ops.ReinstallResult {
	var r ops.ReinstallResult
	_ = json.Unmarshal(raw, &r)
	if r.StateBefore == "" {
		r.StateBefore = leaseweb.InstanceRunning
	}
	return r
}

// Reconcile: see LeasewebReinstall.
func (l *LeasewebReinstall[P]) Reconcile(ctx context.Context, op Op[P], since time.Time) (string, bool, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", false, err
	}
	m, err := c.PublicCloud.GetMachine(ctx, l.machine, op.Params.Machine())
	if err != nil {
		return "", false, err
	}
	b := before(op.Result)
	image, _, _ := op.Params.Image()
	settled := m.State == leaseweb.InstanceRunning || m.State == leaseweb.InstanceStopped
	switch {
	case !settled:
		return image, true, nil
	case m.ImageID() == image && b.ImageBefore != image:
		return image, true, nil
	case b.ImageBefore == image:
		return "", false, Permanent(fmt.Errorf("the answer to the reinstall of %s %s was lost and it reads %s on image %s, the image asked for: it may be reinstalled already; a second reinstall was not sent (submit again to reinstall it)",
			machineName(l.machine), m.ID, m.State, image))
	}
	return "", false, nil
}

// Launch deletes the machine's snapshot first when asked (and waits for
// the deletion), then asks for the reinstall; the handle is the image.
func (l *LeasewebReinstall[P]) Launch(ctx context.Context, op Op[P], _ LaunchOptions) (string, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", err
	}
	image, app, deleteFirst := op.Params.Image()
	if deleteFirst {
		snaps, err := c.PublicCloud.ListSnapshots(ctx, l.machine, op.Params.Machine())
		if err != nil {
			return "", err
		}
		for _, s := range snaps {
			if s.State == "DESTROYING" {
				return "", Wait(2*time.Second, fmt.Errorf("snapshot %s is being deleted", s.ID))
			}
			if err := c.PublicCloud.DeleteSnapshot(ctx, l.machine, op.Params.Machine(), s.ID); err != nil {
				return "", err
			}
			return "", Wait(time.Second, fmt.Errorf("deleting snapshot %s first", s.ID))
		}
	}
	if err := c.PublicCloud.ReinstallMachine(ctx, l.machine, op.Params.Machine(), image, app); err != nil {
		return "", err
	}
	return image, nil
}

// Poll reads the machine: mid-change is the reinstall under way; settled
// on the new image after a change (or at the third poll) ends it; FAILED
// fails it.
func (l *LeasewebReinstall[P]) Poll(ctx context.Context, op Op[P]) (PollResult, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	m, err := c.PublicCloud.GetMachine(ctx, l.machine, op.Params.Machine())
	if err != nil {
		return PollResult{}, err
	}
	image, _, _ := op.Params.Image()
	result := before(op.Result)
	result.MachineID, result.ImageID, result.State = m.ID, m.ImageID(), m.State
	newImage := m.ImageID() == image && result.ImageBefore != image
	var res PollResult
	res, result.ChangeSeen = settleMachine(m, result.StateBefore, changeSeen(op.Progress, reinstallChanging), newImage, op.PollSeq, reinstallChanging,
		fmt.Sprintf("%s %s is FAILED after the reinstall with %s", machineName(l.machine), m.ID, image))
	res.Result, _ = json.Marshal(result)
	return res, nil
}

// reinstallChanging marks, in the progress, that the machine was seen
// changing.
const reinstallChanging = "reinstalling"
