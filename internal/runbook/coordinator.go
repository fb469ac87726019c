package runbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// Step phases and the states of steps that have no operation.
const (
	PhaseStep      = "step"
	PhaseOnFailure = "on_failure"
	PhaseFinally   = "finally"

	StepPending = "pending"
	StepSkipped = "skipped"
	// StepRefused: its params could not be rendered or were refused; it
	// counts as failed.
	StepRefused = "refused"
)

// Run is one run of a runbook: its inputs, and each step's operation.
type Run struct {
	ID          string            `json:"id"`
	Runbook     string            `json:"runbook"`
	State       string            `json:"state"`
	Inputs      map[string]any    `json:"inputs"`
	Labels      map[string]string `json:"labels,omitempty"`
	SubmittedBy *ops.Actor        `json:"submitted_by,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	FinishedAt  *time.Time        `json:"finished_at,omitempty"`
	// Error names the step that failed the run, and why.
	Error string    `json:"error,omitempty"`
	Steps []RunStep `json:"steps"`
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
func (c *Coordinator) lockKey(id string) string { return c.prefix + ":{ops}:run:" + id + ":lock" }

// Runbooks are the coordinator's runbooks, by name.
func (c *Coordinator) Runbooks() map[string]*Runbook { return c.runbooks }

// ErrUnknownRunbook: no runbook has that name.
var ErrUnknownRunbook = errors.New("no runbook has that name")

// Start starts a run of the named runbook with inputs (checked; an error
// names the input) and returns it.
func (c *Coordinator) Start(ctx context.Context, name string, inputs map[string]any, labels map[string]string, by *ops.Actor) (*Run, error) {
	rb, ok := c.runbooks[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRunbook, name)
	}
	in, err := rb.Inputs(inputs)
	if err != nil {
		return nil, err
	}
	if err := ops.ValidateLabels(labels); err != nil {
		return nil, err
	}
	now := c.now().UTC()
	run := &Run{ID: uuid.Must(uuid.NewV7()).String(), Runbook: name, State: RunRunning, Inputs: in, Labels: labels, SubmittedBy: by, CreatedAt: now, UpdatedAt: now}
	for _, s := range rb.Steps {
		run.Steps = append(run.Steps, RunStep{ID: s.ID, Phase: PhaseStep, State: StepPending})
	}
	for _, s := range rb.Finally {
		run.Steps = append(run.Steps, RunStep{ID: s.ID, Phase: PhaseFinally, State: StepPending})
	}
	if err := c.save(ctx, run); err != nil {
		return nil, err
	}
	if err := c.enqueueAdvance(ctx, run.ID, "start"); err != nil {
		return nil, err
	}
	c.log.Info("audit: runbook run started", zap.String("run", run.ID), zap.String("runbook", name), zap.Stringer("by", by))
	return run, nil
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
	var run Run
	if err := json.Unmarshal(b, &run); err != nil {
		return nil, err
	}
	return &run, nil
}

func (c *Coordinator) save(ctx context.Context, run *Run) error {
	run.UpdatedAt = c.now().UTC()
	b, err := json.Marshal(run)
	if err != nil {
		return err
	}
	var ttl time.Duration
	if run.State != RunRunning {
		ttl = c.retention
	}
	return c.rdb.Set(ctx, c.runKey(run.ID), b, ttl).Err()
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
	if run.State != RunRunning {
		return nil
	}
	rb, ok := c.runbooks[run.Runbook]
	if !ok {
		run.State, run.Error = RunFailed, "the runbook is no longer configured"
		return c.save(ctx, run)
	}
	if err := c.advance(ctx, rb, run); err != nil {
		return err
	}
	return c.save(ctx, run)
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
	inflight := false
	allOK := true
	for i := range run.Steps {
		s := &run.Steps[i]
		if s.Phase != PhaseStep {
			continue
		}
		switch {
		case failedState(s.State) && failed == nil:
			failed = s
		case s.OperationID != "" && !ended(s.State):
			inflight = true
		}
		if s.State != string(ops.StateSucceeded) {
			allOK = false
		}
	}
	if failed == nil && !allOK {
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
	if failed != nil {
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
		if s.Phase != PhaseFinally {
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

// finish ends the run: failed naming the failing step, or succeeded.
func (c *Coordinator) finish(run *Run, failed *RunStep) {
	now := c.now().UTC()
	run.FinishedAt = &now
	run.State = RunSucceeded
	for i := range run.Steps {
		if run.Steps[i].State == StepPending {
			run.Steps[i].State = StepSkipped
		}
	}
	if failed != nil {
		run.State = RunFailed
		run.Error = fmt.Sprintf("step %q %s: %s", failed.ID, failed.State, failed.Error)
	}
	c.log.Info("runbook run "+run.State, zap.String("run", run.ID), zap.String("runbook", run.Runbook), zap.String("error", run.Error))
}
