package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/ops"
)

// ApprovalRule makes the operations of Kind (on Providers and Accounts;
// empty: all) wait in pending_approval until someone other than their
// submitter approves them, or Deadline passes and they end canceled.
type ApprovalRule struct {
	Kind                string
	Providers, Accounts []string
	Deadline            time.Duration
}

// DefaultApprovalDeadline is how long an operation waits for an approval
// when its rule names no deadline.
const DefaultApprovalDeadline = 24 * time.Hour

func (r ApprovalRule) matches(op *opstore.Operation) bool {
	return r.Kind == op.Kind && (len(r.Providers) == 0 || slices.Contains(r.Providers, op.Provider)) &&
		(len(r.Accounts) == 0 || slices.Contains(r.Accounts, op.Account))
}

// approvalRule is the rule op falls under, if any.
func (pl *pipeline) approvalRule(op *opstore.Operation) (ApprovalRule, bool) {
	for _, r := range pl.cfg.Approvals {
		if r.matches(op) {
			if r.Deadline <= 0 {
				r.Deadline = DefaultApprovalDeadline
			}
			return r, true
		}
	}
	return ApprovalRule{}, false
}

// TypeApprovalDeadline ends an operation still waiting for its approval
// when the deadline passes.
const TypeApprovalDeadline = "op:approval_deadline"

// holdForApproval puts a queued operation whose kind needs an approval,
// and has none, in pending_approval: its launch waits for Approve. It
// reports whether the task ends here (the operation waits).
func (pl *pipeline) holdForApproval(ctx context.Context, op *opstore.Operation) (bool, error) {
	if op.State == opstore.StatePendingApproval {
		return true, nil // a launch task of an operation not approved yet
	}
	rule, ok := pl.approvalRule(op)
	if !ok || op.ApprovedBy != nil || op.State != opstore.StateQueued {
		return false, nil
	}
	deadline := pl.cfg.Now().Add(rule.Deadline).UTC()
	held, err := pl.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{opstore.StateQueued}, To: opstore.StatePendingApproval, ApprovalDeadline: &deadline})
	if err != nil {
		var ce *opstore.ConflictError
		if errors.As(err, &ce) {
			return true, nil // moved on meanwhile (canceled, or another task held it)
		}
		return true, err
	}
	b, _ := json.Marshal(map[string]string{"operation_id": op.ID})
	if _, err := pl.cfg.Enqueuer.EnqueueContext(ctx, asynq.NewTask(TypeApprovalDeadline, b), asynq.Queue(pl.cfg.Queue),
		asynq.TaskID("op:"+op.ID+":approval_deadline"), asynq.ProcessAt(deadline), asynq.MaxRetry(20)); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return true, fmt.Errorf("enqueue the approval deadline of %s: %w", op.ID, err)
	}
	pl.logState(held, zap.Time("approval_deadline", deadline))
	pl.note(ctx, held, ops.TimelineEvent{Type: ops.TimelinePendingApproval, Message: fmt.Sprintf("waits for an approval until %s", deadline.Format(time.RFC3339))})
	return true, pl.enqueueEvent(ctx, held, ops.EventPendingApproval, "")
}

// HoldForApproval puts a new queued operation whose kind needs an
// approval in pending_approval (SubmitOptions.Hold); it reports whether
// it did.
func (w *Worker) HoldForApproval(ctx context.Context, op *opstore.Operation) (bool, error) {
	if op.State != opstore.StateQueued {
		return false, nil
	}
	return w.p.holdForApproval(ctx, op)
}

// processApprovalDeadline ends an operation that is still waiting for an
// approval once its deadline has passed.
func (w *Worker) processApprovalDeadline(ctx context.Context, t *asynq.Task) error {
	var p struct {
		OperationID string `json:"operation_id"`
	}
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.OperationID == "" {
		return fmt.Errorf("decode %s: %w", TypeApprovalDeadline, asynq.SkipRetry)
	}
	op, err := w.p.cfg.Store.Get(ctx, p.OperationID)
	if errors.Is(err, opstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if op.State != opstore.StatePendingApproval || op.ApprovalDeadline == nil {
		return nil
	}
	if left := op.ApprovalDeadline.Sub(w.p.cfg.Now()); left > 0 {
		return &waitError{Delay: left, Err: errors.New("approval deadline not reached")}
	}
	return w.p.finish(ctx, op, Outcome{State: opstore.StateCanceled,
		Error: fmt.Sprintf("no approval before the deadline (%s)", op.ApprovalDeadline.Format(time.RFC3339))})
}

// Errors of Approve.
var (
	// ErrNotPending: the operation does not wait for an approval.
	ErrNotPending = errors.New("the operation does not wait for an approval")
	// ErrOwnApproval: the submitter cannot approve their own operation.
	ErrOwnApproval = errors.New("the operation's submitter cannot approve it")
)

// Approve lets an operation waiting in pending_approval go on: it becomes
// queued, names by as its approver, and gets a new launch task in its
// provider's queue. by must not be its submitter (same name and way in).
func Approve(ctx context.Context, store *opstore.Store, q Enqueuer, id string, by *ops.Actor) (*opstore.Operation, error) {
	op, err := store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if op.State != opstore.StatePendingApproval {
		return op, fmt.Errorf("%w (it is %s)", ErrNotPending, op.State)
	}
	if s := op.SubmittedBy; s != nil && by != nil && s.Name == by.Name && s.Via == by.Via {
		return op, ErrOwnApproval
	}
	task := LaunchTaskID(op.ID) + ":approved"
	approved, err := store.Update(ctx, op, opstore.Change{From: []opstore.State{opstore.StatePendingApproval}, To: opstore.StateQueued,
		ApprovedBy: by, LaunchTaskID: task})
	if err != nil {
		var ce *opstore.ConflictError
		if errors.As(err, &ce) {
			return op, fmt.Errorf("%w (it is %s)", ErrNotPending, ce.State)
		}
		return op, err
	}
	if err := enqueueApprovedLaunch(ctx, q, approved); err != nil {
		// ReapOrphans queues it within its round: the approval stands.
		return approved, err
	}
	_ = store.AppendTimeline(ctx, op.ID, ops.TimelineEvent{Type: ops.TimelineApproved, Actor: by, State: approved.State})
	return approved, nil
}

// enqueueApprovedLaunch queues the launch task an approval names
// (op.LaunchTaskID, in the provider's queue); queuing it again while it
// exists is a no-op.
func enqueueApprovedLaunch(ctx context.Context, q Enqueuer, op *opstore.Operation) error {
	payload, _ := json.Marshal(map[string]string{"operation_id": op.ID})
	if _, err := q.EnqueueContext(ctx, asynq.NewTask(op.Kind, payload), asynq.TaskID(op.LaunchTaskID), asynq.Queue(ProviderQueue(op.Provider)),
		asynq.MaxRetry(1000), asynq.Timeout(2*time.Minute)); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue the launch of %s: %w", op.ID, err)
	}
	return nil
}
