package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/client"
	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/ops"
	"github.com/opsworker/opsworker/webhookverify"
)

const (
	writeTok = "client-write-token-0123456789"
	readTok  = "client-read-token-0123456789"
)

// startWorker runs a worker in this process for a test (see runWorker).
func startWorker(t testing.TB) string {
	t.Helper()
	base, stop, err := runWorker()
	require.NoError(t, err)
	t.Cleanup(stop)
	return base
}

// runWorker runs a worker's HTTP API and pipeline in this process: the
// UCDN simulator (jobs of about 100 ms), asynq on an in-process Redis. It
// returns the API's base URL and a function that stops it all.
func runWorker() (base string, stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	mr, err := miniredis.Run()
	if err != nil {
		return "", nil, err
	}
	stops = append(stops, mr.Close)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	stops = append(stops, func() { rdb.Close() })
	sim := ucdnsim.New(ucdnsim.Config{Token: "tok", WaitingFor: 50 * time.Millisecond, RunningFor: 50 * time.Millisecond})
	simSrv := httptest.NewServer(sim)
	stops = append(stops, simSrv.Close)
	uc, err := ucdn.New(simSrv.URL+"/v4", ucdn.WithToken("tok"))
	if err != nil {
		return "", nil, err
	}
	store := opstore.New(rdb, "ow", time.Hour)
	q := asynq.NewClientFromRedisClient(rdb)
	stops = append(stops, func() { q.Close() })
	w, err := tasks.NewWorker(tasks.Config{
		Store: store, Enqueuer: q, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: ops.KindCDNPurge, Provider: ops.ProviderUCDN}: tasks.NewUCDNPurge(map[string]*ucdn.Client{"default": uc})},
		Policies:  map[string]poller.Policy{ops.KindCDNPurge: {Initial: 50 * time.Millisecond, Multiplier: 1, Max: 50 * time.Millisecond, Deadline: time.Minute}},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}),
		Webhooks:  tasks.WebhookConfig{Secrets: []webhookverify.Secret{webhookverify.NewSecret()}},
		Logger:    zap.NewNop(),
	})
	if err != nil {
		return "", nil, err
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 4, Queues: map[string]int{"default": 1, tasks.ProviderQueue(ops.ProviderUCDN): 1},
		TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: 20 * time.Millisecond, LogLevel: asynq.FatalLevel})
	if err := srv.Start(w.Handler()); err != nil {
		return "", nil, err
	}
	stops = append(stops, srv.Shutdown)
	a := api.New(api.Config{Store: store, Submitter: tasks.NewSubmitter(store, q, tasks.SubmitOptions{}), Enqueuer: q,
		Tokens: []api.Token{{Name: "ci", Secret: writeTok, Scope: api.ScopeWrite}, {Name: "ro", Secret: readTok, Scope: api.ScopeRead}}})
	mux := http.NewServeMux()
	a.Register(mux)
	hs := httptest.NewServer(mux)
	stops = append(stops, hs.Close)
	return hs.URL, stop, nil
}

func purge(file string) *ops.UCDNPurgeParams {
	return &ops.UCDNPurgeParams{ZoneName: "shop", ZoneType: ops.ZoneTypeObjects, Files: []string{file}}
}

func TestSubmitWaitGet(t *testing.T) {
	base := startWorker(t)
	c, err := client.New(base, writeTok)
	require.NoError(t, err)
	ctx := t.Context()

	op, resp, err := c.Submit(ctx, purge("/index.html"), client.IdempotencyKey("deploy-1"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.False(t, resp.Replayed)
	assert.Equal(t, ops.KindCDNPurge, op.Kind)
	assert.Equal(t, ops.ProviderUCDN, op.Provider)

	again, resp, err := c.Submit(ctx, purge("/index.html"), client.IdempotencyKey("deploy-1"))
	require.NoError(t, err)
	assert.True(t, resp.Replayed, "the same key names the same operation")
	assert.Equal(t, op.ID, again.ID)

	var states []ops.State
	done, err := c.Wait(ctx, op.ID, client.WaitOptions{Interval: 20 * time.Millisecond, OnChange: func(o *ops.Operation) {
		if len(states) == 0 || states[len(states)-1] != o.State {
			states = append(states, o.State)
		}
	}})
	require.NoError(t, err)
	assert.Equal(t, ops.StateSucceeded, done.State, done.LastError)
	assert.Equal(t, ops.StateSucceeded, states[len(states)-1])
	assert.NotEmpty(t, done.Handle)

	got, _, err := c.Get(ctx, op.ID)
	require.NoError(t, err)
	assert.Equal(t, done.State, got.State)
}

func TestErrorsAreProblems(t *testing.T) {
	base := startWorker(t)
	ctx := t.Context()
	c, err := client.New(base, writeTok)
	require.NoError(t, err)

	// Checked before sending: the params type validates itself.
	_, _, err = c.Submit(ctx, &ops.UCDNPurgeParams{ZoneType: ops.ZoneTypeObjects, Files: []string{"/a"}})
	var ve *ops.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "params.zone_name", ve.Field)

	// Answered by the API.
	_, _, err = c.Submit(ctx, purge("/a"), client.CallbackURL("ftp://hooks.example.com/x"))
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	assert.Equal(t, http.StatusBadRequest, p.Status)
	assert.Equal(t, "callback_url", p.Field)

	_, resp, err := c.Get(ctx, "nosuch")
	require.ErrorAs(t, err, &p)
	assert.Equal(t, http.StatusNotFound, p.Status)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	ro, err := client.New(base, readTok)
	require.NoError(t, err)
	_, _, err = ro.Submit(ctx, purge("/a"))
	require.ErrorAs(t, err, &p)
	assert.Equal(t, http.StatusForbidden, p.Status)

	bad, err := client.New(base, "not-a-token-0123456789")
	require.NoError(t, err)
	_, _, err = bad.List(ctx, client.ListOptions{})
	require.ErrorAs(t, err, &p)
	assert.Equal(t, http.StatusUnauthorized, p.Status)

	_, err = client.New("127.0.0.1:8080", writeTok)
	assert.Error(t, err, "a base URL needs its scheme")
	_, err = client.New(base, "")
	assert.Error(t, err)
}

func TestListPagesAndCancel(t *testing.T) {
	base := startWorker(t)
	ctx := t.Context()
	c, err := client.New(base, writeTok)
	require.NoError(t, err)
	var ids []string
	for i := range 5 {
		op, _, err := c.Submit(ctx, purge("/f"+strings.Repeat("x", i)))
		require.NoError(t, err)
		ids = append(ids, op.ID)
	}
	page, resp, err := c.List(ctx, client.ListOptions{Kind: ops.KindCDNPurge, Limit: 2})
	require.NoError(t, err)
	assert.Len(t, page, 2)
	assert.NotEmpty(t, resp.NextCursor)

	var all []string
	for op, err := range c.All(ctx, client.ListOptions{Kind: ops.KindCDNPurge, Limit: 2}) {
		require.NoError(t, err)
		all = append(all, op.ID)
	}
	assert.ElementsMatch(t, ids, all, "every operation once, across pages")

	_, _, err = c.List(ctx, client.ListOptions{Kind: "cdn:nuke"})
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	assert.Equal(t, "kind", p.Field)

	// A purge on Edgio cannot be canceled; the API says so.
	edgio, _, err := c.Submit(ctx, &ops.EdgioPurgeParams{MediaPath: ops.StringList{"/a.png"}})
	require.NoError(t, err)
	_, _, err = c.Cancel(ctx, edgio.ID, false)
	require.ErrorAs(t, err, &p)
	assert.Equal(t, http.StatusBadRequest, p.Status)
	assert.Contains(t, p.Detail, "cdn:purge on edgio cannot be canceled")
}

func TestWaitEndsWithTheContext(t *testing.T) {
	base := startWorker(t)
	c, err := client.New(base, writeTok)
	require.NoError(t, err)
	op, _, err := c.Submit(t.Context(), purge("/slow"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Wait(ctx, op.ID, client.WaitOptions{})
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}
