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
	policy := poller.Policy{Initial: 5 * time.Second, Multiplier: 1.5, Max: 30 * time.Second, Jitter: 0.1, Deadline: time.Hour}
	registerKind(Kind{Kind: ops.KindASGCreate, Provider: ops.ProviderLeaseweb, Policy: policy,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.ASGCreateParams](&LeasewebASGCreate{clients: c.Leaseweb})
			})
		}})
	registerKind(Kind{Kind: ops.KindASGDelete, Provider: ops.ProviderLeaseweb, Policy: policy,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.ASGDeleteParams](&LeasewebASGDelete{clients: c.Leaseweb})
			})
		}})
}

// LeasewebASGCreate runs asg:create: POST the group (201, CREATING), then
// poll it until ACTIVE. A second create would make a second group, so a
// lost answer is reconciled by the group's reference, and a reference
// already taken before the launch is refused.
type LeasewebASGCreate struct{ clients lwClients }

// LockKey is the reference: two creates of one group wait for each other.
func (l *LeasewebASGCreate) LockKey(op Op[*ops.ASGCreateParams]) string {
	return "leaseweb:asg-reference:" + op.Params.Reference
}

// Preflight refuses a reference another group has: the reference is how
// a lost answer is found again.
func (l *LeasewebASGCreate) Preflight(ctx context.Context, op Op[*ops.ASGCreateParams]) error {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return err
	}
	groups, err := c.PublicCloud.ListAutoScalingGroups(ctx, op.Params.Reference)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if g.Reference == op.Params.Reference && g.State != "DESTROYED" && g.State != "DESTROYING" {
			return &ValidationError{Field: "params.reference", Message: fmt.Sprintf("group %s already has reference %q; a new group needs its own", g.ID, g.Reference)}
		}
	}
	return nil
}

// Reconcile finds the group a lost create made, by its reference.
func (l *LeasewebASGCreate) Reconcile(ctx context.Context, op Op[*ops.ASGCreateParams], since time.Time) (string, bool, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", false, err
	}
	groups, err := c.PublicCloud.ListAutoScalingGroups(ctx, op.Params.Reference)
	if err != nil {
		return "", false, err
	}
	for _, g := range groups {
		if g.Reference == op.Params.Reference && g.State != "DESTROYED" && g.State != "DESTROYING" {
			return g.ID, true, nil
		}
	}
	return "", false, nil
}

// Launch creates the group; the handle is its id.
func (l *LeasewebASGCreate) Launch(ctx context.Context, op Op[*ops.ASGCreateParams], _ LaunchOptions) (string, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", err
	}
	p := op.Params
	g, err := c.PublicCloud.CreateAutoScalingGroup(ctx, &leaseweb.CreateAutoScalingGroupRequest{Type: p.Type, InstanceID: p.InstanceID, Reference: p.Reference,
		DesiredAmount: p.DesiredAmount, StartsAt: p.StartsAt, EndsAt: p.EndsAt, MinimumAmount: p.MinimumAmount, MaximumAmount: p.MaximumAmount,
		CPUThreshold: p.CPUThreshold, WarmupTime: p.WarmupTime, CooldownTime: p.CooldownTime})
	if err != nil {
		return "", err
	}
	if g.ID == "" {
		return "", fmt.Errorf("leaseweb: create auto scaling group answered without an id")
	}
	return g.ID, nil
}

// Poll waits for ACTIVE; CREATING, CREATED, SCALING and UPDATING are on
// the way; DESTROYING or DESTROYED fail it.
func (l *LeasewebASGCreate) Poll(ctx context.Context, op Op[*ops.ASGCreateParams]) (PollResult, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	g, err := c.PublicCloud.GetAutoScalingGroup(ctx, op.Handle)
	if err != nil {
		return PollResult{}, err
	}
	return asgCreateResult(g), nil
}

// BatchKey groups the creations of an account.
func (l *LeasewebASGCreate) BatchKey(op Op[*ops.ASGCreateParams]) string {
	return "leaseweb-asg-create:" + op.Account
}

// PollBatch lists the account's groups, 50 a page (the list's documented
// example size), until every handle is found or the list ends (at most as
// many pages as the handles need, plus ten), and maps every handle it
// finds.
func (l *LeasewebASGCreate) PollBatch(ctx context.Context, account string, handles []string) (map[string]PollResult, error) {
	c, err := l.clients.get(account)
	if err != nil {
		return nil, err
	}
	const page = 50
	return listBatch(handles, page, len(handles)/page+10, func(offset int) ([]leaseweb.AutoScalingGroup, bool, error) {
		groups, total, err := c.PublicCloud.ListAutoScalingGroupsPage(ctx, page, offset)
		return groups, len(groups) == page && offset+page < total, err
	}, func(g *leaseweb.AutoScalingGroup) string { return g.ID }, asgCreateResult)
}

// asgCreateResult is what a created group's state means for its
// operation.
func asgCreateResult(g *leaseweb.AutoScalingGroup) PollResult {
	res := PollResult{Status: g.State}
	res.Result, _ = json.Marshal(ops.ASGCreateResult{GroupID: g.ID, Type: g.Type, State: g.State, Reference: g.Reference, Amounts: amounts(g)})
	switch g.State {
	case "ACTIVE":
		res.Done, res.Succeeded = true, true
	case "CREATING", "CREATED", "SCALING", "UPDATING":
	case "DESTROYING", "DESTROYED":
		res.Done, res.Error = true, fmt.Sprintf("auto scaling group %s is %s", g.ID, g.State)
	default:
		res.Unknown = true
	}
	return res
}

// LeasewebASGDelete runs asg:delete: DELETE the group, then poll until it
// is DESTROYED or answers 404. A group already gone is success; deleting
// again changes nothing, so a retry after a lost answer sends the DELETE
// again.
type LeasewebASGDelete struct{ clients lwClients }

// LockKey is the group: a delete waits for a running scale.
func (l *LeasewebASGDelete) LockKey(op Op[*ops.ASGDeleteParams]) string {
	return "leaseweb:asg:" + op.Params.ASGID
}

// Launch deletes the group; the handle is its id, or goneHandle.
func (l *LeasewebASGDelete) Launch(ctx context.Context, op Op[*ops.ASGDeleteParams], _ LaunchOptions) (string, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", err
	}
	err = c.PublicCloud.DeleteAutoScalingGroup(ctx, op.Params.ASGID)
	if isNotFound(err) {
		return goneHandle, nil
	}
	if err != nil {
		return "", err
	}
	return op.Params.ASGID, nil
}

// Poll waits for DESTROYED or 404.
func (l *LeasewebASGDelete) Poll(ctx context.Context, op Op[*ops.ASGDeleteParams]) (PollResult, error) {
	b, _ := json.Marshal(ops.ASGDeleteResult{GroupID: op.Params.ASGID, AlreadyGone: op.Handle == goneHandle})
	gone := PollResult{Status: "DESTROYED", Done: true, Succeeded: true, Result: b}
	if op.Handle == goneHandle {
		return gone, nil
	}
	c, err := l.clients.get(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	g, err := c.PublicCloud.GetAutoScalingGroup(ctx, op.Params.ASGID)
	if isNotFound(err) {
		return gone, nil
	}
	if err != nil {
		return PollResult{}, err
	}
	switch g.State {
	case "DESTROYED":
		return gone, nil
	case "DESTROYING", "ACTIVE", "SCALING", "UPDATING", "CREATING", "CREATED":
		return PollResult{Status: g.State, Result: b}, nil
	}
	return PollResult{Status: g.State, Unknown: true, Result: b}, nil
}
