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

// ucdnBatch is a worker with batch polling of UCDN purges, on miniredis
// and the UCDN simulator (jobs wait an hour unless advanced), polling
// every minute.
func ucdnBatch(t *testing.T) (*bundle, *ucdnsim.Server, *redis.Client, *tasks.Worker) {
	t.Helper()
	sim := ucdnsim.New(ucdnsim.Config{Token: "tok", WaitingFor: time.Hour})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	uc, err := ucdn.New(srv.URL+"/v4", ucdn.WithToken("tok"), ucdn.WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
	require.NoError(t, err)
	b, rdb := batchWorker(t, tasks.TypeCDNPurge, "ucdn", tasks.NewUCDNPurge(map[string]*ucdn.Client{"default": uc}))
	b.sim = sim
	return b, sim, rdb, b.worker
}

// batchWorker is a worker with batch polling of kind on provider through
// exec, on miniredis, polling every minute.
func batchWorker(t *testing.T, kind, provider string, exec tasks.Executor) (*bundle, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	w, err := tasks.NewWorker(tasks.Config{
		Store: store, Enqueuer: client, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: kind, Provider: provider}: exec},
		Policies:  map[string]poller.Policy{kind: {Initial: time.Minute, Multiplier: 1, Max: time.Minute, Deadline: time.Hour}},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}),
		Batcher:   poller.NewBatcher(rdb, "ow"),
		Logger:    zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	return &bundle{rdb: rdb, store: store, client: client, insp: asynq.NewInspectorFromRedisClient(rdb), worker: w,
		sub: tasks.NewSubmitter(store, client, tasks.SubmitOptions{})}, rdb
}

// One list call settles every finished member of the batch; a member the
// batch saw running needs no call of its own.
func TestBatchPollingUCDN(t *testing.T) {
	t.Parallel()
	b, sim, rdb, w := ucdnBatch(t)

	var ops []*opstore.Operation
	for i := 0; i < 3; i++ {
		op := submit(t, b, purgeEnv(goodParams))
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		ops = append(ops, b.op(t, op.ID))
	}
	require.True(t, sim.Advance(ops[0].Handle))
	require.True(t, sim.Advance(ops[1].Handle))

	// While another run holds the batch, a batch task only makes sure
	// the next one comes.
	batcher := poller.NewBatcher(rdb, "ow")
	lead, err := batcher.Lead(t.Context(), "ucdn:default", "another run", time.Minute)
	require.NoError(t, err)
	require.True(t, lead)
	b.runBatch(t, "ucdn:default")
	assert.Zero(t, sim.CountCalls("GET", "/purge/"), "no list while another run holds the batch")
	require.True(t, b.hasBatchTask("ucdn:default"))
	require.NoError(t, batcher.Unlead(t.Context(), "ucdn:default", "another run"))

	// The batch task lists once per status, each naming it (the API
	// marks status as required): ops[0] and ops[1] done.
	b.runBatch(t, "ucdn:default")
	assert.Equal(t, 4, sim.CountCalls("GET", "/purge/"), "the four list calls")
	var statuses []string
	for _, c := range sim.Calls() {
		if c.Method == "GET" && c.Path == "/purge/" {
			statuses = append(statuses, c.Query.Get("status"))
		}
	}
	assert.ElementsMatch(t, []string{"waiting", "running", "failed", "finished"}, statuses)
	assert.Zero(t, sim.CountCalls("GET", "/purge/job/"), "no per-job GET")
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[0].ID).State, "settled by the batch")
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[1].ID).State, "settled by the batch")
	assert.Equal(t, opstore.StateRunning, b.op(t, ops[2].ID).State)

	// ops[2]'s own poll: the batch saw it running, so no call, and its
	// next own poll is a safety net minutes away.
	require.NoError(t, b.run(t, tasks.PollTaskID(ops[2].ID, 1)))
	assert.Equal(t, 4, sim.CountCalls("GET", "/purge"), "no further call")
	assert.Equal(t, opstore.StateRunning, b.op(t, ops[2].ID).State)
	assert.Equal(t, 1, b.op(t, ops[2].ID).Polls)
	next, err := b.lookup(tasks.PollTaskID(ops[2].ID, 2))
	require.NoError(t, err)
	assert.Greater(t, time.Until(next.NextProcessAt), 4*time.Minute, "a covered member polls itself rarely")

	// Its provider calls back: its poll runs now and asks the provider
	// itself rather than take the batch's last list.
	ok, err := w.PollNow(t.Context(), "ucdn", ops[2].ID)
	require.NoError(t, err)
	require.True(t, ok)
	info, err := b.lookup(tasks.PollTaskID(ops[2].ID, 2))
	require.NoError(t, err)
	assert.Equal(t, asynq.TaskStatePending, info.State, "the poll runs now")
	require.NoError(t, b.run(t, tasks.PollTaskID(ops[2].ID, 2)))
	assert.Equal(t, 1, sim.CountCalls("GET", "/purge/job/"), "its own GET")

	// ops[1]'s own poll task later finds it finished and does nothing.
	require.NoError(t, b.run(t, tasks.PollTaskID(ops[1].ID, 1)))
	assert.Equal(t, 5, sim.CountCalls("GET", "/purge"))
	members, err := poller.NewBatcher(rdb, "ow").Members(t.Context(), "ucdn:default")
	require.NoError(t, err)
	assert.Equal(t, []string{ops[2].ID}, keys(members), "finished operations leave the batch")
	assert.True(t, b.hasBatchTask("ucdn:default"), "the batch task comes again while members remain")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// batchTask is the id of key's scheduled batch task, "" if none.
func (b *bundle) batchTask(key string) string {
	for _, q := range queues() {
		infos, _ := b.insp.ListScheduledTasks(q, asynq.PageSize(1000))
		for _, info := range infos {
			var p tasks.BatchPollPayload
			if info.Type == tasks.TypeBatchPoll && json.Unmarshal(info.Payload, &p) == nil && p.Key == key {
				return info.ID
			}
		}
	}
	return ""
}

func (b *bundle) hasBatchTask(key string) bool { return b.batchTask(key) != "" }

// runBatch runs key's scheduled batch task now.
func (b *bundle) runBatch(t *testing.T, key string) {
	t.Helper()
	id := b.batchTask(key)
	require.NotEmpty(t, id, "no batch task for %s", key)
	require.NoError(t, b.run(t, id))
}

// IONOS distributions batch too: one list call (a page of up to 1,000)
// settles every finished member; a member the batch saw busy makes no call.
func TestBatchPollingIONOS(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sim := ionossim.New(ionossim.Config{Token: "tok", Duration: 10 * time.Minute, Now: clock})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	ic, err := ionos.New(srv.URL, ionos.WithToken("tok"), ionos.WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
	require.NoError(t, err)
	b, rdb := batchWorker(t, tasks.TypeCDNDistributionEnsure, "ionos", tasks.NewIONOSDistribution(map[string]*ionos.Client{"default": ic}))
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
	ops = append(ops, ensure(2), ensure(3), ensure(4)) // BUSY for 10 more minutes

	b.runBatch(t, "ionos:default")
	assert.Equal(t, 1, sim.CountCalls("GET", "/distributions"), "one list call")
	var listed []string
	for _, c := range sim.Calls() {
		if c.Method == "GET" && c.Path == "/distributions" {
			listed = append(listed, c.Query.Get("offset")+"/"+c.Query.Get("limit"))
		}
	}
	assert.Equal(t, []string{"0/1000"}, listed)
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[0].ID).State, "settled by the batch")
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[1].ID).State, "settled by the batch")
	assert.Equal(t, opstore.StateRunning, b.op(t, ops[2].ID).State)
	assert.Equal(t, "BUSY", b.op(t, ops[2].ID).Status, "the batch records a member's status")

	require.NoError(t, b.run(t, tasks.PollTaskID(ops[2].ID, 1)))
	assert.Equal(t, 1, sim.CountCalls("GET", "/distributions"), "no further call: the batch saw it BUSY")
	assert.Equal(t, "BUSY", b.op(t, ops[2].ID).Status)

	// A member the next list does not show is no longer covered: its
	// poll runs now, alone.
	require.NoError(t, ic.DeleteDistribution(t.Context(), ops[2].Handle))
	mu.Lock()
	now = now.Add(11 * time.Minute) // deleted; the others AVAILABLE
	mu.Unlock()
	b.runBatch(t, "ionos:default")
	assert.Equal(t, 2, sim.CountCalls("GET", "/distributions"))
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[3].ID).State)
	m, in, _, err := poller.NewBatcher(rdb, "ow").Look(t.Context(), "ionos:default", ops[2].ID)
	require.NoError(t, err)
	assert.True(t, in)
	assert.False(t, m.Seen(), "not covered")
	info, err := b.lookup(tasks.PollTaskID(ops[2].ID, 2))
	require.NoError(t, err)
	assert.Equal(t, asynq.TaskStatePending, info.State, "its poll runs now")
	require.NoError(t, b.run(t, tasks.PollTaskID(ops[2].ID, 2)))
	gets := 0
	for _, c := range sim.Calls() {
		if c.Method == "GET" && c.Path == "/distributions/"+ops[2].Handle {
			gets++
		}
	}
	assert.Equal(t, 1, gets, "its own GET (answered 404)")
	assert.Equal(t, opstore.StateFailed, b.op(t, ops[2].ID).State, "a distribution deleted meanwhile")
}

// A batch of fewer than three members is not worth a list call: its
// members poll alone, and the batch task stops once the batch is empty.
func TestBatchTooSmallPollsAlone(t *testing.T) {
	t.Parallel()
	b, sim, _, _ := ucdnBatch(t)
	op := submit(t, b, purgeEnv(goodParams))
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	b.runBatch(t, "ucdn:default")
	assert.Zero(t, sim.CountCalls("GET", "/purge/"), "no list call for one member")

	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	assert.Equal(t, 1, sim.CountCalls("GET", "/purge/job/"), "it polls alone")
	next, err := b.lookup(tasks.PollTaskID(op.ID, 2))
	require.NoError(t, err)
	assert.Less(t, time.Until(next.NextProcessAt), 2*time.Minute, "at its kind's interval")

	require.True(t, sim.Advance(b.op(t, op.ID).Handle))
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 2)))
	require.Equal(t, opstore.StateSucceeded, b.op(t, op.ID).State)
	// (Run here ahead of time, more than one interval's task may wait.)
	for i := 0; i < 3 && b.hasBatchTask("ucdn:default"); i++ {
		b.runBatch(t, "ucdn:default")
	}
	assert.False(t, b.hasBatchTask("ucdn:default"), "an empty batch stops")
}

// When the batch shrinks below three members it stops listing, and a
// member an earlier list covered (its own poll minutes away) polls alone
// at once.
func TestBatchShrinkingHurriesCovered(t *testing.T) {
	t.Parallel()
	b, sim, rdb, _ := ucdnBatch(t)
	var ops []*opstore.Operation
	for i := 0; i < 3; i++ {
		op := submit(t, b, purgeEnv(goodParams))
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		ops = append(ops, b.op(t, op.ID))
	}
	b.runBatch(t, "ucdn:default") // all three seen waiting
	for _, op := range ops {
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	}
	next, err := b.lookup(tasks.PollTaskID(ops[2].ID, 2))
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStateScheduled, next.State, "covered: parked")

	require.True(t, sim.Advance(ops[0].Handle))
	require.True(t, sim.Advance(ops[1].Handle))
	b.runBatch(t, "ucdn:default") // settles two; one left
	require.Equal(t, opstore.StateSucceeded, b.op(t, ops[0].ID).State)
	require.Equal(t, opstore.StateRunning, b.op(t, ops[2].ID).State)

	b.runBatch(t, "ucdn:default") // too small to list
	next, err = b.lookup(tasks.PollTaskID(ops[2].ID, 2))
	require.NoError(t, err)
	assert.Equal(t, asynq.TaskStatePending, next.State, "its parked poll runs now")
	m, in, _, err := poller.NewBatcher(rdb, "ow").Look(t.Context(), "ucdn:default", ops[2].ID)
	require.NoError(t, err)
	assert.True(t, in)
	assert.False(t, m.Seen())
	calls := sim.CountCalls("GET", "/purge/job/")
	require.NoError(t, b.run(t, tasks.PollTaskID(ops[2].ID, 2)))
	assert.Equal(t, calls+1, sim.CountCalls("GET", "/purge/job/"), "it asks the provider itself")
}
