package tasks

import (
	"context"
	"fmt"
	"time"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	registerKind(Kind{Kind: ops.KindServerJobRetry, Provider: ops.ProviderLeaseweb, Cancelable: true,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.ServerJobRetryParams](&LeasewebJobRetry{LeasewebServerJob[*ops.ServerJobRetryParams]{
					clients: c.Leaseweb, osID: func(*ops.ServerJobRetryParams) string { return "" }}})
			})
		},
		Policy: poller.Policy{Initial: 30 * time.Second, Multiplier: 1.5, Max: 2 * time.Minute, Jitter: 0.1, Deadline: 4 * time.Hour}})
}

// LeasewebJobRetry runs server:job_retry: the job named by job_id runs
// again under its own uuid, and is then polled, cancelled and reported
// like any server job (LeasewebServerJob). Pre-flight refuses a job that
// is not FAILED, CANCELED or EXPIRED; a retry whose answer was lost is
// adopted when the job is running again (or finished since), never sent
// twice.
type LeasewebJobRetry struct {
	LeasewebServerJob[*ops.ServerJobRetryParams]
}

// retryable are the job statuses Leaseweb retries.
var retryable = map[string]bool{leaseweb.JobFailed: true, leaseweb.JobCanceled: true, leaseweb.JobExpired: true}

// Preflight checks the job can be retried and the server runs no other.
func (l *LeasewebJobRetry) Preflight(ctx context.Context, op Op[*ops.ServerJobRetryParams]) error {
	c, err := l.client(op.Account)
	if err != nil {
		return err
	}
	j, err := c.BareMetal.GetJob(ctx, op.Params.ServerID, op.Params.JobID)
	if isNotFound(err) {
		return &ValidationError{Field: "params.job_id", Message: fmt.Sprintf("server %s has no job %s", op.Params.ServerID, op.Params.JobID)}
	}
	if err != nil {
		return err
	}
	if !retryable[j.Status] {
		return &ValidationError{Field: "params.job_id", Message: fmt.Sprintf("job %s (%s) is %s: only a FAILED, CANCELED or EXPIRED job can be retried", j.UUID, j.Type, j.Status)}
	}
	return serverJobRunning(ctx, c, op.Params.ServerID, op.Params.JobID)
}

// Reconcile adopts the retry a lost answer hid: the job is running
// again, or has finished since the attempt began.
func (l *LeasewebJobRetry) Reconcile(ctx context.Context, op Op[*ops.ServerJobRetryParams], since time.Time) (string, bool, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return "", false, err
	}
	j, err := c.BareMetal.GetJob(ctx, op.Params.ServerID, op.Params.JobID)
	if err != nil {
		return "", false, err
	}
	if j.Status == leaseweb.JobActive || !leaseweb.ParseTime(j.UpdatedAt).Before(since.Add(-2*time.Minute)) && !retryable[j.Status] {
		return j.UUID, true, nil
	}
	return "", false, nil
}

// Launch retries the job; the handle is its uuid.
func (l *LeasewebJobRetry) Launch(ctx context.Context, op Op[*ops.ServerJobRetryParams], _ LaunchOptions) (string, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return "", err
	}
	j, err := c.BareMetal.RetryJob(ctx, op.Params.ServerID, op.Params.JobID)
	if err != nil {
		return "", err
	}
	if j.UUID == "" {
		return op.Params.JobID, nil
	}
	return j.UUID, nil
}
