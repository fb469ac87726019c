package tasks_test

import (
	"encoding/json"
	"fmt"
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
	"github.com/opsworker/opsworker/internal/providers/ionos"
	"github.com/opsworker/opsworker/internal/providers/ionos/ionossim"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
)

// One list call settles every finished member of the batch; a member the
// batch saw running needs no call of its own.
func TestBatchPollingUCDN(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	sim := ucdnsim.New(ucdnsim.Config{Token: "tok", WaitingFor: time.Hour})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	uc, err := ucdn.New(srv.URL+"/v4", ucdn.WithToken("tok"), ucdn.WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
	require.NoError(t, err)
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	w, err := tasks.NewWorker(tasks.Config{
		Store: store, Enqueuer: client, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: tasks.TypeCDNPurge, Provider: "ucdn"}: tasks.NewUCDNPurge(map[string]*ucdn.Client{"default": uc})},
		Policies:  map[string]poller.Policy{tasks.TypeCDNPurge: {Initial: time.Minute, Multiplier: 1, Max: time.Minute, Deadline: time.Hour}},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}),
		Batcher:   poller.NewBatcher(rdb, "ow"),
		Logger:    zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	b := &bundle{rdb: rdb, store: store, client: client, insp: asynq.NewInspectorFromRedisClient(rdb), sim: sim, worker: w,
		sub: tasks.NewSubmitter(store, client, tasks.SubmitOptions{})}

	var ops []*opstore.Operation
	for i := 0; i < 3; i++ {
		op := submit(t, b, purgeEnv(goodParams))
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		ops = append(ops, b.op(t, op.ID))
	}
	require.True(t, sim.Advance(ops[0].Handle))
	require.True(t, sim.Advance(ops[1].Handle))

	// ops[0]'s poll leads the batch: one list call per status, each
	// naming it (the API marks status as required), ops[0] and ops[1] done.
	require.NoError(t, b.run(t, tasks.PollTaskID(ops[0].ID, 1)))
	assert.Equal(t, 4, sim.CountCalls("GET", "/purge/"), "the four list calls")
	var statuses []string
	for _, c := range sim.Calls() {
		if c.Method == "GET" && c.Path == "/purge/" {
			statuses = append(statuses, c.Query.Get("status"))
		}
	}
	assert.ElementsMatch(t, []string{"waiting", "running", "failed", "finished"}, statuses)
	assert.Zero(t, sim.CountCalls("GET", "/purge/job/"), "no per-job GET")
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[0].ID).State)
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[1].ID).State, "settled by the batch")
	assert.Equal(t, opstore.StateRunning, b.op(t, ops[2].ID).State)

	// ops[2] polls within the interval: the batch saw it running.
	require.NoError(t, b.run(t, tasks.PollTaskID(ops[2].ID, 1)))
	assert.Equal(t, 4, sim.CountCalls("GET", "/purge"), "no further call")
	assert.Equal(t, opstore.StateRunning, b.op(t, ops[2].ID).State)
	assert.Equal(t, 1, b.op(t, ops[2].ID).Polls)

	// ops[1]'s own poll task later finds it finished and does nothing.
	require.NoError(t, b.run(t, tasks.PollTaskID(ops[1].ID, 1)))
	assert.Equal(t, 4, sim.CountCalls("GET", "/purge"))
	members, err := poller.NewBatcher(rdb, "ow").Members(t.Context(), "ucdn:default", 10)
	require.NoError(t, err)
	assert.Equal(t, []string{ops[2].ID}, members, "finished operations leave the batch")
}

// IONOS distributions batch too: one list call (a page of up to 1,000)
// settles every finished member; a member the batch saw busy makes no call.
func TestBatchPollingIONOS(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sim := ionossim.New(ionossim.Config{Token: "tok", Duration: 10 * time.Minute, Now: clock})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	ic, err := ionos.New(srv.URL, ionos.WithToken("tok"), ionos.WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
	require.NoError(t, err)
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	w, err := tasks.NewWorker(tasks.Config{
		Store: store, Enqueuer: client, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: tasks.TypeCDNDistributionEnsure, Provider: "ionos"}: tasks.NewIONOSDistribution(map[string]*ionos.Client{"default": ic})},
		Policies:  map[string]poller.Policy{tasks.TypeCDNDistributionEnsure: {Initial: time.Minute, Multiplier: 1, Max: time.Minute, Deadline: time.Hour}},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}),
		Batcher:   poller.NewBatcher(rdb, "ow"),
		Logger:    zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	b := &bundle{rdb: rdb, store: store, client: client, insp: asynq.NewInspectorFromRedisClient(rdb), worker: w,
		sub: tasks.NewSubmitter(store, client, tasks.SubmitOptions{})}
	ensure := func(i int) *opstore.Operation {
		params := fmt.Sprintf(`{"distribution_id":%q,"domain":"cdn%d.example.com","routing_rules":[{"scheme":"https","prefix":"/","upstream":{"host":"origin.example.com","caching":true,"waf":false}}]}`,
			fmt.Sprintf("9ba15778-16c4-543c-8775-e52acf4853f%d", i), i)
		op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNDistributionEnsure, tasks.Envelope{Provider: "ionos", Params: json.RawMessage(params)})
		require.NoError(t, err)
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		return b.op(t, op.ID)
	}
	ops := []*opstore.Operation{ensure(0), ensure(1)}
	mu.Lock()
	now = now.Add(11 * time.Minute) // the first two are AVAILABLE now
	mu.Unlock()
	ops = append(ops, ensure(2)) // BUSY for 10 more minutes

	require.NoError(t, b.run(t, tasks.PollTaskID(ops[0].ID, 1)))
	assert.Equal(t, 1, sim.CountCalls("GET", "/distributions"), "one list call")
	var listed []string
	for _, c := range sim.Calls() {
		if c.Method == "GET" && c.Path == "/distributions" {
			listed = append(listed, c.Query.Get("offset")+"/"+c.Query.Get("limit"))
		}
	}
	assert.Equal(t, []string{"0/1000"}, listed)
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[0].ID).State)
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[1].ID).State, "settled by the batch")
	assert.Equal(t, opstore.StateRunning, b.op(t, ops[2].ID).State)

	require.NoError(t, b.run(t, tasks.PollTaskID(ops[2].ID, 1)))
	assert.Equal(t, 1, sim.CountCalls("GET", "/distributions"), "no further call: the batch saw it BUSY")
	assert.Equal(t, "BUSY", b.op(t, ops[2].ID).Status)
}
