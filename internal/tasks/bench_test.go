package tasks_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/webhookverify"
)

// BenchmarkWebhookDelivery measures signed deliveries per second through
// the real path: asynq on the Redis at REDIS_ADDR, the worker's
// webhook:deliver handler (signing, SSRF-guarded dial) and a local
// receiver that answers 204.
//
//	go test ./internal/tasks -run '^$' -bench WebhookDelivery -benchtime 2000x
func BenchmarkWebhookDelivery(b *testing.B) {
	rdb := testutil.Redis(b, testutil.DBTasks)
	var got atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(recv.Close)
	client := asynq.NewClientFromRedisClient(rdb)
	b.Cleanup(func() { client.Close() })
	w, err := tasks.NewWorker(tasks.Config{
		Store:    opstore.New(rdb, "bench", time.Hour),
		Enqueuer: client,
		Sender:   webhooks.NewSender(webhooks.SenderConfig{Timeout: 5 * time.Second, AllowCIDRs: loopback}),
		Webhooks: tasks.WebhookConfig{Secrets: []webhookverify.Secret{testSecret}},
		Logger:   zap.NewNop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 20, Queues: serverQueues(), TaskCheckInterval: 10 * time.Millisecond,
		LogLevel: asynq.ErrorLevel,
	})
	if err := srv.Start(w.Handler()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	body, _ := json.Marshal(webhooks.Event{ID: "evt", Type: webhooks.EventSucceeded, Timestamp: time.Now(), Data: json.RawMessage(`{"id":"x","kind":"cdn:purge","state":"succeeded"}`)})
	// Each delivery reads its URL and body from its operation's record.
	store := opstore.New(rdb, "bench", time.Hour)
	for i := 0; i < b.N; i++ {
		if _, _, err := store.Create(b.Context(), &opstore.Operation{ID: fmt.Sprint(i), Kind: tasks.TypeCDNPurge, Provider: "ucdn", CallbackURL: recv.URL + "/hook"}); err != nil {
			b.Fatal(err)
		}
		if err := store.SaveEvent(b.Context(), fmt.Sprint(i), webhooks.EventSucceeded, body); err != nil {
			b.Fatal(err)
		}
	}

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		p, _ := json.Marshal(tasks.WebhookPayload{OperationID: fmt.Sprint(i), EventID: fmt.Sprint("evt_", i), EventType: webhooks.EventSucceeded,
			Destination: tasks.DestinationCallback})
		if _, err := client.Enqueue(asynq.NewTask(tasks.TypeWebhookDeliver, p), asynq.MaxRetry(0)); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	if got.Load() < int64(b.N) {
		b.Fatalf("only %d of %d delivered", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}

// BenchmarkSign is the cost of signing one event with two secrets (a
// rotation in progress).
func BenchmarkSign(b *testing.B) {
	body := make([]byte, 1500)
	s1, s2 := webhookverify.NewSecret(), webhookverify.NewSecret()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = webhookverify.Sign("evt_0196f6f1-0000-7000-8000-000000000000_succeeded", now, body, s1, s2)
	}
}
