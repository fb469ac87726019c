package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	policy := poller.Policy{Initial: 5 * time.Second, Multiplier: 1.5, Max: 30 * time.Second, Jitter: 0.1, Deadline: 15 * time.Minute}
	registerKind(Kind{Kind: ops.KindServerPowerCycle, Provider: ops.ProviderLeaseweb, Policy: policy,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.ServerPowerCycleParams](&LeasewebPower[*ops.ServerPowerCycleParams]{action: leaseweb.PowerActionCycle, clients: c.Leaseweb})
			})
		}})
	registerKind(Kind{Kind: ops.KindServerPowerOn, Provider: ops.ProviderLeaseweb, Policy: policy,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.ServerPowerOnParams](&LeasewebPower[*ops.ServerPowerOnParams]{action: leaseweb.PowerActionOn, clients: c.Leaseweb})
			})
		}})
	registerKind(Kind{Kind: ops.KindServerPowerOff, Provider: ops.ProviderLeaseweb, Policy: policy,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.ServerPowerOffParams](&LeasewebPower[*ops.ServerPowerOffParams]{action: leaseweb.PowerActionOff, clients: c.Leaseweb})
			})
		}})
}

// LeasewebPower runs server:power_cycle, server:power_on and
// server:power_off. The call answers with no documented body; the
// server's IPMI power state (GET …/powerInfo) is the truth. The PDU can
// read on while the server is off, so it is shown, never waited for.
//
// Powering on a server that is on, or off one that is off, changes
// nothing: a retry after a lost answer sends the call again. A second
// power cycle would reboot the server twice, so a cycle whose answer was
// lost is adopted when the server reads off (the cycle is under way) and
// never sent again when it reads on: the operation fails and says so.
type LeasewebPower[P ServerParams] struct {
	action  string
	clients map[string]*leaseweb.Client
}

// cycleGracePolls is how many polls a power cycle that reads on without
// having been seen off waits before it counts as done: a reboot can be
// quicker than the first poll.
const cycleGracePolls = 3

// powerOffSeen marks, in the progress a cycle stores, that it was seen
// off.
const powerOffSeen = "powered off; waiting for power on"

func (l *LeasewebPower[P]) client(account string) (*leaseweb.Client, error) {
	c, ok := l.clients[account]
	if !ok {
		return nil, Permanent(fmt.Errorf("account %q is not configured for provider leaseweb (providers.leaseweb.accounts)", account))
	}
	return c, nil
}

// target is the IPMI state that ends the operation.
func (l *LeasewebPower[P]) target() string {
	if l.action == leaseweb.PowerActionOff {
		return "off"
	}
	return "on"
}

// LockKey is the server: a power action waits for an install, a rescue
// or another power action on the same server.
func (l *LeasewebPower[P]) LockKey(op Op[P]) string { return "leaseweb:server:" + op.Params.Server() }

// Preflight refuses to act on a server that runs a job not started by
// this operation (a power cycle mid-install breaks the install).
func (l *LeasewebPower[P]) Preflight(ctx context.Context, op Op[P]) error {
	c, err := l.client(op.Account)
	if err != nil {
		return err
	}
	return serverJobRunning(ctx, c, op.Params.Server(), "")
}

// Reconcile is for power cycles only (see LeasewebPower).
func (l *LeasewebPower[P]) Reconcile(ctx context.Context, op Op[P], since time.Time) (string, bool, error) {
	if l.action != leaseweb.PowerActionCycle {
		return "", false, nil
	}
	c, err := l.client(op.Account)
	if err != nil {
		return "", false, err
	}
	info, err := c.BareMetal.GetPowerInfo(ctx, op.Params.Server())
	if err != nil {
		return "", false, err
	}
	if strings.EqualFold(info.IPMI.Status, "off") {
		return l.action, true, nil
	}
	return "", false, Permanent(fmt.Errorf("the answer to the power cycle of server %s was lost and the server reads %s: it may have rebooted already; a second power cycle was not sent (submit again to reboot it)",
		op.Params.Server(), info.IPMI.Status))
}

// Launch sends the power call; the handle is the action.
func (l *LeasewebPower[P]) Launch(ctx context.Context, op Op[P], _ LaunchOptions) (string, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return "", err
	}
	if err := c.BareMetal.Power(ctx, op.Params.Server(), l.action); err != nil {
		return "", err
	}
	return l.action, nil
}

// Poll reads the server's power: on or off as asked ends the operation;
// a cycle must read off and then on (or on after cycleGracePolls polls).
// Any other IPMI value is unknown and polled again.
func (l *LeasewebPower[P]) Poll(ctx context.Context, op Op[P]) (PollResult, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	info, err := c.BareMetal.GetPowerInfo(ctx, op.Params.Server())
	if err != nil {
		return PollResult{}, err
	}
	ipmi := strings.ToLower(info.IPMI.Status)
	res := PollResult{Status: ipmi}
	result := ops.PowerResult{ServerID: op.Params.Server(), Action: l.action, IPMI: ipmi, PDU: strings.ToLower(info.PDU.Status)}
	switch {
	case ipmi != "on" && ipmi != "off":
		res.Unknown = true
	case l.action != leaseweb.PowerActionCycle:
		res.Done, res.Succeeded = ipmi == l.target(), ipmi == l.target()
	default:
		var before ops.Progress
		_ = json.Unmarshal(op.Progress, &before)
		seen := before.Task == powerOffSeen || ipmi == "off"
		result.OffSeen = &seen
		if ipmi == "off" {
			res.Progress, _ = json.Marshal(ops.Progress{Percentage: 50, Task: powerOffSeen})
		} else if seen || op.PollSeq >= cycleGracePolls {
			res.Done, res.Succeeded = true, true
		}
	}
	res.Result, _ = json.Marshal(result)
	return res, nil
}
