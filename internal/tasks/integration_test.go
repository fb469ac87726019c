package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/webhookverify"
)

// liveBundle runs a real asynq server with the worker's handler on the
// real Redis at REDIS_ADDR, with the UCDN simulator on httptest.
type liveBundle struct {
	worker *tasks.Worker
	store  *opstore.Store
	client *asynq.Client
	insp   *asynq.Inspector
	sim    *ucdnsim.Server
	sub    *tasks.Submitter
}

func startLive(t *testing.T, simCfg ucdnsim.Config, mods ...func(*tasks.Config)) *liveBundle {
	t.Helper()
	rdb := testutil.Redis(t, testutil.DBTasks)
	simCfg.Token = "tok"
	sim := ucdnsim.New(simCfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	uc, err := ucdn.New(srv.URL+"/v4", ucdn.WithToken("tok"), ucdn.WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
	require.NoError(t, err)
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	log := zaptest.NewLogger(t)
	cfg := tasks.Config{
		Store:     store,
		Enqueuer:  client,
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: tasks.TypeCDNPurge, Provider: "ucdn"}: tasks.NewUCDNPurge(map[string]*ucdn.Client{"default": uc})},
		Policies:  map[string]poller.Policy{tasks.TypeCDNPurge: {Initial: 50 * time.Millisecond, Multiplier: 1.5, Max: 200 * time.Millisecond, Deadline: 30 * time.Second}},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: 2 * time.Second, AllowCIDRs: loopback}),
		// The production retry delays (seconds to hours) shortened to
		// 50 ms: four webhook retries, launch backoff capped at 50 ms. A
		// provider's Retry-After still wins.
		Webhooks:        tasks.WebhookConfig{Secrets: []webhookverify.Secret{testSecret}, Schedule: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}},
		RetryBackoffMax: 50 * time.Millisecond,
		Logger:          log,
		Inspector:       asynq.NewInspectorFromRedisClient(rdb),
	}
	for _, m := range mods {
		m(&cfg)
	}
	w, err := tasks.NewWorker(cfg)
	require.NoError(t, err)
	server := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              4,
		Queues:                   serverQueues(),
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		ShutdownTimeout:          2 * time.Second,
		RetryDelayFunc:           w.RetryDelay,
		IsFailure:                w.IsFailure,
		Logger:                   log.Named("asynq").Sugar(),
		LogLevel:                 asynq.WarnLevel,
	})
	require.NoError(t, server.Start(w.Handler()))
	t.Cleanup(server.Shutdown)
	return &liveBundle{worker: w, store: store, client: client, insp: asynq.NewInspectorFromRedisClient(rdb), sim: sim,
		sub: tasks.NewSubmitter(store, client, tasks.SubmitOptions{MaxRetry: 5})}
}

func (b *liveBundle) lookup(id string) (*asynq.TaskInfo, error) { return lookupIn(b.insp, id) }

func (b *liveBundle) waitState(t *testing.T, id string, want opstore.State) *opstore.Operation {
	t.Helper()
	var op *opstore.Operation
	testutil.WaitFor(t, 20*time.Second, "operation "+id+" "+string(want), func() bool {
		var err error
		op, err = b.store.Get(context.Background(), id)
		return err == nil && op.State.Terminal()
	})
	require.Equal(t, want, op.State, op.LastError)
	return op
}

// waitDone waits until asynq runs the task with this id no more (it is
// completed or archived) and returns its info.
func (b *liveBundle) waitDone(t *testing.T, id string) *asynq.TaskInfo {
	t.Helper()
	var info *asynq.TaskInfo
	testutil.WaitFor(t, 20*time.Second, "task "+id+" completed or archived", func() bool {
		var err error
		info, err = b.lookup(id)
		return err == nil && (info.State == asynq.TaskStateCompleted || info.State == asynq.TaskStateArchived)
	})
	return info
}

// waitFinalDelivery waits until the operation is finished and the task
// that finished it has returned (it enqueues the final event before it
// does), then until the event's delivery to dest is over, and returns
// that delivery; nil when none was enqueued.
func (b *liveBundle) waitFinalDelivery(t *testing.T, opID, event, dest string) *asynq.TaskInfo {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, "operation "+opID+" finished and its task returned", func() bool {
		op, err := b.store.Get(context.Background(), opID)
		if err != nil || !op.State.Terminal() {
			return false
		}
		active, err := b.insp.ListActiveTasks(tasks.ProviderQueue(op.Provider))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			return false
		}
		for _, a := range active {
			if strings.HasPrefix(a.ID, "op:"+opID) {
				return false
			}
		}
		return true
	})
	id := tasks.DeliveryTaskID(opID, event, dest)
	if _, err := b.lookup(id); errors.Is(err, asynq.ErrTaskNotFound) {
		return nil
	}
	return b.waitDone(t, id)
}

func TestLivePipelineWithWebhookRetries(t *testing.T) {
	hooks := newReceiver(t, 500, 503, 502) // three failures, then 200
	b := startLive(t, ucdnsim.Config{WaitingFor: 100 * time.Millisecond, RunningFor: 100 * time.Millisecond}, func(c *tasks.Config) {
		c.Webhooks.Subscriptions = []tasks.Subscription{{Name: "flaky", URL: hooks.srv.URL + "/hook", Events: []string{"operation.succeeded"}}}
	})
	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, purgeEnv(goodParams))
	require.NoError(t, err)
	op = b.waitState(t, op.ID, opstore.StateSucceeded)
	assert.GreaterOrEqual(t, op.Polls, 1)
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"))

	// Once the delivery task is completed asynq runs it no more: the
	// attempts the receiver saw are all there will be.
	info := b.waitDone(t, tasks.DeliveryTaskID(op.ID, "operation.succeeded", tasks.SubscriptionDestination("flaky")))
	assert.Equal(t, asynq.TaskStateCompleted, info.State, "kept (retention) for webhooks list")
	assert.Equal(t, 3, info.Retried)
	got := hooks.hooks()
	require.Len(t, got, 4, "three failures and exactly one 2xx delivery")
	for _, h := range got {
		assert.Equal(t, "evt_"+op.ID+"_succeeded", h.ID, "same webhook-id on every attempt")
		assert.Equal(t, "operation.succeeded", h.Body["type"])
		assert.NoError(t, webhookverify.Verify(h.Header, h.Raw, time.Minute, time.Now(), testSecret), "every attempt is signed afresh")
	}
}

func TestLiveRawTaskFromAnotherSystem(t *testing.T) {
	b := startLive(t, ucdnsim.Config{})
	// What a Python or Ruby producer would put on the queue: the
	// documented envelope, no operation_id, its own TaskID.
	payload := `{"provider":"ucdn","params":{"zone_name":"shop","zone_type":"objects","files":["/index.html"]}}`
	_, err := b.client.Enqueue(asynq.NewTask(tasks.TypeCDNPurge, []byte(payload)), asynq.TaskID("shop-deploy-1"), asynq.MaxRetry(3))
	require.NoError(t, err)
	var ops []*opstore.Operation
	testutil.WaitFor(t, 10*time.Second, "record created", func() bool {
		ops, _ = b.store.List(context.Background(), opstore.Filter{})
		return len(ops) == 1
	})
	op := b.waitState(t, ops[0].ID, opstore.StateSucceeded)
	assert.Equal(t, "asynq-task:shop-deploy-1", op.IdempotencyKey)
	assert.Equal(t, "default", op.Account)
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"))
}

func TestLiveBadTasksAreArchivedAndWorkerGoesOn(t *testing.T) {
	b := startLive(t, ucdnsim.Config{})
	_, err := b.client.Enqueue(asynq.NewTask(tasks.TypeCDNPurge, []byte(`{"provider":`)), asynq.TaskID("garbage"))
	require.NoError(t, err)
	_, err = b.client.Enqueue(asynq.NewTask("cdn:teleport", []byte(`{}`)), asynq.TaskID("unknown"))
	require.NoError(t, err)

	testutil.WaitFor(t, 10*time.Second, "both archived", func() bool {
		archived, _ := b.insp.ListArchivedTasks("default")
		return len(archived) == 2
	})
	reasons := archivedReasons(t, b.insp)
	assert.Contains(t, reasons["garbage"], "decode cdn:purge: malformed payload")
	assert.Contains(t, reasons["unknown"], `unknown task type "cdn:teleport"`)

	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, purgeEnv(goodParams))
	require.NoError(t, err)
	b.waitState(t, op.ID, opstore.StateSucceeded)
}

// archivedReasons maps each archived task of the default queue to its
// reason, checking that none was retried.
func archivedReasons(t *testing.T, insp *asynq.Inspector) map[string]string {
	t.Helper()
	archived, err := insp.ListArchivedTasks("default")
	require.NoError(t, err)
	reasons := map[string]string{}
	for _, a := range archived {
		reasons[a.ID] = a.LastErr
		assert.Equal(t, 0, a.Retried, "%s archived at once, never retried", a.ID)
	}
	return reasons
}

func TestLiveLaunchRetriesOnServerErrors(t *testing.T) {
	b := startLive(t, ucdnsim.Config{})
	b.sim.Inject(ucdnsim.Fault{Kind: ucdnsim.FaultStatus, Status: 503, Times: 2, PathPrefix: "/purge/zone"})
	b.sim.Inject(ucdnsim.Fault{Kind: ucdnsim.FaultStatus, Status: 429, RetryAfter: "1", PathPrefix: "/purge/zone"})
	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, purgeEnv(goodParams))
	require.NoError(t, err)
	op = b.waitState(t, op.ID, opstore.StateSucceeded)
	assert.Equal(t, 4, op.Attempts)
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"), "one purge created")
	var after429 time.Duration
	calls := b.sim.Calls()
	for i, c := range calls {
		if c.Status == 429 && i+1 < len(calls) {
			after429 = calls[i+1].At.Sub(c.At)
		}
	}
	// RetryDelay adds 1 s to a Retry-After: asynq truncates retry times
	// to whole seconds, which could otherwise cut the wait short.
	assert.GreaterOrEqual(t, after429, time.Second, "Retry-After: 1 honoured in full")
}

func TestLiveLaunchGivesUpAfterMaxRetry(t *testing.T) {
	b := startLive(t, ucdnsim.Config{})
	b.sim.Inject(ucdnsim.Fault{Kind: ucdnsim.FaultStatus, Status: 500, Times: 100, PathPrefix: "/purge/zone"})
	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, purgeEnv(goodParams))
	require.NoError(t, err)
	op = b.waitState(t, op.ID, opstore.StateFailed)
	assert.Equal(t, 6, op.Attempts, "1 + MaxRetry 5")
	assert.True(t, strings.HasPrefix(op.LastError, "gave up after 6 attempts"), op.LastError)
	data, _ := json.Marshal(op)
	assert.NotContains(t, string(data), "tok")
}
