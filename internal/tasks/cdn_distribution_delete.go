package tasks

import (
	"context"
	"encoding/json"
	"time"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	registerKind(Kind{Kind: ops.KindCDNDistributionDelete, Provider: ops.ProviderIONOS,
		New: func(c Clients) Executor {
			return when(c.IONOS != nil, func() Executor {
				return Register[ops.DistributionDeleteParams](&IONOSDistributionDelete{IONOSDistribution{clients: c.IONOS}})
			})
		},
		Policy: poller.Policy{Initial: 5 * time.Second, Multiplier: 1.5, Max: 30 * time.Second, Jitter: 0.1, Deadline: time.Hour}})
}

// IONOSDistributionDelete runs cdn:distribution_delete on IONOS CDN:
// DELETE (202), then GET until it answers 404. A distribution already
// gone is success; deleting again changes nothing, so a retry after a
// lost answer sends the DELETE again.
type IONOSDistributionDelete struct{ IONOSDistribution }

// LockKey is the distribution's: a delete waits for an ensure.
func (x *IONOSDistributionDelete) LockKey(op Op[*ops.DistributionDeleteParams]) string {
	return "ionos:distribution:" + op.Params.DistributionID
}

// Launch deletes the distribution; the handle is its id, or goneHandle.
func (x *IONOSDistributionDelete) Launch(ctx context.Context, op Op[*ops.DistributionDeleteParams], _ LaunchOptions) (string, error) {
	c, err := x.client(op.Account)
	if err != nil {
		return "", err
	}
	err = c.DeleteDistribution(ctx, op.Params.DistributionID)
	if isNotFound(err) {
		return goneHandle, nil
	}
	if err != nil {
		return "", err
	}
	return op.Params.DistributionID, nil
}

// Poll waits for the distribution to answer 404.
func (x *IONOSDistributionDelete) Poll(ctx context.Context, op Op[*ops.DistributionDeleteParams]) (PollResult, error) {
	b, _ := json.Marshal(ops.DistributionDeleteResult{DistributionID: op.Params.DistributionID, AlreadyGone: op.Handle == goneHandle})
	if op.Handle == goneHandle {
		return PollResult{Status: "gone", Done: true, Succeeded: true, Result: b}, nil
	}
	c, err := x.client(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	d, err := c.GetDistribution(ctx, op.Params.DistributionID)
	if isNotFound(err) {
		return PollResult{Status: "gone", Done: true, Succeeded: true, Result: b}, nil
	}
	if err != nil {
		return PollResult{}, err
	}
	return PollResult{Status: d.Metadata.State, Result: b}, nil
}
