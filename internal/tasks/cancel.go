package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/ops"
)

// TypeCancel asks for an operation to be canceled (enqueue cancel).
const TypeCancel = "op:cancel"

// CancelPayload is the payload of op:cancel.
type CancelPayload struct {
	OperationID string `json:"operation_id"`
	// Expire uses the provider's administrative expiry instead of a
	// cancellation (Leaseweb: expireActiveJob leaves the server as it is;
	// cancelActiveJob runs the job's on-fail flow, often a reboot).
	Expire bool `json:"expire,omitempty"`
	// By is who asks (recorded as the operation's canceled_by).
	By *ops.Actor `json:"by,omitempty"`
	// Reject refuses an operation waiting for its approval (any kind).
	Reject bool `json:"reject,omitempty"`
}

// Cancelable reports whether kind on provider can be canceled.
func Cancelable(kind, provider string) bool {
	s, err := LookupSpec(kind, provider)
	return err == nil && s.Cancelable
}

// ProcessCancel cancels an operation: one not launched yet ends canceled
// at once; a running one is canceled at the provider, and its next poll
// (run now) records the canceled state.
func (cs *cancelStep) ProcessCancel(ctx context.Context, t *asynq.Task) error {
	var p CancelPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.OperationID == "" {
		return fmt.Errorf("decode %s: %w", TypeCancel, asynq.SkipRetry)
	}
	op, err := cs.cfg.Store.Get(ctx, p.OperationID)
	if errors.Is(err, opstore.ErrNotFound) {
		return fmt.Errorf("cancel: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if op.State.Terminal() {
		return nil
	}
	if p.Reject && op.State != opstore.StatePendingApproval {
		return fmt.Errorf("reject %s: %w (it is %s): %w", op.ID, ErrNotPending, op.State, asynq.SkipRetry)
	}
	exec, ok := cs.cfg.Executors[ExecutorKey{op.Kind, op.Provider}]
	notLaunched := op.State == opstore.StateQueued || op.State == opstore.StatePendingApproval
	switch {
	case op.State == opstore.StatePendingApproval:
		// Not launched, and never will be before an approval: any kind
		// can be canceled or rejected here, on any worker.
	case ok && !exec.cancels(), !ok && !Cancelable(op.Kind, op.Provider):
		return fmt.Errorf("cancel %s: %s on %s cannot be canceled: %w", op.ID, op.Kind, op.Provider, asynq.SkipRetry)
	case !ok && !notLaunched:
		// Only a worker that serves the provider can cancel there: hand
		// the request to its queue. Any worker ends one not launched yet.
		return cs.handOffCancel(ctx, op, t)
	}
	how := "cancel"
	if p.Expire {
		how = "expire"
	}
	first := op.CancelRequested == ""
	op, err = cs.cfg.Store.Update(ctx, op, opstore.Change{CancelRequested: &how, CanceledBy: p.By})
	if err != nil {
		var ce *opstore.ConflictError
		if errors.As(err, &ce) {
			return nil // it ended meanwhile
		}
		return err
	}
	if first {
		if p.Reject {
			how = "reject"
		}
		cs.note(ctx, op, ops.TimelineEvent{Type: ops.TimelineCancelRequested, Actor: p.By, Message: how})
	}
	switch op.State {
	case opstore.StateQueued, opstore.StatePendingApproval:
		// Not launched: end it here; the launch task finds it canceled.
		why := "canceled before launch"
		if p.Reject {
			why = "rejected by " + p.By.String()
		}
		if _, err := cs.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{opstore.StateQueued, opstore.StatePendingApproval}, To: opstore.StateCanceled, LastError: &why,
			Params: opstore.RemoveSecrets(op.Params, cs.secretKeys(op))}); err != nil {
			var ce *opstore.ConflictError
			if errors.As(err, &ce) {
				return &waitError{Delay: time.Second, Err: errors.New("launch in progress")}
			}
			return err
		}
		cur, err := cs.cfg.Store.Get(ctx, op.ID)
		if err != nil {
			return err
		}
		cs.logState(cur)
		// A launch that waits (for the account's cap, say) may already
		// hold the resource's lock or slots.
		cs.release(ctx, op, cur)
		return cs.ensureNotified(ctx, cur)
	case opstore.StateLaunching:
		// The launch checks the flag before calling the provider; if the
		// call is already out, cancel once the job is known.
		return &waitError{Delay: time.Second, Err: errors.New("launch in progress")}
	}
	params, err := exec.params(op)
	if err != nil {
		return fmt.Errorf("cancel %s: %w: %w", op.ID, err, asynq.SkipRetry)
	}
	if err := exec.cancel(ctx, op, params, p.Expire); err != nil {
		err = redactError(err, cs.redactorFor(op))
		if IsPermanent(err) {
			msg := "cancel failed: " + err.Error()
			_, _ = cs.cfg.Store.Update(ctx, op, opstore.Change{LastError: &msg})
			return fmt.Errorf("cancel %s: %w: %w", op.ID, err, asynq.SkipRetry)
		}
		return fmt.Errorf("cancel %s: %w", op.ID, err)
	}
	cs.opLogger(op).Info("canceled at the provider; polling now", zap.String("how", how))
	if _, err := cs.pollNow(ctx, op.Provider, op.ID); err != nil {
		return err
	}
	return nil
}

func strPtr(s string) *string { return &s }

// handOffCancel re-enqueues a cancel request in the queue of op's
// provider, where a worker that can cancel at the provider takes it.
func (cs *cancelStep) handOffCancel(ctx context.Context, op *opstore.Operation, t *asynq.Task) error {
	_, err := cs.cfg.Enqueuer.EnqueueContext(ctx, asynq.NewTask(TypeCancel, t.Payload()),
		asynq.Queue(ProviderQueue(op.Provider)), asynq.TaskID(CancelTaskID(op.ID)), asynq.MaxRetry(20))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("hand cancel of %s to %s: %w", op.ID, ProviderQueue(op.Provider), err)
	}
	cs.opLogger(op).Info("cancel handed to a worker that serves the provider", zap.String("queue", ProviderQueue(op.Provider)))
	return nil
}

// CancelTaskID is the TaskID of an operation's cancel request.
func CancelTaskID(opID string) string { return "op:" + opID + ":cancel" }

// RequestCancel queues a cancel request (or a rejection, p.Reject) in
// queue, the general one: any worker takes it. One request per operation
// at a time (CancelTaskID): asking again while one waits is a no-op.
func RequestCancel(ctx context.Context, q Enqueuer, queue string, p CancelPayload) error {
	b, _ := json.Marshal(p)
	_, err := q.EnqueueContext(ctx, asynq.NewTask(TypeCancel, b), asynq.Queue(queue), asynq.TaskID(CancelTaskID(p.OperationID)), asynq.MaxRetry(20))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return err
	}
	return nil
}
