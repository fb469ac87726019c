package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
)

// OrphanAfter is how old a queued or launching operation must be before
// ReapOrphans looks for its launch task: younger ones may be between the
// record's creation and their task's enqueue.
const OrphanAfter = 10 * time.Minute

// ReapOrphans ends the operations whose launch task is gone while they
// were still queued or launching: a write token deleted or archived it in
// the queue UI, or it was archived after its last retry without the
// record learning of it. Nothing would ever end such a record, and it
// would keep its secret params. Each one ends failed, saying why (its
// secrets are removed like in every final state), and its webhook goes
// out. An approved operation whose launch task was never queued (its
// approver died between the two writes) is queued instead: its approval
// stands. Records written by an earlier version name no launch task and
// are left alone. It returns how many it ended. Safe to run from every replica.
func (w *Worker) ReapOrphans(ctx context.Context) (int, error) {
	if w.p.cfg.Inspector == nil {
		return 0, nil
	}
	cutoff := w.p.cfg.Now().Add(-OrphanAfter)
	reaped := 0
	for _, state := range []opstore.State{opstore.StateQueued, opstore.StateLaunching} {
		f := opstore.Filter{State: state, Limit: 200}
		for {
			ops, next, err := w.p.cfg.Store.ListPage(ctx, f)
			if err != nil {
				return reaped, fmt.Errorf("reap orphans: %w", err)
			}
			for _, op := range ops {
				if op.State != state || op.LaunchTaskID == "" || op.CreatedAt.After(cutoff) {
					continue
				}
				why, orphan := w.launchTaskGone(op)
				if !orphan {
					continue
				}
				if state == opstore.StateQueued && op.ApprovedBy != nil && why == "deleted" {
					// Approved, but its launch task was never queued (the
					// approver's request died between the two writes):
					// the approval stands, so it is queued now.
					if err := enqueueApprovedLaunch(ctx, w.p.cfg.Enqueuer, op); err != nil {
						return reaped, err
					}
					w.p.opLogger(op).Warn("approved operation had no launch task; queued it", zap.Stringer("approved_by", op.ApprovedBy))
					continue
				}
				msg := "its launch task is gone (" + why + "); it never launched"
				if state == opstore.StateLaunching {
					msg = "its launch task is gone (" + why + ") during a launch attempt: the provider may have accepted it; check there before submitting again"
				}
				if err := w.p.finish(ctx, op, failed(msg)); err != nil {
					return reaped, err
				}
				w.p.opLogger(op).Warn("orphaned operation ended", zap.String("reason", why))
				reaped++
			}
			if next == "" {
				break
			}
			f.After = next
		}
	}
	return reaped, nil
}

// launchTaskGone reports whether op's launch task can no longer run it.
func (w *Worker) launchTaskGone(op *opstore.Operation) (string, bool) {
	info, err := w.p.cfg.Inspector.GetTaskInfo(op.LaunchQueue, op.LaunchTaskID)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return "deleted", true
	case err != nil:
		return "", false // cannot tell: look again next round
	case info.State == asynq.TaskStateArchived:
		return "archived: " + info.LastErr, true
	case info.State == asynq.TaskStateCompleted:
		return "completed", true
	}
	return "", false
}
