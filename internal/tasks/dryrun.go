package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/ops"
)

// DryRun finds what submitting env as kind would do now, without storing,
// enqueuing or launching anything: it validates the envelope, checks the
// account's flow control, the resource's lock and the caps, runs the
// kind's pre-flight (its reads go out, as they would at launch), and runs
// the launch with every write recorded instead of sent. Errors are
// *ValidationError (bad input) or a Redis error; everything else is in
// the plan.
func (w *Worker) DryRun(ctx context.Context, kind string, env Envelope) (*ops.Plan, error) {
	env.Normalize()
	params, secrets, err := prepare(&env, kind)
	if err != nil {
		return nil, err
	}
	op := &opstore.Operation{ID: "dry-run", Kind: kind, Provider: env.Provider, Account: env.Account, Params: params, SecretParams: secrets,
		State: opstore.StateQueued, CreatedAt: w.p.cfg.Now().UTC(), Resource: ops.ResourceOf(env.Provider, env.Account, params)}
	plan := &ops.Plan{Kind: kind, Provider: op.Provider, Account: op.Account, Resource: op.Resource, Params: op.RedactedParams(),
		Outcome: ops.PlanLaunch, Checks: []ops.PlanCheck{{Name: "input", OK: true, Detail: "the envelope and params are valid"}}, Calls: []ops.PlanCall{}}
	check := func(name string, ok bool, detail string) {
		plan.Checks = append(plan.Checks, ops.PlanCheck{Name: name, OK: ok, Detail: w.p.redactText(op, detail)})
	}
	stop := func(outcome, reason string) (*ops.Plan, error) {
		plan.Outcome, plan.Reason = outcome, w.p.redactText(op, reason)
		return plan, nil
	}
	exec, ok := w.p.cfg.Executors[ExecutorKey{kind, op.Provider}]
	if !ok {
		check("worker", false, fmt.Sprintf("this worker has no %s accounts; a dry run needs a worker that serves %s", op.Provider, op.Provider))
		return stop(ops.PlanWait, "no credentials for "+op.Provider+" on this worker")
	}
	p, err := exec.params(op)
	if err != nil {
		check("params", false, err.Error())
		return stop(ops.PlanFail, err.Error())
	}
	if w.p.cfg.AccountHeld != nil {
		if why := w.p.cfg.AccountHeld(ctx, op.Provider, op.Account); why != "" {
			check("account", false, why)
			return stop(ops.PlanWait, why)
		}
		check("account", true, "calls are not held back (breaker closed, not paused)")
	}
	if key := exec.lockKey(op, p); key != "" {
		holder, err := w.p.cfg.Store.LockHolder(ctx, key)
		if err != nil {
			return nil, err
		}
		if holder != "" {
			why := (&BusyError{Resource: key, Holder: "operation " + holder}).Error()
			check("lock", false, why)
			return stop(ops.PlanWait, why)
		}
		check("lock", true, key+" is free")
	}
	if key, limit := w.p.accountCap(op); key != "" {
		used, err := w.p.cfg.Store.SlotsInUse(ctx, key)
		if err != nil {
			return nil, err
		}
		if used >= limit {
			why := fmt.Sprintf("%s on %s has %d of %d operations in flight (max_in_flight)", op.Account, op.Provider, used, limit)
			check("max_in_flight", false, why)
			return stop(ops.PlanWait, why)
		}
		check("max_in_flight", true, fmt.Sprintf("%d of %d in flight", used, limit))
	}
	if key, n, limit := exec.slots(op, p); n > 0 {
		used, err := w.p.cfg.Store.SlotsInUse(ctx, key)
		if err != nil {
			return nil, err
		}
		if used+n > limit {
			why := fmt.Sprintf("%s has %d of %d outstanding requests in use; this operation needs %d", key, used, limit, n)
			check("slots", false, why)
			return stop(ops.PlanWait, why)
		}
		check("slots", true, fmt.Sprintf("%d of %d in use; this operation needs %d", used, limit, n))
	}
	rec := &providers.DryRun{}
	dctx := providers.WithDryRun(ctx, rec)
	defer func() { plan.Calls = w.planCalls(op, rec) }()
	if _, err := exec.preflight(dctx, op, p); err != nil {
		var be *BusyError
		if errors.As(err, &be) {
			check("pre-flight", false, be.Error())
			return stop(ops.PlanWait, be.Error())
		}
		check("pre-flight", false, err.Error())
		return stop(ops.PlanFail, err.Error())
	}
	check("pre-flight", true, "the provider's state allows it")
	_, err = exec.launch(dctx, op, p, LaunchOptions{})
	var we *waitError
	switch {
	case errors.Is(err, providers.ErrDryRun):
		check("launch", true, "the call below would be sent")
	case errors.As(err, &we):
		check("launch", false, we.Error())
		return stop(ops.PlanWait, we.Err.Error())
	case err != nil:
		check("launch", false, err.Error())
		if IsPermanent(err) {
			return stop(ops.PlanFail, err.Error())
		}
		return stop(ops.PlanWait, "a retryable error, retried at launch: "+err.Error())
	default:
		check("launch", true, "the launch makes no write call")
	}
	return plan, nil
}

// planCalls are the dry run's calls with op's secrets redacted.
func (w *Worker) planCalls(op *opstore.Operation, rec *providers.DryRun) []ops.PlanCall {
	out := []ops.PlanCall{}
	for _, c := range rec.Calls() {
		pc := ops.PlanCall{Op: c.Op, Method: c.Method, URL: w.p.redactText(op, c.URL), Sent: c.Sent}
		if len(c.Body) > 0 {
			pc.Body = redactJSON(w.p.redactorFor(op), c.Body)
		}
		out = append(out, pc)
	}
	return out
}

// TypeDryRun runs a dry run the CLI asked for (RequestDryRun): the CLI
// has no provider credentials, so a worker of the provider runs it.
const TypeDryRun = "op:dryrun"

// dryRunTTL bounds how long a dry run's request and answer stay in Redis.
const dryRunTTL = 2 * time.Minute

// DryRunAnswer is what a worker leaves for the CLI: the plan, or the bad
// field of the request.
type DryRunAnswer struct {
	Plan    *ops.Plan `json:"plan,omitempty"`
	Field   string    `json:"field,omitempty"`
	Message string    `json:"message,omitempty"`
}

type dryRunPayload struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

// RequestDryRun asks a worker of env's provider for a dry run of kind:
// the envelope waits in Redis (for at most two minutes, deleted once
// taken: the task names it only), the task in the provider's queue. Read
// the answer with ReadDryRun.
func RequestDryRun(ctx context.Context, store *opstore.Store, q Enqueuer, kind string, env Envelope) (string, error) {
	id := uuid.NewString()
	env.Normalize()
	b, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	if err := store.SaveDryRun(ctx, id, b, dryRunTTL); err != nil {
		return "", err
	}
	payload, _ := json.Marshal(dryRunPayload{ID: id, Kind: kind})
	_, err = q.EnqueueContext(ctx, asynq.NewTask(TypeDryRun, payload), asynq.Queue(ProviderQueue(env.Provider)),
		asynq.TaskID("dryrun:"+id), asynq.MaxRetry(0), asynq.Timeout(time.Minute), asynq.Deadline(time.Now().Add(dryRunTTL)))
	return id, err
}

// ReadDryRun returns a dry run's answer, or opstore.ErrNotFound while no
// worker has answered.
func ReadDryRun(ctx context.Context, store *opstore.Store, id string) (*DryRunAnswer, error) {
	b, err := store.DryRunAnswer(ctx, id)
	if err != nil {
		return nil, err
	}
	var a DryRunAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

func (w *Worker) processDryRun(ctx context.Context, t *asynq.Task) error {
	var p dryRunPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == "" {
		return fmt.Errorf("decode %s: %w", TypeDryRun, asynq.SkipRetry)
	}
	raw, err := w.p.cfg.Store.TakeDryRun(ctx, p.ID)
	if errors.Is(err, opstore.ErrNotFound) {
		return fmt.Errorf("dry run %s: its request expired: %w", p.ID, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("dry run %s: %w: %w", p.ID, err, asynq.SkipRetry)
	}
	var answer DryRunAnswer
	plan, err := w.DryRun(ctx, p.Kind, env)
	var ve *ops.ValidationError
	switch {
	case errors.As(err, &ve):
		answer.Field, answer.Message = ve.Field, ve.Error()
	case err != nil:
		answer.Message = "dry run failed: " + err.Error()
	default:
		answer.Plan = plan
	}
	b, _ := json.Marshal(answer)
	return w.p.cfg.Store.SaveDryRunAnswer(ctx, p.ID, b, dryRunTTL)
}
