package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/metrics"
	"github.com/opsworker/opsworker/internal/opstore"
)

// series returns the label sets of the opsworker_operation* families.
func series(t *testing.T, m *metrics.Metrics) map[string][]map[string]string {
	t.Helper()
	fams, err := m.Registry.Gather()
	require.NoError(t, err)
	out := map[string][]map[string]string{}
	for _, f := range fams {
		switch f.GetName() {
		case "opsworker_operations_started_total", "opsworker_operations_finished_total", "opsworker_operation_duration_seconds", "opsworker_operation_polls":
		default:
			continue
		}
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[f.GetName()] = append(out[f.GetName()], labels)
		}
	}
	return out
}

func count(s map[string][]map[string]string) int {
	n := 0
	for _, v := range s {
		n += len(v)
	}
	return n
}

// Operations of made-up kinds, providers or states (raw tasks can name
// anything) are counted under "unknown": the series do not grow with
// them.
func TestLabelsAreBounded(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil)
	now := time.Now()
	feed := func(kind, provider string, state opstore.State) {
		op := &opstore.Operation{Kind: kind, Provider: provider, State: state, CreatedAt: now.Add(-time.Second), UpdatedAt: now}
		m.OperationStarted(op)
		m.OperationFinished(op)
	}
	feed("cdn:purge", "ucdn", opstore.StateSucceeded)
	batch := func(from, to int) {
		for i := from; i < to; i++ {
			feed("cdn:purge", fmt.Sprintf("made-up-%d", i), opstore.StateFailed)
			feed(fmt.Sprintf("made:up-%d", i), "ucdn", opstore.StateFailed)
			feed(fmt.Sprintf("made:up-%d", i), fmt.Sprintf("made-up-%d", i), opstore.State(fmt.Sprintf("made-up-%d", i)))
		}
	}
	batch(0, 10)
	first := series(t, m)
	for name, sets := range first {
		for _, labels := range sets {
			for k, v := range labels {
				assert.NotContains(t, v, "made", "%s{%s=%q}", name, k, v)
			}
		}
	}
	assert.ElementsMatch(t, []map[string]string{
		{"kind": "cdn:purge", "provider": "ucdn"},
		{"kind": "cdn:purge", "provider": "unknown"},
		{"kind": "unknown", "provider": "ucdn"},
		{"kind": "unknown", "provider": "unknown"},
	}, first["opsworker_operations_started_total"])
	assert.ElementsMatch(t, []map[string]string{
		{"kind": "cdn:purge", "provider": "ucdn", "state": "succeeded"},
		{"kind": "cdn:purge", "provider": "unknown", "state": "failed"},
		{"kind": "unknown", "provider": "ucdn", "state": "failed"},
		{"kind": "unknown", "provider": "unknown", "state": "unknown"},
	}, first["opsworker_operations_finished_total"])
	assert.ElementsMatch(t, []map[string]string{{"kind": "cdn:purge"}, {"kind": "unknown"}}, first["opsworker_operation_duration_seconds"])

	batch(10, 100)
	assert.Equal(t, count(first), count(series(t, m)), "90 more made-up names add no series")
}

// Every supported kind and provider keeps its own label.
func TestKnownLabelsKept(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil)
	for _, kp := range [][2]string{{"server:install", "leaseweb"}, {"cdn:purge", "edgio"}, {"cdn:distribution_ensure", "ionos"}} {
		m.OperationStarted(&opstore.Operation{Kind: kp[0], Provider: kp[1]})
	}
	assert.ElementsMatch(t, []map[string]string{
		{"kind": "server:install", "provider": "leaseweb"},
		{"kind": "cdn:purge", "provider": "edgio"},
		{"kind": "cdn:distribution_ensure", "provider": "ionos"},
	}, series(t, m)["opsworker_operations_started_total"])
}

// Only the configured queues are reported: a raw task can name any queue,
// and each one reported would be new series and Redis work per scrape.
func TestQueueLabelsAreTheConfiguredQueues(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	c := asynq.NewClientFromRedisClient(rdb)
	defer c.Close()
	for i := 0; i < 50; i++ {
		_, err := c.Enqueue(asynq.NewTask("cdn:purge", []byte(`{}`)), asynq.Queue(fmt.Sprintf("junk-%d", i)))
		require.NoError(t, err)
	}
	_, err := c.Enqueue(asynq.NewTask("cdn:purge", []byte(`{}`)), asynq.Queue("default"))
	require.NoError(t, err)
	m := metrics.New(asynq.NewInspectorFromRedisClient(rdb), "default", "critical")
	fams, err := m.Registry.Gather()
	require.NoError(t, err)
	queues := map[string]bool{}
	for _, f := range fams {
		if f.GetName() != "opsworker_queue_tasks" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "queue" {
					queues[l.GetValue()] = true
				}
			}
		}
	}
	assert.Equal(t, map[string]bool{"default": true}, queues)
}

// The account collector exports each account's breaker and pause as
// 0/1 gauges, read at every scrape.
func TestAccountStates(t *testing.T) {
	m := metrics.New(nil)
	m.WatchAccounts(func(context.Context) []metrics.AccountState {
		return []metrics.AccountState{
			{Provider: "leaseweb", Account: "default", Breaker: "open"},
			{Provider: "ucdn", Account: "default", Breaker: "closed", Paused: true, InFlight: 3, MaxInFlight: 8},
		}
	})
	m.ProviderHeld("ucdn", "default", "rate_limit")
	m.ProviderHeld("ucdn", "default", "rate_limit")
	m.ProviderHeld("leaseweb", "default", "circuit_open")
	families, err := m.Registry.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "opsworker_provider_account_") {
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := ""
			for _, l := range mt.GetLabel() {
				labels += l.GetValue() + " "
			}
			got[f.GetName()+" "+strings.TrimSpace(labels)] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
		}
	}
	assert.Equal(t, map[string]float64{
		"opsworker_provider_account_circuit_open default leaseweb": 1,
		"opsworker_provider_account_paused default leaseweb":       0,
		"opsworker_provider_account_circuit_open default ucdn":     0,
		"opsworker_provider_account_paused default ucdn":           1,
		// A cap is exported only where one is set.
		"opsworker_provider_account_in_flight default ucdn":     3,
		"opsworker_provider_account_max_in_flight default ucdn": 8,
		// Held calls, per cause (labels in name order: account, cause, provider).
		"opsworker_provider_account_held_total default rate_limit ucdn":       2,
		"opsworker_provider_account_held_total default circuit_open leaseweb": 1,
	}, got)
}
