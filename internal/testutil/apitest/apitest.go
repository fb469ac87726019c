// Package apitest serves the worker's real HTTP API for tests of its
// clients (the public client package, the CLI's API mode): a
// miniredis-backed store, a runbook coordinator whose runs advance, and
// no provider worker, so submitted operations stay queued unless a test
// moves them.
package apitest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/tasks"
)

// Options configure a Server.
type Options struct {
	// Prefix is the store's key prefix (default "opsworker").
	Prefix string
	// Tokens authorize the API.
	Tokens []api.Token
	// Hold, when set, decides at submit whether an operation waits for
	// an approval (tasks.SubmitOptions.Hold).
	Hold func(ctx context.Context, store *opstore.Store, op *opstore.Operation) (bool, error)
}

// Server is a running API.
type Server struct {
	// URL is the API's base URL; RedisURL its store's Redis.
	URL, RedisURL string
	Store         *opstore.Store
	Redis         *redis.Client
}

// Start serves the API until the test ends. Its one runbook, "check",
// is a single gate ("looks right?").
func Start(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = "opsworker"
	}
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, o.Prefix, time.Hour)
	q := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { q.Close() })
	var so tasks.SubmitOptions
	if o.Hold != nil {
		so.Hold = func(ctx context.Context, op *opstore.Operation) (bool, error) { return o.Hold(ctx, store, op) }
	}
	sub := tasks.NewSubmitter(store, q, so)
	rb, err := runbook.Compile(runbook.Definition{Name: "check", Steps: []runbook.Step{{ID: "ok", Gate: &runbook.Gate{Message: "looks right?"}}}})
	require.NoError(t, err)
	coord := runbook.NewCoordinator(rdb, o.Prefix, store, sub, q, "default", []*runbook.Runbook{rb}, time.Hour, zap.NewNop())
	// Runs advance (a gate begins to wait) in the general queue.
	mux := asynq.NewServeMux()
	mux.HandleFunc(runbook.TypeAdvance, coord.ProcessAdvance)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 2, Queues: map[string]int{"default": 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel})
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)
	a := api.New(api.Config{Store: store, Submitter: sub, Enqueuer: q, Runbooks: coord, Pauses: flow.NewPauses(rdb, o.Prefix), Tokens: o.Tokens})
	hmux := http.NewServeMux()
	a.Register(hmux)
	hs := httptest.NewServer(hmux)
	t.Cleanup(hs.Close)
	return &Server{URL: hs.URL, RedisURL: "redis://" + mr.Addr() + "/0", Store: store, Redis: rdb}
}
