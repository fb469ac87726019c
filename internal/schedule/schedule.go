// Package schedule runs the cron schedules of the config: every worker runs
// a Scheduler, and each tick still yields exactly one operation per item
// because the operation's idempotency key is derived from the schedule
// name, the tick time and the item index. No leader is elected and no
// asynq TaskID is held by retention: the operation store's idempotency
// keys are unique per tick, so later ticks are never blocked.
//
// Per schedule, Redis keeps the last tick started and completed and the
// operation ids of the last completed run. A tick started but not
// completed (the worker died mid-tick) is completed at the next start-up,
// whatever the misfire policy: the already created operations are found
// by their keys, the missing ones are created.
package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/config"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// Misfire and overlap policies.
const (
	MisfireSkip    = "skip"
	MisfireRunOnce = "run_once"
	OverlapAllow   = "allow"
	OverlapSkip    = "skip_if_running"
)

// Spec is one validated schedule.
type Spec struct {
	Name     string
	Cron     string
	Timezone string
	Kind     string
	// Runbook, with Inputs, starts one run of that runbook per tick
	// instead of operations.
	Runbook string
	Inputs  map[string]any
	// Base is the envelope of every operation (params set per item).
	Base tasks.Envelope
	// Items are the params of each operation of a tick.
	Items   []json.RawMessage
	FanOut  bool
	Misfire string
	Overlap string

	sched cron.Schedule
}

// Next returns the first tick after t.
func (s *Spec) Next(t time.Time) time.Time { return s.sched.Next(t) }

// NextN returns the next n ticks after t.
func (s *Spec) NextN(t time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	for i := 0; i < n; i++ {
		t = s.sched.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// Latest returns the last tick at or before now that is after since (zero
// when there is none). It looks back at most 31 days.
func (s *Spec) Latest(since, now time.Time) time.Time {
	if floor := now.Add(-31 * 24 * time.Hour); since.Before(floor) {
		since = floor
	}
	var last time.Time
	for t, i := s.sched.Next(since), 0; !t.IsZero() && !t.After(now) && i < 5_000_000; t, i = s.sched.Next(t), i+1 {
		last = t
	}
	return last
}

// IdempotencyKey is the key of item i of the tick at t.
func (s *Spec) IdempotencyKey(t time.Time, i int) string {
	k := "sched:" + s.Name + ":" + strconv.FormatInt(t.Unix(), 10)
	if s.FanOut {
		k += ":" + strconv.Itoa(i)
	}
	return k
}

// Parse validates the configured schedules: spec, time zone, kind,
// provider and every item's params. Errors name the schedule.
func Parse(defs []config.Schedule) ([]*Spec, error) {
	var out []*Spec
	var errs []error
	for i, d := range defs {
		key := fmt.Sprintf("schedules[%d] (%s)", i, d.Name)
		sched, err := config.ParseCron(d.Spec, d.Timezone)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.spec: %w", key, err))
			continue
		}
		s := &Spec{
			Name: d.Name, Cron: d.Spec, Timezone: d.Timezone, Kind: d.TaskType, Runbook: d.Runbook, Inputs: d.Inputs,
			Base:    tasks.Envelope{Provider: d.Provider, Account: d.Account, CallbackURL: d.CallbackURL},
			Misfire: d.Misfire, Overlap: d.Overlap, FanOut: d.FanOut != nil, sched: sched,
		}
		if s.Timezone == "" {
			s.Timezone = "UTC"
		}
		if s.Misfire == "" {
			s.Misfire = MisfireSkip
		}
		if s.Overlap == "" {
			s.Overlap = OverlapAllow
		}
		if s.Runbook != "" {
			// The runbook and its inputs were checked with the config
			// (config.Validate), which knows the runbooks.
			if err := ops.ValidateCallbackURL(d.CallbackURL); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
				continue
			}
			out = append(out, s)
			continue
		}
		s.Base.Normalize()
		items := d.FanOut
		if !s.FanOut {
			items = []map[string]any{d.Params}
		}
		for j, it := range items {
			b, err := json.Marshal(it)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.params: %w", key, err))
				continue
			}
			env := s.Base
			env.Params = b
			env.Normalize()
			if err := env.Validate(s.Kind); err != nil {
				where := key
				if s.FanOut {
					where = fmt.Sprintf("%s.fan_out[%d]", key, j)
				}
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			s.Items = append(s.Items, b)
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// State is what Redis keeps of a schedule.
type State struct {
	// Started and Completed are the last tick begun and finished.
	Started, Completed time.Time
	// Operations are the ids of the last completed run's operations.
	Operations []string
	// Skipped is the last tick skipped by the overlap policy.
	Skipped time.Time
}

// Store keeps schedule state and definitions in Redis, under the
// operation store's key prefix and hash tag.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewStore returns a Store.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) stateKey(name string) string { return s.prefix + ":{ops}:sched:" + name }
func (s *Store) defsKey() string             { return s.prefix + ":{ops}:sched-defs" }

// raiseScript sets field ARGV[1] to ARGV[2] if that is larger, and then
// the field/value pairs that follow. Returns 1 when it raised.
var raiseScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) < cur then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
return 1
`)

func (s *Store) raise(ctx context.Context, name, field string, t time.Time, extra ...any) error {
	args := append([]any{field, t.Unix()}, extra...)
	return raiseScript.Run(ctx, s.rdb, []string{s.stateKey(name)}, args...).Err()
}

// Load reads a schedule's state.
func (s *Store) Load(ctx context.Context, name string) (State, error) {
	m, err := s.rdb.HGetAll(ctx, s.stateKey(name)).Result()
	if err != nil {
		return State{}, err
	}
	var st State
	unix := func(k string) time.Time {
		if v, err := strconv.ParseInt(m[k], 10, 64); err == nil && v > 0 {
			return time.Unix(v, 0).UTC()
		}
		return time.Time{}
	}
	st.Started, st.Completed, st.Skipped = unix("started"), unix("completed"), unix("skipped")
	if v := m["operations"]; v != "" {
		_ = json.Unmarshal([]byte(v), &st.Operations)
	}
	return st, nil
}

// Definition is what `enqueue schedules` shows of a schedule.
type Definition struct {
	Name      string `json:"name"`
	Spec      string `json:"spec"`
	Timezone  string `json:"timezone"`
	TaskType  string `json:"task_type,omitempty"`
	Runbook   string `json:"runbook,omitempty"`
	Provider  string `json:"provider"`
	Account   string `json:"account"`
	Items     int    `json:"items"`
	Misfire   string `json:"misfire"`
	Overlap   string `json:"overlap"`
	UpdatedAt int64  `json:"updated_at"`
}

// Publish records the definitions for `enqueue schedules`.
func (s *Store) Publish(ctx context.Context, specs []*Spec, now time.Time) error {
	if len(specs) == 0 {
		return nil
	}
	var args []any
	for _, sp := range specs {
		b, _ := json.Marshal(Definition{Name: sp.Name, Spec: sp.Cron, Timezone: sp.Timezone, TaskType: sp.Kind, Runbook: sp.Runbook,
			Provider: sp.Base.Provider, Account: sp.Base.Account, Items: len(sp.Items), Misfire: sp.Misfire, Overlap: sp.Overlap, UpdatedAt: now.Unix()})
		args = append(args, sp.Name, string(b))
	}
	return s.rdb.HSet(ctx, s.defsKey(), args...).Err()
}

// Definitions returns the published definitions.
func (s *Store) Definitions(ctx context.Context) ([]Definition, error) {
	m, err := s.rdb.HGetAll(ctx, s.defsKey()).Result()
	if err != nil {
		return nil, err
	}
	var out []Definition
	for _, v := range m {
		var d Definition
		if json.Unmarshal([]byte(v), &d) == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// Runs starts the runs of schedules that name a runbook (the runbook
// coordinator).
type Runs interface {
	// StartScheduled starts the run of a schedule's tick, once: its id
	// derives from the schedule and the tick. It returns the run's id.
	StartScheduled(ctx context.Context, schedule, runbook string, tick time.Time, inputs map[string]any, callbackURL string) (id string, created bool, err error)
	// RunActive reports whether a run is still going.
	RunActive(ctx context.Context, id string) (bool, error)
}

// WithRuns lets schedules start runbooks.
func WithRuns(r Runs) Option { return func(s *Scheduler) { s.runs = r } }

// Scheduler fires the schedules' ticks. Run one per worker process.
type Scheduler struct {
	specs []*Spec
	runs  Runs
	sub   *tasks.Submitter
	ops   *opstore.Store
	state *Store
	log   *zap.Logger
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool
}

// Option configures a Scheduler.
type Option func(*Scheduler)

// WithClock injects the clock and the sleep used between ticks (tests).
func WithClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) bool) Option {
	return func(s *Scheduler) { s.now, s.sleep = now, sleep }
}

// New returns a Scheduler.
func New(specs []*Spec, sub *tasks.Submitter, ops *opstore.Store, state *Store, log *zap.Logger, opts ...Option) *Scheduler {
	s := &Scheduler{specs: specs, sub: sub, ops: ops, state: state, log: log, now: time.Now, sleep: sleepCtx}
	for _, o := range opts {
		o(s)
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Run publishes the definitions, completes interrupted ticks, applies the
// misfire policies, then fires ticks until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	if len(s.specs) == 0 {
		return nil
	}
	if err := s.state.Publish(ctx, s.specs, s.now()); err != nil {
		s.log.Warn("publish schedule definitions", zap.Error(err))
	}
	s.CatchUp(ctx)
	now := s.now()
	next := make([]time.Time, len(s.specs))
	for i, sp := range s.specs {
		next[i] = sp.Next(now)
	}
	for {
		earliest := time.Time{}
		for _, t := range next {
			if !t.IsZero() && (earliest.IsZero() || t.Before(earliest)) {
				earliest = t
			}
		}
		if earliest.IsZero() {
			<-ctx.Done()
			return nil
		}
		if !s.sleep(ctx, earliest.Sub(s.now())) {
			return nil
		}
		now := s.now()
		for i, sp := range s.specs {
			if next[i].IsZero() || next[i].After(now) {
				continue
			}
			tick := next[i]
			if _, err := s.Fire(ctx, sp, tick, false); err != nil && ctx.Err() == nil {
				s.log.Error("schedule tick failed; it is completed at the next start-up", zap.String("schedule", sp.Name), zap.Time("tick", tick), zap.Error(err))
			}
			n := sp.Next(tick)
			if !n.After(now) {
				// Ticks passed while this one ran (or the process was
				// paused): they are misfires.
				if sp.Misfire == MisfireRunOnce {
					if last := sp.Latest(tick, now); !last.IsZero() {
						_, _ = s.Fire(ctx, sp, last, false)
					}
				}
				n = sp.Next(now)
			}
			next[i] = n
		}
	}
}

// CatchUp completes ticks that were started but not completed, and fires
// one catch-up run for run_once schedules that missed ticks.
func (s *Scheduler) CatchUp(ctx context.Context) {
	now := s.now()
	for _, sp := range s.specs {
		st, err := s.state.Load(ctx, sp.Name)
		if err != nil {
			s.log.Error("load schedule state", zap.String("schedule", sp.Name), zap.Error(err))
			continue
		}
		if st.Started.After(st.Completed) {
			s.log.Info("completing an interrupted tick", zap.String("schedule", sp.Name), zap.Time("tick", st.Started))
			if _, err := s.Fire(ctx, sp, st.Started, true); err != nil {
				s.log.Error("complete interrupted tick", zap.String("schedule", sp.Name), zap.Error(err))
			}
			continue
		}
		if sp.Misfire != MisfireRunOnce || st.Completed.IsZero() {
			continue // skip, or never ran: nothing to catch up on
		}
		since := st.Completed
		if st.Skipped.After(since) {
			since = st.Skipped
		}
		if missed := sp.Latest(since, now); !missed.IsZero() {
			s.log.Info("misfire: one catch-up run", zap.String("schedule", sp.Name), zap.Time("tick", missed))
			if _, err := s.Fire(ctx, sp, missed, false); err != nil {
				s.log.Error("catch-up run", zap.String("schedule", sp.Name), zap.Error(err))
			}
		}
	}
}

// Fire runs one tick: one operation per item, each with the tick's
// idempotency key, so any number of replicas firing the same tick create
// each operation once. resume skips the overlap check (the tick was begun
// before). It returns the operation ids (nil when skipped).
func (s *Scheduler) Fire(ctx context.Context, sp *Spec, tick time.Time, resume bool) ([]string, error) {
	log := s.log.With(zap.String("schedule", sp.Name), zap.Time("tick", tick))
	st, err := s.state.Load(ctx, sp.Name)
	if err != nil {
		return nil, err
	}
	if !st.Completed.Before(tick) {
		log.Debug("tick already fired by another worker")
		return st.Operations, nil
	}
	if !resume && sp.Overlap == OverlapSkip && st.Started.Before(tick) {
		for _, id := range st.Operations {
			if sp.Runbook != "" {
				if active, err := s.runs.RunActive(ctx, id); err == nil && active {
					log.Info("tick skipped: the previous run is still going", zap.String("run", id))
					return nil, s.state.raise(ctx, sp.Name, "skipped", tick)
				}
				continue
			}
			op, err := s.ops.Get(ctx, id)
			if err == nil && !op.State.Terminal() {
				log.Info("tick skipped: the previous run is still going", zap.String("operation_id", op.ID), zap.String("state", string(op.State)))
				return nil, s.state.raise(ctx, sp.Name, "skipped", tick)
			}
		}
	}
	if sp.Runbook != "" && s.runs == nil {
		return nil, fmt.Errorf("schedule %s: this scheduler starts no runbooks", sp.Name)
	}
	if err := s.state.raise(ctx, sp.Name, "started", tick); err != nil {
		return nil, err
	}
	if sp.Runbook != "" {
		id, created, err := s.runs.StartScheduled(ctx, sp.Name, sp.Runbook, tick, sp.Inputs, sp.Base.CallbackURL)
		if err != nil {
			return nil, fmt.Errorf("schedule %s tick %s: start runbook %s: %w", sp.Name, tick.Format(time.RFC3339), sp.Runbook, err)
		}
		b, _ := json.Marshal([]string{id})
		if err := s.state.raise(ctx, sp.Name, "completed", tick, "operations", string(b)); err != nil {
			return []string{id}, err
		}
		if created {
			log.Info("schedule tick started a run", zap.String("runbook", sp.Runbook), zap.String("run", id))
		}
		return []string{id}, nil
	}
	ids := make([]string, 0, len(sp.Items))
	created := 0
	for i, params := range sp.Items {
		env := sp.Base
		env.Params = params
		env.IdempotencyKey = sp.IdempotencyKey(tick, i)
		op, isNew, err := s.sub.SubmitScheduled(ctx, sp.Kind, env)
		if errors.Is(err, opstore.ErrIdempotencyConflict) && op != nil {
			// Another worker with a different definition (a deploy in
			// progress) fired this tick first: its operation counts.
			log.Warn("tick fired by a worker with another definition of this schedule", zap.String("operation_id", op.ID))
			err = nil
		}
		if err != nil {
			return ids, fmt.Errorf("schedule %s tick %s item %d: %w", sp.Name, tick.Format(time.RFC3339), i, err)
		}
		ids = append(ids, op.ID)
		if isNew {
			created++
		}
	}
	b, _ := json.Marshal(ids)
	if err := s.state.raise(ctx, sp.Name, "completed", tick, "operations", string(b)); err != nil {
		return ids, err
	}
	if created > 0 {
		log.Info("schedule tick fired", zap.Int("enqueued", created), zap.Strings("operation_ids", ids))
	} else {
		log.Debug("schedule tick: every operation existed already", zap.Strings("operation_ids", ids))
	}
	return ids, nil
}
