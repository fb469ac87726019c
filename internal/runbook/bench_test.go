package runbook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/internal/webhooks"
)

// commands counts the commands Redis has run (INFO commandstats), scripts'
// own commands included.
func commands(b *testing.B, rdb redis.UniversalClient) int64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\r\n") {
		_, rest, ok := strings.Cut(line, ":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		n, _ := strconv.ParseInt(calls, 10, 64)
		total += n
	}
	return total
}

// BenchmarkRunbookOverhead compares a runbook of three instant purges with
// the same three operations submitted back to back, each after the one
// before ended (what a script does): the extra latency and Redis commands
// per run are the coordinator's. Real Redis (database 9, flushed); run
// with -benchtime 20x.
func BenchmarkRunbookOverhead(b *testing.B) {
	rdb := testutil.Redis(b, testutil.DBStoreBench)
	ctx := context.Background()
	sim := ucdnsim.New(ucdnsim.Config{})
	srv := httptest.NewServer(sim)
	b.Cleanup(srv.Close)
	uc, err := ucdn.New(srv.URL, ucdn.WithToken("t"), ucdn.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		b.Fatal(err)
	}
	store := opstore.New(rdb, "bench", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	b.Cleanup(func() { client.Close() })
	sub := tasks.NewSubmitter(store, client, tasks.SubmitOptions{})
	def := runbook.Definition{Name: "three-purges", Inputs: []runbook.Input{{Name: "n", Type: runbook.TypeString, Required: true}}}
	for i := range 3 {
		def.Steps = append(def.Steps, runbook.Step{ID: fmt.Sprintf("p%d", i), Kind: "cdn:purge", Provider: "ucdn",
			Params: map[string]any{"zone_name": "demo", "zone_type": "objects", "files": []any{fmt.Sprintf("/{{ .inputs.n }}-%d.png", i)}}})
	}
	rb, err := runbook.Compile(def)
	if err != nil {
		b.Fatal(err)
	}
	coord := runbook.NewCoordinator(rdb, "bench", store, sub, client, "default", []*runbook.Runbook{rb}, time.Hour, zap.NewNop())
	w, err := tasks.NewWorker(tasks.Config{Store: store, Enqueuer: client, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: "cdn:purge", Provider: "ucdn"}: tasks.NewUCDNPurge(map[string]*ucdn.Client{"default": uc})},
		Policies:  map[string]poller.Policy{"cdn:purge": {Initial: 10 * time.Millisecond, Multiplier: 1, Max: 10 * time.Millisecond, Deadline: time.Minute}},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}), Logger: zap.NewNop(),
		OnFinished: coord.OnFinished, Extra: map[string]asynq.HandlerFunc{runbook.TypeAdvance: coord.ProcessAdvance}})
	if err != nil {
		b.Fatal(err)
	}
	server := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 4, Queues: map[string]int{"default": 1, tasks.ProviderQueue("ucdn"): 1},
		TaskCheckInterval: 5 * time.Millisecond, DelayedTaskCheckInterval: 5 * time.Millisecond, RetryDelayFunc: w.RetryDelay, IsFailure: w.IsFailure,
		LogLevel: asynq.FatalLevel})
	if err := server.Start(w.Handler()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(server.Shutdown)
	waitOp := func(id string) {
		for {
			op, err := store.Get(ctx, id)
			if err == nil && op.State.Terminal() {
				if op.State != opstore.StateSucceeded {
					b.Fatalf("operation %s %s", id, op.State)
				}
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	b.Run("runbook", func(b *testing.B) {
		before, start := commands(b, rdb), time.Now()
		for i := range b.N {
			run, err := coord.Start(ctx, "three-purges", map[string]any{"n": fmt.Sprintf("rb%d-%d", b.N, i)}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			for {
				got, err := coord.Get(ctx, run.ID)
				if err == nil && !runbook.Active(got.State) {
					if got.State != runbook.RunSucceeded {
						b.Fatalf("run %s %s: %s", run.ID, got.State, got.Error)
					}
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/run")
		b.ReportMetric(float64(commands(b, rdb)-before)/float64(b.N), "redis-cmds/run")
	})
	b.Run("script", func(b *testing.B) {
		before, start := commands(b, rdb), time.Now()
		for i := range b.N {
			for s := range 3 {
				params, _ := json.Marshal(map[string]any{"zone_name": "demo", "zone_type": "objects", "files": []string{fmt.Sprintf("/sc%d-%d-%d.png", b.N, i, s)}})
				op, _, err := sub.Submit(ctx, "cdn:purge", tasks.Envelope{Provider: "ucdn", Params: params})
				if err != nil {
					b.Fatal(err)
				}
				waitOp(op.ID)
			}
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/run")
		b.ReportMetric(float64(commands(b, rdb)-before)/float64(b.N), "redis-cmds/run")
	})
}
