package tasks

import (
	"context"
	"time"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/ops"
)

// server:ipmi_reset is one Leaseweb server job (see LeasewebServerJob):
// the server's lock, the running-job pre-flight, reconcile by job type,
// progress, callbacks and cancel are the install's.
func init() {
	registerKind(Kind{Kind: ops.KindServerIPMIReset, Provider: ops.ProviderLeaseweb, Cancelable: true,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return newServerJob[ops.ServerIPMIResetParams](leaseweb.JobTypeIPMIReset, c.Leaseweb, nil, launchIPMIReset)
			})
		},
		Policy: poller.Policy{Initial: 15 * time.Second, Multiplier: 1.5, Max: time.Minute, Jitter: 0.1, Deadline: time.Hour}})
}

func launchIPMIReset(ctx context.Context, c *leaseweb.Client, p *ops.ServerIPMIResetParams, opts LaunchOptions) (*leaseweb.Job, error) {
	return c.BareMetal.LaunchIPMIReset(ctx, p.ServerID, &leaseweb.JobRequest{CallbackURL: opts.CallbackURL, PowerCycle: p.PowerCycle})
}
