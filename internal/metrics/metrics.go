// Package metrics exposes the worker's Prometheus metrics: operations by
// kind, provider and final state; operation durations and polls; provider
// calls by provider, endpoint and status class with latencies; webhook
// deliveries by outcome and attempt; asynq queue sizes and latency, read
// through the Inspector on each scrape; and, read from Redis on each
// scrape too, the provider accounts' flow control and the operations in
// flight by kind.
//
// Operation labels take only the supported kinds and providers
// (tasks.Specs) and the known states; anything else, which a raw task may
// name, is counted as "unknown", so the number of series is bounded.
package metrics

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/opsworker/opsworker/internal/buildinfo"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
)

// Unknown is the label value of a kind, provider or state that opsworker
// does not support.
const Unknown = "unknown"

// Metrics holds the collectors, registered on Registry. Safe for
// concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	started, finished *prometheus.CounterVec
	duration, polls   *prometheus.HistogramVec
	calls             *prometheus.CounterVec
	callLatency       *prometheus.HistogramVec
	webhooks          *prometheus.CounterVec
	held              *prometheus.CounterVec

	// kinds and providers are the label values allowed.
	kinds, providers map[string]bool
}

// New registers every metric, the Go and process collectors, and — when
// insp is not nil — the queue collector, which reports the given queues
// (the worker's worker.queues), or every queue when none are given.
func New(insp *asynq.Inspector, queues ...string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry:  reg,
		kinds:     map[string]bool{},
		providers: map[string]bool{},
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opsworker_operations_started_total",
			Help: "Operations that began launching, by kind and provider."}, []string{"kind", "provider"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opsworker_operations_finished_total",
			Help: "Operations that ended, by kind, provider and final state."}, []string{"kind", "provider", "state"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "opsworker_operation_duration_seconds",
			Help: "Time from submit to final state, by kind.", Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14400}}, []string{"kind"}),
		polls: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "opsworker_operation_polls",
			Help: "Status checks per finished operation, by kind.", Buckets: []float64{0, 1, 2, 3, 5, 10, 20, 50, 100}}, []string{"kind"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opsworker_provider_calls_total",
			Help: "Provider API calls by provider, endpoint and status class (2xx, 4xx, 5xx, none)."}, []string{"provider", "endpoint", "class"}),
		callLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "opsworker_provider_call_duration_seconds",
			Help: "Provider API call latency by provider and endpoint.", Buckets: prometheus.DefBuckets}, []string{"provider", "endpoint"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opsworker_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome (delivered, retry, failed) and attempt number."}, []string{"outcome", "attempt"}),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opsworker_provider_account_held_total",
			Help: "Provider calls not sent because their account was held back, by cause (rate_limit, retry_after, circuit_open, paused); the task waits without using an attempt. Per replica: aggregate with sum."}, []string{"provider", "account", "cause"}),
	}
	build := buildinfo.Get()
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "opsworker_build_info",
		Help: "Always 1; its labels name the running build: version, VCS revision and Go version."}, []string{"version", "revision", "goversion"})
	buildInfo.WithLabelValues(build.Version, build.Revision, build.GoVersion).Set(1)
	reg.MustRegister(buildInfo)
	reg.MustRegister(m.started, m.finished, m.duration, m.polls, m.calls, m.callLatency, m.webhooks, m.held,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if insp != nil {
		reg.MustRegister(&queueCollector{insp: insp, queues: queues})
	}
	for _, s := range tasks.Specs() {
		m.kinds[s.Kind] = true
		m.providers[s.Provider] = true
	}
	return m
}

// labels returns op's kind, provider and state as label values.
func (m *Metrics) labels(op *opstore.Operation) (kind, provider, state string) {
	kind, provider, state = Unknown, Unknown, Unknown
	if m.kinds[op.Kind] {
		kind = op.Kind
	}
	if m.providers[op.Provider] {
		provider = op.Provider
	}
	if op.State.Valid() {
		state = string(op.State)
	}
	return kind, provider, state
}

// OperationStarted counts a launch's first attempt.
func (m *Metrics) OperationStarted(op *opstore.Operation) {
	kind, provider, _ := m.labels(op)
	m.started.WithLabelValues(kind, provider).Inc()
}

// OperationFinished counts a final state, its duration and polls.
func (m *Metrics) OperationFinished(op *opstore.Operation) {
	kind, provider, state := m.labels(op)
	m.finished.WithLabelValues(kind, provider, state).Inc()
	end := op.UpdatedAt
	if op.FinishedAt != nil {
		end = *op.FinishedAt
	}
	m.duration.WithLabelValues(kind).Observe(end.Sub(op.CreatedAt).Seconds())
	m.polls.WithLabelValues(kind).Observe(float64(op.Polls))
}

// WebhookAttempt counts one delivery attempt.
func (m *Metrics) WebhookAttempt(outcome string, attempt int) {
	a := strconv.Itoa(attempt)
	if attempt > 8 {
		a = "9+"
	}
	m.webhooks.WithLabelValues(outcome, a).Inc()
}

// ProviderCall is a providers.Observer. The endpoint label is
// EndpointLabel(op).
func (m *Metrics) ProviderCall(provider, op string, status int, d time.Duration) {
	class := "none"
	if status > 0 {
		class = fmt.Sprintf("%dxx", status/100)
	}
	endpoint := EndpointLabel(op)
	m.calls.WithLabelValues(provider, endpoint, class).Inc()
	m.callLatency.WithLabelValues(provider, endpoint).Observe(d.Seconds())
}

// EndpointLabel is the endpoint label value of a provider call named op:
// snake case, only a-z, 0-9 and _. The provider clients name their calls
// for people ("get distribution", "launch IPMI reset", "power " plus a
// path segment such as "powerCycle"), and their errors keep those names;
// here they become label values: get_distribution, launch_ipmi_reset,
// power_power_cycle. Runs of any other characters (non-ASCII letters
// too) become one _, and a word boundary inside camelCase gets one. A
// name with no ASCII letter or digit is "unknown".
func EndpointLabel(op string) string {
	var b strings.Builder
	sep := false // a separator is due before the next letter or digit
	rs := []rune(op)
	for i, r := range rs {
		lower, upper, digit := unicode.IsLower(r), unicode.IsUpper(r), unicode.IsDigit(r)
		if r > unicode.MaxASCII || !(lower || upper || digit) {
			sep = b.Len() > 0
			continue
		}
		// powerCycle → power_cycle; IPMIReset → ipmi_reset.
		if upper && i > 0 && b.Len() > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1]) && rs[i+1] <= unicode.MaxASCII
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				sep = true
			}
		}
		if sep {
			b.WriteByte('_')
			sep = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	if b.Len() == 0 {
		return Unknown
	}
	return b.String()
}

// ProviderHeld is a providers.HoldObserver. Accounts are the configured
// ones, so the series are bounded.
func (m *Metrics) ProviderHeld(provider, account, cause string) {
	m.held.WithLabelValues(provider, account, cause).Inc()
}

// queueCollector reads asynq's queues on every scrape: the configured ones
// only, when they are given. Anyone who can enqueue a task names queues
// freely; reporting them all would grow the label set and each scrape's
// Redis work without bound.
type queueCollector struct {
	insp   *asynq.Inspector
	queues []string
}

var (
	// The queue gauges are the cluster's queues, read from Redis: every
	// replica exports the same values, so they aggregate with max, never
	// sum.
	queueSize = prometheus.NewDesc("opsworker_queue_tasks", "Tasks in an asynq queue by state (the same on every replica: aggregate with max, not sum).", []string{"queue", "state"}, nil)
	queueLat  = prometheus.NewDesc("opsworker_queue_latency_seconds", "Age of the oldest pending task of an asynq queue (the same on every replica: aggregate with max).", []string{"queue"}, nil)
	queueUp   = prometheus.NewDesc("opsworker_queue_scrape_ok", "1 if asynq's queues could be read.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueSize
	ch <- queueLat
	ch <- queueUp
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	queues, err := c.insp.Queues()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(queueUp, prometheus.GaugeValue, 0)
		return
	}
	if c.queues != nil {
		queues = slices.DeleteFunc(queues, func(q string) bool { return !slices.Contains(c.queues, q) })
	}
	ch <- prometheus.MustNewConstMetric(queueUp, prometheus.GaugeValue, 1)
	for _, q := range queues {
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			continue
		}
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived, "completed": info.Completed, "aggregating": info.Aggregating} {
			ch <- prometheus.MustNewConstMetric(queueSize, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(queueLat, prometheus.GaugeValue, info.Latency.Seconds(), q)
	}
}

// AccountState is a provider account's flow control as Redis holds it:
// the same on every replica (aggregate with max).
type AccountState struct {
	Provider, Account string
	// Breaker is closed, open or half_open.
	Breaker string
	Paused  bool
	// InFlight counts the operations holding one of the account's
	// max_in_flight slots; MaxInFlight is the cap (0: none, and neither
	// gauge is exported).
	InFlight, MaxInFlight int
}

var (
	accountOpen        = prometheus.NewDesc("opsworker_provider_account_circuit_open", "1 while a provider account's circuit breaker is open or probing (the same on every replica: aggregate with max).", []string{"provider", "account"}, nil)
	accountPaused      = prometheus.NewDesc("opsworker_provider_account_paused", "1 while an operator has paused a provider account (the same on every replica: aggregate with max).", []string{"provider", "account"}, nil)
	accountInFlight    = prometheus.NewDesc("opsworker_provider_account_in_flight", "Operations of a provider account holding one of its max_in_flight slots (the same on every replica: aggregate with max).", []string{"provider", "account"}, nil)
	accountMaxInFlight = prometheus.NewDesc("opsworker_provider_account_max_in_flight", "A provider account's max_in_flight cap, where one is set.", []string{"provider", "account"}, nil)
)

// accountCollector reads the accounts' breakers and pauses at each
// scrape.
type accountCollector struct {
	states func(ctx context.Context) []AccountState
}

func (c *accountCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- accountOpen
	ch <- accountPaused
	ch <- accountInFlight
	ch <- accountMaxInFlight
}

func (c *accountCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, a := range c.states(ctx) {
		open, paused := 0.0, 0.0
		if a.Breaker != "" && a.Breaker != "closed" {
			open = 1
		}
		if a.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(accountOpen, prometheus.GaugeValue, open, a.Provider, a.Account)
		ch <- prometheus.MustNewConstMetric(accountPaused, prometheus.GaugeValue, paused, a.Provider, a.Account)
		if a.MaxInFlight > 0 {
			ch <- prometheus.MustNewConstMetric(accountInFlight, prometheus.GaugeValue, float64(a.InFlight), a.Provider, a.Account)
			ch <- prometheus.MustNewConstMetric(accountMaxInFlight, prometheus.GaugeValue, float64(a.MaxInFlight), a.Provider, a.Account)
		}
	}
}

// WatchAccounts exports the provider accounts' breaker and pause states,
// read by states at each scrape.
func (m *Metrics) WatchAccounts(states func(ctx context.Context) []AccountState) {
	m.Registry.MustRegister(&accountCollector{states: states})
}
