package tasks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/internal/webhooks"
)

// BenchmarkInvalidations1000 keeps 1,000 Leaseweb invalidations in flight
// on real Redis with a real asynq server (20 workers, polls every 1 s),
// once polling each operation alone and once in batches. It reports the
// provider calls per completed operation, the calls per operation per
// minute of waiting, and the time from the simulator marking the actions
// finished until each operation is succeeded (p50/p99).
//
//	REDIS_ADDR=127.0.0.1:6379 go test ./internal/tasks -run '^$' -bench Invalidations1000 -benchtime 1x
func BenchmarkInvalidations1000(b *testing.B) {
	for _, batch := range []bool{false, true} {
		name := map[bool]string{false: "alone", true: "batched"}[batch]
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runInvalidations(b, 1000, batch)
			}
		})
	}
}

func runInvalidations(b *testing.B, n int, batch bool) {
	rdb := testutil.Redis(b, testutil.DBTasks)
	ctx := context.Background()
	sim := leasewebsim.New(leasewebsim.Config{APIKey: "k", CDNDuration: time.Hour})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	lc, err := leaseweb.New(srv.URL, leaseweb.WithAPIKey("k"), leaseweb.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		b.Fatal(err)
	}
	store := opstore.New(rdb, "bench", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	cfg := tasks.Config{
		Store: store, Enqueuer: client, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: tasks.TypeCDNInvalidate, Provider: "leaseweb"}: tasks.NewLeasewebInvalidate(map[string]*leaseweb.Client{"default": lc})},
		Policies:  map[string]poller.Policy{tasks.TypeCDNInvalidate: {Initial: time.Second, Multiplier: 1, Max: time.Second, Deadline: time.Hour}},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}),
		Logger:    zap.NewNop(),
	}
	if batch {
		cfg.Batcher = poller.NewBatcher(rdb, "bench")
	}
	w, err := tasks.NewWorker(cfg)
	if err != nil {
		b.Fatal(err)
	}
	server := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 20, Queues: serverQueues(),
		TaskCheckInterval: 50 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond, LogLevel: asynq.ErrorLevel,
		IsFailure: w.IsFailure, RetryDelayFunc: w.RetryDelay})
	if err := server.Start(w.Handler()); err != nil {
		b.Fatal(err)
	}
	defer server.Shutdown()
	sub := tasks.NewSubmitter(store, client, tasks.SubmitOptions{})

	b.ResetTimer()
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		op, _, err := sub.Submit(ctx, tasks.TypeCDNInvalidate, tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(`{"files":["https://cdn.example.com/a.png"]}`)})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, op.ID)
	}
	waitAll(b, store, ids, func(op *opstore.Operation) bool { return op.State == opstore.StateRunning }, time.Minute)

	// Waiting: count calls over a fixed window while every action is PENDING.
	before := len(sim.Calls())
	const window = 5 * time.Second
	time.Sleep(window)
	waitingCalls := len(sim.Calls()) - before

	finishedAt := time.Now()
	for _, id := range sim.ActionIDs() {
		sim.FinishAction(id)
	}
	waitAll(b, store, ids, func(op *opstore.Operation) bool { return op.State == opstore.StateSucceeded }, 2*time.Minute)
	b.StopTimer()

	ops, err := store.GetMany(ctx, ids)
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, len(ops))
	for _, op := range ops {
		lat = append(lat, op.FinishedAt.Sub(finishedAt))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	total := len(sim.Calls())
	b.ReportMetric(float64(total)/float64(n), "calls/op")
	b.ReportMetric(float64(waitingCalls)/float64(n)/window.Minutes(), "calls/op/min-waiting")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
}

func waitAll(b *testing.B, store *opstore.Store, ids []string, cond func(*opstore.Operation) bool, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		ops, err := store.GetMany(context.Background(), ids)
		if err != nil {
			b.Fatal(err)
		}
		done := 0
		for _, op := range ops {
			if cond(op) {
				done++
			}
		}
		if done == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d operations got there in %s", done, len(ids), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
