package runbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// Run states.
const (
	RunRunning     = "running"
	RunWaitingGate = "waiting_gate"
	RunSucceeded   = "succeeded"
	RunFailed      = "failed"
	RunCanceled    = "canceled"
)

// Active reports whether a run is not over.
func Active(state string) bool { return state == RunRunning || state == RunWaitingGate }

// Step phases and the states of steps that have no operation.
const (
	PhaseStep      = "step"
	PhaseOnFailure = "on_failure"
	PhaseFinally   = "finally"

	StepPending = "pending"
	StepSkipped = "skipped"
	// StepWaiting: a gate waits for its decision.
	StepWaiting = "waiting"
	// StepRefused: its params could not be rendered or were refused; it
	// counts as failed.
	StepRefused = "refused"
)

// Redacted replaces a secret input's value wherever a run is shown.
const Redacted = "REDACTED"

// storedRun is a run as Redis keeps it: secret inputs in clear while the
// run needs them.
type storedRun Run

// MarshalJSON renders the run with its secret inputs redacted: every
// rendering (API, CLI, console, webhooks) goes through it; only the store
// keeps the values.
func (r Run) MarshalJSON() ([]byte, error) {
	shown := storedRun(r)
	shown.Inputs = r.ShownInputs()
	shown.CallbackURL = opstore.CallbackOrigin(r.CallbackURL)
	return json.Marshal(shown)
}

// ShownInputs are the run's inputs with the secret ones redacted.
func (r *Run) ShownInputs() map[string]any {
	out := make(map[string]any, len(r.Inputs))
	for k, v := range r.Inputs {
		if slices.Contains(r.SecretInputs, k) {
			v = Redacted
		}
		out[k] = v
	}
	return out
}

// Run is one run of a runbook: its inputs, and each step's operation.
type Run struct {
	ID      string `json:"id"`
	Runbook string `json:"runbook"`
	// Definition is the runbook of a run submitted inline (POST
	// /v1/runs): the run follows it, not the config. Absent for a
	// configured runbook.
	Definition *Definition    `json:"definition,omitempty"`
	State      string         `json:"state"`
	Inputs     map[string]any `json:"inputs"`
	// IdempotencyKey is the key the run was started with: the same key
	// (from the same token) gives this run again.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// CallbackURL receives the run's runbook.* events; it is shown cut to
	// its origin (it may carry a token).
	CallbackURL string `json:"callback_url,omitempty"`
	// Schedule names the schedule that started the run.
	Schedule string `json:"schedule,omitempty"`
	// SecretInputs name the inputs whose values are shown as REDACTED
	// (and removed from the record once the run ends).
	SecretInputs []string          `json:"secret_inputs,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	SubmittedBy  *ops.Actor        `json:"submitted_by,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	FinishedAt   *time.Time        `json:"finished_at,omitempty"`
	// Error names the step that failed the run, and why.
	Error string    `json:"error,omitempty"`
	Steps []RunStep `json:"steps"`
	// CancelRequested is set by Cancel; Compensate says whether the
	// on_failure and finally steps still run then.
	// Refused: the run could not start (an unknown runbook, bad inputs);
	// Error says why.
	Refused         bool       `json:"refused,omitempty"`
	CancelRequested bool       `json:"cancel_requested,omitempty"`
	Compensate      bool       `json:"compensate,omitempty"`
	CanceledBy      *ops.Actor `json:"canceled_by,omitempty"`
}

// RunStep is a step of a run.
type RunStep struct {
	ID    string `json:"id"`
	Phase string `json:"phase"`
	// State is pending, skipped or refused before (or instead of) an
	// operation, then its operation's state.
	State       string `json:"state"`
	OperationID string `json:"operation_id,omitempty"`
	Error       string `json:"error,omitempty"`
	// For is the failed step an on_failure step compensates.
	For string `json:"for,omitempty"`
	// Gate is a gate's message; Deadline when it aborts; DecidedBy who
	// continued or aborted it.
	Gate      string     `json:"gate,omitempty"`
	Deadline  *time.Time `json:"deadline,omitempty"`
	DecidedBy *ops.Actor `json:"decided_by,omitempty"`
}

// TypeAdvance advances a run after one of its steps ended.
const TypeAdvance = "runbook:advance"

// Coordinator starts runs and advances them when their steps' operations
// end: it has no loop of its own and no handler that sleeps. Every step is
// an operation whose idempotency key is the run and the step, so a
// coordinator that dies anywhere neither skips nor repeats one.
type Coordinator struct {
	rdb       redis.UniversalClient
	prefix    string
	store     *opstore.Store
	sub       *tasks.Submitter
	q         tasks.Enqueuer
	queue     string
	runbooks  map[string]*Runbook
	retention time.Duration
	log       *zap.Logger
	now       func() time.Time
	// Notify sends a runbook.* event of run to the subscriptions that
	// name it and to the run's callback URL (the worker's SendRunEvent;
	// nil: none).
	Notify func(ctx context.Context, event, id string, run *Run) error
}

// Runbook events, sent to the subscriptions that name them (data: the
// run).
const (
	EventSucceeded   = "runbook.succeeded"
	EventFailed      = "runbook.failed"
	EventCanceled    = "runbook.canceled"
	EventWaitingGate = "runbook.waiting_gate"
)

// notify sends the events a change of the run calls for: its end, or a
// gate that started waiting. Event ids are per run (and gate), so a
// repeat after a crash is a no-op.
func (c *Coordinator) notify(ctx context.Context, before string, run *Run, gatesBefore map[string]bool) error {
	if c.Notify == nil {
		return nil
	}
	if Active(before) && !Active(run.State) {
		event := map[string]string{RunSucceeded: EventSucceeded, RunFailed: EventFailed, RunCanceled: EventCanceled}[run.State]
		if err := c.Notify(ctx, event, "evt_run_"+run.ID+"_"+run.State, run); err != nil {
			return err
		}
	}
	for _, s := range run.Steps {
		if s.State == StepWaiting && !gatesBefore[s.ID] {
			if err := c.Notify(ctx, EventWaitingGate, "evt_run_"+run.ID+"_gate_"+s.ID, run); err != nil {
				return err
			}
		}
	}
	return nil
}

func waitingGates(run *Run) map[string]bool {
	out := map[string]bool{}
	for _, s := range run.Steps {
		if s.State == StepWaiting {
			out[s.ID] = true
		}
	}
	return out
}

// NewCoordinator returns the coordinator of runbooks; advance tasks go to
// queue (the general one).
func NewCoordinator(rdb redis.UniversalClient, prefix string, store *opstore.Store, sub *tasks.Submitter, q tasks.Enqueuer, queue string,
	runbooks []*Runbook, retention time.Duration, log *zap.Logger) *Coordinator {
	m := map[string]*Runbook{}
	for _, rb := range runbooks {
		m[rb.Name] = rb
	}
	return &Coordinator{rdb: rdb, prefix: prefix, store: store, sub: sub, q: q, queue: queue, runbooks: m, retention: retention, log: log, now: time.Now}
}

func (c *Coordinator) runKey(id string) string  { return c.prefix + ":{ops}:run:" + id }
func (c *Coordinator) indexKey() string         { return c.prefix + ":{ops}:runs" }
func (c *Coordinator) lockKey(id string) string { return c.prefix + ":{ops}:run:" + id + ":lock" }

// Runbooks are the coordinator's runbooks, by name.
func (c *Coordinator) Runbooks() map[string]*Runbook { return c.runbooks }

// Errors of StartRun.
var (
	// ErrUnknownRunbook: no runbook has that name.
	ErrUnknownRunbook = errors.New("no runbook has that name")
	// ErrIdempotencyConflict: the idempotency key names a run of another
	// runbook, or with other inputs.
	ErrIdempotencyConflict = errors.New("the idempotency key already names a run started with a different request")
)

// MaxInlineSteps bounds the steps (on_failure and finally included) of a
// runbook submitted inline.
const MaxInlineSteps = 50

// StartOptions say how to start a run.
type StartOptions struct {
	Inputs map[string]any
	Labels map[string]string
	By     *ops.Actor
	// Definition runs this runbook, submitted inline, instead of a
	// configured one; it is kept with the run.
	Definition *Definition
	// CallbackURL receives the run's runbook.* events.
	CallbackURL string
	// IdempotencyKey, with Scope (who submits: a token's name), makes a
	// repeated start return the first run instead of starting another.
	IdempotencyKey string
	Scope          string
	// ID is the run's id when the caller derives it (a schedule's tick, a
	// CLI request); default: from the idempotency key, or a new one.
	ID string
	// Schedule names the schedule that starts the run.
	Schedule string
}

// runIDSpace is the UUID namespace of run ids derived from a key.
var runIDSpace = uuid.MustParse("5b0b1d0e-3f55-4c52-9b0c-2f1f0e6a7d31")

// RunID is the id of the run a key names: the same scope and key give the
// same id.
func RunID(scope, key string) string {
	return uuid.NewSHA1(runIDSpace, []byte(scope+"\x00"+key)).String()
}

// Start starts a run of the named runbook with inputs (checked; an error
// names the input) and returns it.
func (c *Coordinator) Start(ctx context.Context, name string, inputs map[string]any, labels map[string]string, by *ops.Actor) (*Run, error) {
	run, _, err := c.StartRun(ctx, name, StartOptions{Inputs: inputs, Labels: labels, By: by})
	return run, err
}

// resolve is the runbook a start names: def when given (compiled here),
// else the configured one called name.
func (c *Coordinator) resolve(name string, def *Definition) (*Runbook, error) {
	if def == nil {
		rb, ok := c.runbooks[name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownRunbook, name)
		}
		return rb, nil
	}
	n := len(def.Steps) + len(def.Finally)
	for _, s := range def.Steps {
		n += len(s.OnFailure)
	}
	if n > MaxInlineSteps {
		return nil, &Error{Runbook: def.Name, Field: "steps", Message: fmt.Sprintf("%d steps; a runbook submitted inline has at most %d (on_failure and finally included)", n, MaxInlineSteps)}
	}
	rb, err := Compile(*def)
	if err != nil {
		return nil, err
	}
	if err := rb.NoLiteralSecrets(); err != nil {
		return nil, err
	}
	return rb, nil
}

// runbookOf is the runbook a run follows: its own definition when it was
// submitted inline, else the configured one.
func (c *Coordinator) runbookOf(run *Run) (*Runbook, error) {
	if run.Definition != nil {
		return Compile(*run.Definition)
	}
	rb, ok := c.runbooks[run.Runbook]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRunbook, run.Runbook)
	}
	return rb, nil
}

// createScript creates a run (KEYS[1], ARGV[1]) unless it exists and
// indexes it (KEYS[2], score ARGV[2]) and starts its timeline (KEYS[3],
// ARGV[4]) in one step; it returns the run that exists, or nil when it
// created it.
var createScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('RPUSH', KEYS[3], ARGV[4])
return false
`)

// StartRun starts a run of the named runbook (or of o.Definition) and
// returns it; created is false when o's idempotency key or id names a run
// that exists already (it is returned; ErrIdempotencyConflict when it was
// started with another runbook or other inputs).
func (c *Coordinator) StartRun(ctx context.Context, name string, o StartOptions) (*Run, bool, error) {
	rb, err := c.resolve(name, o.Definition)
	if err != nil {
		return nil, false, err
	}
	in, err := rb.Inputs(o.Inputs)
	if err != nil {
		return nil, false, err
	}
	if err := ops.ValidateLabels(o.Labels); err != nil {
		return nil, false, err
	}
	if err := ops.ValidateCallbackURL(o.CallbackURL); err != nil {
		return nil, false, err
	}
	if err := ops.ValidateIdempotencyKey(o.IdempotencyKey); err != nil {
		return nil, false, err
	}
	id := o.ID
	switch {
	case id != "":
	case o.IdempotencyKey != "":
		id = RunID(o.Scope, o.IdempotencyKey)
	default:
		id = uuid.Must(uuid.NewV7()).String()
	}
	now := c.now().UTC()
	run := &Run{ID: id, Runbook: rb.Name, Definition: o.Definition, SecretInputs: rb.SecretInputs(), State: RunRunning, Inputs: in,
		IdempotencyKey: o.IdempotencyKey, CallbackURL: o.CallbackURL, Schedule: o.Schedule,
		Labels: o.Labels, SubmittedBy: o.By, CreatedAt: now, UpdatedAt: now}
	for _, s := range rb.Steps {
		run.Steps = append(run.Steps, RunStep{ID: s.ID, Phase: PhaseStep, State: StepPending})
	}
	for _, s := range rb.Finally {
		run.Steps = append(run.Steps, RunStep{ID: s.ID, Phase: PhaseFinally, State: StepPending})
	}
	b, err := json.Marshal(storedRun(*run))
	if err != nil {
		return nil, false, err
	}
	started, _ := json.Marshal(changes(nil, run, now)[0])
	cur, err := createScript.Run(ctx, c.rdb, []string{c.runKey(id), c.indexKey(), c.timelineKey(id)}, b, now.UnixMilli(), id, started).Text()
	switch {
	case errors.Is(err, redis.Nil): // created
	case err != nil:
		return nil, false, err
	default:
		var existing storedRun
		if err := json.Unmarshal([]byte(cur), &existing); err != nil {
			return nil, false, err
		}
		prev := Run(existing)
		if !sameRequest(&prev, run) {
			return &prev, false, ErrIdempotencyConflict
		}
		if Active(prev.State) {
			// The start that created it may have died before its advance
			// was queued: queuing it again is a no-op otherwise.
			if err := c.enqueueAdvance(ctx, id, "start"); err != nil {
				return nil, false, err
			}
		}
		return &prev, false, nil
	}
	if err := c.enqueueAdvance(ctx, run.ID, "start"); err != nil {
		return nil, false, err
	}
	c.log.Info("audit: runbook run started", zap.String("run", run.ID), zap.String("runbook", rb.Name), zap.Bool("inline", o.Definition != nil),
		zap.String("schedule", o.Schedule), zap.Stringer("by", o.By))
	return run, true, nil
}

// StartScheduled starts the run of a schedule's tick (schedule.Runs):
// its id derives from the schedule and the tick, so every replica firing
// the tick finds the same run.
func (c *Coordinator) StartScheduled(ctx context.Context, schedule, name string, tick time.Time, inputs map[string]any, callbackURL string) (string, bool, error) {
	id := RunID("schedule:"+schedule, strconv.FormatInt(tick.Unix(), 10))
	run, created, err := c.StartRun(ctx, name, StartOptions{ID: id, Inputs: inputs, CallbackURL: callbackURL, Schedule: schedule,
		By: &ops.Actor{Name: schedule, Via: ops.ViaSchedule, Authenticated: true}})
	if errors.Is(err, ErrIdempotencyConflict) && run != nil {
		// A worker with another definition of the schedule (a deploy in
		// progress) started this tick's run first: that run counts.
		c.log.Warn("schedule tick started by a worker with another definition", zap.String("schedule", schedule), zap.String("run", run.ID))
		return run.ID, false, nil
	}
	if err != nil {
		return "", false, err
	}
	return run.ID, created, nil
}

// RunActive reports whether a run is still going (false once it expired).
func (c *Coordinator) RunActive(ctx context.Context, id string) (bool, error) {
	run, err := c.Get(ctx, id)
	if errors.Is(err, opstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return Active(run.State), nil
}

// sameRequest reports whether a repeated start asks for the run that
// exists: the same runbook (and inline definition) and the same inputs.
// Secret inputs are not compared: the record drops them when the run
// ends.
func sameRequest(prev, run *Run) bool {
	if prev.Runbook != run.Runbook || prev.Refused {
		return false
	}
	a, _ := json.Marshal(prev.Definition)
	b, _ := json.Marshal(run.Definition)
	if string(a) != string(b) {
		return false
	}
	plain := func(r *Run) string {
		m := map[string]any{}
		for k, v := range r.Inputs {
			if !slices.Contains(r.SecretInputs, k) {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	return plain(prev) == plain(run)
}

// Get reads a run (opstore.ErrNotFound when there is none).
func (c *Coordinator) Get(ctx context.Context, id string) (*Run, error) {
	b, err := c.rdb.Get(ctx, c.runKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: run %s", opstore.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var run storedRun
	if err := json.Unmarshal(b, &run); err != nil {
		return nil, err
	}
	r := Run(run)
	return &r, nil
}

// View reads a run with each step's state as its operation has it now
// (the run's record catches up when the coordinator next advances it).
func (c *Coordinator) View(ctx context.Context, id string) (*Run, error) {
	run, err := c.Get(ctx, id)
	if err != nil || !Active(run.State) {
		return run, err
	}
	if _, err := c.refresh(ctx, run); err != nil {
		return nil, err
	}
	return run, nil
}

// save writes the run and, in the same transaction, the timeline entries
// of what changed since before (nil: nothing to compare, no entry).
func (c *Coordinator) save(ctx context.Context, run *Run, before *Run) error {
	run.UpdatedAt = c.now().UTC()
	b, err := json.Marshal(storedRun(*run))
	if err != nil {
		return err
	}
	var ttl time.Duration
	if !Active(run.State) {
		ttl = c.retention
	}
	var events []RunEvent
	if before != nil {
		events = changes(before, run, run.UpdatedAt)
	}
	_, err = c.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Set(ctx, c.runKey(run.ID), b, ttl)
		c.appendTimeline(ctx, pipe, run.ID, events, ttl)
		return nil
	})
	return err
}

// snapshot copies a run to compare with once it changed.
func snapshot(run *Run) *Run {
	cp := *run
	cp.Steps = slices.Clone(run.Steps)
	return &cp
}

func (c *Coordinator) enqueueAdvance(ctx context.Context, runID, after string) error {
	b, _ := json.Marshal(map[string]string{"run_id": runID})
	_, err := c.q.EnqueueContext(ctx, asynq.NewTask(TypeAdvance, b), asynq.Queue(c.queue), asynq.TaskID("run:"+runID+":advance:"+after), asynq.MaxRetry(50))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue the advance of run %s: %w", runID, err)
	}
	return nil
}

// OnFinished is the worker's tasks.Config.OnFinished: an operation of a
// run ended, so the run advances.
func (c *Coordinator) OnFinished(ctx context.Context, op *opstore.Operation) error {
	if op.Run == "" {
		return nil
	}
	return c.enqueueAdvance(ctx, op.Run, op.ID)
}

// ProcessAdvance is the handler of TypeAdvance.
func (c *Coordinator) ProcessAdvance(ctx context.Context, t *asynq.Task) error {
	var p struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.RunID == "" {
		return fmt.Errorf("decode %s: %w", TypeAdvance, asynq.SkipRetry)
	}
	// One advance of a run at a time, on any replica.
	ok, err := c.rdb.SetNX(ctx, c.lockKey(p.RunID), "1", time.Minute).Result()
	if err != nil {
		return err
	}
	if !ok {
		return tasks.Wait(time.Second, errors.New("another worker advances this run"))
	}
	defer c.rdb.Del(context.WithoutCancel(ctx), c.lockKey(p.RunID))
	run, err := c.Get(ctx, p.RunID)
	if errors.Is(err, opstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !Active(run.State) {
		return nil
	}
	prev := snapshot(run)
	rb, err := c.runbookOf(run)
	if err != nil {
		now := c.now().UTC()
		run.State, run.FinishedAt = RunFailed, &now
		run.Error = "the runbook is no longer configured, or its definition no longer compiles: " + err.Error()
		return c.save(ctx, run, prev)
	}
	before, gates := run.State, waitingGates(run)
	if err := c.advance(ctx, rb, run); err != nil {
		return err
	}
	if err := c.notify(ctx, before, run, gates); err != nil {
		return err
	}
	return c.save(ctx, run, prev)
}

// advance reads the run's operations and takes every step it can; it
// loops while steps end without an operation (refused params).
func (c *Coordinator) advance(ctx context.Context, rb *Runbook, run *Run) error {
	for range 100 {
		states, err := c.refresh(ctx, run)
		if err != nil {
			return err
		}
		progressed, err := c.step(ctx, rb, run, states)
		if err != nil || !progressed {
			return err
		}
	}
	return nil
}

// refresh copies each step's operation state into the run and returns
// what templates see of the steps.
func (c *Coordinator) refresh(ctx context.Context, run *Run) (map[string]StepState, error) {
	var ids []string
	for _, s := range run.Steps {
		if s.OperationID != "" {
			ids = append(ids, s.OperationID)
		}
	}
	states := map[string]StepState{}
	now := c.now()
	for i := range run.Steps {
		s := &run.Steps[i]
		if s.State == StepWaiting && s.Deadline != nil && !now.Before(*s.Deadline) {
			s.State, s.Error = string(ops.StateTimedOut), "nobody continued it before its timeout"
		}
		if s.Gate != "" {
			states[s.ID] = StepState{State: s.State}
		}
	}
	if len(ids) == 0 {
		return states, nil
	}
	got, err := c.store.GetMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := map[string]*opstore.Operation{}
	for _, op := range got {
		byID[op.ID] = op
	}
	for i := range run.Steps {
		s := &run.Steps[i]
		op, ok := byID[s.OperationID]
		if !ok {
			continue
		}
		s.State = string(op.State)
		if op.State.Terminal() && op.State != opstore.StateSucceeded {
			s.Error = op.LastError
		}
		states[s.ID] = StepState{Result: op.Result, Handle: op.Handle, OperationID: op.ID, State: string(op.State)}
	}
	return states, nil
}

func failedState(st string) bool {
	return st == string(ops.StateFailed) || st == string(ops.StateCanceled) || st == string(ops.StateTimedOut) || st == StepRefused
}

func ended(st string) bool { return st == StepSkipped || ops.State(st).Terminal() || st == StepRefused }

// step takes the run's next steps; it reports whether anything changed
// without an operation that will end later.
func (c *Coordinator) step(ctx context.Context, rb *Runbook, run *Run, states map[string]StepState) (bool, error) {
	var failed *RunStep
	inflight, allOK, waiting := false, true, false
	for i := range run.Steps {
		s := &run.Steps[i]
		if s.Phase != PhaseStep {
			continue
		}
		if run.CancelRequested && s.State == StepPending {
			s.State = StepSkipped
		}
		switch {
		case failedState(s.State) && failed == nil:
			failed = s
		case s.State == StepWaiting:
			inflight, waiting = true, true
		case s.OperationID != "" && !ended(s.State):
			inflight = true
		}
		if s.State != string(ops.StateSucceeded) {
			allOK = false
		}
	}
	run.State = RunRunning
	if waiting {
		run.State = RunWaitingGate
	}
	if failed == nil && !allOK && !run.CancelRequested {
		progressed := false
		for i := range run.Steps {
			s := &run.Steps[i]
			if s.Phase != PhaseStep || s.State != StepPending {
				continue
			}
			ready := true
			for _, n := range rb.Needs(s.ID) {
				if states[n].State != string(ops.StateSucceeded) {
					ready = false
				}
			}
			if ready {
				p, err := c.submit(ctx, rb, run, s, states)
				if err != nil {
					return false, err
				}
				progressed = progressed || p
			}
		}
		return progressed, nil
	}
	if inflight {
		return false, nil // compensation waits for the steps still running
	}
	compensate := !run.CancelRequested || run.Compensate
	if failed != nil && compensate {
		def, _ := rb.StepOf(failed.ID)
		for _, comp := range def.OnFailure {
			i := slices.IndexFunc(run.Steps, func(s RunStep) bool { return s.ID == comp.ID })
			if i < 0 {
				run.Steps = append(run.Steps, RunStep{ID: comp.ID, Phase: PhaseOnFailure, State: StepPending, For: failed.ID})
				i = len(run.Steps) - 1
			}
			s := &run.Steps[i]
			if s.State == StepPending {
				return c.submit(ctx, rb, run, s, states)
			}
			if !ended(s.State) {
				return false, nil // one compensation step at a time, in order
			}
		}
	}
	for i := range run.Steps {
		s := &run.Steps[i]
		if s.Phase != PhaseFinally || !compensate {
			continue
		}
		if s.State == StepPending {
			return c.submit(ctx, rb, run, s, states)
		}
		if !ended(s.State) {
			return false, nil
		}
	}
	c.finish(run, failed)
	return false, nil
}

// submit submits a step's operation; a step whose params cannot be
// rendered or are refused ends refused, and the run goes on (true).
func (c *Coordinator) submit(ctx context.Context, rb *Runbook, run *Run, s *RunStep, states map[string]StepState) (bool, error) {
	def, _ := rb.StepOf(s.ID)
	if def.Gate != nil {
		timeout := def.Gate.Timeout
		if timeout <= 0 {
			timeout = DefaultGateTimeout
		}
		deadline := c.now().Add(timeout).UTC()
		s.State, s.Gate, s.Deadline = StepWaiting, def.Gate.Message, &deadline
		run.State = RunWaitingGate
		b, _ := json.Marshal(map[string]string{"run_id": run.ID})
		_, err := c.q.EnqueueContext(ctx, asynq.NewTask(TypeAdvance, b), asynq.Queue(c.queue), asynq.TaskID("run:"+run.ID+":advance:gate:"+s.ID),
			// asynq keeps whole seconds (rounded down): a second more runs
			// it at or after the deadline.
			asynq.ProcessAt(deadline.Add(time.Second)), asynq.MaxRetry(50))
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return false, fmt.Errorf("enqueue the timeout of gate %s: %w", s.ID, err)
		}
		c.log.Info("runbook gate waits", zap.String("run", run.ID), zap.String("step", s.ID), zap.Time("deadline", deadline))
		return false, nil
	}
	params, err := rb.Render(s.ID, run.Inputs, states)
	if err == nil {
		var op *opstore.Operation
		env := tasks.Envelope{Provider: def.Provider, Account: def.Account, Params: params, Labels: run.Labels}
		op, _, err = c.sub.SubmitStep(ctx, run.ID, s.ID, run.SubmittedBy, def.Kind, env)
		var ve *ops.ValidationError
		switch {
		case err == nil:
			s.OperationID, s.State = op.ID, string(op.State)
			c.log.Info("runbook step submitted", zap.String("run", run.ID), zap.String("step", s.ID), zap.String("operation_id", op.ID))
			return false, nil
		case !errors.As(err, &ve):
			return false, err // Redis: the task runs again
		}
	}
	s.State, s.Error = StepRefused, err.Error()
	c.log.Warn("runbook step refused", zap.String("run", run.ID), zap.String("step", s.ID), zap.Error(err))
	return true, nil
}

// finish ends the run: failed naming the failing step, canceled naming
// the gate that was aborted or timed out (or who canceled it), or
// succeeded.
func (c *Coordinator) finish(run *Run, failed *RunStep) {
	now := c.now().UTC()
	for _, k := range run.SecretInputs {
		if _, ok := run.Inputs[k]; ok {
			run.Inputs[k] = "REMOVED" // no step needs it any more
		}
	}
	run.FinishedAt = &now
	run.State = RunSucceeded
	for i := range run.Steps {
		if run.Steps[i].State == StepPending {
			run.Steps[i].State = StepSkipped
		}
	}
	switch {
	case failed != nil && failed.Gate != "":
		// Nobody went on: an abort or a timeout is a decision not to,
		// not a failure of the work.
		run.State = RunCanceled
		run.Error = fmt.Sprintf("gate %q: %s", failed.ID, failed.Error)
	case failed != nil:
		run.State = RunFailed
		run.Error = fmt.Sprintf("step %q %s: %s", failed.ID, failed.State, failed.Error)
	}
	if run.CancelRequested {
		run.State = RunCanceled
		run.Error = "canceled by " + run.CanceledBy.String()
		for i := range run.Steps {
			if run.Steps[i].State == StepPending {
				run.Steps[i].State = StepSkipped
			}
		}
	}
	c.log.Info("runbook run "+run.State, zap.String("run", run.ID), zap.String("runbook", run.Runbook), zap.String("error", run.Error))
}

// Errors of Decide and Cancel.
var (
	// ErrNotWaiting: the step is not a gate that waits.
	ErrNotWaiting = errors.New("the step is not a gate waiting for a decision")
	// ErrRunOver: the run has ended.
	ErrRunOver = errors.New("the run has ended")
)

// locked runs fn on the run under its lock, then saves it.
func (c *Coordinator) locked(ctx context.Context, id string, fn func(rb *Runbook, run *Run) error) (*Run, error) {
	for range 50 {
		ok, err := c.rdb.SetNX(ctx, c.lockKey(id), "1", time.Minute).Result()
		if err != nil {
			return nil, err
		}
		if ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer c.rdb.Del(context.WithoutCancel(ctx), c.lockKey(id))
	run, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !Active(run.State) {
		return run, ErrRunOver
	}
	rb, err := c.runbookOf(run)
	if err != nil {
		return run, err
	}
	prev := snapshot(run)
	before, gates := run.State, waitingGates(run)
	if err := fn(rb, run); err != nil {
		return run, err
	}
	if err := c.advance(ctx, rb, run); err != nil {
		return run, err
	}
	if err := c.notify(ctx, before, run, gates); err != nil {
		return run, err
	}
	return run, c.save(ctx, run, prev)
}

// Decide continues (or aborts) a gate that waits; an aborted gate ends
// the run canceled, after its compensation.
func (c *Coordinator) Decide(ctx context.Context, runID, step string, cont bool, by *ops.Actor) (*Run, error) {
	return c.locked(ctx, runID, func(_ *Runbook, run *Run) error {
		i := slices.IndexFunc(run.Steps, func(s RunStep) bool { return s.ID == step })
		if i < 0 || run.Steps[i].State != StepWaiting {
			return ErrNotWaiting
		}
		s := &run.Steps[i]
		s.DecidedBy = by
		if cont {
			s.State = string(ops.StateSucceeded)
		} else {
			s.State, s.Error = string(ops.StateCanceled), "aborted by "+by.String()
		}
		c.log.Info("audit: runbook gate decided", zap.String("run", runID), zap.String("step", step), zap.Bool("continue", cont), zap.Stringer("by", by))
		return nil
	})
}

// Cancel cancels a run: its running steps are canceled where their kind
// can be, gates abort, steps not started are skipped; once nothing runs,
// the on_failure and finally steps run if compensate, and the run ends
// canceled.
func (c *Coordinator) Cancel(ctx context.Context, runID string, compensate bool, by *ops.Actor) (*Run, error) {
	return c.locked(ctx, runID, func(_ *Runbook, run *Run) error {
		if run.CancelRequested {
			return nil
		}
		run.CancelRequested, run.Compensate, run.CanceledBy = true, compensate, by
		for i := range run.Steps {
			s := &run.Steps[i]
			switch {
			case s.State == StepWaiting:
				s.State, s.Error = string(ops.StateCanceled), "the run was canceled"
			case s.OperationID != "" && !ended(s.State):
				if err := tasks.RequestCancel(ctx, c.q, c.queue, tasks.CancelPayload{OperationID: s.OperationID, By: by}); err != nil {
					return err
				}
			}
		}
		c.log.Info("audit: runbook run cancel requested", zap.String("run", runID), zap.Bool("compensate", compensate), zap.Stringer("by", by))
		return nil
	})
}

// TypeCommand carries a command from the CLI, which has neither the
// runbooks' definitions nor a coordinator: start, continue, abort, cancel.
const TypeCommand = "runbook:command"

// Command is the payload of TypeCommand.
type Command struct {
	RunID  string `json:"run_id"`
	Action string `json:"action"`
	// Step names the gate of continue and abort.
	Step       string     `json:"step,omitempty"`
	Compensate bool       `json:"compensate,omitempty"`
	By         *ops.Actor `json:"by,omitempty"`
}

// startRequest is what a CLI start leaves in Redis for the worker.
type startRequest struct {
	Runbook string            `json:"runbook"`
	Inputs  map[string]any    `json:"inputs,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Definition is a runbook given inline (`enqueue run --file`).
	Definition  *Definition `json:"definition,omitempty"`
	CallbackURL string      `json:"callback_url,omitempty"`
}

// StartRequest is what the CLI asks a worker to start: a configured
// runbook by Runbook, or Definition.
type StartRequest struct {
	Runbook     string
	Definition  *Definition
	Inputs      map[string]any
	Labels      map[string]string
	CallbackURL string
}

func requestKey(prefix, id string) string { return prefix + ":{ops}:run:" + id + ":request" }

// RequestStart asks a worker to start a run (the CLI): the request waits
// in Redis (10 minutes at most) and the run appears under the returned id
// once a worker has taken it, started or refused (Refused, Error).
func RequestStart(ctx context.Context, rdb redis.UniversalClient, prefix string, q tasks.Enqueuer, queue string, req StartRequest, by *ops.Actor) (string, error) {
	id := uuid.Must(uuid.NewV7()).String()
	if req.Definition != nil {
		req.Runbook = req.Definition.Name
	}
	b, _ := json.Marshal(startRequest{Runbook: req.Runbook, Inputs: req.Inputs, Labels: req.Labels, Definition: req.Definition, CallbackURL: req.CallbackURL})
	if err := rdb.Set(ctx, requestKey(prefix, id), b, 10*time.Minute).Err(); err != nil {
		return "", err
	}
	return id, RequestCommand(ctx, q, queue, Command{RunID: id, Action: "start", By: by})
}

// RequestCommand asks a worker to continue or abort a gate, or cancel a
// run (the CLI).
func RequestCommand(ctx context.Context, q tasks.Enqueuer, queue string, cmd Command) error {
	b, _ := json.Marshal(cmd)
	_, err := q.EnqueueContext(ctx, asynq.NewTask(TypeCommand, b), asynq.Queue(queue), asynq.MaxRetry(20))
	return err
}

// ReadRun reads a run without a coordinator (the CLI).
func ReadRun(ctx context.Context, rdb redis.UniversalClient, prefix, id string) (*Run, error) {
	c := &Coordinator{rdb: rdb, prefix: prefix}
	return c.Get(ctx, id)
}

// ProcessCommand is the handler of TypeCommand.
func (c *Coordinator) ProcessCommand(ctx context.Context, t *asynq.Task) error {
	var cmd Command
	if err := json.Unmarshal(t.Payload(), &cmd); err != nil || cmd.RunID == "" {
		return fmt.Errorf("decode %s: %w", TypeCommand, asynq.SkipRetry)
	}
	var err error
	switch cmd.Action {
	case "start":
		return c.startRequested(ctx, cmd)
	case "continue", "abort":
		_, err = c.Decide(ctx, cmd.RunID, cmd.Step, cmd.Action == "continue", cmd.By)
	case "cancel":
		_, err = c.Cancel(ctx, cmd.RunID, cmd.Compensate, cmd.By)
	default:
		return fmt.Errorf("%s: unknown action %q: %w", TypeCommand, cmd.Action, asynq.SkipRetry)
	}
	if errors.Is(err, ErrNotWaiting) || errors.Is(err, ErrRunOver) || errors.Is(err, opstore.ErrNotFound) {
		c.log.Info("runbook command not applied", zap.String("run", cmd.RunID), zap.String("action", cmd.Action), zap.Error(err))
		return nil
	}
	return err
}

func (c *Coordinator) startRequested(ctx context.Context, cmd Command) error {
	// The request is read, the run started (once: its id is the
	// request's), then the request deleted: a worker that dies between
	// the two leaves the request for the task's retry.
	key := requestKey(c.prefix, cmd.RunID)
	b, err := c.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil // taken already, or expired
	}
	if err != nil {
		return err
	}
	var req startRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return fmt.Errorf("start %s: %w: %w", cmd.RunID, err, asynq.SkipRetry)
	}
	name := req.Runbook
	if req.Definition != nil {
		name = ""
	}
	_, _, err = c.StartRun(ctx, name, StartOptions{ID: cmd.RunID, Inputs: req.Inputs, Labels: req.Labels, By: cmd.By,
		Definition: req.Definition, CallbackURL: req.CallbackURL})
	var re *Error
	var ve *ops.ValidationError
	if errors.Is(err, ErrUnknownRunbook) || errors.As(err, &re) || errors.As(err, &ve) {
		now := c.now().UTC()
		refused := &Run{ID: cmd.RunID, Runbook: req.Runbook, State: RunFailed, Refused: true, Error: err.Error(),
			Labels: req.Labels, SubmittedBy: cmd.By, CreatedAt: now, FinishedAt: &now, Steps: []RunStep{}} // no inputs: some may be secret
		err = c.save(ctx, refused, &Run{State: RunRunning})
	}
	if err != nil {
		return err
	}
	return c.rdb.Del(ctx, key).Err()
}

// List returns up to limit runs, newest first, and drops the entries of
// runs that expired.
func (c *Coordinator) List(ctx context.Context, limit int) ([]*Run, error) {
	return ListRuns(ctx, c.rdb, c.prefix, limit)
}

// ListRuns is List without a coordinator (the CLI).
func ListRuns(ctx context.Context, rdb redis.UniversalClient, prefix string, limit int) ([]*Run, error) {
	c := &Coordinator{rdb: rdb, prefix: prefix}
	var out []*Run
	for offset := int64(0); len(out) < limit; {
		ids, err := rdb.ZRevRange(ctx, c.indexKey(), offset, offset+int64(limit)-1).Result()
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
		offset += int64(len(ids))
		for _, id := range ids {
			run, err := c.Get(ctx, id)
			if errors.Is(err, opstore.ErrNotFound) {
				_ = rdb.ZRem(ctx, c.indexKey(), id).Err()
				offset--
				continue
			}
			if err != nil {
				return nil, err
			}
			if out = append(out, run); len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// RunPlan is the answer of a dry run of a run: its checked inputs and
// what its first steps (those that need nothing) would do now.
type RunPlan struct {
	Runbook string         `json:"runbook"`
	Inputs  map[string]any `json:"inputs"`
	// Steps are the first steps' plans; a gate's is its message.
	Steps []StepPlan `json:"steps"`
	// Later are the steps after them, whose params may depend on the
	// first steps' results: not checked against the provider.
	Later []string `json:"later,omitempty"`
}

// StepPlan is one first step of a dry run.
type StepPlan struct {
	ID   string    `json:"id"`
	Gate string    `json:"gate,omitempty"`
	Plan *ops.Plan `json:"plan,omitempty"`
	// Error says why the step would be refused (its params).
	Error string `json:"error,omitempty"`
}

// DryRun checks a run without starting it: the inputs (an error names
// the input), then each first step's params and, through dryRun (the
// worker's), its pre-flight and the call it would send.
func (c *Coordinator) DryRun(ctx context.Context, name string, def *Definition, inputs map[string]any,
	dryRun func(ctx context.Context, kind string, env tasks.Envelope) (*ops.Plan, error)) (*RunPlan, error) {
	rb, err := c.resolve(name, def)
	if err != nil {
		return nil, err
	}
	name = rb.Name
	in, err := rb.Inputs(inputs)
	if err != nil {
		return nil, err
	}
	plan := &RunPlan{Runbook: name, Inputs: (&Run{Inputs: in, SecretInputs: rb.SecretInputs()}).ShownInputs(), Steps: []StepPlan{}}
	for _, s := range rb.Steps {
		if len(rb.Needs(s.ID)) > 0 {
			plan.Later = append(plan.Later, s.ID)
			continue
		}
		sp := StepPlan{ID: s.ID}
		switch params, err := rb.Render(s.ID, in, nil); {
		case s.Gate != nil:
			sp.Gate = s.Gate.Message
		case err != nil:
			sp.Error = err.Error()
		default:
			p, err := dryRun(ctx, s.Kind, tasks.Envelope{Provider: s.Provider, Account: s.Account, Params: params})
			var ve *ops.ValidationError
			switch {
			case errors.As(err, &ve):
				sp.Error = ve.Error()
			case err != nil:
				return nil, err
			default:
				sp.Plan = p
			}
		}
		plan.Steps = append(plan.Steps, sp)
	}
	return plan, nil
}
