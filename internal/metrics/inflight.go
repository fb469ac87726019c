package metrics

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opsworker/opsworker/internal/opstore"
)

var (
	// The cluster's operations, read from Redis: every replica exports
	// the same values, so they aggregate with max, never sum.
	opsInFlight = prometheus.NewDesc("opsworker_operations_in_flight",
		"Operations not ended (pending_approval, queued, launching or running), by kind, read from Redis at each scrape (the same on every replica: aggregate with max, not sum).",
		[]string{"kind"}, nil)
	opsOldestRunning = prometheus.NewDesc("opsworker_operation_oldest_running_seconds",
		"Age since submit of the oldest operation in state running, by kind; 0 when none is running (the same on every replica: aggregate with max).",
		[]string{"kind"}, nil)
)

// InFlightReader reads the operations in flight of the given kinds: an
// *opstore.Store.
type InFlightReader interface {
	InFlight(ctx context.Context, kinds []string) ([]opstore.KindInFlight, error)
}

// operationsTimeout bounds a scrape's read of the operations in flight.
var operationsTimeout = 2 * time.Second

// operationsCollector reads the operations in flight at each scrape: one
// script per supported kind, in one pipeline (see opstore.InFlight). When
// the read fails or outlasts operationsTimeout it exports nothing: an
// absent series, not a stale or partial value.
type operationsCollector struct {
	store InFlightReader
	kinds []string
	now   func() time.Time
}

func (c *operationsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- opsInFlight
	ch <- opsOldestRunning
}

func (c *operationsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), operationsTimeout)
	defer cancel()
	type result struct {
		kinds []opstore.KindInFlight
		err   error
	}
	// The Redis client may not honour ctx's deadline on a connection
	// that stopped answering: the scrape does not wait for it.
	done := make(chan result, 1)
	go func() {
		kinds, err := c.store.InFlight(ctx, c.kinds)
		done <- result{kinds, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return
	}
	if r.err != nil || ctx.Err() != nil {
		return
	}
	now := c.now()
	for _, k := range r.kinds {
		ch <- prometheus.MustNewConstMetric(opsInFlight, prometheus.GaugeValue, float64(k.Total()), k.Kind)
		age := 0.0
		if !k.OldestRunning.IsZero() {
			// Another replica's clock wrote the creation time.
			age = max(0, now.Sub(k.OldestRunning).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(opsOldestRunning, prometheus.GaugeValue, age, k.Kind)
	}
}

// WatchOperations exports, for every supported kind, its operations in
// flight and the age of its oldest running one, read from store at each
// scrape. The age counts from the operation's submit (its creation time,
// which the store's indexes hold), as opsworker_operation_duration_seconds
// does: the time it waited for an approval or in the queue is included.
func (m *Metrics) WatchOperations(store InFlightReader) {
	m.Registry.MustRegister(&operationsCollector{store: store, kinds: slices.Sorted(maps.Keys(m.kinds)), now: time.Now})
}
