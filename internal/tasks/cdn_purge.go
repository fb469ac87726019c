package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	registerKind(Kind{Kind: TypeCDNPurge, Provider: ops.ProviderUCDN, Policy: purgePolicy, Cancelable: true,
		New: func(c Clients) Executor { return when(c.UCDN != nil, func() Executor { return NewUCDNPurge(c.UCDN) }) }})
}

// purgePolicy is how a purge is polled by default, on every provider.
var purgePolicy = poller.Policy{Initial: 2 * time.Second, Multiplier: 1.5, Max: 30 * time.Second, Jitter: 0.1, Deadline: 30 * time.Minute}

// NewCDNPurgeTask returns a raw cdn:purge task for env, validated. It is
// what another Go system would enqueue; opsworker's own client (Submitter)
// also creates the operation record first.
func NewCDNPurgeTask(env Envelope, opts ...asynq.Option) (*asynq.Task, error) {
	env.Normalize()
	if err := env.Validate(TypeCDNPurge); err != nil {
		return nil, err
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeCDNPurge, b, opts...), nil
}

// UCDNPurge runs cdn:purge on UCDN: POST /purge/zone, then GET
// /purge/job/{job_id}/ until finished or failed.
type UCDNPurge struct {
	clients map[string]*ucdn.Client
}

// NewUCDNPurge returns the executor; clients maps account name to client.
func NewUCDNPurge(clients map[string]*ucdn.Client) Executor {
	return Register[ops.UCDNPurgeParams](&UCDNPurge{clients: clients})
}

func (u *UCDNPurge) client(account string) (*ucdn.Client, error) {
	c, ok := u.clients[account]
	if !ok {
		return nil, Permanent(fmt.Errorf("account %q is not configured for provider ucdn (providers.ucdn.accounts)", account))
	}
	return c, nil
}

// Launch creates the purge job and returns its job_id. UCDN has no
// callbacks, so opts.CallbackURL is unused.
func (u *UCDNPurge) Launch(ctx context.Context, op Op[*ops.UCDNPurgeParams], _ LaunchOptions) (string, error) {
	p := op.Params
	c, err := u.client(op.Account)
	if err != nil {
		return "", err
	}
	resp, err := c.Purge(ctx, &ucdn.PurgeRequest{ZoneName: p.ZoneName, ZoneType: p.ZoneType, Files: p.Files})
	if err != nil {
		return "", err
	}
	return resp.JobID, nil
}

// Poll reads the purge job once.
func (u *UCDNPurge) Poll(ctx context.Context, op Op[*ops.UCDNPurgeParams]) (PollResult, error) {
	c, err := u.client(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	job, err := c.GetPurgeJob(ctx, op.Handle)
	if err != nil {
		if op.CancelRequested != "" && purgeJobGone(err) {
			return PollResult{Status: "removed", Done: true, Canceled: true, Error: fmt.Sprintf("ucdn purge job %s was removed before it ran", op.Handle)}, nil
		}
		return PollResult{}, err
	}
	return purgeResult(job), nil
}

// purgeJobGone reports UCDN's answer for a job that does not exist (a
// removed one): its "Fail message" status naming it not found. UCDN lists
// no 404 for a purge job.
func purgeJobGone(err error) bool {
	var perr *providers.Error
	return errors.As(err, &perr) && perr.StatusCode == ucdn.StatusFail && strings.Contains(strings.ToLower(perr.Message), "not found")
}

// Cancel removes a purge job that is still waiting: UCDN removes only
// waiting or finished jobs. A running job cannot be stopped; a finished
// one has nothing left to stop (its poll reports it succeeded). Expire is
// the same as cancel here.
//
// UCDN API docs: https://api.ucdn.com/docs/ ("Delete purge job")
func (u *UCDNPurge) Cancel(ctx context.Context, op Op[*ops.UCDNPurgeParams], _ bool) error {
	c, err := u.client(op.Account)
	if err != nil {
		return err
	}
	job, err := c.GetPurgeJob(ctx, op.Handle)
	if err != nil {
		return err
	}
	switch job.Status {
	case ucdn.JobWaiting:
	case ucdn.JobRunning:
		return Permanent(fmt.Errorf("ucdn purge job %s is running: UCDN removes only waiting jobs, so it cannot be canceled", job.JobID))
	default:
		return nil // finished or failed: the poll reports it
	}
	if err := c.DeletePurgeJob(ctx, op.Handle); err != nil {
		if purgeJobGone(err) {
			return nil
		}
		return err
	}
	return nil
}

func purgeResult(job *ucdn.PurgeJob) PollResult {
	res := PollResult{Status: job.Status}
	switch job.Status {
	case ucdn.JobWaiting, ucdn.JobRunning:
	case ucdn.JobFinished:
		res.Done, res.Succeeded = true, true
		res.Result, _ = json.Marshal(ops.UCDNPurgeResult{JobID: job.JobID, Status: job.Status, Files: job.Files, CreatedAt: job.CreatedAt})
	case ucdn.JobFailed:
		res.Done = true
		res.Error = fmt.Sprintf("ucdn purge job %s failed", job.JobID)
		res.Result, _ = json.Marshal(ops.UCDNPurgeResult{JobID: job.JobID, Status: job.Status, Files: job.Files, CreatedAt: job.CreatedAt})
	default:
		// Unknown values are never taken as success: keep polling until
		// the deadline, and let the caller log the value.
		res.Unknown = true
	}
	return res
}

// BatchKey groups UCDN purges by account.
func (u *UCDNPurge) BatchKey(op Op[*ops.UCDNPurgeParams]) string { return "ucdn:" + op.Account }

// PollBatch lists the account's latest purge jobs, up to 500 in each
// status, one call per status (the API marks status as required; its
// default would cover three of the four), and maps every handle it finds.
func (u *UCDNPurge) PollBatch(ctx context.Context, account string, handles []string) (map[string]PollResult, error) {
	c, err := u.client(account)
	if err != nil {
		return nil, err
	}
	want := wanted(handles)
	out := map[string]PollResult{}
	for _, status := range []string{ucdn.JobWaiting, ucdn.JobRunning, ucdn.JobFailed, ucdn.JobFinished} {
		jobs, err := c.ListPurgeJobs(ctx, status, 500)
		if err != nil {
			return nil, err
		}
		for i := range jobs {
			if want[jobs[i].JobID] {
				out[jobs[i].JobID] = purgeResult(&jobs[i])
			}
		}
	}
	return out, nil
}
