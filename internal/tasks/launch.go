package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/webhooks"
)

// The launch step, for an operation kind's task: make sure the record
// exists, take what the operation needs to itself, launch at the provider
// unless a handle is saved or an interrupted launch is found, then hand
// over to polling. Running it twice is harmless.

// ProcessLaunch handles an operation kind's task.
func (w *Worker) ProcessLaunch(ctx context.Context, t *asynq.Task) error {
	kind := t.Type()
	env, decErr := DecodeEnvelope(t.Payload())
	if decErr != nil {
		// A payload we cannot read proves nothing about the operation it
		// names: change no record, lock or slot; archive the task with the
		// reason.
		return fmt.Errorf("decode %s: %v: %w", kind, decErr, asynq.SkipRetry)
	}
	env.Normalize()
	op, err := w.launchRecord(ctx, kind, env)
	if op == nil {
		return err
	}
	switch op.State {
	case opstore.StateSucceeded, opstore.StateFailed, opstore.StateCanceled, opstore.StateTimedOut:
		return w.ensureNotified(ctx, op)
	case opstore.StateRunning:
		// Launched before (this task is a re-delivery): never call the
		// provider again; make sure the poll chain and its event exist.
		if err := w.ensurePoll(ctx, op); err != nil {
			return err
		}
		return w.enqueueEvent(ctx, op, webhooks.EventRunning, "")
	}
	exec, params, err := w.launchable(ctx, kind, op)
	if exec == nil {
		return err
	}
	if err := w.acquire(ctx, op, exec, params); err != nil {
		return err
	}
	op, handle, err := w.attempt(ctx, op, exec, params)
	if handle == "" {
		return err
	}
	return w.started(ctx, op, exec, params, handle)
}

// launchRecord loads or creates the task's record. A nil record means the
// task ends here, with the error returned.
func (w *Worker) launchRecord(ctx context.Context, kind string, env Envelope) (*opstore.Operation, error) {
	op, created, inputErr, err := w.ensureRecord(ctx, kind, env)
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
			if err := w.finish(ctx, op, failed("invalid input: "+inputErr.Error())); err != nil {
				return nil, err
			}
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
func (w *Worker) launchable(ctx context.Context, kind string, op *opstore.Operation) (Executor, any, error) {
	// The record's params are what counts (opsworker's own client leaves
	// them out of the task, secrets included).
	check := Envelope{Provider: op.Provider, Account: op.Account, Params: op.Params, CallbackURL: op.CallbackURL}
	if validErr := check.Validate(kind); validErr != nil {
		if err := w.finish(ctx, op, failed("invalid input: "+validErr.Error())); err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%s %s: %w: %w", kind, op.ID, validErr, asynq.SkipRetry)
	}
	exec, ok := w.cfg.Executors[ExecutorKey{op.Kind, op.Provider}]
	if !ok {
		if err := w.finish(ctx, op, failed(fmt.Sprintf("provider %s is not configured on this worker for %s", op.Provider, op.Kind))); err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%s %s: provider %s not configured: %w", kind, op.ID, op.Provider, asynq.SkipRetry)
	}
	params, err := exec.params(op)
	if err != nil {
		return nil, nil, w.launchFailed(ctx, op, err)
	}
	return exec, params, nil
}

// acquire takes what the operation needs before the provider is called:
// its resource (a server) to itself across every replica, and room under
// the provider's cap on outstanding work (Edgio). Either taken means it
// waits, without using a retry.
func (w *Worker) acquire(ctx context.Context, op *opstore.Operation, exec Executor, params any) error {
	if key := exec.lockKey(op, params); key != "" {
		got, holder, err := w.cfg.Store.AcquireLock(ctx, key, op.ID, w.cfg.LockTTL)
		if err != nil {
			return err
		}
		if !got {
			return w.busy(ctx, op, &BusyError{Resource: key, Holder: "operation " + holder})
		}
	}
	if key, n, limit := exec.slots(op, params); n > 0 {
		got, used, err := w.cfg.Store.AcquireSlots(ctx, key, op.ID, n, limit, w.cfg.LockTTL)
		if err != nil {
			return err
		}
		if !got {
			msg := fmt.Sprintf("waiting: %s has %d of %d outstanding requests in use; this operation needs %d", key, used, limit, n)
			_, _ = w.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{op.State}, LastError: &msg})
			return &waitError{Delay: w.cfg.BusyRetry, Err: errors.New(msg)}
		}
	}
	return nil
}

// attempt returns the provider's handle of the operation: what an
// interrupted earlier attempt created, if it finds that, or else what a
// new launch returns, after the pre-flight checks and with the attempt
// recorded first. An empty handle means the task ends here, with the
// error returned.
func (w *Worker) attempt(ctx context.Context, op *opstore.Operation, exec Executor, params any) (*opstore.Operation, string, error) {
	if exec.reconciles() && op.State == opstore.StateLaunching && op.LaunchStartedAt != nil {
		h, found, err := exec.reconcile(ctx, op, params, *op.LaunchStartedAt)
		if err != nil {
			return op, "", w.launchFailed(ctx, op, err)
		}
		if found {
			w.opLogger(op).Warn("adopted the job an interrupted launch created; not launching again", zap.String("handle", h))
			return op, h, nil
		}
	}
	before, err := exec.preflight(ctx, op, params)
	if err != nil {
		var be *BusyError
		if errors.As(err, &be) {
			return op, "", w.busy(ctx, op, be)
		}
		return op, "", w.launchFailed(ctx, op, err)
	}
	op, err = w.recordAttempt(ctx, op, before)
	if err != nil {
		return op, "", w.onConflict(ctx, op, err)
	}
	if op.CancelRequested != "" {
		return op, "", w.finish(ctx, op, Outcome{State: opstore.StateCanceled, Error: "canceled before launch"})
	}
	handle, err := exec.launch(ctx, op, params, w.launchOptions(op))
	if err != nil {
		return op, "", w.launchFailed(ctx, op, err)
	}
	return op, handle, nil
}

// recordAttempt saves a launch attempt before the provider call, with the
// state before the change (so a retry that adopts this launch keeps it).
func (w *Worker) recordAttempt(ctx context.Context, op *opstore.Operation, before json.RawMessage) (*opstore.Operation, error) {
	now := w.cfg.Now()
	rec, err := w.cfg.Store.Update(ctx, op, opstore.Change{
		From:            []opstore.State{opstore.StateQueued, opstore.StateLaunching},
		To:              opstore.StateLaunching,
		IncrAttempts:    1,
		LaunchStartedAt: &now,
		Result:          before,
	})
	if err != nil {
		return op, err
	}
	if rec.Attempts == 1 {
		w.logState(rec)
		if w.cfg.Observer != nil {
			w.cfg.Observer.OperationStarted(rec)
		}
	}
	return rec, nil
}

// started records the handle and hands the operation over to polling:
// running, its secrets removed, its deadline set, its first poll and its
// operation.running event enqueued.
func (w *Worker) started(ctx context.Context, op *opstore.Operation, exec Executor, params any, handle string) error {
	now := w.cfg.Now()
	deadline := now.Add(w.cfg.Policies[op.Kind].Deadline)
	seq := 1
	empty := ""
	rec, err := w.cfg.Store.Update(ctx, op, opstore.Change{
		From:       []opstore.State{opstore.StateLaunching},
		To:         opstore.StateRunning,
		Handle:     &handle,
		LaunchedAt: &now,
		DeadlineAt: &deadline,
		SetPollSeq: &seq,
		LastError:  &empty,
		// Secrets were needed for the launch only; digests of them stay to
		// recognise them in the provider's later answers.
		Params:        opstore.RemoveSecrets(op.Params, w.secretKeys(op)),
		RedactDigests: w.launchDigests(op),
	})
	if err != nil {
		// Saving the handle failed (Redis gone): asynq retries, and the
		// retry reconciles against the provider before anything else. Or
		// the record moved on (canceled meanwhile): do what it needs.
		return w.onConflict(ctx, op, err)
	}
	op = rec
	w.logState(op)
	if key := exec.batchKey(op, params); key != "" && w.cfg.Batcher != nil {
		if err := w.cfg.Batcher.Add(ctx, key, op.ID); err != nil {
			w.opLogger(op).Warn("join batch polling (it polls alone)", zap.Error(err))
		}
	}
	if err := w.ensurePoll(ctx, op); err != nil {
		return err
	}
	return w.enqueueEvent(ctx, op, webhooks.EventRunning, "")
}
