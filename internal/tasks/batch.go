package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/ops"
)

// TypeBatchPoll lists one batch's jobs at its provider once (see
// poller.Batcher): one task per batch key and interval, across workers.
const TypeBatchPoll = "op:batch-poll"

// BatchPollPayload names the batch a TypeBatchPoll task lists: its key,
// and the kind, provider and account whose executor lists it.
type BatchPollPayload struct {
	Key      string `json:"key"`
	Kind     string `json:"kind"`
	Provider string `json:"provider"`
	Account  string `json:"account"`
	// Slot is the interval the task is for: it runs at Slot × interval
	// (Unix time).
	Slot int64 `json:"slot,omitempty"`
}

// BatchPollTaskID is the TaskID of key's batch task for the interval
// that starts at slot × interval (Unix time): at most one per interval.
func BatchPollTaskID(key string, slot int64) string {
	return "batch:" + key + ":" + strconv.FormatInt(slot, 10)
}

// parkedPoll is how often a covered member polls itself, as a safety net
// in case its batch stops: at most LockTTL/3 (so it still refreshes what
// it holds), never more often than its kind's longest backoff.
func (pl *pipeline) parkedPoll(kind string) time.Duration {
	d := min(5*time.Minute, pl.cfg.LockTTL/3)
	return max(d, pl.cfg.Policies[kind].Max)
}

// driveBatch makes sure p.Key's batch task runs at the start of the next
// interval of its kind's policy, after p.Slot (its TaskID makes a second
// request for the same interval a no-op).
func (pl *pipeline) driveBatch(ctx context.Context, p BatchPollPayload) error {
	interval := pl.cfg.Policies[p.Kind].Initial
	if interval <= 0 {
		return fmt.Errorf("batch %s: no polling policy for %s", p.Key, p.Kind)
	}
	slot := max(pl.cfg.Now().UnixNano()/int64(interval), p.Slot) + 1
	p.Slot = slot
	b, _ := json.Marshal(p)
	_, err := pl.cfg.Enqueuer.EnqueueContext(ctx, asynq.NewTask(TypeBatchPoll, b),
		asynq.TaskID(BatchPollTaskID(p.Key, slot)),
		asynq.Queue(ProviderQueue(p.Provider)),
		asynq.ProcessAt(time.Unix(0, slot*int64(interval))),
		asynq.Timeout(pl.cfg.TaskTimeout),
		asynq.MaxRetry(3),
	)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue batch %s: %w", p.Key, err)
	}
	return nil
}

// joinBatch makes op a member of its batch and makes sure the batch task
// runs. A failure is logged: the operation then polls alone.
func (pl *pipeline) joinBatch(ctx context.Context, op *opstore.Operation, key string) {
	err := pl.cfg.Batcher.Add(ctx, key, op.ID, op.Handle)
	if err == nil {
		err = pl.driveBatch(ctx, BatchPollPayload{Key: key, Kind: op.Kind, Provider: op.Provider, Account: op.Account})
	}
	if err != nil {
		pl.opLogger(op).Warn("join batch polling (it polls alone)", zap.Error(err))
	}
}

// batchStep runs TypeBatchPoll tasks.
type batchStep struct{ *pipeline }

// minBatch is the smallest batch worth a list call.
const minBatch = 3

// batchParallel is how many members one batch run settles at a time.
const batchParallel = 16

// ProcessBatchPoll lists one batch's jobs: it schedules the next run
// first, then settles every member the list shows finished, records the
// status of the others, and has the members the list no longer shows poll
// alone now (as it does with every member once the batch is too small to
// list). A list that fails is logged; the next interval lists again, and
// meanwhile a member the last list covered waits for that list or its own
// safety poll (parkedPoll), so a provider whose list is down is not
// flooded with single GETs.
func (bs *batchStep) ProcessBatchPoll(ctx context.Context, t *asynq.Task) error {
	var p BatchPollPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.Key == "" || p.Kind == "" || p.Provider == "" {
		return fmt.Errorf("decode %s: payload must be {\"key\", \"kind\", \"provider\", \"account\"}: %w", TypeBatchPoll, asynq.SkipRetry)
	}
	exec, ok := bs.cfg.Executors[ExecutorKey{p.Kind, p.Provider}]
	if !ok || bs.cfg.Batcher == nil {
		// Not served here (or batching is off): the members poll alone.
		return nil
	}
	log := bs.log.With(zap.String("batch", p.Key))
	token := BatchPollTaskID(p.Key, p.Slot)
	// The lead lives a few intervals and is renewed while the run goes
	// on: a run killed with its worker holds up the batch only that long.
	leadTTL := max(3*bs.cfg.Policies[p.Kind].Initial, 10*time.Second)
	lead, err := bs.cfg.Batcher.Lead(ctx, p.Key, token, leadTTL)
	if err != nil {
		return fmt.Errorf("batch %s: %w", p.Key, err)
	}
	if !lead {
		// The previous run is still going: this interval is its.
		return bs.driveBatch(ctx, p)
	}
	renewing := make(chan struct{})
	defer func() {
		close(renewing)
		_ = bs.cfg.Batcher.Unlead(context.WithoutCancel(ctx), p.Key, token)
	}()
	go func() {
		tick := time.NewTicker(leadTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-renewing:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				_, _ = bs.cfg.Batcher.Lead(ctx, p.Key, token, leadTTL)
			}
		}
	}()
	start := bs.cfg.Now()
	members, err := bs.cfg.Batcher.Members(ctx, p.Key)
	if err != nil {
		return fmt.Errorf("batch %s: %w", p.Key, err)
	}
	if len(members) == 0 {
		return nil // the next member to join starts the batch again
	}
	if err := bs.driveBatch(ctx, p); err != nil {
		return err
	}
	handles := make([]string, 0, len(members))
	for _, m := range members {
		handles = append(handles, m.Handle)
	}
	if len(handles) < minBatch {
		// A list call costs as much as a few single GETs: not worth it.
		// The members poll alone; one an earlier list covered (its own
		// poll is minutes away) polls now.
		for id, m := range members {
			if m.Seen() {
				_, _ = bs.pollNow(ctx, p.Provider, id)
			}
		}
		return nil
	}
	results, err := exec.pollBatch(ctx, p.Account, handles)
	if err != nil {
		log.Warn("batch list failed; the next interval lists again", zap.Error(err))
		return nil
	}
	seen := map[string]poller.Member{}
	var settle, missing []string
	for id, m := range members {
		r, found := results[m.Handle]
		switch {
		case !found:
			if m.Seen() {
				seen[id] = poller.Member{Handle: m.Handle}
				missing = append(missing, id)
			}
		case r.Done:
			settle = append(settle, id)
		default:
			if cur := (poller.Member{Handle: m.Handle, Status: r.Status, Progress: string(r.Progress)}); cur != m {
				seen[id] = cur
				settle = append(settle, id)
			}
		}
	}
	settled := bs.settle(ctx, p.Key, settle, members, results)
	end := bs.cfg.Now()
	if err := bs.cfg.Batcher.Saw(ctx, p.Key, seen, poller.Run{At: end, Took: end.Sub(start)}); err != nil {
		return fmt.Errorf("batch %s: %w", p.Key, err)
	}
	for _, id := range missing {
		_, _ = bs.pollNow(ctx, p.Provider, id)
	}
	log.Debug("batch poll", zap.Int("members", len(members)), zap.Int("found", len(results)),
		zap.Int("settled", settled), zap.Int("missing", len(missing)))
	return nil
}

// settle reads the records of ids and applies what the list said: a
// finished job ends its operation; a running one whose status or
// progress changed is recorded. A member whose record is gone or already
// final leaves the batch. It returns how many operations it ended.
func (bs *batchStep) settle(ctx context.Context, key string, ids []string, members map[string]poller.Member, results map[string]PollResult) int {
	var (
		mu      sync.Mutex
		settled int
		wg      sync.WaitGroup
		sem     = make(chan struct{}, batchParallel)
	)
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		recs, err := bs.cfg.Store.GetMany(ctx, part)
		if err != nil {
			bs.log.Warn("batch: read members", zap.String("batch", key), zap.Error(err))
			return settled
		}
		live := make(map[string]bool, len(recs))
		for _, rec := range recs {
			live[rec.ID] = true
			if rec.State != opstore.StateRunning {
				if rec.State.Terminal() {
					_ = bs.cfg.Batcher.Remove(ctx, key, rec.ID)
				}
				continue
			}
			r := bs.cleanResult(rec, results[members[rec.ID].Handle])
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if r.Done {
					if bs.finish(ctx, rec, bs.polled(rec, r, 0)) == nil {
						mu.Lock()
						settled++
						mu.Unlock()
					}
					return
				}
				bs.record(ctx, rec, r)
			}()
		}
		for _, id := range part {
			if !live[id] {
				_ = bs.cfg.Batcher.Remove(ctx, key, id) // expired record
			}
		}
	}
	wg.Wait()
	return settled
}

// record stores a running member's new status and progress, with a
// timeline step, as its own poll would.
func (bs *batchStep) record(ctx context.Context, op *opstore.Operation, r PollResult) {
	if r.Status == op.Status && bytes.Equal(r.Progress, op.Progress) {
		return
	}
	if r.Unknown {
		bs.opLogger(op).Warn("unknown provider status, treated as running", zap.String("status", r.Status))
	}
	status := r.Status
	if _, err := bs.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{opstore.StateRunning}, Status: &status, Progress: r.Progress}); err != nil {
		return // moved on meanwhile, or Redis gone: its own poll records it
	}
	bs.note(ctx, op, ops.TimelineEvent{Type: ops.TimelinePolled, ProviderStatus: r.Status, Progress: r.Progress})
}
