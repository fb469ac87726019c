package tasks_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/simkit"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/ops"
	"github.com/opsworker/opsworker/webhookverify"
)

type serverBundle struct {
	*bundle
	lw      *leasewebsim.Server
	lwc     *leaseweb.Client
	lwClock *testutil.Clock
	logs    *observer.ObservedLogs
	worker  *tasks.Worker
}

func setupServer(t *testing.T, simCfg leasewebsim.Config, mods ...func(*tasks.Config)) *serverBundle {
	t.Helper()
	return setupServerWith(t, simCfg, nil, mods...)
}

// setupServerWith is setupServer whose Leaseweb client also takes lwOpts.
func setupServerWith(t *testing.T, simCfg leasewebsim.Config, lwOpts []leaseweb.Option, mods ...func(*tasks.Config)) *serverBundle {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	b := setupOn(t, rdb, ucdnsimConfig())
	simCfg.APIKey = "lsw-key"
	lwClock := testutil.NewClock(time.Now())
	simCfg.Now = lwClock.Now
	lw := leasewebsim.New(simCfg)
	t.Cleanup(lw.Close)
	srv := httptest.NewServer(lw)
	t.Cleanup(srv.Close)
	lwc, err := leaseweb.New(srv.URL, append([]leaseweb.Option{leaseweb.WithAPIKey("lsw-key"), leaseweb.WithHTTPClient(&http.Client{Timeout: 2 * time.Second})}, lwOpts...)...)
	require.NoError(t, err)
	core, logs := observer.New(zap.DebugLevel)
	clients := map[string]*leaseweb.Client{"default": lwc}
	cfg := tasks.Config{
		Store:     b.store,
		Enqueuer:  b.client,
		Inspector: b.insp,
		// Every kind on leaseweb, from the registry, polled every second.
		Executors: tasks.Executors(tasks.Clients{Leaseweb: clients}),
		Policies:  map[string]poller.Policy{},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: 2 * time.Second, AllowCIDRs: loopback}),
		Webhooks:  tasks.WebhookConfig{Secrets: []webhookverify.Secret{testSecret}},
		Logger:    zap.New(core),
		Now:       b.clock.Now,
		Rand:      func() float64 { return 0.5 },
	}
	for k := range cfg.Executors {
		cfg.Policies[k.Kind] = poller.Policy{Initial: time.Second, Multiplier: 1, Max: time.Second, Deadline: time.Hour}
	}
	for _, m := range mods {
		m(&cfg)
	}
	w, err := tasks.NewWorker(cfg)
	require.NoError(t, err)
	b.worker = w
	return &serverBundle{bundle: b, lw: lw, lwc: lwc, lwClock: lwClock, logs: logs, worker: w}
}

func (b *serverBundle) submit(t *testing.T, kind, params string, mod ...func(*tasks.Envelope)) *opstore.Operation {
	t.Helper()
	env := tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(params)}
	for _, m := range mod {
		m(&env)
	}
	op, _, err := b.sub.Submit(t.Context(), kind, env)
	require.NoError(t, err)
	return op
}

const installParams = `{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT","hostname":"web01.example.com",
 "password":"Sup3r-S3cret-Pw","ssh_keys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey user@host"],"post_install_script":"#!/bin/sh\necho installed",
 "timezone":"Europe/Amsterdam","power_cycle":true,
 "partitions":[{"filesystem":"ext2","mountpoint":"/boot","size":1024},{"filesystem":"swap","size":"4096"},{"filesystem":"ext4","mountpoint":"/","size":"*"}],
 "raid":{"level":1,"numberOfDisks":2,"type":"SW"}}`

func TestServerParamsValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsimConfig())
	install := func(mod string) string { // replace a field of a valid install
		var m map[string]any
		_ = json.Unmarshal([]byte(installParams), &m)
		var patch map[string]any
		_ = json.Unmarshal([]byte(mod), &patch)
		for k, v := range patch {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		out, _ := json.Marshal(m)
		return string(out)
	}
	tests := []struct {
		name, kind, params, field string
	}{
		{"NoServer", tasks.TypeServerInstall, install(`{"server_id":null}`), "params.server_id"},
		{"ServerNotNumeric", tasks.TypeServerInstall, install(`{"server_id":"web01"}`), "params.server_id"},
		{"NoOS", tasks.TypeServerInstall, install(`{"operating_system_id":null}`), "params.operating_system_id"},
		{"OSLowercase", tasks.TypeServerInstall, install(`{"operating_system_id":"ubuntu"}`), "params.operating_system_id"},
		{"BadHostname", tasks.TypeServerInstall, install(`{"hostname":"web_01.example.com"}`), "params.hostname"},
		{"HostnameDash", tasks.TypeServerInstall, install(`{"hostname":"-web.example.com"}`), "params.hostname"},
		{"BadTimezone", tasks.TypeServerInstall, install(`{"timezone":"Mars/Olympus"}`), "params.timezone"},
		{"StarNotLast", tasks.TypeServerInstall, install(`{"partitions":[{"filesystem":"ext4","mountpoint":"/","size":"*"},{"filesystem":"swap","size":4096}]}`), "params.partitions[0].size"},
		{"NoStar", tasks.TypeServerInstall, install(`{"partitions":[{"filesystem":"ext4","mountpoint":"/","size":10240}]}`), "params.partitions"},
		{"TwoStars", tasks.TypeServerInstall, install(`{"partitions":[{"filesystem":"ext4","mountpoint":"/var","size":"*"},{"filesystem":"ext4","mountpoint":"/","size":"*"}]}`), "params.partitions[0].size"},
		{"NoRoot", tasks.TypeServerInstall, install(`{"partitions":[{"filesystem":"ext4","mountpoint":"/data","size":"*"}]}`), "params.partitions"},
		{"BadFilesystem", tasks.TypeServerInstall, install(`{"partitions":[{"filesystem":"ntfs","mountpoint":"/","size":"*"}]}`), "params.partitions[0].filesystem"},
		{"SwapMountpoint", tasks.TypeServerInstall, install(`{"partitions":[{"filesystem":"swap","mountpoint":"/swap","size":1},{"filesystem":"ext4","mountpoint":"/","size":"*"}]}`), "params.partitions[0].mountpoint"},
		{"RelativeMount", tasks.TypeServerInstall, install(`{"partitions":[{"filesystem":"ext4","mountpoint":"boot","size":1},{"filesystem":"ext4","mountpoint":"/","size":"*"}]}`), "params.partitions[0].mountpoint"},
		{"DupMount", tasks.TypeServerInstall, install(`{"partitions":[{"filesystem":"ext4","mountpoint":"/","size":1},{"filesystem":"ext4","mountpoint":"/","size":"*"}]}`), "params.partitions[1].mountpoint"},
		{"ZeroSize", tasks.TypeServerInstall, install(`{"partitions":[{"filesystem":"ext4","mountpoint":"/boot","size":0},{"filesystem":"ext4","mountpoint":"/","size":"*"}]}`), "params.partitions[0].size"},
		{"RaidLevel", tasks.TypeServerInstall, install(`{"raid":{"level":6,"numberOfDisks":4,"type":"SW"}}`), "params.raid.level"},
		{"RaidDisks", tasks.TypeServerInstall, install(`{"raid":{"level":5,"numberOfDisks":2,"type":"SW"}}`), "params.raid.numberOfDisks"},
		{"Raid10Odd", tasks.TypeServerInstall, install(`{"raid":{"level":10,"numberOfDisks":5,"type":"HW"}}`), "params.raid.numberOfDisks"},
		{"RaidType", tasks.TypeServerInstall, install(`{"raid":{"level":1,"numberOfDisks":2,"type":"FAKE"}}`), "params.raid.type"},
		{"BadSSHKey", tasks.TypeServerInstall, install(`{"ssh_keys":["not a key"]}`), "params.ssh_keys[0]"},
		{"ShortPassword", tasks.TypeServerInstall, install(`{"password":"short"}`), "params.password"},
		{"UnknownParam", tasks.TypeServerInstall, install(`{"root_password":"x"}`), "params.root_password"},
		{"RescueNoShebang", tasks.TypeServerRescue, `{"server_id":"1","post_install_script":"echo hi"}`, "params.post_install_script"},
		{"RescueBadImage", tasks.TypeServerRescue, `{"server_id":"1","rescue_image_id":"grml"}`, "params.rescue_image_id"},
		{"WrongProviderKind", tasks.TypeServerRescue, `{"server_id":"1"}`, "provider"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			provider := "leaseweb"
			if tc.name == "WrongProviderKind" {
				provider = "ucdn"
			}
			_, _, err := b.sub.Submit(t.Context(), tc.kind, tasks.Envelope{Provider: provider, Params: json.RawMessage(tc.params)})
			var ve *tasks.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.field, ve.Field, ve.Error())
			assert.NotContains(t, ve.Error(), "Sup3r-S3cret-Pw")
		})
	}
	_, _, err := b.sub.Submit(t.Context(), tasks.TypeServerInstall, tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(installParams)})
	assert.NoError(t, err, "the full example is valid")
	_, _, err = b.sub.Submit(t.Context(), tasks.TypeServerRescue, tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(`{"server_id":"1","post_install_script":"#!/usr/bin/env bash\nid"}`)})
	assert.NoError(t, err)
}

// The install runs once, reports progress, and its secrets never show:
// not in logs, not in the status record, not in webhooks; after launch
// they are gone from Redis too.
func TestInstallLifecycleAndSecrets(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	hooks := newReceiver(t)
	op := b.submit(t, tasks.TypeServerInstall, installParams, func(e *tasks.Envelope) { e.CallbackURL = hooks.srv.URL })
	const secret = "Sup3r-S3cret-Pw"
	shown, _ := json.Marshal(op)
	assert.NotContains(t, string(shown), secret, "redacted before launch too")
	assert.NotContains(t, string(shown), "echo installed")
	assert.NotContains(t, string(b.task(t, tasks.LaunchTaskID(op.ID)).Payload()), secret, "not in the asynq task either")

	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	assert.Equal(t, 1, b.lw.Launches("12345", "install"))
	calls := b.lw.Calls()
	var body string
	for _, c := range calls {
		if c.Method == "POST" && strings.HasSuffix(c.Path, "/install") {
			body = c.Body
		}
	}
	assert.Contains(t, body, base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho installed")), "script sent base64-encoded")
	assert.Contains(t, body, secret, "the provider gets the password")
	raw, err := b.rdb.HGet(t.Context(), "ow:{ops}:op:"+op.ID, "params").Result()
	require.NoError(t, err)
	assert.NotContains(t, raw, secret, "removed from Redis once launched")
	assert.Contains(t, raw, `"password":"REMOVED"`)

	// Running: progress published.
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateRunning, op.State)
	assert.JSONEq(t, `{"percentage":0,"task":"Power cycle server","finished":0,"total":7}`, string(op.Progress))

	// Finished.
	finishAll(b)
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 2)))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	holder, err := b.store.LockHolder(t.Context(), "leaseweb:server:12345")
	require.NoError(t, err)
	assert.Empty(t, holder, "server lock released")

	require.NoError(t, b.run(t, tasks.DeliveryTaskID(op.ID, webhooks.EventRunning, tasks.DestinationCallback)))
	require.NoError(t, b.run(t, tasks.DeliveryTaskID(op.ID, webhooks.EventSucceeded, tasks.DestinationCallback)))
	require.Len(t, hooks.hooks(), 2)
	for _, h := range hooks.hooks() {
		assert.NotContains(t, string(h.Raw), secret)
		assert.NotContains(t, string(h.Raw), "AAAAC3NzaC1lZDI1NTE5AAAAIKey")
	}
	shown, _ = json.Marshal(op)
	assert.NotContains(t, string(shown), secret)
	for _, e := range b.logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		assert.NotContains(t, e.Message+string(line), secret)
	}
}

func mustJobs(t *testing.T, b *serverBundle) []leaseweb.Job {
	l, err := b.lwc.BareMetal.ListJobs(t.Context(), "12345", nil)
	require.NoError(t, err)
	return l.Jobs
}

// finishAll moves the simulator's clock past every job's last task.
func finishAll(b *serverBundle) { b.lwClock.Add(24 * time.Hour) }

// A launch whose answer was lost (the provider created the job, the
// worker never learned its uuid) is adopted on retry, never repeated.
func TestInterruptedLaunchIsAdopted(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultAfterEffect, Method: "POST", PathPrefix: "/servers/12345/install"})
	op := b.submit(t, tasks.TypeServerInstall, installParams)
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	err := b.worker.Handler().ProcessTask(t.Context(), task)
	require.Error(t, err, "the answer was lost")
	assert.False(t, errors.Is(err, asynq.SkipRetry))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateLaunching, op.State)
	require.NotNil(t, op.LaunchStartedAt)
	assert.Equal(t, 1, b.lw.Launches("12345", "install"))

	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateRunning, op.State)
	assert.Equal(t, 1, b.lw.Launches("12345", "install"), "adopted, not launched again")
	assert.Equal(t, mustJobs(t, b)[0].UUID, op.Handle)
	assert.Equal(t, 1, b.lw.CountCalls("POST", "/servers/12345/install"))
}

// A launch call the provider refused unread (503, 429) leaves nothing to
// reconcile: the retry launches at once. Any other failure (a 500) may
// hide a job, so the retry looks for one first.
func TestFailedAttemptWithoutEffectLaunchesOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status    int
		reconcile bool
	}{{503, false}, {429, false}, {500, true}} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
			b.lw.Inject(simkit.Fault{Kind: simkit.FaultStatus, Status: tc.status, Method: "POST", PathPrefix: "/servers/12345/install"})
			op := b.submit(t, tasks.TypeServerInstall, installParams)
			task := b.task(t, tasks.LaunchTaskID(op.ID))
			require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task))
			op = b.op(t, op.ID)
			assert.Equal(t, tc.reconcile, op.LaunchStartedAt != nil, "attempt kept for reconcile")
			lists := func() int {
				n := 0
				for _, c := range b.lw.Calls() {
					if c.Method == "GET" && strings.Contains(c.Path, "/servers/12345/jobs") && c.Query.Get("type") == "install" {
						n++
					}
				}
				return n
			}
			require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
			assert.Equal(t, opstore.StateRunning, b.op(t, op.ID).State)
			assert.Equal(t, 1, b.lw.Launches("12345", "install"))
			assert.Equal(t, map[bool]int{true: 1, false: 0}[tc.reconcile], lists(), "reconcile lists install jobs")
		})
	}
}

func TestBusyServer(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{tasks.OnBusyWait, tasks.OnBusyFail} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) { c.OnBusy = policy })
			first := b.submit(t, tasks.TypeServerInstall, installParams)
			require.NoError(t, b.run(t, tasks.LaunchTaskID(first.ID)))
			second := b.submit(t, tasks.TypeServerRescue, `{"server_id":"12345"}`)
			err := b.worker.Handler().ProcessTask(t.Context(), b.task(t, tasks.LaunchTaskID(second.ID)))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "busy with operation "+first.ID)
			op := b.op(t, second.ID)
			if policy == tasks.OnBusyWait {
				assert.False(t, b.worker.IsFailure(err), "waiting does not use up a retry")
				assert.Equal(t, 10*time.Second, b.worker.RetryDelay(0, err, b.task(t, tasks.LaunchTaskID(second.ID))))
				assert.Equal(t, opstore.StateQueued, op.State)
				assert.Contains(t, op.LastError, "waiting: leaseweb:server:12345 busy with operation "+first.ID)
			} else {
				assert.ErrorIs(t, err, asynq.SkipRetry)
				assert.Equal(t, opstore.StateFailed, op.State)
				assert.Contains(t, op.LastError, "busy with operation "+first.ID)
			}
			assert.Equal(t, 0, b.lw.Launches("12345", "rescueMode"))
		})
	}
}

// A job started outside opsworker (not holding our lock) also makes the
// server busy: pre-flight sees it.
func TestPreflightSeesForeignJob(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) { c.OnBusy = tasks.OnBusyFail })
	foreign, err := b.lwc.BareMetal.LaunchRescueMode(t.Context(), "12345", &leaseweb.RescueRequest{RescueImageID: "GRML"})
	require.NoError(t, err)
	op := b.submit(t, tasks.TypeServerInstall, installParams)
	err = b.run(t, tasks.LaunchTaskID(op.ID))
	assert.ErrorIs(t, err, asynq.SkipRetry)
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateFailed, op.State)
	assert.Contains(t, op.LastError, "a rescueMode job ("+foreign.UUID+") not started by this operation")
	assert.Equal(t, 0, b.lw.Launches("12345", "install"))
}

func TestFailedJobEndsAtOnce(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	b.lw.FailNextJobs(1)
	op := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	finishAll(b)
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateFailed, op.State)
	assert.Contains(t, op.LastError, "ended FAILED: Install operating system: Disk /dev/sda reported I/O errors")
}

func TestCancelAndExpire(t *testing.T) {
	t.Parallel()
	for _, expire := range []bool{false, true} {
		name := map[bool]string{false: "Cancel", true: "Expire"}[expire]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
			op := b.submit(t, tasks.TypeServerRescue, `{"server_id":"12345"}`)
			require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
			p, _ := json.Marshal(tasks.CancelPayload{OperationID: op.ID, Expire: expire})
			require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCancel, p)))
			want := map[bool]string{false: "CANCELED", true: "EXPIRED"}[expire]
			st, _ := b.lw.JobStatus(b.op(t, op.ID).Handle)
			assert.Equal(t, want, st)
			info, err := b.lookup(tasks.PollTaskID(op.ID, 1))
			require.NoError(t, err)
			assert.Equal(t, asynq.TaskStatePending, info.State, "the poll runs now")
			require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
			op = b.op(t, op.ID)
			assert.Equal(t, opstore.StateCanceled, op.State)
			assert.Contains(t, op.LastError, "by the api consumer")
			assert.Equal(t, strings.ToLower(name), op.CancelRequested)
		})
	}
	t.Run("BeforeLaunch", func(t *testing.T) {
		t.Parallel()
		b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
		op := b.submit(t, tasks.TypeServerInstall, installParams)
		p, _ := json.Marshal(tasks.CancelPayload{OperationID: op.ID})
		require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCancel, p)))
		assert.Equal(t, opstore.StateCanceled, b.op(t, op.ID).State)
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		assert.Equal(t, 0, b.lw.Launches("12345", "install"), "a canceled operation never launches")
	})
	t.Run("NotCancelable", func(t *testing.T) {
		t.Parallel()
		assert.False(t, tasks.Cancelable(tasks.TypeCDNPurge, "edgio"))
		assert.True(t, tasks.Cancelable(tasks.TypeCDNPurge, "ucdn"))
		assert.True(t, tasks.Cancelable(tasks.TypeServerInstall, "leaseweb"))
	})
}

// The server job kinds without an OS (hardware scan, IPMI reset) run
// like an install: the job type and power_cycle reach Leaseweb, progress
// is published, FINISHED succeeds with the job as result, the server's
// lock is held while the job runs (an install waits for it), and a lost
// launch answer is adopted, never repeated.
func TestServerJobKinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind, jobType, path string
		tasks               int
	}{
		{ops.KindServerHardwareScan, leaseweb.JobTypeHardwareScan, "/hardwareScan", 5},
		{ops.KindServerIPMIReset, leaseweb.JobTypeIPMIReset, "/ipmiReset", 2},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
			b.lw.Inject(simkit.Fault{Kind: simkit.FaultAfterEffect, Method: "POST", PathPrefix: "/servers/12345" + tc.path})
			op := b.submit(t, tc.kind, `{"server_id":"12345","power_cycle":false}`)
			task := b.task(t, tasks.LaunchTaskID(op.ID))
			require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task), "the answer was lost")
			require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
			assert.Equal(t, 1, b.lw.Launches("12345", tc.jobType), "adopted, not launched again")
			assert.Equal(t, 1, b.lw.CountCalls("POST", "/servers/12345"+tc.path))
			for _, c := range b.lw.Calls() {
				if c.Method == "POST" && strings.HasSuffix(c.Path, tc.path) {
					assert.JSONEq(t, `{"powerCycle":false}`, c.Body)
				}
			}
			op = b.op(t, op.ID)
			assert.Equal(t, opstore.StateRunning, op.State)
			assert.Equal(t, mustJobs(t, b)[0].UUID, op.Handle)

			install := b.submit(t, tasks.TypeServerInstall, installParams)
			err := b.worker.Handler().ProcessTask(t.Context(), b.task(t, tasks.LaunchTaskID(install.ID)))
			assert.Contains(t, err.Error(), "busy with operation "+op.ID)
			assert.Equal(t, 0, b.lw.Launches("12345", "install"))

			require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
			view := b.op(t, op.ID).View()
			p, err := view.DecodeProgress()
			require.NoError(t, err)
			assert.Equal(t, tc.tasks, *p.Total)

			finishAll(b)
			require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 2)))
			op = b.op(t, op.ID)
			require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
			view = op.View()
			res, err := view.DecodeResult()
			require.NoError(t, err)
			job := res.(*ops.ServerJobResult)
			assert.Equal(t, tc.jobType, job.Type)
			assert.Equal(t, leaseweb.JobFinished, job.Status)
			assert.Equal(t, tc.tasks, job.Progress.Finished)
			holder, err := b.store.LockHolder(t.Context(), "leaseweb:server:12345")
			require.NoError(t, err)
			assert.Empty(t, holder, "server lock released")
		})
	}
}
