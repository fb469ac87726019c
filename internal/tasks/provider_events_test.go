package tasks_test

import (
	"bytes"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
	"github.com/opsworker/opsworker/webhookverify"
)

// One outage of an account sends provider.degraded and
// provider.recovered once each, signed, to the subscriptions that name
// them (and match the provider); probing, a failed probe and a repeat of
// a change send nothing more, and a subscription of every operation
// event gets none of them.
func TestProviderEventsGoOnceToSubscriptionsThatAsk(t *testing.T) {
	t.Parallel()
	oncall, everything, ucdnOnly := newReceiver(t), newReceiver(t), newReceiver(t)
	b := setupServer(t, leasewebsim.Config{}, func(c *tasks.Config) {
		c.Webhooks.Subscriptions = []tasks.Subscription{
			{Name: "oncall", URL: oncall.srv.URL, Events: []string{ops.EventProviderDegraded, ops.EventProviderRecovered}},
			{Name: "every-operation", URL: everything.srv.URL},
			{Name: "ucdn-only", URL: ucdnOnly.srv.URL, Events: []string{ops.EventProviderDegraded}, Providers: []string{"ucdn"}},
		}
	})
	opened := time.UnixMilli(time.Now().Add(-time.Minute).UnixMilli()).UTC()
	change := func(from, to string) flow.Change {
		return flow.Change{Provider: "leaseweb", Account: "default", From: from, To: to, OpenedAt: opened}
	}
	for _, ch := range []flow.Change{
		change(flow.Closed, flow.Open), change(flow.Closed, flow.Open),
		change(flow.Open, flow.HalfOpen), change(flow.HalfOpen, flow.Open), change(flow.Open, flow.HalfOpen),
		change(flow.HalfOpen, flow.Closed),
	} {
		b.worker.ProviderChanged(ch)
	}
	pending, err := b.insp.ListPendingTasks("default")
	require.NoError(t, err)
	require.Len(t, pending, 2, "one degraded and one recovered, to oncall")
	for _, ti := range pending {
		require.NoError(t, b.run(t, ti.ID))
	}

	hooks := oncall.hooks()
	require.Len(t, hooks, 2)
	got := map[string]ops.ProviderHealth{}
	for _, h := range hooks {
		require.NoError(t, webhookverify.Verify(h.Header, h.Raw, time.Minute, time.Now(), testSecret))
		var ev ops.Event
		require.NoError(t, jsonv2.Unmarshal(h.Raw, &ev, jsonv2.RejectUnknownMembers(true)))
		assert.Equal(t, ev.ID, h.ID, "webhook-id is the event id")
		var data ops.ProviderHealth
		require.NoError(t, jsonv2.Unmarshal(ev.Data, &data, jsonv2.RejectUnknownMembers(true)))
		got[ev.Type] = data
		assert.NotContains(t, string(h.Raw), "lsw-key")
	}
	down, up := got[ops.EventProviderDegraded], got[ops.EventProviderRecovered]
	assert.Equal(t, ops.ProviderHealth{Provider: "leaseweb", Account: "default", Breaker: "open", DegradedAt: opened,
		Reason: "retryable failures (5xx, timeouts, connection errors) reached the breaker's threshold; calls wait until a probe succeeds"}, down)
	assert.Equal(t, "closed", up.Breaker)
	assert.Equal(t, opened, up.DegradedAt, "both events name the outage's start")
	require.NotNil(t, up.RecoveredAt)
	assert.False(t, bytes.Equal(hooks[0].Raw, hooks[1].Raw))
	assert.Empty(t, everything.hooks(), "provider events go only to subscriptions that name them")
	assert.Empty(t, ucdnOnly.hooks(), "the providers filter applies")
}
