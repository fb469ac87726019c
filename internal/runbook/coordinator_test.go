package runbook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/opsworker/opsworker/internal/config"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/schedule"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/ops"
	"github.com/opsworker/opsworker/webhookverify"
)

const instance = "ace712e9-a166-47f1-9065-4af0f7e7fce1" // RUNNING, lsw.m3.large in the simulator

type rig struct {
	coord  *runbook.Coordinator
	store  *opstore.Store
	lw     *leasewebsim.Server
	w      *tasks.Worker
	secret webhookverify.Secret
	rdb    redis.UniversalClient
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
	secret := webhookverify.NewSecret()
	coord := runbook.NewCoordinator(rdb, "rb", store, sub, client, "default", compiled, time.Hour, log)
	cfg := tasks.Config{Store: store, Enqueuer: client, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: tasks.Executors(tasks.Clients{Leaseweb: map[string]*leaseweb.Client{"default": lwc}}),
		Policies:  map[string]poller.Policy{}, Logger: log, RetryBackoffMax: 100 * time.Millisecond, BusyRetry: 100 * time.Millisecond,
		Sender:     webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		Webhooks:   tasks.WebhookConfig{Secrets: []webhookverify.Secret{secret}, Schedule: []time.Duration{50 * time.Millisecond}},
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
	return &rig{coord: coord, store: store, lw: lw, w: w, secret: secret, rdb: rdb}
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
	r.coord.Notify = func(_ context.Context, event, id string, _ *runbook.Run) error {
		mu.Lock()
		defer mu.Unlock()
		events[id] = append(events[id], event)
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
	assert.Equal(t, runbook.RunCanceled, done.State, "an abort is a decision, not a failure")
	assert.Equal(t, `gate "work-done": aborted by token lead`, done.Error)
	assert.Equal(t, "skipped", stepStates(done)["reboot"])

	// Nobody acts: the gate times out, compensation runs, the run ends
	// canceled.
	timed := rescueSession(300 * time.Millisecond)
	timed.Steps[0].OnFailure = nil
	timed.Finally = []runbook.Step{{ID: "back", Kind: "server:power_cycle", Provider: "leaseweb", Params: map[string]any{"server_id": "{{ .inputs.server }}"}}}
	quick := startRig(t, timed)
	run, err = quick.coord.Start(ctx, "rescue-session", map[string]any{"server": "12347"}, nil, nil)
	require.NoError(t, err)
	done = quick.wait(t, run.ID)
	assert.Equal(t, runbook.RunCanceled, done.State)
	assert.Equal(t, `gate "work-done": nobody continued it before its timeout`, done.Error)
	assert.Equal(t, map[string]string{"rescue": "succeeded", "work-done": "timed_out", "reboot": "skipped", "back": "succeeded"}, stepStates(done), "finally ran")

	// The timeline says what happened, in order, and who did it.
	timeline, err := quick.coord.Timeline(ctx, run.ID)
	require.NoError(t, err)
	var got []string
	for _, e := range timeline {
		got = append(got, e.Type+" "+e.Step+" "+e.State)
	}
	assert.Equal(t, []string{"started  ", "step_started rescue ", "step_ended rescue succeeded", "gate_waiting work-done ",
		"gate_decided work-done timed_out", "step_started back ", "step_ended reboot skipped", "step_ended back succeeded", "finished  canceled"}, got)
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
	r.coord.Notify = func(_ context.Context, _, _ string, data *runbook.Run) error {
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

	// A secret input may only fill a secret param: the operation's record
	// shows the others.
	leak := def
	leak.Steps = []runbook.Step{{ID: "install", Kind: "server:install", Provider: "leaseweb",
		Params: map[string]any{"server_id": "12345", "operating_system_id": "UBUNTU_22_04_64BIT", "hostname": "h-{{ .inputs.password }}"}}}
	_, err = runbook.Compile(leak)
	require.Error(t, err)
	assert.Equal(t, `runbook "install-with-password" step "install" params.hostname: secret input "password" may only fill a secret param of server:install on leaseweb (secret: ssh_keys, password, post_install_script), or it would be shown in clear`, err.Error())
}

// A runbook given inline runs as a configured one does, kept with its
// run; an idempotency key gives the same run back, refuses other inputs
// under it, and is per scope; the run's callback URL gets its runbook.*
// events, signed, with the URL itself shown cut to its origin.
func TestInlineIdempotentRunWithCallback(t *testing.T) {
	t.Parallel()
	r := startRig(t) // no configured runbook
	var mu sync.Mutex
	var got []ops.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := webhookverify.Verify(req.Header, body, time.Minute, time.Now(), r.secret); err != nil {
			t.Errorf("bad signature: %v", err)
		}
		var ev ops.Event
		assert.NoError(t, json.Unmarshal(body, &ev))
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	r.coord.Notify = func(ctx context.Context, event, id string, run *runbook.Run) error {
		return r.w.SendRunEvent(ctx, event, id, run, run.CallbackURL)
	}
	def := rescueSession(time.Hour)
	def.Name = "adhoc-reboot"
	def.Steps = []runbook.Step{def.Steps[0], def.Steps[2]}
	ctx := context.Background()
	callback := hook.URL + "/hooks/run?token=s3cr3t"
	o := runbook.StartOptions{Definition: &def, Inputs: map[string]any{"server": "12345"}, CallbackURL: callback, IdempotencyKey: "reboot-12345", Scope: "token:ci"}
	run, created, err := r.coord.StartRun(ctx, "", o)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, runbook.RunID("token:ci", "reboot-12345"), run.ID)
	b, _ := json.Marshal(run)
	assert.NotContains(t, string(b), "s3cr3t", "the callback URL is shown cut to its origin")
	assert.Contains(t, string(b), `"callback_url":"`+hook.URL+`"`)

	again, created, err := r.coord.StartRun(ctx, "", o)
	require.NoError(t, err)
	assert.False(t, created, "the same key gives the same run")
	assert.Equal(t, run.ID, again.ID)
	other := o
	other.Inputs = map[string]any{"server": "12346"}
	_, _, err = r.coord.StartRun(ctx, "", other)
	require.ErrorIs(t, err, runbook.ErrIdempotencyConflict)
	other.Scope = "token:someone-else"
	third, created, err := r.coord.StartRun(ctx, "", other)
	require.NoError(t, err)
	assert.True(t, created, "keys are per scope")
	assert.NotEqual(t, run.ID, third.ID)

	done := r.wait(t, run.ID)
	require.Equal(t, runbook.RunSucceeded, done.State, done.Error)
	require.NotNil(t, done.Definition, "an inline run keeps its definition")
	assert.Equal(t, "adhoc-reboot", done.Runbook)
	assert.Equal(t, 1, r.lw.Launches("12345", "rescueMode"), "each step once, though started twice")
	// Both runs send theirs to the same callback URL.
	var mine ops.Event
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range got {
			if ev.ID == "evt_run_"+run.ID+"_succeeded" {
				mine = ev
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, runbook.EventSucceeded, mine.Type)
	assert.NotContains(t, string(mine.Data), "s3cr3t")

	// Inline definitions are checked as configured ones are, and bounded.
	bad := def
	bad.Steps = []runbook.Step{{ID: "x", Kind: "server:reboot", Provider: "leaseweb", Params: map[string]any{}}}
	_, _, err = r.coord.StartRun(ctx, "", runbook.StartOptions{Definition: &bad})
	var re *runbook.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "x", re.Step)
	assert.Equal(t, "kind", re.Field)
	big := def
	big.Steps = nil
	for i := range runbook.MaxInlineSteps + 1 {
		big.Steps = append(big.Steps, runbook.Step{ID: fmt.Sprintf("s%d", i), Kind: "server:power_cycle", Provider: "leaseweb", Params: map[string]any{"server_id": "12345"}})
	}
	_, _, err = r.coord.StartRun(ctx, "", runbook.StartOptions{Definition: &big, Inputs: map[string]any{"server": "1"}})
	require.ErrorAs(t, err, &re)
	assert.Contains(t, re.Error(), "at most 50")

	// A definition given inline is shown with its run: a secret param in
	// it must come from a secret input, never be written out.
	install := func(params map[string]any) *runbook.Definition {
		return &runbook.Definition{Name: "adhoc-install", Inputs: []runbook.Input{{Name: "pw", Type: runbook.TypeString, Required: true, Secret: true}},
			Steps: []runbook.Step{{ID: "install", Kind: "server:install", Provider: "leaseweb", Params: params}}}
	}
	base := map[string]any{"server_id": "12345", "operating_system_id": "UBUNTU_22_04_64BIT"}
	literal := maps.Clone(base)
	literal["password"] = "Literal-Passw0rd"
	_, _, err = r.coord.StartRun(ctx, "", runbook.StartOptions{Definition: install(literal), Inputs: map[string]any{"pw": "x"}})
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "params.password", re.Field)
	assert.NotContains(t, re.Error(), "Literal-Passw0rd")
	keys := maps.Clone(base)
	keys["ssh_keys"] = []any{"{{ .inputs.pw }}", "ssh-ed25519 AAAAliteral"}
	_, _, err = r.coord.StartRun(ctx, "", runbook.StartOptions{Definition: install(keys), Inputs: map[string]any{"pw": "x"}})
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "params.ssh_keys.1", re.Field)
	fromInput := maps.Clone(base)
	fromInput["password"] = "{{ .inputs.pw }}"
	rb, err := runbook.Compile(*install(fromInput))
	require.NoError(t, err)
	assert.NoError(t, rb.NoLiteralSecrets(), "from a secret input")
}

// A schedule that names a runbook starts one run per tick, however many
// replicas fire it, as the schedule; skip_if_running skips a tick while
// the last tick's run is still going.
func TestScheduleStartsRuns(t *testing.T) {
	t.Parallel()
	r := startRig(t, rescueSession(time.Hour))
	ctx := context.Background()
	specs, err := schedule.Parse([]config.Schedule{{Name: "nightly-rescue", Spec: "@every 1h", Runbook: "rescue-session",
		Inputs: map[string]any{"server": "12345"}, Overlap: schedule.OverlapSkip}})
	require.NoError(t, err)
	sp := specs[0]
	replicas := make([]*schedule.Scheduler, 3)
	for i := range replicas {
		replicas[i] = schedule.New(specs, nil, r.store, schedule.NewStore(r.rdb, "rb"), zaptest.NewLogger(t), schedule.WithRuns(r.coord))
	}
	tick := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	ids := make([][]string, len(replicas))
	for i, s := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			ids[i], err = s.Fire(ctx, sp, tick, false)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Len(t, ids[0], 1)
	for _, got := range ids {
		assert.Equal(t, ids[0], got, "every replica found the same run")
	}
	runs, err := r.coord.List(ctx, 10)
	require.NoError(t, err)
	require.Len(t, runs, 1, "one run for the tick")
	run := runs[0]
	assert.Equal(t, "nightly-rescue", run.Schedule)
	assert.Equal(t, ops.ViaSchedule, run.SubmittedBy.Via)
	r.waitState(t, run.ID, runbook.RunWaitingGate)

	skipped, err := replicas[0].Fire(ctx, sp, tick.Add(time.Hour), false)
	require.NoError(t, err)
	assert.Nil(t, skipped, "the last tick's run waits at its gate: skipped")
	assert.Equal(t, 1, r.lw.Launches("12345", "rescueMode"), "the skipped tick launched nothing")
	_, err = r.coord.Decide(ctx, run.ID, "work-done", true, &ops.Actor{Name: "lead", Via: ops.ViaAPI, Authenticated: true})
	require.NoError(t, err)
	assert.Equal(t, runbook.RunSucceeded, r.wait(t, run.ID).State)
	next, err := replicas[1].Fire(ctx, sp, tick.Add(2*time.Hour), false)
	require.NoError(t, err)
	require.Len(t, next, 1)
	assert.NotEqual(t, run.ID, next[0], "a new tick, a new run")
}
