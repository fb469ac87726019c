package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/ops"
)

func (pl *pipeline) opLogger(op *opstore.Operation) *zap.Logger {
	return pl.log.With(
		zap.String("operation_id", op.ID),
		zap.String("kind", op.Kind),
		zap.String("provider", op.Provider),
		zap.String("account", op.Account),
	)
}

// logState writes the one line every state change gets.
func (pl *pipeline) logState(op *opstore.Operation, fields ...zap.Field) {
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
	pl.opLogger(op).Info("operation "+string(op.State), append(f, fields...)...)
}

// note appends a step to op's timeline. A step that cannot be recorded
// (Redis gone) is logged and never fails the work.
func (pl *pipeline) note(ctx context.Context, op *opstore.Operation, ev ops.TimelineEvent) {
	if ev.State == "" {
		ev.State = op.State
	}
	if ev.At.IsZero() {
		ev.At = pl.cfg.Now().UTC()
	}
	if err := pl.cfg.Store.AppendTimeline(ctx, op.ID, ev); err != nil {
		pl.opLogger(op).Warn("record a timeline step", zap.Error(err))
	}
}

// noteWait records a wait unless the record already says the same reason
// (numbers aside: "3 of 3 in flight", "next call in 1.2s"), so a task
// that waits again and again leaves one step per reason.
func (pl *pipeline) noteWait(ctx context.Context, op *opstore.Operation, msg string) {
	if digitsRe.ReplaceAllString(op.LastError, "#") == digitsRe.ReplaceAllString(msg, "#") {
		return
	}
	pl.note(ctx, op, ops.TimelineEvent{Type: ops.TimelineWaiting, Message: msg})
}

var digitsRe = regexp.MustCompile(`[0-9][0-9.]*`)

// errorStep describes a failed call for the timeline: its class and the
// provider's request id, when it is a provider's error.
func errorStep(typ string, attempt int, err error) ops.TimelineEvent {
	ev := ops.TimelineEvent{Type: typ, Attempt: attempt, Message: err.Error()}
	var pe *providers.Error
	if errors.As(err, &pe) {
		ev.ErrorClass = pe.Class.String()
		ev.RequestID = pe.RequestID
	}
	return ev
}

// outcome is the final state a done poll result means for op.
func (pl *pipeline) outcome(op *opstore.Operation, r PollResult) opstore.State {
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
func (pl *pipeline) secretKeys(op *opstore.Operation) []string {
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
func (pl *pipeline) credentials(op *opstore.Operation) []string {
	if pl.cfg.Credentials == nil {
		return nil
	}
	return pl.cfg.Credentials(op.Provider, op.Account)
}

// redactorFor knows what must never appear in op's errors, logs and
// webhooks: its secret params' values (from the params before the
// launch, from the stored digests after it) and its account's
// credentials.
func (pl *pipeline) redactorFor(op *opstore.Operation) *redactor {
	creds := pl.credentials(op)
	key := strings.Join(creds, "\x00")
	var r *redactor
	if op.RedactDigests != "" {
		if rd, err := redactorFromDigests(op.RedactDigests, key); err == nil {
			r = rd
		} else {
			pl.opLogger(op).Warn("stored redaction digests unreadable", zap.Error(err))
		}
	}
	if r == nil {
		r = newRedactor(newSalt(), key)
	}
	for _, v := range secretValues(op.Params, pl.secretKeys(op)) {
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
func (pl *pipeline) launchDigests(op *opstore.Operation) string {
	values := secretValues(op.Params, pl.secretKeys(op))
	if len(values) == 0 {
		return ""
	}
	r := newRedactor(newSalt(), strings.Join(pl.credentials(op), "\x00"))
	for _, v := range values {
		r.add(v)
	}
	return r.digests()
}

// redactText removes op's secrets from s.
func (pl *pipeline) redactText(op *opstore.Operation, s string) string {
	if len(s) < minSecretLen {
		return s
	}
	return pl.redactorFor(op).redact(s)
}

// cleanResult removes op's secrets from everything a poll result carries
// from the provider.
func (pl *pipeline) cleanResult(op *opstore.Operation, res PollResult) PollResult {
	if res.Error == "" && res.Status == "" && len(res.Result) == 0 && len(res.Progress) == 0 {
		return res
	}
	r := pl.redactorFor(op)
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
func (pl *pipeline) polled(op *opstore.Operation, r PollResult, seq int) Outcome {
	return Outcome{State: pl.outcome(op, r), Error: r.Error, Result: r.Result, Status: r.Status, Progress: r.Progress, PollSeq: seq, Polls: 1}
}

// finish moves op to a terminal state (if it is not in one already) and
// enqueues its webhook. It returns an error only when the outcome could
// not be recorded (Redis unreachable): the caller must then fail its task
// so asynq runs it again.
func (pl *pipeline) finish(ctx context.Context, op *opstore.Operation, o Outcome) error {
	errMsg := pl.redactText(op, o.Error)
	c := opstore.Change{To: o.State, PollSeq: o.PollSeq, Result: o.Result, IncrPolls: o.Polls, LastError: &errMsg,
		// Secrets leave the record in every final state (a record written
		// by an earlier version names none itself: the kind's type does).
		Params: opstore.RemoveSecrets(op.Params, pl.secretKeys(op))}
	c.Progress = o.Progress
	status := op.Status
	if o.Status != "" {
		c.Status, status = &o.Status, o.Status
	}
	c.Note = &ops.TimelineEvent{Type: ops.TimelineFinished, Message: errMsg, ProviderStatus: status}
	done, err := pl.cfg.Store.Update(ctx, op, c)
	if err != nil {
		var ce *opstore.ConflictError
		if errors.As(err, &ce) || errors.Is(err, opstore.ErrNotFound) {
			// Someone else finished (or moved) it; make sure its webhook goes.
			if cur, gerr := pl.cfg.Store.Get(ctx, op.ID); gerr == nil && cur.State.Terminal() {
				return pl.ensureNotified(ctx, cur)
			}
			return nil
		}
		return fmt.Errorf("record %s of %s: %w", o.State, op.ID, err)
	}
	pl.logState(done)
	if pl.cfg.Observer != nil {
		pl.cfg.Observer.OperationFinished(done)
	}
	pl.release(ctx, op, done)
	return pl.ensureNotified(ctx, done)
}

// release gives back what op held, now done: its batch membership, its
// provider slots, its account cap slot and its resource lock (named by
// its params as they were before the final change removed any secret).
func (pl *pipeline) release(ctx context.Context, op, done *opstore.Operation) {
	if key, _ := pl.accountCap(op); key != "" {
		_ = pl.cfg.Store.ReleaseSlots(ctx, key, done.ID)
	}
	exec, ok := pl.cfg.Executors[ExecutorKey{op.Kind, op.Provider}]
	if !ok {
		return
	}
	params, err := exec.params(op)
	if err != nil {
		return
	}
	if key := exec.batchKey(op, params); key != "" && pl.cfg.Batcher != nil {
		_ = pl.cfg.Batcher.Remove(ctx, key, done.ID)
	}
	if key, n, _ := exec.slots(op, params); n > 0 {
		_ = pl.cfg.Store.ReleaseSlots(ctx, key, done.ID)
	}
	if key := exec.lockKey(op, params); key != "" {
		if err := pl.cfg.Store.ReleaseLock(ctx, key, done.ID); err != nil {
			pl.opLogger(done).Warn("release resource lock (it expires by itself)", zap.Error(err))
		}
	}
}

// onConflict decides what a failed compare-and-set means: another task
// moved the record on, so do what its new state needs, or nothing.
func (pl *pipeline) onConflict(ctx context.Context, op *opstore.Operation, err error) error {
	var ce *opstore.ConflictError
	if !errors.As(err, &ce) {
		return err
	}
	cur, gerr := pl.cfg.Store.Get(ctx, op.ID)
	if gerr != nil {
		return gerr
	}
	switch {
	case cur.State.Terminal():
		return pl.ensureNotified(ctx, cur)
	case cur.State == opstore.StateRunning:
		return pl.ensurePoll(ctx, cur)
	}
	return nil
}

func hasParams(p json.RawMessage) bool {
	t := bytes.TrimSpace(p)
	return len(t) > 0 && string(t) != "null"
}

// unserved is the wait of a task whose (kind, provider) this worker has
// no executor for: it runs again after BusyRetry, without using an
// attempt, until a worker that serves it takes it.
func unserved(pl *pipeline, op *opstore.Operation) error {
	return &waitError{Delay: pl.cfg.BusyRetry, Err: fmt.Errorf("no worker here serves %s on %s", op.Kind, op.Provider)}
}

// accountCap is op's account's cap on operations in flight and the key
// of its slots ("" and 0: none).
func (pl *pipeline) accountCap(op *opstore.Operation) (string, int) {
	if pl.cfg.MaxInFlight == nil {
		return "", 0
	}
	n := pl.cfg.MaxInFlight(op.Provider, op.Account)
	if n <= 0 {
		return "", 0
	}
	return AccountCapResource(op.Provider, op.Account), n
}

// AccountCapResource names the slots of a provider account's
// max_in_flight cap in the store.
func AccountCapResource(provider, account string) string {
	return "inflight:" + provider + ":" + account
}

// endedError is a task's error once its operation has ended and logged
// that in its own line ("operation failed", with the error): the task's
// failure needs no second line.
type endedError struct{ error }

func (e endedError) Unwrap() error { return e.error }

func ended(err error) error { return endedError{err} }

// Ended reports whether err is a task's error whose operation already
// logged its end (the worker's error handler logs it at debug level).
func Ended(err error) bool {
	var e endedError
	return errors.As(err, &e)
}
