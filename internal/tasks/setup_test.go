package tasks_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
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

// receiver is a webhook endpoint that answers with the queued statuses
// (then 200) and records what it got.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []receivedHook
	srv      *httptest.Server
}

type receivedHook struct {
	ID     string
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		r.mu.Lock()
		r.got = append(r.got, receivedHook{ID: req.Header.Get("webhook-id"), Header: req.Header.Clone(), Raw: raw, Body: body})
		status := 200
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) hooks() []receivedHook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedHook(nil), r.got...)
}

var (
	loopback   = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	testSecret = webhookverify.NewSecret()
)

type bundle struct {
	rdb    *redis.Client
	store  *opstore.Store
	client *asynq.Client
	insp   *asynq.Inspector
	sim    *ucdnsim.Server
	worker *tasks.Worker
	sub    *tasks.Submitter
	clock  *testutil.Clock
	policy poller.Policy
}

func setup(t *testing.T, simCfg ucdnsim.Config) *bundle {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return setupOn(t, rdb, simCfg)
}

func setupOn(t *testing.T, rdb *redis.Client, simCfg ucdnsim.Config) *bundle {
	t.Helper()
	simCfg.Token = "tok"
	sim := ucdnsim.New(simCfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.ReleaseHangs)
	uc, err := ucdn.New(srv.URL+"/v4", ucdn.WithToken("tok"), ucdn.WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
	require.NoError(t, err)
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	clock := testutil.NewClock(time.Now())
	policy := poller.Policy{Initial: time.Second, Multiplier: 2, Max: 8 * time.Second, Deadline: time.Minute}
	w, err := tasks.NewWorker(tasks.Config{
		Store:     store,
		Enqueuer:  client,
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: tasks.TypeCDNPurge, Provider: "ucdn"}: tasks.NewUCDNPurge(map[string]*ucdn.Client{"default": uc})},
		Policies:  map[string]poller.Policy{tasks.TypeCDNPurge: policy},
		Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: 2 * time.Second, UserAgent: "opsworker-test", AllowCIDRs: loopback}),
		Webhooks:  tasks.WebhookConfig{Secrets: []webhookverify.Secret{testSecret}},
		Logger:    zaptest.NewLogger(t),
		Now:       clock.Now,
		Rand:      func() float64 { return 0.5 },
	})
	require.NoError(t, err)
	return &bundle{
		rdb: rdb, store: store, client: client, insp: asynq.NewInspectorFromRedisClient(rdb), sim: sim, worker: w,
		sub: tasks.NewSubmitter(store, client, tasks.SubmitOptions{}), clock: clock, policy: policy,
	}
}

func purgeEnv(params string) tasks.Envelope {
	return tasks.Envelope{Provider: "ucdn", Params: json.RawMessage(params)}
}

const goodParams = `{"zone_name":"demo","zone_type":"objects","files":["/a.png","https://cdn.example.com/b.css"]}`

// queues are where a test looks for a task: the general queue and every
// provider's.
func queues() []string {
	out := []string{"default"}
	for _, p := range tasks.Providers() {
		out = append(out, tasks.ProviderQueue(p))
	}
	return out
}

// serverQueues are what a test's asynq server listens on: every queue.
func serverQueues() map[string]int {
	out := map[string]int{}
	for _, q := range queues() {
		out[q] = 1
	}
	return out
}

// lookupIn finds the task with this id in any queue and state.
func lookupIn(insp *asynq.Inspector, id string) (*asynq.TaskInfo, error) {
	var err error
	for _, q := range queues() {
		var info *asynq.TaskInfo
		if info, err = insp.GetTaskInfo(q, id); err == nil {
			return info, nil
		}
	}
	return nil, err
}

func (b *bundle) lookup(id string) (*asynq.TaskInfo, error) { return lookupIn(b.insp, id) }

// task fetches the task with this id from any queue and state and
// rebuilds it.
func (b *bundle) task(t *testing.T, id string) *asynq.Task {
	t.Helper()
	info, err := b.lookup(id)
	require.NoError(t, err, "task %s", id)
	return asynq.NewTask(info.Type, info.Payload)
}

func (b *bundle) hasTask(id string) bool {
	_, err := b.lookup(id)
	return err == nil
}

// run processes the task with this id through the worker's handler, then
// deletes it as asynq would after a successful run.
func (b *bundle) run(t *testing.T, id string) error {
	t.Helper()
	task := b.task(t, id)
	err := b.worker.Handler().ProcessTask(context.Background(), task)
	if err == nil {
		if info, lerr := b.lookup(id); lerr == nil {
			_ = b.insp.DeleteTask(info.Queue, id)
		}
	}
	return err
}

func (b *bundle) op(t *testing.T, id string) *opstore.Operation {
	t.Helper()
	op, err := b.store.Get(context.Background(), id)
	require.NoError(t, err)
	return op
}

func ucdnsimConfig() ucdnsim.Config { return ucdnsim.Config{} }
