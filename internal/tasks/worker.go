package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/ops"
)

// Config wires a Worker.
type Config struct {
	Store     *opstore.Store
	Enqueuer  Enqueuer
	Inspector TaskRunner
	Executors map[ExecutorKey]Executor
	// Policies maps kind to its polling policy. Every kind with an
	// executor needs one.
	Policies map[string]poller.Policy
	// Queue receives poll tasks.
	Queue string
	// TaskTimeout bounds one poll task.
	TaskTimeout time.Duration
	// Webhooks configures event delivery.
	Webhooks WebhookConfig
	Sender   Sender
	// Observer hears about operations and webhook attempts (metrics);
	// nil: none.
	Observer Observer
	// Batcher enables batch polling for executors that support it (nil:
	// every operation polls alone). BatchMax bounds one batch (default
	// 5000).
	Batcher  *poller.Batcher
	BatchMax int
	// LaunchMaxRetry is how often a launch that failed retryably is
	// retried before the operation fails (operations.launch_max_retry).
	// Default 10.
	LaunchMaxRetry int
	// RetryBackoffMax caps the wait between launch retries (1 s doubling).
	// Default 5m.
	RetryBackoffMax time.Duration
	// LockTTL is how long a resource lock lives without a refresh (every
	// poll refreshes it). Default 15m.
	LockTTL time.Duration
	// OnBusy is OnBusyWait (default) or OnBusyFail: what a launch does
	// when its resource (server) is taken.
	OnBusy string
	// BusyRetry is how often a waiting launch looks again (default 10s);
	// BusyWaitMax how long it waits in all (default 1h).
	BusyRetry, BusyWaitMax time.Duration
	// CallbackBaseURL and CallbackSecret, when both set, give launches a
	// provider callback URL (webhooks.CallbackURL).
	CallbackBaseURL string
	CallbackSecret  []byte
	// Credentials returns the secrets of a provider account (its API
	// token): a provider's error text that echoes one is redacted before
	// it is stored, logged or sent. nil: none.
	Credentials func(provider, account string) []string
	Logger      *zap.Logger
	// Now and Rand are the clock and jitter source (defaults: time.Now,
	// math/rand/v2).
	Now  func() time.Time
	Rand func() float64
}

// Observer hears about state changes and webhook attempts.
type Observer interface {
	OperationStarted(op *opstore.Operation)
	OperationFinished(op *opstore.Operation)
	WebhookAttempt(outcome string, attempt int)
}

// On-busy policies.
const (
	OnBusyWait = "wait"
	OnBusyFail = "fail"
)

// TaskRunner is the part of *asynq.Inspector the worker uses: to run a
// scheduled poll at once, and to find an operation's launch task.
type TaskRunner interface {
	RunTask(queue, id string) error
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
}

// Worker holds the handlers of every task type. It is safe for concurrent
// use; all state lives in Redis.
type Worker struct {
	cfg Config
	log *zap.Logger
}

// NewWorker validates cfg and returns a Worker.
func NewWorker(cfg Config) (*Worker, error) {
	if cfg.Store == nil || cfg.Enqueuer == nil || cfg.Sender == nil {
		return nil, errors.New("tasks: Store, Enqueuer and Sender are required")
	}
	cfg.Webhooks = cfg.Webhooks.withDefaults()
	for k := range cfg.Executors {
		if _, ok := cfg.Policies[k.Kind]; !ok {
			return nil, fmt.Errorf("polling.%s: no polling policy configured", k.Kind)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Queue == "" {
		cfg.Queue = "default"
	}
	if cfg.TaskTimeout == 0 {
		cfg.TaskTimeout = 2 * time.Minute
	}
	if cfg.LaunchMaxRetry == 0 {
		cfg.LaunchMaxRetry = 10
	}
	if cfg.RetryBackoffMax == 0 {
		cfg.RetryBackoffMax = 5 * time.Minute
	}
	if cfg.BatchMax == 0 {
		cfg.BatchMax = 5000
	}
	if cfg.LockTTL == 0 {
		cfg.LockTTL = 15 * time.Minute
	}
	if cfg.OnBusy == "" {
		cfg.OnBusy = OnBusyWait
	}
	if cfg.BusyRetry == 0 {
		cfg.BusyRetry = 10 * time.Second
	}
	if cfg.BusyWaitMax == 0 {
		cfg.BusyWaitMax = time.Hour
	}
	return &Worker{cfg: cfg, log: cfg.Logger}, nil
}

// Handler returns the asynq handler for every task type. Known types are
// routed through an asynq.ServeMux; an unknown type fails without retry
// (asynq's mux would retry it MaxRetry times) and is archived with the
// reason.
func (w *Worker) Handler() asynq.Handler {
	mux := asynq.NewServeMux()
	known := map[string]bool{}
	for _, k := range Kinds() {
		mux.HandleFunc(k, w.ProcessLaunch)
		known[k] = true
	}
	mux.HandleFunc(TypePoll, w.ProcessPoll)
	mux.HandleFunc(TypeWebhookDeliver, w.ProcessWebhook)
	mux.HandleFunc(TypeWebhookReplay, w.ProcessReplay)
	mux.HandleFunc(TypeCancel, w.ProcessCancel)
	known[TypePoll], known[TypeWebhookDeliver], known[TypeWebhookReplay], known[TypeCancel] = true, true, true, true
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if !known[t.Type()] {
			return fmt.Errorf("unknown task type %q (known: %v): %w", t.Type(), Kinds(), asynq.SkipRetry)
		}
		return mux.ProcessTask(ctx, t)
	})
}

func (w *Worker) opLogger(op *opstore.Operation) *zap.Logger {
	return w.log.With(
		zap.String("operation_id", op.ID),
		zap.String("kind", op.Kind),
		zap.String("provider", op.Provider),
		zap.String("account", op.Account),
	)
}

// logState writes the one line every state change gets.
func (w *Worker) logState(op *opstore.Operation, fields ...zap.Field) {
	f := []zap.Field{
		zap.String("state", string(op.State)),
		zap.Int("attempt", op.Attempts),
		zap.Int("polls", op.Polls),
		zap.Duration("duration", op.UpdatedAt.Sub(op.CreatedAt)),
	}
	if op.Handle != "" {
		f = append(f, zap.String("handle", op.Handle))
	}
	if op.LastError != "" && op.State != opstore.StateSucceeded {
		f = append(f, zap.String("error", op.LastError))
	}
	w.opLogger(op).Info("operation "+string(op.State), append(f, fields...)...)
}

// poll checks op at its provider: alone, or, for a BatchPoller, through
// the batch of its (provider, account): the batch leader lists every
// member's job in one call and settles the finished ones; a member the
// last batch saw running needs no call of its own.
func (w *Worker) poll(ctx context.Context, exec Executor, op *opstore.Operation, params any) (PollResult, error) {
	key := exec.batchKey(op, params)
	if key == "" || w.cfg.Batcher == nil {
		return exec.poll(ctx, op, params)
	}
	interval := w.cfg.Policies[op.Kind].Initial
	lead, err := w.cfg.Batcher.TryLead(ctx, key, interval)
	if err != nil {
		return exec.poll(ctx, op, params)
	}
	if !lead {
		if st, seen, err := w.cfg.Batcher.SeenRunning(ctx, key, op.ID); err == nil && seen {
			return PollResult{Status: st}, nil
		}
		return exec.poll(ctx, op, params)
	}
	ids, err := w.cfg.Batcher.Members(ctx, key, w.cfg.BatchMax)
	if err != nil {
		return exec.poll(ctx, op, params)
	}
	members, err := w.cfg.Store.GetMany(ctx, ids)
	if err != nil {
		return exec.poll(ctx, op, params)
	}
	byHandle := map[string]*opstore.Operation{}
	handles := make([]string, 0, len(members))
	live := map[string]bool{}
	for _, m := range members {
		live[m.ID] = true
		if m.State == opstore.StateRunning && m.Handle != "" {
			byHandle[m.Handle] = m
			handles = append(handles, m.Handle)
		}
	}
	for _, id := range ids {
		if !live[id] {
			_ = w.cfg.Batcher.Remove(ctx, key, id) // expired record
		}
	}
	if len(handles) < minBatch {
		// A list call costs as much as a few single GETs: not worth it.
		return exec.poll(ctx, op, params)
	}
	results, err := exec.pollBatch(ctx, op.Account, handles)
	if err != nil {
		w.opLogger(op).Warn("batch poll failed; polling alone", zap.Error(redactError(err, w.redactorFor(op))))
		return exec.poll(ctx, op, params)
	}
	running := map[string]string{}
	var mine *PollResult
	settled := 0
	for h, r := range results {
		m := byHandle[h]
		switch {
		case m == nil:
		case m.ID == op.ID:
			r := r
			mine = &r
			if !r.Done {
				running[m.ID] = r.Status
			}
		case r.Done:
			r = w.cleanResult(m, r)
			if err := w.finish(ctx, m, w.polled(m, r, 0)); err == nil {
				settled++
			}
		default:
			running[m.ID] = r.Status
		}
	}
	_ = w.cfg.Batcher.Seen(ctx, key, running, 2*interval)
	w.log.Debug("batch poll", zap.String("batch", key), zap.Int("members", len(handles)), zap.Int("found", len(results)), zap.Int("settled", settled))
	if mine != nil {
		return *mine, nil
	}
	return exec.poll(ctx, op, params)
}

// minBatch is the smallest batch worth a list call.
const minBatch = 3

// outcome is the final state a done poll result means for op.
func (w *Worker) outcome(op *opstore.Operation, r PollResult) opstore.State {
	switch {
	case r.Canceled && op.CancelRequested != "":
		return opstore.StateCanceled
	case r.Succeeded:
		return opstore.StateSucceeded
	}
	return opstore.StateFailed
}

// secretKeys are op's secret params keys: from its kind's params type,
// and those the record names.
func (w *Worker) secretKeys(op *opstore.Operation) []string {
	keys := slices.Clone(op.SecretParams)
	if spec, err := LookupSpec(op.Kind, op.Provider); err == nil {
		for _, k := range spec.SecretParams() {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// credentials are the secrets of op's provider account.
func (w *Worker) credentials(op *opstore.Operation) []string {
	if w.cfg.Credentials == nil {
		return nil
	}
	return w.cfg.Credentials(op.Provider, op.Account)
}

// redactorFor knows what must never appear in op's errors, logs and
// webhooks: its secret params' values (from the params before the
// launch, from the stored digests after it) and its account's
// credentials.
func (w *Worker) redactorFor(op *opstore.Operation) *redactor {
	creds := w.credentials(op)
	key := strings.Join(creds, "\x00")
	var r *redactor
	if op.RedactDigests != "" {
		if rd, err := redactorFromDigests(op.RedactDigests, key); err == nil {
			r = rd
		} else {
			w.opLogger(op).Warn("stored redaction digests unreadable", zap.Error(err))
		}
	}
	if r == nil {
		r = newRedactor(newSalt(), key)
	}
	for _, v := range secretValues(op.Params, w.secretKeys(op)) {
		r.add(v)
	}
	for _, c := range creds {
		if c != "" {
			r.add(c)
		}
	}
	return r
}

// launchDigests are what the record keeps, once its secrets are removed,
// to recognise them in later provider answers ("" when there are none).
func (w *Worker) launchDigests(op *opstore.Operation) string {
	values := secretValues(op.Params, w.secretKeys(op))
	if len(values) == 0 {
		return ""
	}
	r := newRedactor(newSalt(), strings.Join(w.credentials(op), "\x00"))
	for _, v := range values {
		r.add(v)
	}
	return r.digests()
}

// redactText removes op's secrets from s.
func (w *Worker) redactText(op *opstore.Operation, s string) string {
	if len(s) < minSecretLen {
		return s
	}
	return w.redactorFor(op).redact(s)
}

// cleanResult removes op's secrets from everything a poll result carries
// from the provider.
func (w *Worker) cleanResult(op *opstore.Operation, res PollResult) PollResult {
	if res.Error == "" && res.Status == "" && len(res.Result) == 0 && len(res.Progress) == 0 {
		return res
	}
	r := w.redactorFor(op)
	res.Error = r.redact(res.Error)
	res.Status = r.redact(res.Status)
	res.Result = redactJSON(r, res.Result)
	res.Progress = redactJSON(r, res.Progress)
	return res
}

// redactJSON is redact for a JSON value: the result stays JSON.
func redactJSON(r *redactor, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	out := r.redact(string(raw))
	if out == string(raw) {
		return raw
	}
	if json.Valid([]byte(out)) {
		return json.RawMessage(out)
	}
	b, _ := json.Marshal(withheld)
	return b
}

// waitError asks asynq to run the task again after Delay without counting
// a failure (see Worker.IsFailure).
type waitError struct {
	Delay time.Duration
	Err   error
}

func (e *waitError) Error() string { return "waiting: " + e.Err.Error() }
func (e *waitError) Unwrap() error { return e.Err }

// IsFailure is the asynq IsFailure func: waiting for a busy resource does
// not use up a retry.
func (w *Worker) IsFailure(err error) bool {
	var we *waitError
	return !errors.As(err, &we)
}

// busy handles a taken resource per the on_busy policy: fail now, or wait
// (re-run later without using a retry) up to BusyWaitMax.
func (w *Worker) busy(ctx context.Context, op *opstore.Operation, be *BusyError) error {
	if w.cfg.OnBusy == OnBusyFail || w.cfg.Now().Sub(op.CreatedAt) > w.cfg.BusyWaitMax {
		msg := be.Error()
		if w.cfg.OnBusy != OnBusyFail {
			msg = fmt.Sprintf("%s for more than %s", msg, w.cfg.BusyWaitMax)
		}
		if err := w.finish(ctx, op, failed(msg)); err != nil {
			return err
		}
		return fmt.Errorf("%s: %w: %w", op.ID, be, asynq.SkipRetry)
	}
	msg := "waiting: " + be.Error()
	if _, err := w.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{op.State}, LastError: &msg}); err != nil {
		var ce *opstore.ConflictError
		if !errors.As(err, &ce) {
			return err
		}
	}
	return &waitError{Delay: w.cfg.BusyRetry, Err: be}
}

func (w *Worker) launchOptions(op *opstore.Operation) LaunchOptions {
	var o LaunchOptions
	if w.cfg.CallbackBaseURL != "" && len(w.cfg.CallbackSecret) > 0 {
		o.CallbackURL = webhooks.CallbackURL(w.cfg.CallbackBaseURL, w.cfg.CallbackSecret, op.Provider, op.ID)
	}
	return o
}

// PollNow runs the operation's scheduled poll at once (a provider callback
// arrived). It reports false when the operation does not exist or belongs
// to another provider. Nothing else changes: the poll reads the
// provider's status as usual.
func (w *Worker) PollNow(ctx context.Context, provider, operationID string) (bool, error) {
	op, err := w.cfg.Store.Get(ctx, operationID)
	if errors.Is(err, opstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if op.Provider != provider {
		return false, nil
	}
	if op.State != opstore.StateRunning || w.cfg.Inspector == nil {
		return true, nil
	}
	// Already pending or running, or just finished: nothing to hurry.
	_ = w.cfg.Inspector.RunTask(w.cfg.Queue, PollTaskID(op.ID, op.PollSeq))
	return true, nil
}

// ensureRecord loads the operation named by env, or creates it for a raw
// task enqueued by another system. A raw task whose input is refused still
// gets a record, without its params (secrets could hide under a key
// spelled otherwise), and inputErr says why.
func (w *Worker) ensureRecord(ctx context.Context, kind string, env Envelope) (op *opstore.Operation, created bool, inputErr error, err error) {
	if env.OperationID != "" {
		op, err := w.cfg.Store.Get(ctx, env.OperationID)
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
	}
	if taskID, ok := asynq.GetTaskID(ctx); ok {
		rec.LaunchQueue, _ = asynq.GetQueueName(ctx)
		rec.LaunchTaskID = taskID
	}
	params, secrets, inputErr := prepare(&env, kind)
	if inputErr == nil {
		rec.Params, rec.SecretParams, rec.CallbackURL = params, secrets, env.CallbackURL
	} else {
		// Refused params are kept nowhere, not even in the fingerprint (a
		// hash of a password could be tested against guesses).
		rec.Fingerprint = fingerprint(&env, kind, nil)
		if ops.ValidateCallbackURL(env.CallbackURL) == nil {
			// The callback still hears about the refusal.
			rec.CallbackURL = env.CallbackURL
		}
	}
	op, created, err = w.cfg.Store.Create(ctx, rec)
	if errors.Is(err, opstore.ErrIdempotencyConflict) {
		return nil, false, nil, Permanent(fmt.Errorf("idempotency_key %q already names operation %s with a different request", idemKey, op.ID))
	}
	return op, created, inputErr, err
}

// isLastAttempt reports whether a failed launch must give up: asynq's
// own bound for this task or the worker's LaunchMaxRetry, whichever is
// lower, is used up.
func (w *Worker) isLastAttempt(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && (n >= max || n >= w.cfg.LaunchMaxRetry)
}

func (w *Worker) launchFailed(ctx context.Context, op *opstore.Operation, err error) error {
	err = redactError(err, w.redactorFor(op))
	var we *waitError
	if errors.As(err, &we) {
		msg := we.Error()
		_, _ = w.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{op.State}, LastError: &msg})
		return err
	}
	if ctx.Err() != nil {
		// Shutdown or task timeout: asynq re-queues the task.
		return fmt.Errorf("launch %s: %w", op.ID, err)
	}
	if IsPermanent(err) {
		if ferr := w.finish(ctx, op, failed(err.Error())); ferr != nil {
			return ferr
		}
		return fmt.Errorf("launch %s: %w: %w", op.ID, err, asynq.SkipRetry)
	}
	if w.isLastAttempt(ctx) {
		if ferr := w.finish(ctx, op, failed(fmt.Sprintf("gave up after %d attempts: %v", op.Attempts, err))); ferr != nil {
			return ferr
		}
		return fmt.Errorf("launch %s: %w: %w", op.ID, err, asynq.SkipRetry)
	}
	msg := err.Error()
	if _, uerr := w.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{opstore.StateLaunching}, LastError: &msg}); uerr != nil {
		w.opLogger(op).Warn("record launch error", zap.Error(uerr))
	}
	return fmt.Errorf("launch %s: %w", op.ID, err)
}

// onConflict decides what a failed compare-and-set means: another task
// moved the record on, so do what its new state needs, or nothing.
func (w *Worker) onConflict(ctx context.Context, op *opstore.Operation, err error) error {
	var ce *opstore.ConflictError
	if !errors.As(err, &ce) {
		return err
	}
	cur, gerr := w.cfg.Store.Get(ctx, op.ID)
	if gerr != nil {
		return gerr
	}
	switch {
	case cur.State.Terminal():
		return w.ensureNotified(ctx, cur)
	case cur.State == opstore.StateRunning:
		return w.ensurePoll(ctx, cur)
	}
	return nil
}

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
func (w *Worker) ensurePoll(ctx context.Context, op *opstore.Operation) error {
	policy := w.cfg.Policies[op.Kind]
	delay := policy.Next(op.PollSeq, w.cfg.Rand)
	return w.enqueuePoll(ctx, op, op.PollSeq, w.clampToDeadline(op, delay))
}

func (w *Worker) enqueuePoll(ctx context.Context, op *opstore.Operation, seq int, delay time.Duration) error {
	b, _ := json.Marshal(PollPayload{OperationID: op.ID, Seq: seq})
	_, err := w.cfg.Enqueuer.EnqueueContext(ctx, asynq.NewTask(TypePoll, b),
		asynq.TaskID(PollTaskID(op.ID, seq)),
		asynq.Queue(w.cfg.Queue),
		asynq.ProcessIn(delay),
		asynq.Timeout(w.cfg.TaskTimeout),
		asynq.MaxRetry(10),
	)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue poll %d of %s: %w", seq, op.ID, err)
	}
	return nil
}

// clampToDeadline shortens delay so the poll after the deadline runs right
// at it (and ends the operation timed_out) instead of a full backoff later.
func (w *Worker) clampToDeadline(op *opstore.Operation, delay time.Duration) time.Duration {
	if op.DeadlineAt == nil {
		return delay
	}
	left := op.DeadlineAt.Sub(w.cfg.Now())
	if left < delay {
		if left < 0 {
			return 0
		}
		return left
	}
	return delay
}

// ProcessPoll checks one operation's status once. Not done: it schedules
// the next poll and returns nil ("not ready" is never a failure). Done or
// past the deadline: it records the outcome and enqueues the webhook.
func (w *Worker) ProcessPoll(ctx context.Context, t *asynq.Task) error {
	var p PollPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.OperationID == "" || p.Seq < 1 {
		return fmt.Errorf("decode %s: payload must be {\"operation_id\", \"seq\" >= 1}: %w", TypePoll, asynq.SkipRetry)
	}
	op, err := w.pollRecord(ctx, p)
	if op == nil {
		return err
	}
	log := w.opLogger(op).With(zap.Int("attempt", p.Seq))
	now := w.cfg.Now()
	if op.DeadlineAt != nil && !now.Before(*op.DeadlineAt) {
		return w.finish(ctx, op, Outcome{State: opstore.StateTimedOut, PollSeq: p.Seq,
			Error: fmt.Sprintf("no final status from %s within the deadline (%s)", op.Provider, w.cfg.Policies[op.Kind].Deadline)})
	}
	exec, ok := w.cfg.Executors[ExecutorKey{op.Kind, op.Provider}]
	if !ok {
		return fmt.Errorf("poll %s: provider %s is not configured on this worker", op.ID, op.Provider)
	}
	params, err := exec.params(op)
	if err != nil {
		return w.finish(ctx, op, Outcome{State: opstore.StateFailed, Error: err.Error(), PollSeq: p.Seq})
	}
	w.refresh(ctx, op, exec, params, log)
	res, pollErr := w.poll(ctx, exec, op, params)
	if pollErr != nil {
		pollErr = redactError(pollErr, w.redactorFor(op))
	} else {
		res = w.cleanResult(op, res)
	}
	var retryAfter time.Duration
	lastErr := ""
	if err := pollErr; err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("poll %s: %w", op.ID, err)
		}
		if IsPermanent(err) {
			return w.finish(ctx, op, Outcome{State: opstore.StateFailed, Error: err.Error(), PollSeq: p.Seq, Polls: 1})
		}
		var perr *providers.Error
		if errors.As(err, &perr) && perr.RetryAfter > 0 {
			retryAfter = honour(perr.RetryAfter)
		}
		lastErr = err.Error()
		log.Warn("poll failed, will poll again", zap.Error(err))
	} else if res.Done {
		return w.finish(ctx, op, w.polled(op, res, p.Seq))
	} else if res.Unknown {
		log.Warn("unknown provider status, treated as running", zap.String("status", res.Status))
	}
	return w.pollAgain(ctx, op, p.Seq, res, pollErr == nil, retryAfter, lastErr, log)
}

// pollRecord loads the operation a poll names and checks the poll is the
// one its chain expects (the record's poll_seq fences it). A nil record
// means the poll ends here, with the error returned.
func (w *Worker) pollRecord(ctx context.Context, p PollPayload) (*opstore.Operation, error) {
	op, err := w.cfg.Store.Get(ctx, p.OperationID)
	if errors.Is(err, opstore.ErrNotFound) {
		w.log.Warn("poll for unknown or expired operation", zap.String("operation_id", p.OperationID))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch {
	case op.State.Terminal():
		return nil, w.ensureNotified(ctx, op)
	case op.State != opstore.StateRunning:
		return nil, nil
	case p.Seq < op.PollSeq || p.Seq > op.PollSeq+1:
		w.opLogger(op).Debug("stale poll dropped", zap.Int("attempt", p.Seq), zap.Int("poll_seq", op.PollSeq))
		return nil, nil
	case p.Seq == op.PollSeq+1:
		// The previous poll enqueued us but died before recording it.
		seq := p.Seq
		adopted, err := w.cfg.Store.Update(ctx, op, opstore.Change{From: []opstore.State{opstore.StateRunning}, PollSeq: p.Seq - 1, SetPollSeq: &seq})
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
func (w *Worker) refresh(ctx context.Context, op *opstore.Operation, exec Executor, params any, log *zap.Logger) {
	if key, n, limit := exec.slots(op, params); n > 0 {
		_, _, _ = w.cfg.Store.AcquireSlots(ctx, key, op.ID, n, limit+n, w.cfg.LockTTL)
	}
	if key := exec.lockKey(op, params); key != "" {
		if got, holder, err := w.cfg.Store.AcquireLock(ctx, key, op.ID, w.cfg.LockTTL); err == nil && !got {
			log.Error("resource lock lost to another operation (were all workers down longer than the lock TTL?)", zap.String("holder", holder))
		}
	}
}

// pollAgain is what a poll that found the operation still running does:
// schedule the next poll first, then advance the fence and record what
// the provider said. A crash between the two leaves the next poll able to
// adopt the chain.
func (w *Worker) pollAgain(ctx context.Context, op *opstore.Operation, seq int, res PollResult, answered bool, retryAfter time.Duration, lastErr string, log *zap.Logger) error {
	delay := w.clampToDeadline(op, w.cfg.Policies[op.Kind].Delay(seq+1, retryAfter, w.cfg.Rand))
	if err := w.enqueuePoll(ctx, op, seq+1, delay); err != nil {
		return err
	}
	next := seq + 1
	change := opstore.Change{From: []opstore.State{opstore.StateRunning}, PollSeq: seq, SetPollSeq: &next, IncrPolls: 1, LastError: &lastErr}
	if answered {
		change.Status = &res.Status
		change.Progress = res.Progress
	}
	if _, err := w.cfg.Store.Update(ctx, op, change); err != nil {
		var ce *opstore.ConflictError
		if errors.As(err, &ce) {
			return nil
		}
		return err
	}
	log.Debug("not done yet", zap.String("status", res.Status), zap.Duration("delay", delay))
	return nil
}

// Outcome is how an operation ends: its final state and what the
// provider last said. finish records it.
type Outcome struct {
	State opstore.State
	// Error explains a state other than succeeded.
	Error string
	// Result, Status and Progress are the provider's last answer.
	Result   json.RawMessage
	Status   string
	Progress json.RawMessage
	// PollSeq, when > 0, fences the change to that poll; Polls counts the
	// poll that found the outcome (0 or 1).
	PollSeq, Polls int
}

// failed is the outcome of an operation that cannot go on, for why.
func failed(why string) Outcome { return Outcome{State: opstore.StateFailed, Error: why} }

// polled is the outcome a final poll result means for op.
func (w *Worker) polled(op *opstore.Operation, r PollResult, seq int) Outcome {
	return Outcome{State: w.outcome(op, r), Error: r.Error, Result: r.Result, Status: r.Status, Progress: r.Progress, PollSeq: seq, Polls: 1}
}

// finish moves op to a terminal state (if it is not in one already) and
// enqueues its webhook. It returns an error only when the outcome could
// not be recorded (Redis unreachable): the caller must then fail its task
// so asynq runs it again.
func (w *Worker) finish(ctx context.Context, op *opstore.Operation, o Outcome) error {
	errMsg := w.redactText(op, o.Error)
	c := opstore.Change{To: o.State, PollSeq: o.PollSeq, Result: o.Result, IncrPolls: o.Polls, LastError: &errMsg,
		// Secrets leave the record in every final state (a record written
		// by an earlier version names none itself: the kind's type does).
		Params: opstore.RemoveSecrets(op.Params, w.secretKeys(op))}
	c.Progress = o.Progress
	if o.Status != "" {
		c.Status = &o.Status
	}
	done, err := w.cfg.Store.Update(ctx, op, c)
	if err != nil {
		var ce *opstore.ConflictError
		if errors.As(err, &ce) || errors.Is(err, opstore.ErrNotFound) {
			// Someone else finished (or moved) it; make sure its webhook goes.
			if cur, gerr := w.cfg.Store.Get(ctx, op.ID); gerr == nil && cur.State.Terminal() {
				return w.ensureNotified(ctx, cur)
			}
			return nil
		}
		return fmt.Errorf("record %s of %s: %w", o.State, op.ID, err)
	}
	w.logState(done)
	if w.cfg.Observer != nil {
		w.cfg.Observer.OperationFinished(done)
	}
	if exec, ok := w.cfg.Executors[ExecutorKey{op.Kind, op.Provider}]; ok {
		// What the operation held is named by its params (as they were
		// before the final change removed any secret).
		if params, err := exec.params(op); err == nil {
			if key := exec.batchKey(op, params); key != "" && w.cfg.Batcher != nil {
				_ = w.cfg.Batcher.Remove(ctx, key, done.ID)
			}
			if key, n, _ := exec.slots(op, params); n > 0 {
				_ = w.cfg.Store.ReleaseSlots(ctx, key, done.ID)
			}
			if key := exec.lockKey(op, params); key != "" {
				if err := w.cfg.Store.ReleaseLock(ctx, key, done.ID); err != nil {
					w.opLogger(done).Warn("release resource lock (it expires by itself)", zap.Error(err))
				}
			}
		}
	}
	return w.ensureNotified(ctx, done)
}

func hasParams(p json.RawMessage) bool {
	t := bytes.TrimSpace(p)
	return len(t) > 0 && string(t) != "null"
}
