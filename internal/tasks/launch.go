package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/ops"
)

// The launch step, for an operation kind's task: make sure the record
// exists, take what the operation needs to itself, launch at the provider
// unless a handle is saved or an interrupted launch is found, then hand
// over to polling. Running it twice is harmless.

// ProcessLaunch handles an operation kind's task.
func (ls *launchStep) ProcessLaunch(ctx context.Context, t *asynq.Task) error {
	kind := t.Type()
	env, decErr := DecodeEnvelope(t.Payload())
	if decErr != nil {
		// A payload we cannot read proves nothing about the operation it
		// names: change no record, lock or slot; archive the task with the
		// reason.
		return fmt.Errorf("decode %s: %v: %w", kind, decErr, asynq.SkipRetry)
	}
	env.Normalize()
	op, err := ls.launchRecord(ctx, kind, env)
	if op == nil {
		return err
	}
	if held, err := ls.holdForApproval(ctx, op); held || err != nil {
		return err
	}
	switch op.State {
	case opstore.StateSucceeded, opstore.StateFailed, opstore.StateCanceled, opstore.StateTimedOut:
		return ls.ensureNotified(ctx, op)
	case opstore.StateRunning:
		// Launched before (this task is a re-delivery): never call the
		// provider again; make sure the poll chain and its event exist.
		if err := ls.ensurePoll(ctx, op); err != nil {
			return err
		}
		return ls.enqueueEvent(ctx, op, webhooks.EventRunning, "")
	}
	exec, params, err := ls.launchable(ctx, kind, op)
	if exec == nil {
		return err
	}
	if err := ls.acquire(ctx, op, exec, params); err != nil {
		return err
	}
	op, handle, err := ls.attempt(ctx, op, exec, params)
	if handle == "" {
		return err
	}
	return ls.started(ctx, op, exec, params, handle)
}

// launchRecord loads or creates the task's record. A nil record means the
// task ends here, with the error returned.
func (ls *launchStep) launchRecord(ctx context.Context, kind string, env Envelope) (*opstore.Operation, error) {
	op, created, inputErr, err := ls.ensureRecord(ctx, kind, env)
	if err != nil {
		if IsPermanent(err) {
			return nil, fmt.Errorf("%s: %w: %w", kind, err, asynq.SkipRetry)
		}
		return nil, err
	}
	if inputErr != nil {
		// A raw task with input we refuse. The record it created (kept
		// without the params) says why; a record that existed already
		// belongs to another task and is left alone.
		if created || (op.State == opstore.StateQueued && len(op.Params) == 0) {
			if err := ls.finish(ctx, op, failed("invalid input: "+inputErr.Error())); err != nil {
				return nil, err
			}
			return nil, ended(fmt.Errorf("%s %s: %w: %w", kind, op.ID, inputErr, asynq.SkipRetry))
		}
		return nil, fmt.Errorf("%s %s: %w: %w", kind, op.ID, inputErr, asynq.SkipRetry)
	}
	if env.OperationID != "" && hasParams(env.Params) && Fingerprint(&env, kind) != op.Fingerprint {
		// A task naming an operation must not change what it does.
		return nil, fmt.Errorf("%s: payload does not match operation %s (params, account or callback differ): %w", kind, op.ID, asynq.SkipRetry)
	}
	return op, nil
}

// launchable checks the record's input and finds its executor, and
// decodes its params once for every step of this task. A nil executor
// means the task ends here, with the error returned.
func (ls *launchStep) launchable(ctx context.Context, kind string, op *opstore.Operation) (Executor, any, error) {
	// The record's params are what counts (opsworker's own client leaves
	// them out of the task, secrets included).
	check := Envelope{Provider: op.Provider, Account: op.Account, Params: op.Params, CallbackURL: op.CallbackURL}
	if validErr := check.Validate(kind); validErr != nil {
		if err := ls.finish(ctx, op, failed("invalid input: "+validErr.Error())); err != nil {
			return nil, nil, err
		}
		return nil, nil, ended(fmt.Errorf("%s %s: %w: %w", kind, op.ID, validErr, asynq.SkipRetry))
	}
	exec, ok := ls.cfg.Executors[ExecutorKey{op.Kind, op.Provider}]
	if !ok {
		// Another worker may serve it (a fleet split by provider, a rolling
		// deploy that adds one): wait for it, never fail for it.
		return nil, nil, ls.launchFailed(ctx, op, unserved(ls.pipeline, op))
	}
	params, err := exec.params(op)
	if err != nil {
		return nil, nil, ls.launchFailed(ctx, op, err)
	}
	return exec, params, nil
}

// acquire takes what the operation needs before the provider is called:
// its resource (a server) to itself across every replica, and room under
// the provider's cap on outstanding work (Edgio). Either taken means it
// waits, without using a retry.
func (ls *launchStep) acquire(ctx context.Context, op *opstore.Operation, exec Executor, params any) error {
	if key := exec.lockKey(op, params); key != "" {
		got, holder, err := ls.cfg.Store.AcquireLock(ctx, key, op.ID, ls.cfg.LockTTL)
		if err != nil {
			return err
		}
		if !got {
			return ls.busy(ctx, op, &BusyError{Resource: key, Holder: "operation " + holder})
		}
	}
	if key, limit := ls.accountCap(op); key != "" {
		got, used, err := ls.cfg.Store.AcquireSlots(ctx, key, op.ID, 1, limit, ls.cfg.LockTTL)
		if err != nil {
			return err
		}
		if !got {
			msg := fmt.Sprintf("waiting: %s on %s has %d of %d operations in flight (max_in_flight)", op.Account, op.Provider, used, limit)
			ls.noteWait(ctx, op, msg)
			_, _ = ls.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{op.State}, LastError: &msg})
			return &waitError{Delay: ls.cfg.BusyRetry, Err: errors.New(msg)}
		}
	}
	if key, n, limit := exec.slots(op, params); n > 0 {
		got, used, err := ls.cfg.Store.AcquireSlots(ctx, key, op.ID, n, limit, ls.cfg.LockTTL)
		if err != nil {
			return err
		}
		if !got {
			msg := fmt.Sprintf("waiting: %s has %d of %d outstanding requests in use; this operation needs %d", key, used, limit, n)
			ls.noteWait(ctx, op, msg)
			_, _ = ls.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{op.State}, LastError: &msg})
			return &waitError{Delay: ls.cfg.BusyRetry, Err: errors.New(msg)}
		}
	}
	return nil
}

// attempt returns the provider's handle of the operation: what an
// interrupted earlier attempt created, if it finds that, or else what a
// new launch returns, after the pre-flight checks and with the attempt
// recorded first. An empty handle means the task ends here, with the
// error returned.
func (ls *launchStep) attempt(ctx context.Context, op *opstore.Operation, exec Executor, params any) (*opstore.Operation, string, error) {
	if exec.reconciles() && op.State == opstore.StateLaunching && op.LaunchStartedAt != nil {
		h, found, err := exec.reconcile(ctx, op, params, *op.LaunchStartedAt)
		if err != nil {
			return op, "", ls.launchFailed(ctx, op, err)
		}
		if found {
			ls.opLogger(op).Warn("adopted the job an interrupted launch created; not launching again", zap.String("handle", h))
			return op, h, nil
		}
	}
	before, err := exec.preflight(ctx, op, params)
	if err != nil {
		var be *BusyError
		if errors.As(err, &be) {
			return op, "", ls.busy(ctx, op, be)
		}
		return op, "", ls.launchFailed(ctx, op, err)
	}
	op, err = ls.recordAttempt(ctx, op, before)
	if err != nil {
		return op, "", ls.onConflict(ctx, op, err)
	}
	if op.CancelRequested != "" {
		return op, "", ls.finish(ctx, op, Outcome{State: opstore.StateCanceled, Error: "canceled before launch"})
	}
	handle, err := exec.launch(ctx, op, params, ls.launchOptions(op))
	if err != nil {
		var perr *providers.Error
		var we *waitError
		if errors.As(err, &perr) && perr.NotProcessed() || errors.As(err, &we) {
			// Refused unread, or the launch waits before its call (an old
			// snapshot being deleted): nothing to reconcile.
			err = &notProcessedError{err}
		}
		return op, "", ls.launchFailed(ctx, op, err)
	}
	return op, handle, nil
}

// recordAttempt saves a launch attempt before the provider call, with the
// state before the change (so a retry that adopts this launch keeps it).
func (ls *launchStep) recordAttempt(ctx context.Context, op *opstore.Operation, before json.RawMessage) (*opstore.Operation, error) {
	now := ls.cfg.Now()
	rec, err := ls.cfg.Store.Update(ctx, op, opstore.Change{
		From:            []opstore.State{opstore.StateQueued, opstore.StateLaunching},
		To:              opstore.StateLaunching,
		IncrAttempts:    1,
		LaunchStartedAt: &now,
		Result:          before,
		// The attempt counter is fenced by the state: this is the next.
		Note: &ops.TimelineEvent{Type: ops.TimelineLaunchAttempt, Attempt: op.Attempts + 1},
	})
	if err != nil {
		return op, err
	}
	if rec.Attempts == 1 {
		ls.logState(rec)
		if ls.cfg.Observer != nil {
			ls.cfg.Observer.OperationStarted(rec)
		}
	}
	return rec, nil
}

// started records the handle and hands the operation over to polling:
// running, its secrets removed, its deadline set, its first poll and its
// operation.running event enqueued.
func (ls *launchStep) started(ctx context.Context, op *opstore.Operation, exec Executor, params any, handle string) error {
	now := ls.cfg.Now()
	deadline := now.Add(ls.cfg.Policies[op.Kind].Deadline)
	seq := 1
	empty := ""
	rec, err := ls.cfg.Store.Update(ctx, op, opstore.Change{
		From:       []opstore.State{opstore.StateLaunching},
		To:         opstore.StateRunning,
		Handle:     &handle,
		LaunchedAt: &now,
		DeadlineAt: &deadline,
		SetPollSeq: &seq,
		LastError:  &empty,
		// Secrets were needed for the launch only; digests of them stay to
		// recognise them in the provider's later answers.
		Params:        opstore.RemoveSecrets(op.Params, ls.secretKeys(op)),
		RedactDigests: ls.launchDigests(op),
		Note:          &ops.TimelineEvent{Type: ops.TimelineLaunched, Handle: handle, Attempt: op.Attempts},
	})
	if err != nil {
		// Saving the handle failed (Redis gone): asynq retries, and the
		// retry reconciles against the provider before anything else. Or
		// the record moved on (canceled meanwhile): do what it needs.
		return ls.onConflict(ctx, op, err)
	}
	op = rec
	ls.logState(op)
	if key := exec.batchKey(op, params); key != "" && ls.cfg.Batcher != nil {
		ls.joinBatch(ctx, op, key)
	}
	if err := ls.ensurePoll(ctx, op); err != nil {
		return err
	}
	return ls.enqueueEvent(ctx, op, webhooks.EventRunning, "")
}

// busy handles a taken resource per the on_busy policy: fail now, or wait
// (re-run later without using a retry) up to BusyWaitMax.
func (ls *launchStep) busy(ctx context.Context, op *opstore.Operation, be *BusyError) error {
	if ls.cfg.OnBusy == OnBusyFail || ls.cfg.Now().Sub(op.CreatedAt) > ls.cfg.BusyWaitMax {
		msg := be.Error()
		if ls.cfg.OnBusy != OnBusyFail {
			msg = fmt.Sprintf("%s for more than %s", msg, ls.cfg.BusyWaitMax)
		}
		if err := ls.finish(ctx, op, failed(msg)); err != nil {
			return err
		}
		return ended(fmt.Errorf("%s: %w: %w", op.ID, be, asynq.SkipRetry))
	}
	msg := "waiting: " + be.Error()
	ls.noteWait(ctx, op, msg)
	if _, err := ls.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{op.State}, LastError: &msg}); err != nil {
		var ce *opstore.ConflictError
		if !errors.As(err, &ce) {
			return err
		}
	}
	return &waitError{Delay: ls.cfg.BusyRetry, Err: be}
}

func (ls *launchStep) launchOptions(op *opstore.Operation) LaunchOptions {
	var o LaunchOptions
	if ls.cfg.CallbackBaseURL != "" && len(ls.cfg.CallbackSecret) > 0 {
		o.CallbackURL = webhooks.CallbackURL(ls.cfg.CallbackBaseURL, ls.cfg.CallbackSecret, op.Provider, op.ID)
	}
	return o
}

// ensureRecord loads the operation named by env, or creates it for a raw
// task enqueued by another system. A raw task whose input is refused still
// gets a record, without its params (secrets could hide under a key
// spelled otherwise), and inputErr says why.
func (ls *launchStep) ensureRecord(ctx context.Context, kind string, env Envelope) (op *opstore.Operation, created bool, inputErr error, err error) {
	if env.OperationID != "" {
		op, err := ls.cfg.Store.Get(ctx, env.OperationID)
		if err == nil {
			if op.Kind != kind {
				return nil, false, nil, Permanent(fmt.Errorf("operation %s is a %s, not a %s", op.ID, op.Kind, kind))
			}
			return op, false, nil, nil
		}
		if !errors.Is(err, opstore.ErrNotFound) {
			return nil, false, nil, err
		}
		if _, perr := uuid.Parse(env.OperationID); perr != nil {
			return nil, false, nil, Permanent(fmt.Errorf("operation_id %q is not a UUID", env.OperationID))
		}
	}
	id := env.OperationID
	idemKey := env.IdempotencyKey
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return nil, false, nil, err
		}
		id = u.String()
		if taskID, ok := asynq.GetTaskID(ctx); idemKey == "" && ok && taskID != "" {
			// A re-delivery of the same raw task must find the same record.
			idemKey = "asynq-task:" + taskID
		}
	}
	rec := &opstore.Operation{
		ID:             id,
		Kind:           kind,
		Provider:       env.Provider,
		Account:        env.Account,
		IdempotencyKey: idemKey,
		Fingerprint:    Fingerprint(&env, kind),
		SubmittedBy:    Declared(ops.ViaTask, env.SubmittedBy),
	}
	if taskID, ok := asynq.GetTaskID(ctx); ok {
		rec.LaunchQueue, _ = asynq.GetQueueName(ctx)
		rec.LaunchTaskID = taskID
	}
	params, secrets, inputErr := prepare(&env, kind)
	if inputErr == nil {
		rec.Params, rec.SecretParams, rec.CallbackURL = params, secrets, env.CallbackURL
		rec.Labels, rec.Resource = env.Labels, ops.ResourceOf(env.Provider, env.Account, params)
	} else {
		if !ops.ValidSubmittedBy(env.SubmittedBy) {
			rec.SubmittedBy = Declared(ops.ViaTask, "")
		}
		// Refused params are kept nowhere, not even in the fingerprint (a
		// hash of a password could be tested against guesses).
		rec.Fingerprint = fingerprint(&env, kind, nil)
		if ops.ValidateCallbackURL(env.CallbackURL) == nil {
			// The callback still hears about the refusal.
			rec.CallbackURL = env.CallbackURL
		}
	}
	op, created, err = ls.cfg.Store.CreateNoted(ctx, rec, submittedStep)
	if errors.Is(err, opstore.ErrIdempotencyConflict) {
		return nil, false, nil, Permanent(fmt.Errorf("idempotency_key %q already names operation %s with a different request", idemKey, op.ID))
	}
	return op, created, inputErr, err
}

// isLastAttempt reports whether a failed launch must give up: asynq's
// own bound for this task or the worker's LaunchMaxRetry, whichever is
// lower, is used up.
func (ls *launchStep) isLastAttempt(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && (n >= max || n >= ls.cfg.LaunchMaxRetry)
}

func (ls *launchStep) launchFailed(ctx context.Context, op *opstore.Operation, err error) error {
	err = redactError(err, ls.redactorFor(op))
	if d, ok := flow.IsThrottled(err); ok {
		// The account's rate limit has no room now: come back then,
		// without using an attempt.
		err = &waitError{Delay: d, Err: err}
	}
	var we *waitError
	var np *notProcessedError
	if errors.As(err, &we) {
		msg := we.Error()
		ls.noteWait(ctx, op, msg)
		_, _ = ls.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{op.State}, LastError: &msg, ClearLaunchStarted: errors.As(err, &np)})
		return err
	}
	if ctx.Err() != nil {
		// Shutdown or task timeout: asynq re-queues the task.
		return fmt.Errorf("launch %s: %w", op.ID, err)
	}
	if IsPermanent(err) {
		if ferr := ls.finish(ctx, op, failed(err.Error())); ferr != nil {
			return ferr
		}
		return ended(fmt.Errorf("launch %s: %w: %w", op.ID, err, asynq.SkipRetry))
	}
	if ls.isLastAttempt(ctx) {
		if ferr := ls.finish(ctx, op, failed(fmt.Sprintf("gave up after %d attempts: %v", op.Attempts, err))); ferr != nil {
			return ferr
		}
		return ended(fmt.Errorf("launch %s: %w: %w", op.ID, err, asynq.SkipRetry))
	}
	ls.note(ctx, op, errorStep(ops.TimelineLaunchFailed, op.Attempts, err))
	msg := err.Error()
	change := opstore.Change{From: []opstore.State{opstore.StateLaunching}, LastError: &msg}
	if errors.As(err, &np) {
		// The provider refused the launch call unread: the retry has
		// nothing to reconcile and launches again.
		change.ClearLaunchStarted = true
	}
	if _, uerr := ls.cfg.Store.Update(ctx, op, change); uerr != nil {
		ls.opLogger(op).Warn("record launch error", zap.Error(uerr))
	}
	return fmt.Errorf("launch %s: %w", op.ID, err)
}

// notProcessedError is a launch's error that proves the provider did not
// act on it (providers.Error.NotProcessed), or a Wait the launch returned
// before its call. Only the launch's own error qualifies: a failed
// reconcile or pre-flight read says nothing about an earlier attempt.
type notProcessedError struct{ err error }

func (e *notProcessedError) Error() string { return e.err.Error() }
func (e *notProcessedError) Unwrap() error { return e.err }
