package tasks_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
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
	"github.com/opsworker/opsworker/internal/providers/edgio"
	"github.com/opsworker/opsworker/internal/providers/edgio/edgiosim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
)

func setupEdgio(t *testing.T, tokens map[string][]string, token string) (*bundle, *edgiosim.Server) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	sim := edgiosim.New(edgiosim.Config{Duration: time.Hour, Tokens: tokens})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := edgio.New(srv.URL, edgio.WithToken(token))
	require.NoError(t, err)
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	w, err := tasks.NewWorker(tasks.Config{
		Store: store, Enqueuer: client, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: tasks.TypeCDNPurge, Provider: "edgio"}: tasks.NewEdgioPurge(map[string]tasks.EdgioAccount{"default": {Client: c, AccountNumber: "0001"}})},
		Policies:  map[string]poller.Policy{tasks.TypeCDNPurge: {Initial: time.Second, Multiplier: 1, Max: time.Second, Deadline: time.Hour}},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}),
		Logger:    zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	return &bundle{rdb: rdb, store: store, client: client, insp: asynq.NewInspectorFromRedisClient(rdb), worker: w,
		sub: tasks.NewSubmitter(store, client, tasks.SubmitOptions{})}, sim
}

func paths(n, from int) string {
	var p []string
	for i := 0; i < n; i++ {
		p = append(p, fmt.Sprintf(`"/f%d"`, from+i))
	}
	return `{"media_path":[` + strings.Join(p, ",") + `]}`
}

// Beyond Edgio's 50 outstanding purges per account, operations wait for
// room; they do not fail.
func TestEdgioOutstandingLimitWaits(t *testing.T) {
	t.Parallel()
	b, sim := setupEdgio(t, nil, "tok")
	first, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, tasks.Envelope{Provider: "edgio", Params: json.RawMessage(paths(30, 0))})
	require.NoError(t, err)
	second, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, tasks.Envelope{Provider: "edgio", Params: json.RawMessage(paths(30, 100))})
	require.NoError(t, err)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(first.ID)))
	assert.Equal(t, 30, sim.Outstanding("0001"))

	task := b.task(t, tasks.LaunchTaskID(second.ID))
	err = b.worker.Handler().ProcessTask(t.Context(), task)
	require.Error(t, err)
	assert.False(t, b.worker.IsFailure(err), "waiting, not failing")
	op := b.op(t, second.ID)
	assert.Equal(t, opstore.StateQueued, op.State)
	assert.Contains(t, op.LastError, "30 of 50 outstanding requests in use; this operation needs 30")
	assert.Equal(t, 30, sim.Outstanding("0001"), "nothing sent beyond the limit")

	sim.Complete()
	require.NoError(t, b.run(t, tasks.PollTaskID(first.ID, 1)))
	assert.Equal(t, opstore.StateSucceeded, b.op(t, first.ID).State)
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task), "room again")
	assert.Equal(t, opstore.StateRunning, b.op(t, second.ID).State)
	assert.Len(t, strings.Split(b.op(t, second.ID).Handle, ","), 30, "one purge request per path")
}

func TestEdgioTokenWithoutPutFailsPermanently(t *testing.T) {
	t.Parallel()
	b, _ := setupEdgio(t, map[string][]string{"ro": {"GET"}}, "ro")
	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, tasks.Envelope{Provider: "edgio", Params: json.RawMessage(`{"media_path":"/a"}`)})
	require.NoError(t, err)
	assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(op.ID)), asynq.SkipRetry)
	got := b.op(t, op.ID)
	assert.Equal(t, opstore.StateFailed, got.State)
	assert.Contains(t, got.LastError, "http 403")
	assert.Contains(t, got.LastError, "PUT method")
}
