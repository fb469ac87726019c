package runbook

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/opsworker/opsworker/ops"
)

// Run timeline entry types.
const (
	EventStarted         = "started"
	EventStepStarted     = "step_started"
	EventStepEnded       = "step_ended"
	EventGateWaiting     = "gate_waiting"
	EventGateDecided     = "gate_decided"
	EventCancelRequested = "cancel_requested"
	EventFinished        = "finished"
)

// MaxRunTimeline bounds a run's timeline: past it the oldest entries after
// the first (started) are dropped.
const MaxRunTimeline = 1000

// RunEvent is one entry of a run's timeline: what changed, when, and who
// did it. It holds no input value.
type RunEvent struct {
	At   time.Time `json:"at"`
	Type string    `json:"type" jsonschema:"enum=started,enum=step_started,enum=step_ended,enum=gate_waiting,enum=gate_decided,enum=cancel_requested,enum=finished"`
	// Step and Phase name the step (step_*, gate_*).
	Step  string `json:"step,omitempty"`
	Phase string `json:"phase,omitempty"`
	// State is the step's state after the change (step_ended,
	// gate_decided), or the run's (finished).
	State       string     `json:"state,omitempty"`
	OperationID string     `json:"operation_id,omitempty"`
	Actor       *ops.Actor `json:"actor,omitempty"`
	// Message says what happened in words: a gate's message, an error.
	Message string `json:"message,omitempty"`
}

func (c *Coordinator) timelineKey(id string) string {
	return c.prefix + ":{ops}:run:" + id + ":timeline"
}

// changes are the timeline entries of what changed from before (nil: the
// run is new) to after.
func changes(before, after *Run, now time.Time) []RunEvent {
	var out []RunEvent
	if before == nil {
		msg := "runbook " + after.Runbook
		switch {
		case after.Definition != nil:
			msg += " (given inline)"
		case after.Schedule != "":
			msg += " (schedule " + after.Schedule + ")"
		}
		out = append(out, RunEvent{At: now, Type: EventStarted, Actor: after.SubmittedBy, Message: msg})
		before = &Run{State: RunRunning}
	}
	if after.CancelRequested && !before.CancelRequested {
		msg := "steps running are canceled, then compensation runs"
		if !after.Compensate {
			msg = "steps running are canceled; no compensation"
		}
		out = append(out, RunEvent{At: now, Type: EventCancelRequested, Actor: after.CanceledBy, Message: msg})
	}
	prev := map[string]RunStep{}
	for _, s := range before.Steps {
		prev[s.ID] = s
	}
	for _, s := range after.Steps {
		b, seen := prev[s.ID]
		if s.OperationID != "" && b.OperationID == "" {
			msg := ""
			if s.For != "" {
				msg = "compensates " + s.For
			}
			out = append(out, RunEvent{At: now, Type: EventStepStarted, Step: s.ID, Phase: s.Phase, OperationID: s.OperationID, Message: msg})
		}
		if s.State == StepWaiting && b.State != StepWaiting {
			msg := s.Gate
			if s.Deadline != nil {
				msg += fmt.Sprintf(" (until %s)", s.Deadline.Format(time.RFC3339))
			}
			out = append(out, RunEvent{At: now, Type: EventGateWaiting, Step: s.ID, Phase: s.Phase, Message: msg})
		}
		if ended(s.State) && (!seen || !ended(b.State)) {
			typ := EventStepEnded
			if s.Gate != "" {
				typ = EventGateDecided
			}
			out = append(out, RunEvent{At: now, Type: typ, Step: s.ID, Phase: s.Phase, State: s.State, OperationID: s.OperationID, Actor: s.DecidedBy, Message: s.Error})
		}
	}
	if Active(before.State) && !Active(after.State) {
		out = append(out, RunEvent{At: now, Type: EventFinished, State: after.State, Message: after.Error})
	}
	return out
}

// trimScript keeps a timeline (KEYS[1]) to ARGV[1] entries: the first
// one (started) and the newest.
var trimScript = redis.NewScript(`
local max = tonumber(ARGV[1])
if redis.call('LLEN', KEYS[1]) <= max then return 0 end
local first = redis.call('LINDEX', KEYS[1], 0)
redis.call('LTRIM', KEYS[1], -(max - 1), -1)
redis.call('LPUSH', KEYS[1], first)
return 1
`)

// appendTimeline queues events onto the run's timeline in pipe (the
// run's save), trimming it to MaxRunTimeline; ttl > 0 expires it with
// the run.
func (c *Coordinator) appendTimeline(ctx context.Context, pipe redis.Pipeliner, id string, events []RunEvent, ttl time.Duration) {
	key := c.timelineKey(id)
	for _, e := range events {
		b, _ := json.Marshal(e)
		pipe.RPush(ctx, key, b)
	}
	if len(events) > 0 {
		trimScript.Eval(ctx, pipe, []string{key}, MaxRunTimeline)
	}
	if ttl > 0 {
		pipe.Expire(ctx, key, ttl)
	}
}

// Timeline reads a run's timeline, oldest first.
func (c *Coordinator) Timeline(ctx context.Context, id string) ([]RunEvent, error) {
	return ReadTimeline(ctx, c.rdb, c.prefix, id)
}

// ReadTimeline is Timeline without a coordinator (the CLI).
func ReadTimeline(ctx context.Context, rdb redis.UniversalClient, prefix, id string) ([]RunEvent, error) {
	c := &Coordinator{prefix: prefix}
	raw, err := rdb.LRange(ctx, c.timelineKey(id), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]RunEvent, 0, len(raw))
	for _, r := range raw {
		var e RunEvent
		if json.Unmarshal([]byte(r), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}
