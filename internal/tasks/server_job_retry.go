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
	registerKind(Kind{Kind: ops.KindServerJobRetry, Provider: ops.ProviderLeaseweb, Cancelable: true,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.ServerJobRetryParams](&LeasewebJobRetry{LeasewebServerJob[*ops.ServerJobRetryParams]{
					clients: c.Leaseweb, osID: func(*ops.ServerJobRetryParams) string { return "" }}})
			})
		},
		Policy: poller.Policy{Initial: 30 * time.Second, Multiplier: 1.5, Max: 2 * time.Minute, Jitter: 0.1, Deadline: 4 * time.Hour}})
}

// LeasewebJobRetry runs server:job_retry: the job named by job_id (or
// by the operation operation_id names) runs again under its own uuid, and is then polled, cancelled and reported
// like any server job (LeasewebServerJob). Pre-flight refuses a job that
// is not FAILED, CANCELED or EXPIRED; a retry whose answer was lost is
// adopted when the job is running again (or finished since), never sent
// twice.
type LeasewebJobRetry struct {
	LeasewebServerJob[*ops.ServerJobRetryParams]
}

// retryable are the job statuses Leaseweb retries.
var retryable = map[string]bool{leaseweb.JobFailed: true, leaseweb.JobCanceled: true, leaseweb.JobExpired: true}

// PreflightResult finds the job (job_id, or the handle of the operation
// operation_id names), checks it can be retried and the server runs no
// other, and keeps the job on the record: the launch and a reconcile
// read its uuid there.
func (l *LeasewebJobRetry) PreflightResult(ctx context.Context, op Op[*ops.ServerJobRetryParams]) (json.RawMessage, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return nil, err
	}
	jobID, err := l.jobID(ctx, op)
	if err != nil {
		return nil, err
	}
	j, err := c.BareMetal.GetJob(ctx, op.Params.ServerID, jobID)
	if isNotFound(err) {
		return nil, &ValidationError{Field: "params.job_id", Message: fmt.Sprintf("server %s has no job %s", op.Params.ServerID, jobID)}
	}
	if err != nil {
		return nil, err
	}
	if !retryable[j.Status] {
		return nil, &ValidationError{Field: "params.job_id", Message: fmt.Sprintf("job %s (%s) is %s: only a FAILED, CANCELED or EXPIRED job can be retried", j.UUID, j.Type, j.Status)}
	}
	if err := serverJobRunning(ctx, c, op.Params.ServerID, jobID); err != nil {
		return nil, err
	}
	return json.Marshal(ops.ServerJobResult{JobUUID: j.UUID, Type: j.Type, Status: j.Status, ServerID: op.Params.ServerID,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, Progress: ops.ServerJobTasks(j.Progress)})
}

// serverJobKinds are the kinds whose handle is a Leaseweb server job.
var serverJobKinds = map[string]bool{ops.KindServerInstall: true, ops.KindServerRescue: true, ops.KindServerHardwareScan: true,
	ops.KindServerIPMIReset: true, ops.KindServerJobRetry: true}

// jobID is job_id, or the job of the operation operation_id names: a
// server job on the same server that was launched.
func (l *LeasewebJobRetry) jobID(ctx context.Context, op Op[*ops.ServerJobRetryParams]) (string, error) {
	if op.Params.JobID != "" {
		return op.Params.JobID, nil
	}
	ref, err := op.Lookup(ctx, "params.operation_id", op.Params.OperationID)
	if err != nil {
		return "", err
	}
	var rp struct {
		ServerID string `json:"server_id"`
	}
	_ = json.Unmarshal(ref.Params, &rp)
	switch {
	case ref.Provider != ops.ProviderLeaseweb || !serverJobKinds[ref.Kind]:
		return "", &ValidationError{Field: "params.operation_id", Message: fmt.Sprintf("operation %s is a %s on %s, not a server job", ref.ID, ref.Kind, ref.Provider)}
	case rp.ServerID != op.Params.ServerID:
		return "", &ValidationError{Field: "params.operation_id", Message: fmt.Sprintf("operation %s ran on server %s, not %s", ref.ID, rp.ServerID, op.Params.ServerID)}
	case ref.Handle == "":
		return "", &ValidationError{Field: "params.operation_id", Message: fmt.Sprintf("operation %s (%s) never launched a job", ref.ID, ref.State)}
	}
	return ref.Handle, nil
}

// retried is the job the pre-flight found (kept on the record).
func retried(op Op[*ops.ServerJobRetryParams]) string {
	var r ops.ServerJobResult
	if json.Unmarshal(op.Result, &r) == nil && r.JobUUID != "" {
		return r.JobUUID
	}
	return op.Params.JobID
}

// Reconcile adopts the retry a lost answer hid: the job is running
// again, or has finished since the attempt began.
func (l *LeasewebJobRetry) Reconcile(ctx context.Context, op Op[*ops.ServerJobRetryParams], since time.Time) (string, bool, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return "", false, err
	}
	j, err := c.BareMetal.GetJob(ctx, op.Params.ServerID, retried(op))
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
	id := retried(op)
	j, err := c.BareMetal.RetryJob(ctx, op.Params.ServerID, id)
	if err != nil {
		return "", err
	}
	if j.UUID == "" {
		return id, nil
	}
	return j.UUID, nil
}
