package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/ops"
)

// ProcessPoll checks one operation's status once. Not done: it schedules
// the next poll and returns nil ("not ready" is never a failure). Done or
// past the deadline: it records the outcome and enqueues the webhook.
func (ps *pollStep) ProcessPoll(ctx context.Context, t *asynq.Task) error {
	var p PollPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.OperationID == "" || p.Seq < 1 {
		return fmt.Errorf("decode %s: payload must be {\"operation_id\", \"seq\" >= 1}: %w", TypePoll, asynq.SkipRetry)
	}
	op, err := ps.pollRecord(ctx, p)
	if op == nil {
		return err
	}
	log := ps.opLogger(op).With(zap.Int("attempt", p.Seq))
	now := ps.cfg.Now()
	if op.DeadlineAt != nil && !now.Before(*op.DeadlineAt) {
		return ps.finish(ctx, op, Outcome{State: opstore.StateTimedOut, PollSeq: p.Seq,
			Error: fmt.Sprintf("no final status from %s within the deadline (%s)", op.Provider, ps.cfg.Policies[op.Kind].Deadline)})
	}
	exec, ok := ps.cfg.Executors[ExecutorKey{op.Kind, op.Provider}]
	if !ok {
		return unserved(ps.pipeline, op)
	}
	params, err := exec.params(op)
	if err != nil {
		return ps.finish(ctx, op, Outcome{State: opstore.StateFailed, Error: err.Error(), PollSeq: p.Seq})
	}
	ps.refresh(ctx, op, exec, params, log)
	res, covered, pollErr := ps.poll(ctx, exec, op, params)
	if pollErr != nil {
		pollErr = redactError(pollErr, ps.redactorFor(op))
	} else {
		res = ps.cleanResult(op, res)
	}
	var retryAfter time.Duration
	lastErr := ""
	if err := pollErr; err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("poll %s: %w", op.ID, err)
		}
		if IsPermanent(err) {
			return ps.finish(ctx, op, Outcome{State: opstore.StateFailed, Error: err.Error(), PollSeq: p.Seq, Polls: 1})
		}
		var perr *providers.Error
		if errors.As(err, &perr) && perr.RetryAfter > 0 {
			retryAfter = honour(perr.RetryAfter)
		}
		lastErr = err.Error()
		log.Warn("poll failed, will poll again", zap.Error(err))
	} else if res.Done {
		return ps.finish(ctx, op, ps.polled(op, res, p.Seq))
	} else if res.Unknown {
		log.Warn("unknown provider status, treated as running", zap.String("status", res.Status))
	}
	if covered {
		// Its batch follows it: its own poll is only a safety net.
		retryAfter = ps.parkedPoll(op.Kind)
	}
	return ps.pollAgain(ctx, op, p.Seq, res, pollErr == nil, retryAfter, lastErr, log)
}

// pollRecord loads the operation a poll names and checks the poll is the
// one its chain expects (the record's poll_seq fences it). A nil record
// means the poll ends here, with the error returned.
func (ps *pollStep) pollRecord(ctx context.Context, p PollPayload) (*opstore.Operation, error) {
	op, err := ps.cfg.Store.Get(ctx, p.OperationID)
	if errors.Is(err, opstore.ErrNotFound) {
		ps.log.Warn("poll for unknown or expired operation", zap.String("operation_id", p.OperationID))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch {
	case op.State.Terminal():
		return nil, ps.ensureNotified(ctx, op)
	case op.State != opstore.StateRunning:
		return nil, nil
	case p.Seq < op.PollSeq || p.Seq > op.PollSeq+1:
		ps.opLogger(op).Debug("stale poll dropped", zap.Int("attempt", p.Seq), zap.Int("poll_seq", op.PollSeq))
		return nil, nil
	case p.Seq == op.PollSeq+1:
		// The previous poll enqueued us but died before recording it.
		seq := p.Seq
		adopted, err := ps.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{opstore.StateRunning}, PollSeq: p.Seq - 1, SetPollSeq: &seq})
		if err != nil {
			var ce *opstore.ConflictError
			if errors.As(err, &ce) {
				return nil, nil
			}
			return nil, err
		}
		op = adopted
	}
	return op, nil
}

// refresh extends what a running operation holds: its provider slots and
// its resource lock (and says so when the lock was lost).
func (ps *pollStep) refresh(ctx context.Context, op *opstore.Operation, exec Executor, params any, log *zap.Logger) {
	if key, n, limit := exec.slots(op, params); n > 0 {
		_, _, _ = ps.cfg.Store.AcquireSlots(ctx, key, op.ID, n, limit+n, ps.cfg.LockTTL)
	}
	if key, limit := ps.accountCap(op); key != "" {
		_, _, _ = ps.cfg.Store.AcquireSlots(ctx, key, op.ID, 1, limit+1, ps.cfg.LockTTL)
	}
	if key := exec.lockKey(op, params); key != "" {
		if got, holder, err := ps.cfg.Store.AcquireLock(ctx, key, op.ID, ps.cfg.LockTTL); err == nil && !got {
			log.Error("resource lock lost to another operation (were all workers down longer than the lock TTL?)", zap.String("holder", holder))
		}
	}
}

// poll checks op at its provider: alone, or, for a batch member the
// batch's last list saw running (covered: true), from what that list
// said, with no call of its own. A member that is not covered polls
// alone, and rejoins its batch if it left it.
func (ps *pollStep) poll(ctx context.Context, exec Executor, op *opstore.Operation, params any) (res PollResult, covered bool, err error) {
	key := exec.batchKey(op, params)
	if key == "" || ps.cfg.Batcher == nil {
		res, err = exec.poll(ctx, op, params)
		return res, false, err
	}
	m, in, last, err := ps.cfg.Batcher.Look(ctx, key, op.ID)
	if err == nil {
		fresh := last.Fresh(ps.cfg.Now(), ps.cfg.Policies[op.Kind].Initial)
		if in && m.Seen() && fresh {
			return PollResult{Status: m.Status, Progress: json.RawMessage(m.Progress)}, true, nil
		}
		switch {
		case !in && op.Handle != "":
			ps.joinBatch(ctx, op, key)
		case in && !fresh:
			// No list lately: make sure the batch task still runs.
			_ = ps.driveBatch(ctx, BatchPollPayload{Key: key, Kind: op.Kind, Provider: op.Provider, Account: op.Account})
		}
	}
	res, err = exec.poll(ctx, op, params)
	return res, false, err
}

// pollAgain is what a poll that found the operation still running does:
// schedule the next poll first, then advance the fence and record what
// the provider said. A crash between the two leaves the next poll able to
// adopt the chain.
func (ps *pollStep) pollAgain(ctx context.Context, op *opstore.Operation, seq int, res PollResult, answered bool, retryAfter time.Duration, lastErr string, log *zap.Logger) error {
	delay := ps.clampToDeadline(op, ps.cfg.Policies[op.Kind].Delay(seq+1, retryAfter, ps.cfg.Rand))
	if err := ps.enqueuePoll(ctx, op, seq+1, delay); err != nil {
		return err
	}
	next := seq + 1
	change := opstore.Change{From: []opstore.State{opstore.StateRunning}, PollSeq: seq, SetPollSeq: &next, IncrPolls: 1, LastError: &lastErr}
	if answered {
		change.Status = &res.Status
		change.Progress = res.Progress
	}
	if _, err := ps.cfg.Store.Update(ctx, op, change); err != nil {
		var ce *opstore.ConflictError
		if errors.As(err, &ce) {
			return nil
		}
		return err
	}
	// Only a poll that changed something is a step: the status, the
	// progress, or a failure.
	switch {
	case lastErr != "" && lastErr != op.LastError:
		ps.note(ctx, op, ops.TimelineEvent{Type: ops.TimelinePolled, Attempt: seq, Message: lastErr})
	case answered && (res.Status != op.Status || !bytes.Equal(res.Progress, op.Progress)):
		ps.note(ctx, op, ops.TimelineEvent{Type: ops.TimelinePolled, Attempt: seq, ProviderStatus: res.Status, Progress: res.Progress})
	}
	log.Debug("not done yet", zap.String("status", res.Status), zap.Duration("delay", delay))
	return nil
}
