package runbook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/ops"
)

const instance = "ace712e9-a166-47f1-9065-4af0f7e7fce1" // RUNNING, lsw.m3.large in the simulator

type rig struct {
	coord *runbook.Coordinator
	store *opstore.Store
	lw    *leasewebsim.Server
}

// startRig runs a worker (an asynq server on miniredis) with the
// Leaseweb simulator and the coordinator of rbs.
func startRig(t *testing.T, rbs ...runbook.Definition) *rig {
	t.Helper()
	return startRigWith(t, leasewebsim.Config{APIKey: "k", CloudStep: 100 * time.Millisecond, TaskDuration: 100 * time.Millisecond}, rbs...)
}

func startRigWith(t *testing.T, simCfg leasewebsim.Config, rbs ...runbook.Definition) *rig {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	lw := leasewebsim.New(simCfg)
	t.Cleanup(lw.Close)
	srv := httptest.NewServer(lw)
	t.Cleanup(srv.Close)
	lwc, err := leaseweb.New(srv.URL, leaseweb.WithAPIKey("k"), leaseweb.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	require.NoError(t, err)
	store := opstore.New(rdb, "rb", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	sub := tasks.NewSubmitter(store, client, tasks.SubmitOptions{})
	var compiled []*runbook.Runbook
	for _, d := range rbs {
		rb, err := runbook.Compile(d)
		require.NoError(t, err)
		compiled = append(compiled, rb)
	}
	log := zaptest.NewLogger(t)
	coord := runbook.NewCoordinator(rdb, "rb", store, sub, client, "default", compiled, time.Hour, log)
	cfg := tasks.Config{Store: store, Enqueuer: client, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: tasks.Executors(tasks.Clients{Leaseweb: map[string]*leaseweb.Client{"default": lwc}}),
		Policies:  map[string]poller.Policy{}, Logger: log, Sender: webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}), RetryBackoffMax: 100 * time.Millisecond, BusyRetry: 100 * time.Millisecond,
		OnFinished: coord.OnFinished, Extra: map[string]asynq.HandlerFunc{runbook.TypeAdvance: coord.ProcessAdvance}}
	for k := range cfg.Executors {
		cfg.Policies[k.Kind] = poller.Policy{Initial: 50 * time.Millisecond, Multiplier: 1, Max: 50 * time.Millisecond, Deadline: time.Minute}
	}
	w, err := tasks.NewWorker(cfg)
	require.NoError(t, err)
	queues := map[string]int{"default": 1}
	for _, p := range tasks.Providers() {
		queues[tasks.ProviderQueue(p)] = 1
	}
	server := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 4, Queues: queues, TaskCheckInterval: 20 * time.Millisecond,
		DelayedTaskCheckInterval: 20 * time.Millisecond, RetryDelayFunc: w.RetryDelay, IsFailure: w.IsFailure, LogLevel: asynq.WarnLevel})
	require.NoError(t, server.Start(w.Handler()))
	t.Cleanup(server.Shutdown)
	return &rig{coord: coord, store: store, lw: lw}
}

func (r *rig) wait(t *testing.T, id string) *runbook.Run {
	t.Helper()
	var run *runbook.Run
	require.Eventually(t, func() bool {
		var err error
		run, err = r.coord.Get(context.Background(), id)
		return err == nil && !runbook.Active(run.State)
	}, 30*time.Second, 50*time.Millisecond)
	return run
}

func stepStates(run *runbook.Run) map[string]string {
	out := map[string]string{}
	for _, s := range run.Steps {
		out[s.ID] = s.State
	}
	return out
}

// safe-resize: snapshot, resize, finally delete the snapshot; on a failed
// resize, restore the snapshot first. Both paths end as they should, each
// step one operation.
func TestSafeResizeRuns(t *testing.T) {
	t.Parallel()
	r := startRig(t, safeResize())
	ctx := context.Background()
	by := &ops.Actor{Name: "ci", Via: ops.ViaAPI, Authenticated: true}
	run, err := r.coord.Start(ctx, "safe-resize", map[string]any{"instance": instance, "type": "lsw.m3.xlarge"}, map[string]string{"change": "CHG-1"}, by)
	require.NoError(t, err)
	done := r.wait(t, run.ID)
	assert.Equal(t, runbook.RunSucceeded, done.State, done.Error)
	assert.Equal(t, map[string]string{"snap": "succeeded", "resize": "succeeded", "cleanup": "succeeded"}, stepStates(done))
	for _, s := range done.Steps {
		op, err := r.store.Get(ctx, s.OperationID)
		require.NoError(t, err)
		assert.Equal(t, run.ID, op.Run)
		assert.Equal(t, s.ID, op.RunStep)
		assert.Equal(t, by, op.SubmittedBy, "the run's submitter")
		assert.Equal(t, "CHG-1", op.Labels["change"])
	}

	// lsw.zz.huge is not a type this instance may change to: the resize
	// fails at its pre-flight, the snapshot is restored, then deleted.
	run, err = r.coord.Start(ctx, "safe-resize", map[string]any{"instance": instance, "type": "lsw.zz.huge"}, nil, by)
	require.NoError(t, err)
	done = r.wait(t, run.ID)
	assert.Equal(t, runbook.RunFailed, done.State)
	assert.Contains(t, done.Error, `step "resize" failed`)
	assert.Equal(t, map[string]string{"snap": "succeeded", "resize": "failed", "restore": "succeeded", "cleanup": "succeeded"}, stepStates(done))
}

// A step whose params are refused (a bad input value) fails the run
// without an operation; steps after it are skipped, finally still runs.
func TestRefusedStepFailsTheRun(t *testing.T) {
	t.Parallel()
	r := startRig(t, safeResize())
	run, err := r.coord.Start(context.Background(), "safe-resize", map[string]any{"instance": "not-a-uuid"}, nil, nil)
	require.NoError(t, err)
	done := r.wait(t, run.ID)
	assert.Equal(t, runbook.RunFailed, done.State)
	assert.Contains(t, done.Error, `step "snap" refused`)
	assert.Contains(t, done.Error, "params.instance_id")
	states := stepStates(done)
	assert.Equal(t, "skipped", states["resize"])
	assert.Equal(t, "refused", states["cleanup"], "finally ran, and was refused too (same bad instance)")
}

// rescueSession is the shipped example's shape: rescue mode, a gate,
// then a power cycle.
func rescueSession(timeout time.Duration) runbook.Definition {
	return runbook.Definition{Name: "rescue-session",
		Inputs: []runbook.Input{{Name: "server", Type: runbook.TypeString, Required: true}},
		Steps: []runbook.Step{
			{ID: "rescue", Kind: "server:rescue", Provider: "leaseweb", Params: map[string]any{"server_id": "{{ .inputs.server }}"}},
			{ID: "work-done", Gate: &runbook.Gate{Message: "Fix the server in rescue mode, then continue.", Timeout: timeout}},
			{ID: "reboot", Kind: "server:power_cycle", Provider: "leaseweb", Params: map[string]any{"server_id": "{{ .inputs.server }}"}},
		}}
}

func (r *rig) waitState(t *testing.T, id, state string) *runbook.Run {
	t.Helper()
	var run *runbook.Run
	require.Eventually(t, func() bool {
		var err error
		run, err = r.coord.Get(context.Background(), id)
		return err == nil && run.State == state
	}, 30*time.Second, 50*time.Millisecond, "run %s never %s: %+v", id, state, run)
	return run
}

// A gate holds the run until a write token continues it; an abort fails
// the run; nobody deciding before the timeout fails it too.
func TestGates(t *testing.T) {
	t.Parallel()
	r := startRig(t, rescueSession(time.Hour))
	ctx := context.Background()
	var mu sync.Mutex
	events := map[string][]string{} // event id -> types sent
	r.coord.Notify = func(_ context.Context, event, id string, data any) error {
		mu.Lock()
		defer mu.Unlock()
		events[id] = append(events[id], event)
		assert.IsType(t, &runbook.Run{}, data)
		return nil
	}
	lead := &ops.Actor{Name: "lead", Via: ops.ViaAPI, Authenticated: true}
	run, err := r.coord.Start(ctx, "rescue-session", map[string]any{"server": "12345"}, nil, nil)
	require.NoError(t, err)
	waiting := r.waitState(t, run.ID, runbook.RunWaitingGate)
	t.Logf("%+v", waiting)
	assert.Equal(t, map[string]string{"rescue": "succeeded", "work-done": "waiting", "reboot": "pending"}, stepStates(waiting))
	_, err = r.coord.Decide(ctx, run.ID, "reboot", true, lead)
	require.ErrorIs(t, err, runbook.ErrNotWaiting)
	_, err = r.coord.Decide(ctx, run.ID, "work-done", true, lead)
	require.NoError(t, err)
	done := r.wait(t, run.ID)
	assert.Equal(t, runbook.RunSucceeded, done.State, done.Error)
	assert.Equal(t, lead, done.Steps[1].DecidedBy)
	mu.Lock()
	assert.Equal(t, map[string][]string{
		"evt_run_" + run.ID + "_gate_work-done": {runbook.EventWaitingGate},
		"evt_run_" + run.ID + "_succeeded":      {runbook.EventSucceeded},
	}, events, "each sent once")
	mu.Unlock()

	run, err = r.coord.Start(ctx, "rescue-session", map[string]any{"server": "12346"}, nil, nil)
	require.NoError(t, err)
	r.waitState(t, run.ID, runbook.RunWaitingGate)
	_, err = r.coord.Decide(ctx, run.ID, "work-done", false, lead)
	require.NoError(t, err)
	done = r.wait(t, run.ID)
	assert.Equal(t, runbook.RunFailed, done.State)
	assert.Contains(t, done.Error, `step "work-done" canceled: aborted by token lead`)
	assert.Equal(t, "skipped", stepStates(done)["reboot"])

	quick := startRig(t, rescueSession(300*time.Millisecond))
	run, err = quick.coord.Start(ctx, "rescue-session", map[string]any{"server": "12347"}, nil, nil)
	require.NoError(t, err)
	done = quick.wait(t, run.ID)
	assert.Equal(t, runbook.RunFailed, done.State)
	assert.Contains(t, done.Error, "nobody continued it before its timeout")
}

// Canceling a run cancels its running step (an install, cancelable),
// skips what has not started, runs finally, and ends the run canceled;
// without compensation finally is skipped.
func TestCancelRun(t *testing.T) {
	t.Parallel()
	def := runbook.Definition{Name: "reinstall-and-reboot",
		Steps: []runbook.Step{
			{ID: "install", Kind: "server:install", Provider: "leaseweb", Params: map[string]any{"server_id": "12345", "operating_system_id": "UBUNTU_22_04_64BIT"}},
			{ID: "reboot", Kind: "server:power_cycle", Provider: "leaseweb", Params: map[string]any{"server_id": "12345"}},
		},
		Finally: []runbook.Step{{ID: "scan", Kind: "instance:snapshot", Provider: "leaseweb", Params: map[string]any{"instance_id": instance, "name": "after"}}},
	}
	r := startRigWith(t, leasewebsim.Config{APIKey: "k", TaskDuration: time.Hour, CloudStep: 100 * time.Millisecond}, def)
	ctx := context.Background()
	ops1 := &ops.Actor{Name: "ops", Via: ops.ViaAPI, Authenticated: true}
	for _, compensate := range []bool{true, false} {
		run, err := r.coord.Start(ctx, "reinstall-and-reboot", nil, nil, nil)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			got, err := r.coord.View(ctx, run.ID)
			return err == nil && got.Steps[0].State == "running"
		}, 20*time.Second, 50*time.Millisecond, "View shows the step's operation as it is")
		_, err = r.coord.Cancel(ctx, run.ID, compensate, ops1)
		require.NoError(t, err)
		done := r.wait(t, run.ID)
		assert.Equal(t, runbook.RunCanceled, done.State)
		assert.Equal(t, "canceled by token ops", done.Error)
		got := stepStates(done)
		assert.Equal(t, "canceled", got["install"], "compensate=%v", compensate)
		assert.Equal(t, "skipped", got["reboot"])
		if compensate {
			assert.Equal(t, "succeeded", got["scan"], "finally ran")
		} else {
			assert.Equal(t, "skipped", got["scan"], "finally skipped")
		}
		_, err = r.coord.Cancel(ctx, run.ID, true, ops1)
		require.ErrorIs(t, err, runbook.ErrRunOver)
	}
}

// A secret input is used by the steps, shown REDACTED wherever the run is
// (its JSON: API, CLI, webhooks), and removed from the record at the end.
func TestSecretInputs(t *testing.T) {
	t.Parallel()
	def := runbook.Definition{Name: "install-with-password",
		Inputs: []runbook.Input{{Name: "password", Type: runbook.TypeString, Required: true, Secret: true}},
		Steps: []runbook.Step{{ID: "install", Kind: "server:install", Provider: "leaseweb",
			Params: map[string]any{"server_id": "12345", "operating_system_id": "UBUNTU_22_04_64BIT", "password": "{{ .inputs.password }}"}}}}
	r := startRig(t, def)
	ctx := context.Background()
	const secret = "Runb00k-S3cret-Pw"
	var shown []string
	r.coord.Notify = func(_ context.Context, _, _ string, data any) error {
		b, _ := json.Marshal(data)
		shown = append(shown, string(b))
		return nil
	}
	run, err := r.coord.Start(ctx, "install-with-password", map[string]any{"password": secret}, nil, nil)
	require.NoError(t, err)
	b, err := json.Marshal(run)
	require.NoError(t, err)
	assert.NotContains(t, string(b), secret)
	assert.Contains(t, string(b), `"password":"REDACTED"`)
	done := r.wait(t, run.ID)
	require.Equal(t, runbook.RunSucceeded, done.State, done.Error)
	assert.Equal(t, "REMOVED", done.Inputs["password"], "gone from the record once the run ended")
	assert.Equal(t, 1, r.lw.Launches("12345", "install"), "the step got the password and launched")
	for _, s := range shown {
		assert.NotContains(t, s, secret)
	}

	_, err = runbook.Compile(runbook.Definition{Name: "x", Inputs: []runbook.Input{{Name: "p", Type: runbook.TypeString, Secret: true, Default: "hunter2"}},
		Steps: def.Steps[:0:0]})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a secret input takes no default")
}
