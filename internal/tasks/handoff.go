package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/webhooks"
)

// PollPayload is the payload of op:poll.
type PollPayload struct {
	OperationID string `json:"operation_id"`
	// Seq is this poll's place in the chain; the record's poll_seq fences it.
	Seq int `json:"seq"`
}

// PollTaskID is the deterministic TaskID of poll number seq.
func PollTaskID(opID string, seq int) string { return fmt.Sprintf("op:%s:poll:%d", opID, seq) }

// ensurePoll enqueues the poll the record expects next (op.PollSeq). If it
// exists already, the TaskID conflict makes this a no-op.
func (pl *pipeline) ensurePoll(ctx context.Context, op *opstore.Operation) error {
	policy := pl.cfg.Policies[op.Kind]
	delay := policy.Next(op.PollSeq, pl.cfg.Rand)
	return pl.enqueuePoll(ctx, op, op.PollSeq, pl.clampToDeadline(op, delay))
}

func (pl *pipeline) enqueuePoll(ctx context.Context, op *opstore.Operation, seq int, delay time.Duration) error {
	b, _ := json.Marshal(PollPayload{OperationID: op.ID, Seq: seq})
	_, err := pl.cfg.Enqueuer.EnqueueContext(ctx, asynq.NewTask(TypePoll, b),
		asynq.TaskID(PollTaskID(op.ID, seq)),
		asynq.Queue(ProviderQueue(op.Provider)),
		asynq.ProcessIn(delay),
		asynq.Timeout(pl.cfg.TaskTimeout),
		asynq.MaxRetry(10),
	)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue poll %d of %s: %w", seq, op.ID, err)
	}
	return nil
}

// clampToDeadline shortens delay so the poll after the deadline runs right
// at it (and ends the operation timed_out) instead of a full backoff later.
func (pl *pipeline) clampToDeadline(op *opstore.Operation, delay time.Duration) time.Duration {
	if op.DeadlineAt == nil {
		return delay
	}
	left := op.DeadlineAt.Sub(pl.cfg.Now())
	if left < delay {
		if left < 0 {
			return 0
		}
		return left
	}
	return delay
}

// pollNow runs the operation's scheduled poll at once (a provider callback
// arrived). It reports false when the operation does not exist or belongs
// to another provider. Nothing else changes: the poll reads the
// provider's status as usual (a batch member's too: it asks the provider
// itself rather than take its batch's last list).
func (pl *pipeline) pollNow(ctx context.Context, provider, operationID string) (bool, error) {
	op, err := pl.cfg.Store.Get(ctx, operationID)
	if errors.Is(err, opstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if op.Provider != provider {
		return false, nil
	}
	if op.State != opstore.StateRunning || pl.cfg.Inspector == nil {
		return true, nil
	}
	// A batch member polls alone now, not from its batch's last list.
	if exec, ok := pl.cfg.Executors[ExecutorKey{op.Kind, op.Provider}]; ok && pl.cfg.Batcher != nil {
		if params, err := exec.params(op); err == nil {
			if key := exec.batchKey(op, params); key != "" {
				_ = pl.cfg.Batcher.Unsee(ctx, key, op.ID)
			}
		}
	}
	// Already pending or running, or just finished: nothing to hurry. A
	// poll enqueued before provider queues is in the general queue.
	err = pl.cfg.Inspector.RunTask(ProviderQueue(op.Provider), PollTaskID(op.ID, op.PollSeq))
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		_ = pl.cfg.Inspector.RunTask(pl.cfg.Queue, PollTaskID(op.ID, op.PollSeq))
	}
	return true, nil
}

// enqueueEvent enqueues one delivery task per destination of event: the
// operation's callback_url and every matching, enabled subscription. Each
// destination is its own task, so a failing endpoint never delays
// another. TaskIDs are deterministic (and retained), so enqueueing the
// same event again is a no-op. replay != "" starts a new series.
func (pl *pipeline) enqueueEvent(ctx context.Context, op *opstore.Operation, event, replay string) error {
	return pl.enqueueEventTo(ctx, op, event, replay, nil)
}

func (pl *pipeline) enqueueEventTo(ctx context.Context, op *opstore.Operation, event, replay string, only func(destination, url string) bool) error {
	type dest struct{ id, url string }
	var dests []dest
	// The record says whether the callback answered 410 Gone (every
	// caller holds a record read after the event it announces).
	if op.CallbackURL != "" && !op.CallbackGone {
		dests = append(dests, dest{destCallback, op.CallbackURL})
	}
	if len(pl.cfg.Webhooks.Subscriptions) > 0 {
		disabled, err := pl.cfg.Store.DisabledSubscriptions(ctx)
		if err != nil {
			return err
		}
		for _, s := range pl.cfg.Webhooks.Subscriptions {
			if _, off := disabled[s.Name]; !off && s.matches(op, event) {
				dests = append(dests, dest{destSub(s.Name), s.URL})
			}
		}
	}
	if only != nil {
		dests = slices.DeleteFunc(dests, func(d dest) bool { return !only(d.id, d.url) })
	}
	if len(dests) == 0 {
		return nil
	}
	ts := pl.cfg.Now()
	switch {
	case event == webhooks.EventRunning && op.LaunchedAt != nil:
		ts = *op.LaunchedAt
	case event != webhooks.EventRunning && op.FinishedAt != nil:
		ts = *op.FinishedAt
	}
	body, err := eventBody(op, event, ts)
	if err != nil {
		return err
	}
	// The body is built once and kept on the record: every attempt and
	// every replay sends the same bytes.
	if err := pl.cfg.Store.SaveEvent(ctx, op.ID, event, body); err != nil {
		return err
	}
	for _, d := range dests {
		payload, _ := json.Marshal(WebhookPayload{
			OperationID: op.ID, Account: op.Account, EventID: EventID(op.ID, event), EventType: event,
			Destination: d.id, Host: opstore.CallbackOrigin(d.url),
		})
		id := DeliveryTaskID(op.ID, event, d.id)
		if replay != "" {
			id += ":replay:" + replay
		}
		_, err := pl.cfg.Enqueuer.EnqueueContext(ctx, asynq.NewTask(TypeWebhookDeliver, payload),
			asynq.TaskID(id),
			asynq.Queue(pl.cfg.Webhooks.Queue),
			asynq.MaxRetry(len(pl.cfg.Webhooks.Schedule)),
			asynq.Timeout(pl.cfg.Webhooks.Timeout+5*time.Second),
			asynq.Retention(pl.cfg.Webhooks.Retention),
		)
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("enqueue %s of %s: %w", event, op.ID, err)
		}
	}
	return nil
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

// ensureNotified enqueues the terminal event of a finished operation. A
// re-run (a task asynq runs again after a crash) enqueues nothing new:
// the deliveries' TaskIDs are deterministic and kept for the webhook
// retention, and OnFinished is idempotent. Records written by an earlier
// version that say notified are left alone.
func (pl *pipeline) ensureNotified(ctx context.Context, op *opstore.Operation) error {
	if op.Notified || !op.State.Terminal() {
		return nil
	}
	if err := pl.enqueueEvent(ctx, op, EventType(op.State), ""); err != nil {
		return err
	}
	if pl.cfg.OnFinished != nil {
		if err := pl.cfg.OnFinished(ctx, op); err != nil {
			return err
		}
	}
	return nil
}
