package tasks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/internal/webhooks"
)

func TestLiveGoneStopsDeliveries(t *testing.T) {
	gone := newReceiver(t, 410, 410, 410, 410)
	b := startLive(t, ucdnsim.Config{}, func(c *tasks.Config) {
		c.Webhooks.Subscriptions = []tasks.Subscription{{Name: "old-audit", URL: gone.srv.URL}}
	})
	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, purgeEnv(goodParams))
	require.NoError(t, err)
	b.waitState(t, op.ID, opstore.StateSucceeded)

	// The running event got 410: archived, never retried.
	dest := tasks.SubscriptionDestination("old-audit")
	info := b.waitDone(t, tasks.DeliveryTaskID(op.ID, webhooks.EventRunning, dest))
	assert.Equal(t, asynq.TaskStateArchived, info.State)
	assert.Equal(t, 0, info.Retried)
	assert.Contains(t, info.LastErr, "http 410")
	d, err := b.store.DisabledSubscriptions(t.Context())
	require.NoError(t, err)
	assert.Contains(t, d["old-audit"], "410", "subscription disabled")
	// The succeeded event is not sent at all: not enqueued for the
	// disabled subscription, or refused before sending.
	if info := b.waitFinalDelivery(t, op.ID, webhooks.EventSucceeded, dest); info != nil {
		assert.Equal(t, asynq.TaskStateArchived, info.State)
		assert.Contains(t, info.LastErr, "subscription disabled")
	}
	require.Len(t, gone.hooks(), 1, "no further attempts after 410")

	// Re-enabled, a replay reaches it again.
	ok, err := b.store.EnableSubscription(t.Context(), "old-audit")
	require.NoError(t, err)
	require.True(t, ok)
	gone.mu.Lock()
	gone.statuses = nil
	gone.mu.Unlock()
	_, err = b.client.Enqueue(asynq.NewTask(tasks.TypeWebhookReplay, []byte(`{"operation_id":"`+op.ID+`","nonce":"r1"}`)))
	require.NoError(t, err)
	testutil.WaitFor(t, 10*time.Second, "replayed", func() bool { return len(gone.hooks()) == 3 })
	ids := map[string]bool{}
	for _, h := range gone.hooks()[1:] {
		ids[h.ID] = true
	}
	assert.Equal(t, map[string]bool{"evt_" + op.ID + "_running": true, "evt_" + op.ID + "_succeeded": true}, ids, "replays keep the webhook-ids")
}

func TestLiveCallbackGoneStopsLaterEvents(t *testing.T) {
	b := startLive(t, ucdnsim.Config{WaitingFor: 300 * time.Millisecond})
	gone := newReceiver(t, 410)
	env := purgeEnv(goodParams)
	env.CallbackURL = gone.srv.URL
	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, env)
	require.NoError(t, err)
	b.waitState(t, op.ID, opstore.StateSucceeded)
	info := b.waitDone(t, tasks.DeliveryTaskID(op.ID, webhooks.EventRunning, tasks.DestinationCallback))
	assert.Contains(t, info.LastErr, "http 410")
	assert.Nil(t, b.waitFinalDelivery(t, op.ID, webhooks.EventSucceeded, tasks.DestinationCallback), "no delivery enqueued to a gone callback_url")
	got := gone.hooks()
	require.Len(t, got, 1)
	assert.Equal(t, "operation.running", got[0].Body["type"], "only the running event; 410 stopped the rest")
}

// One receiver that hangs never delays another's delivery.
func TestLiveSlowReceiverDoesNotDelayOthers(t *testing.T) {
	release := make(chan struct{})
	var slowHits atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slowHits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	fast := newReceiver(t)
	b := startLive(t, ucdnsim.Config{}, func(c *tasks.Config) {
		c.Webhooks.Timeout = 30 * time.Second
		c.Webhooks.Subscriptions = []tasks.Subscription{
			{Name: "slow", URL: slow.URL, Events: []string{"operation.succeeded"}},
			{Name: "fast", URL: fast.srv.URL, Events: []string{"operation.succeeded"}},
		}
	})
	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, purgeEnv(goodParams))
	require.NoError(t, err)
	b.waitState(t, op.ID, opstore.StateSucceeded)
	testutil.WaitFor(t, 10*time.Second, "fast receiver got the event while the slow one still hangs", func() bool {
		return len(fast.hooks()) == 1
	})
	assert.Equal(t, int32(1), slowHits.Load(), "the slow delivery is in flight, not done")
}

// A valid provider callback makes the operation finish long before its
// next scheduled poll; a bad token changes nothing.
func TestLiveCallbackTriggersPoll(t *testing.T) {
	secret := []byte("callback-secret-0123456789")
	b := startLive(t, ucdnsim.Config{WaitingFor: time.Hour}, func(c *tasks.Config) {
		c.Policies = map[string]poller.Policy{tasks.TypeCDNPurge: {Initial: time.Minute, Multiplier: 1, Max: time.Minute, Deadline: time.Hour}}
		c.CallbackBaseURL = "https://opsworker.example.com"
		c.CallbackSecret = secret
	})
	srv := httptest.NewServer(func() http.Handler {
		mux := http.NewServeMux()
		mux.Handle(webhooks.CallbackPath, webhooks.NewCallbackHandler(secret, b.worker, zaptest.NewLogger(t)))
		return mux
	}())
	t.Cleanup(srv.Close)

	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, purgeEnv(goodParams))
	require.NoError(t, err)
	var running *opstore.Operation
	testutil.WaitFor(t, 10*time.Second, "running", func() bool {
		running, _ = b.store.Get(context.Background(), op.ID)
		return running != nil && running.State == opstore.StateRunning
	})
	require.True(t, b.sim.Advance(running.Handle))

	post := func(path string) int {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(`{"status":"FINISHED"}`))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	good := webhooks.CallbackURL("", secret, "ucdn", op.ID)
	assert.Equal(t, http.StatusNotFound, post("/v1/callbacks/ucdn/"+op.ID+"/forged-token"))
	assert.Equal(t, http.StatusNotFound, post(webhooks.CallbackURL("", secret, "ucdn", "00000000-0000-7000-8000-000000000000")), "unknown operation")
	assert.Equal(t, http.StatusNotFound, post(webhooks.CallbackURL("", secret, "leaseweb", op.ID)), "wrong provider")
	// A callback runs the scheduled poll before it answers: after these
	// answers, the poll is still a minute away.
	poll, err := b.lookup(tasks.PollTaskID(op.ID, running.PollSeq))
	require.NoError(t, err)
	assert.Equal(t, asynq.TaskStateScheduled, poll.State, "rejected callbacks run no poll")
	cur, err := b.store.Get(t.Context(), op.ID)
	require.NoError(t, err)
	assert.Equal(t, opstore.StateRunning, cur.State, "rejected callbacks change nothing")
	assert.Equal(t, 0, cur.Polls)

	start := time.Now()
	assert.Equal(t, http.StatusAccepted, post(good))
	assert.Equal(t, http.StatusAccepted, post(good), "a duplicate collapses into the same poll")
	done := b.waitState(t, op.ID, opstore.StateSucceeded)
	assert.Less(t, time.Since(start), 30*time.Second, "well before the next poll, a minute away")
	assert.Equal(t, 1, done.Polls)
}

// A replay sends an event again only where it was not delivered (no 2xx
// yet), unless it asks for all destinations.
func TestLiveReplaySkipsDelivered(t *testing.T) {
	ok := newReceiver(t)
	down := newReceiver(t, 400, 400) // permanent: dead-lettered at once
	b := startLive(t, ucdnsim.Config{}, func(c *tasks.Config) {
		c.Webhooks.Subscriptions = []tasks.Subscription{{Name: "ok", URL: ok.srv.URL}, {Name: "down", URL: down.srv.URL}}
	})
	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, purgeEnv(goodParams))
	require.NoError(t, err)
	b.waitState(t, op.ID, opstore.StateSucceeded)
	for _, ev := range []string{webhooks.EventRunning, webhooks.EventSucceeded} {
		for _, sub := range []string{"ok", "down"} {
			b.waitDone(t, tasks.DeliveryTaskID(op.ID, ev, tasks.SubscriptionDestination(sub)))
		}
	}
	require.Len(t, ok.hooks(), 2)
	require.Len(t, down.hooks(), 2)

	replay := func(nonce string, all bool) {
		t.Helper()
		payload, _ := json.Marshal(tasks.ReplayPayload{OperationID: op.ID, Nonce: nonce, All: all})
		_, err := b.client.Enqueue(asynq.NewTask(tasks.TypeWebhookReplay, payload), asynq.TaskID("replay-"+nonce), asynq.Retention(time.Minute))
		require.NoError(t, err)
		b.waitDone(t, "replay-"+nonce)
	}
	replayed := func(ev, sub, nonce string) bool {
		_, err := lookupIn(b.insp, tasks.DeliveryTaskID(op.ID, ev, tasks.SubscriptionDestination(sub))+":replay:"+nonce)
		return err == nil
	}
	replay("r1", false)
	for _, ev := range []string{webhooks.EventRunning, webhooks.EventSucceeded} {
		assert.True(t, replayed(ev, "down", "r1"), "%s goes again where it was not delivered", ev)
		assert.False(t, replayed(ev, "ok", "r1"), "%s is not sent again where it was delivered", ev)
	}
	testutil.WaitFor(t, 10*time.Second, "replayed to down", func() bool { return len(down.hooks()) == 4 })

	replay("r2", true)
	for _, ev := range []string{webhooks.EventRunning, webhooks.EventSucceeded} {
		assert.True(t, replayed(ev, "ok", "r2"), "with all, %s goes everywhere", ev)
		assert.True(t, replayed(ev, "down", "r2"))
	}
	testutil.WaitFor(t, 10*time.Second, "replayed everywhere", func() bool { return len(ok.hooks()) == 4 && len(down.hooks()) == 6 })
}
