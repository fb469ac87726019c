package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/ops"
)

// Enqueuer is the part of *asynq.Client the pipeline uses.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// SubmitOptions are the asynq options of operation tasks.
type SubmitOptions struct {
	// MaxRetry of the launch task. Default 1000: the worker's
	// operations.launch_max_retry decides when a launch gives up; this is
	// only asynq's outer bound.
	MaxRetry int
	// Timeout of one launch attempt. Default 2m.
	Timeout time.Duration
	// Hold, when set, puts a new operation whose kind needs an approval
	// in pending_approval before any launch task exists (the worker's
	// HoldForApproval); without it the launch task does that.
	Hold func(ctx context.Context, op *opstore.Operation) (bool, error)
}

func (o SubmitOptions) withDefaults() SubmitOptions {
	if o.MaxRetry == 0 {
		o.MaxRetry = 1000
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	return o
}

// Submitter creates operations: it validates the envelope, stores the
// record (honouring the idempotency key) and enqueues the kind's task.
// The CLI and (later) the HTTP API both use it. Safe for concurrent use.
type Submitter struct {
	store *opstore.Store
	q     Enqueuer
	opts  SubmitOptions
}

// NewSubmitter returns a Submitter.
func NewSubmitter(store *opstore.Store, q Enqueuer, opts SubmitOptions) *Submitter {
	return &Submitter{store: store, q: q, opts: opts.withDefaults()}
}

// LaunchTaskID is the asynq TaskID of an operation's launch task.
func LaunchTaskID(opID string) string { return "op:" + opID }

// Submit validates env for kind and creates the operation, for the CLI:
// its submitter is env.SubmittedBy (or $USER, as the CLI fills it in),
// unauthenticated. created is false when the idempotency key already
// named an operation; that operation is returned and nothing new is
// launched. Errors: *ValidationError (bad input, nothing stored),
// opstore.ErrIdempotencyConflict (the key belongs to a different
// request), or a Redis/enqueue error.
func (s *Submitter) Submit(ctx context.Context, kind string, env Envelope) (op *opstore.Operation, created bool, err error) {
	return s.submit(ctx, "", Declared(ops.ViaCLI, env.SubmittedBy), kind, env, false)
}

// SubmitAs is Submit for an HTTP API token, the operation's submitter:
// its idempotency keys are its own (scope "token:<name>"), so the same key
// from another token names another operation, and no caller can take or
// answer for a key another one uses.
func (s *Submitter) SubmitAs(ctx context.Context, token, kind string, env Envelope) (op *opstore.Operation, created bool, err error) {
	if env.SubmittedBy != "" {
		return nil, false, invalid("submitted_by", "the API records the token's name; submitted_by is for the CLI and raw tasks")
	}
	if token == "" { // an API without tokens (tests)
		return s.submit(ctx, "", Declared(ops.ViaAPI, ""), kind, env, false)
	}
	return s.submit(ctx, "token:"+token, &ops.Actor{Name: token, Via: ops.ViaAPI, Authenticated: true}, kind, env, false)
}

// SubmitScheduled is Submit for a schedule's run: its idempotency key
// (Spec.IdempotencyKey) has the prefix "sched:", which Submit refuses;
// the schedule is the submitter.
func (s *Submitter) SubmitScheduled(ctx context.Context, kind string, env Envelope) (op *opstore.Operation, created bool, err error) {
	if !strings.HasPrefix(env.IdempotencyKey, ops.ScheduledKeyPrefix) {
		return nil, false, invalid("idempotency_key", "a scheduled run's key starts with %q", ops.ScheduledKeyPrefix)
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(env.IdempotencyKey, ops.ScheduledKeyPrefix), ":")
	return s.submit(ctx, "", &ops.Actor{Name: name, Via: ops.ViaSchedule, Authenticated: true}, kind, env, true)
}

// SubmitStep submits the operation of a runbook run's step: its
// idempotency key is the run and the step, so submitting it again (a
// coordinator that crashed after the submit) finds the same operation;
// by is who started the run.
func (s *Submitter) SubmitStep(ctx context.Context, run, step string, by *ops.Actor, kind string, env Envelope) (*opstore.Operation, bool, error) {
	env.IdempotencyKey = step
	return s.submitRec(ctx, "run:"+run, by, kind, env, false, func(rec *opstore.Operation) { rec.Run, rec.RunStep = run, step })
}

// Declared is the submitter a CLI user or a raw task names: recorded,
// never checked ("unknown" when none is given).
func Declared(via, name string) *ops.Actor {
	if name == "" {
		name = "unknown"
	}
	return &ops.Actor{Name: name, Via: via}
}

func (s *Submitter) submit(ctx context.Context, scope string, by *ops.Actor, kind string, env Envelope, scheduled bool) (op *opstore.Operation, created bool, err error) {
	return s.submitRec(ctx, scope, by, kind, env, scheduled, nil)
}

func (s *Submitter) submitRec(ctx context.Context, scope string, by *ops.Actor, kind string, env Envelope, scheduled bool, mod func(*opstore.Operation)) (op *opstore.Operation, created bool, err error) {
	env.Normalize()
	env.OperationID = ""
	check := env
	if scheduled {
		check.IdempotencyKey = ""
	}
	params, secrets, err := prepare(&check, kind)
	if err != nil {
		return nil, false, err
	}
	env.Params = params
	id, err := uuid.NewV7()
	if err != nil {
		return nil, false, err
	}
	rec := &opstore.Operation{
		ID:               id.String(),
		Kind:             kind,
		Provider:         env.Provider,
		Account:          env.Account,
		Params:           params,
		SecretParams:     secrets,
		CallbackURL:      env.CallbackURL,
		IdempotencyKey:   env.IdempotencyKey,
		Fingerprint:      fingerprint(&env, kind, withoutKeys(params, secrets)),
		IdempotencyScope: scope,
		State:            opstore.StateQueued,
		LaunchQueue:      ProviderQueue(env.Provider),
		LaunchTaskID:     LaunchTaskID(id.String()),
		SubmittedBy:      by,
		Labels:           env.Labels,
		Resource:         ops.ResourceOf(env.Provider, env.Account, params),
	}
	if mod != nil {
		mod(rec)
	}
	op, created, err = s.store.CreateNoted(ctx, rec, submittedStep)
	if err != nil {
		return op, false, err
	}
	if !created && op.State != opstore.StateQueued {
		return op, false, nil
	}
	if s.opts.Hold != nil {
		held, err := s.opts.Hold(ctx, op)
		if err != nil {
			return op, created, err
		}
		if held {
			cur, err := s.store.Get(ctx, op.ID)
			if err != nil {
				return op, created, err
			}
			return cur, created, nil
		}
	}
	// New, or queued by an earlier submit that may have died before its
	// enqueue: (re-)enqueue. The TaskID makes a second enqueue a no-op.
	// The task names the operation and nothing else: the params (secrets
	// included) and the callback URL (it may carry a token) stay in the
	// record, out of asynq's task data and its UI.
	payload, err := json.Marshal(map[string]string{"operation_id": op.ID})
	if err != nil {
		return nil, false, err
	}
	task := asynq.NewTask(kind, payload)
	_, err = s.q.EnqueueContext(ctx, task,
		asynq.TaskID(LaunchTaskID(op.ID)),
		// A record queued by a version before provider queues names the
		// general queue: enqueue there, or its task would run twice.
		asynq.Queue(op.LaunchQueue),
		asynq.MaxRetry(s.opts.MaxRetry),
		asynq.Timeout(s.opts.Timeout),
	)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		if created {
			// Leave nothing half-done: without its task the record would
			// sit in queued forever.
			_ = s.store.Delete(context.WithoutCancel(ctx), op)
		}
		return nil, false, fmt.Errorf("enqueue %s: %w", kind, err)
	}
	return op, created, nil
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}

// submittedStep is the first step of an operation's timeline.
func submittedStep(op *opstore.Operation) ops.TimelineEvent {
	return ops.TimelineEvent{At: op.CreatedAt, Type: ops.TimelineSubmitted, Actor: op.SubmittedBy, State: op.State,
		Message: fmt.Sprintf("%s on %s, account %s, resource %s", op.Kind, op.Provider, op.Account, op.Resource)}
}
