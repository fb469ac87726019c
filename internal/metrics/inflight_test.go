package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/metrics"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
)

// gauges returns the values of the named gauge families by their kind
// label; a family absent from the scrape is absent from the map.
func gauges(t *testing.T, m *metrics.Metrics, names ...string) map[string]map[string]float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	require.NoError(t, err)
	out := map[string]map[string]float64{}
	for _, f := range fams {
		for _, name := range names {
			if f.GetName() != name {
				continue
			}
			out[name] = map[string]float64{}
			for _, s := range f.GetMetric() {
				kind := ""
				for _, l := range s.GetLabel() {
					if l.GetName() == "kind" {
						kind = l.GetValue()
					}
				}
				out[name][kind] = s.GetGauge().GetValue()
			}
		}
	}
	return out
}

const (
	inFlight      = "opsworker_operations_in_flight"
	oldestRunning = "opsworker_operation_oldest_running_seconds"
)

// The collector reads the operations in flight from the store at each
// scrape: counts of every non-final state and the oldest running
// operation's age, per supported kind.
func TestOperationsInFlight(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := t.Context()
	now := time.Now()
	at := now
	store := opstore.New(rdb, "t", time.Hour).WithClock(func() time.Time { return at })
	n := 0
	add := func(kind string, age time.Duration, states ...opstore.State) string {
		n++
		at = now.Add(-age)
		op := &opstore.Operation{ID: fmt.Sprintf("op%d", n), Kind: kind, Provider: "p", Account: "default", Params: []byte(`{}`), State: states[0]}
		_, _, err := store.Create(ctx, op)
		require.NoError(t, err)
		for _, st := range states[1:] {
			_, err = store.Update(ctx, op, opstore.Change{To: st})
			require.NoError(t, err)
		}
		return op.ID
	}
	q, l, r := opstore.StateQueued, opstore.StateLaunching, opstore.StateRunning
	add("cdn:purge", 3*time.Hour, q, l, r, opstore.StateSucceeded) // ended: not counted
	oldest := add("cdn:purge", time.Hour, q, l, r)
	add("cdn:purge", 10*time.Minute, q, l, r)
	add("cdn:purge", time.Minute, q)
	add("cdn:purge", time.Minute, q, l)
	add("server:install", 2*time.Hour, opstore.StatePendingApproval)
	add("server:install", 30*time.Minute, q, l, r)
	add("server:install", 20*time.Minute, q, opstore.StateCanceled)
	add("made:up", time.Hour, q, l, r) // not a supported kind: not reported

	m := metrics.New(nil)
	m.WatchOperations(store)
	got := gauges(t, m, inFlight, oldestRunning)
	require.Len(t, got[inFlight], len(tasks.Kinds()), "every supported kind, 0 included")
	assert.Equal(t, 4.0, got[inFlight]["cdn:purge"])
	assert.Equal(t, 2.0, got[inFlight]["server:install"])
	assert.Equal(t, 0.0, got[inFlight]["instance:snapshot"])
	assert.NotContains(t, got[inFlight], "made:up")

	assert.InDelta(t, time.Hour.Seconds(), got[oldestRunning]["cdn:purge"], 5)
	assert.InDelta(t, (30 * time.Minute).Seconds(), got[oldestRunning]["server:install"], 5)
	assert.Equal(t, 0.0, got[oldestRunning]["instance:snapshot"], "none running: 0")

	// Read again at the next scrape: the oldest purge ended.
	at = now
	_, err := store.Update(ctx, &opstore.Operation{ID: oldest}, opstore.Change{To: opstore.StateFailed})
	require.NoError(t, err)
	got = gauges(t, m, inFlight, oldestRunning)
	assert.Equal(t, 3.0, got[inFlight]["cdn:purge"])
	assert.InDelta(t, (10 * time.Minute).Seconds(), got[oldestRunning]["cdn:purge"], 5)

	// Redis down: the gauges are absent, not stale; the rest of the
	// scrape goes on.
	mr.Close()
	got = gauges(t, m, inFlight, oldestRunning, "opsworker_build_info")
	assert.NotContains(t, got, inFlight)
	assert.NotContains(t, got, oldestRunning)
	assert.Contains(t, got, "opsworker_build_info")
}

// slowStore answers only after the scrape's bound.
type slowStore struct{ delay time.Duration }

func (s slowStore) InFlight(_ context.Context, kinds []string) ([]opstore.KindInFlight, error) {
	time.Sleep(s.delay)
	out := make([]opstore.KindInFlight, len(kinds))
	for i, k := range kinds {
		out[i] = opstore.KindInFlight{Kind: k, ByState: map[opstore.State]int{opstore.StateRunning: 1}, OldestRunning: time.Now()}
	}
	return out, nil
}

// A read that outlasts the bound exports nothing, and the scrape does
// not wait for it.
func TestOperationsInFlightTimeout(t *testing.T) {
	defer metrics.SetOperationsTimeout(100 * time.Millisecond)()
	m := metrics.New(nil)
	m.WatchOperations(slowStore{delay: time.Second})
	start := time.Now()
	got := gauges(t, m, inFlight, oldestRunning)
	assert.Less(t, time.Since(start), 900*time.Millisecond)
	assert.Empty(t, got)

	fast := metrics.New(nil)
	fast.WatchOperations(slowStore{})
	assert.Equal(t, 1.0, gauges(t, fast, inFlight)[inFlight]["cdn:purge"])
}
