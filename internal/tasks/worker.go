package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/ops"
)

// Config wires a Worker.
type Config struct {
	Store     *opstore.Store
	Enqueuer  Enqueuer
	Inspector TaskRunner
	Executors map[ExecutorKey]Executor
	// Policies maps kind to its polling policy. Every kind with an
	// executor needs one.
	Policies map[string]poller.Policy
	// Queue is the general queue: cancel requests go there (any worker
	// can end an operation that has not launched), and so did the launch
	// and poll tasks of versions before provider queues; it is still
	// served. An operation's own tasks go to ProviderQueue(provider).
	Queue string
	// TaskTimeout bounds one poll task.
	TaskTimeout time.Duration
	// Webhooks configures event delivery.
	Webhooks WebhookConfig
	Sender   Sender
	// Observer hears about operations and webhook attempts (metrics);
	// nil: none.
	Observer Observer
	// Batcher enables batch polling for executors that support it (nil:
	// every operation polls alone).
	Batcher *poller.Batcher
	// LaunchMaxRetry is how often a launch that failed retryably is
	// retried before the operation fails (operations.launch_max_retry).
	// Default 10.
	LaunchMaxRetry int
	// RetryBackoffMax caps the wait between launch retries (1 s doubling).
	// Default 5m.
	RetryBackoffMax time.Duration
	// LockTTL is how long a resource lock lives without a refresh (every
	// poll refreshes it). Default 15m.
	LockTTL time.Duration
	// OnBusy is OnBusyWait (default) or OnBusyFail: what a launch does
	// when its resource (server) is taken.
	OnBusy string
	// BusyRetry is how often a waiting launch looks again (default 10s);
	// BusyWaitMax how long it waits in all (default 1h).
	BusyRetry, BusyWaitMax time.Duration
	// CallbackBaseURL and CallbackSecret, when both set, give launches a
	// provider callback URL (webhooks.CallbackURL).
	CallbackBaseURL string
	CallbackSecret  []byte
	// MaxInFlight returns how many operations of a provider account may
	// run at the provider at once, across every replica (0 or nil: no
	// cap).
	MaxInFlight func(provider, account string) int
	// AccountHeld says why a provider account's calls are held back now
	// (its breaker is open, an operator paused it), "" when they are not;
	// a dry run reports it. Nil: not checked.
	AccountHeld func(ctx context.Context, provider, account string) string
	// Approvals are the kinds whose operations wait for an approval
	// before they launch.
	Approvals []ApprovalRule
	// OnFinished hears of every operation that ended, once it ended (at
	// least once: it must be idempotent). Runbooks advance from it.
	OnFinished func(ctx context.Context, op *opstore.Operation) error
	// Extra handles more task types (the runbook coordinator's).
	Extra map[string]asynq.HandlerFunc
	// Credentials returns the secrets of a provider account (its API
	// token): a provider's error text that echoes one is redacted before
	// it is stored, logged or sent. nil: none.
	Credentials func(provider, account string) []string
	Logger      *zap.Logger
	// Now and Rand are the clock and jitter source (defaults: time.Now,
	// math/rand/v2).
	Now  func() time.Time
	Rand func() float64
}

// Observer hears about state changes and webhook attempts.
type Observer interface {
	OperationStarted(op *opstore.Operation)
	OperationFinished(op *opstore.Operation)
	WebhookAttempt(outcome string, attempt int)
}

// On-busy policies.
const (
	OnBusyWait = "wait"
	OnBusyFail = "fail"
)

// TaskRunner is the part of *asynq.Inspector the worker uses: to run a
// scheduled poll at once, and to find an operation's launch task.
type TaskRunner interface {
	RunTask(queue, id string) error
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
}

// Worker holds the handlers of every task type. It is safe for concurrent
// use; all state lives in Redis.
//
// An operation moves through four steps, each its own handler type over
// the shared pipeline (the record, the registry, redaction and finish):
// launch (launch.go) hands off to poll by enqueuing the first poll task;
// poll (poll.go) hands off to the next poll or, through finish, to
// delivery; deliver (webhook.go) sends one event to one destination;
// cancel (cancel.go) asks the provider to stop and lets the poll see the
// result. Steps never call each other: every hand-off is a task enqueued
// by the pipeline (handoff.go).
type Worker struct {
	p       *pipeline
	launch  *launchStep
	poll    *pollStep
	batch   *batchStep
	deliver *deliverStep
	cancel  *cancelStep
}

// pipeline is what every step shares: the configuration (the store, the
// queue, the registry of executors and policies), logging, redaction,
// finish and the hand-offs between steps.
type pipeline struct {
	cfg Config
	log *zap.Logger
}

// The steps. Each handles one task type (launch: one per kind).
type (
	launchStep  struct{ *pipeline }
	pollStep    struct{ *pipeline }
	deliverStep struct{ *pipeline }
	cancelStep  struct{ *pipeline }
)

// NewWorker validates cfg and returns a Worker.
func NewWorker(cfg Config) (*Worker, error) {
	if cfg.Store == nil || cfg.Enqueuer == nil || cfg.Sender == nil {
		return nil, errors.New("tasks: Store, Enqueuer and Sender are required")
	}
	cfg.Webhooks = cfg.Webhooks.withDefaults()
	for k := range cfg.Executors {
		if _, ok := cfg.Policies[k.Kind]; !ok {
			return nil, fmt.Errorf("polling.%s: no polling policy configured", k.Kind)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Queue == "" {
		cfg.Queue = "default"
	}
	if cfg.TaskTimeout == 0 {
		cfg.TaskTimeout = 2 * time.Minute
	}
	if cfg.LaunchMaxRetry == 0 {
		cfg.LaunchMaxRetry = 10
	}
	if cfg.RetryBackoffMax == 0 {
		cfg.RetryBackoffMax = 5 * time.Minute
	}
	if cfg.LockTTL == 0 {
		cfg.LockTTL = 15 * time.Minute
	}
	if cfg.OnBusy == "" {
		cfg.OnBusy = OnBusyWait
	}
	if cfg.BusyRetry == 0 {
		cfg.BusyRetry = 10 * time.Second
	}
	if cfg.BusyWaitMax == 0 {
		cfg.BusyWaitMax = time.Hour
	}
	for _, e := range cfg.Executors {
		e.useStore(cfg.Store)
	}
	p := &pipeline{cfg: cfg, log: cfg.Logger}
	return &Worker{p: p, launch: &launchStep{p}, poll: &pollStep{p}, batch: &batchStep{p}, deliver: &deliverStep{p}, cancel: &cancelStep{p}}, nil
}

// Handler returns the asynq handler for every task type. Known types are
// routed through an asynq.ServeMux; an unknown type fails without retry
// (asynq's mux would retry it MaxRetry times) and is archived with the
// reason.
func (w *Worker) Handler() asynq.Handler {
	mux := asynq.NewServeMux()
	known := map[string]bool{}
	for _, k := range Kinds() {
		mux.HandleFunc(k, w.launch.ProcessLaunch)
		known[k] = true
	}
	mux.HandleFunc(TypePoll, w.poll.ProcessPoll)
	mux.HandleFunc(TypeBatchPoll, w.batch.ProcessBatchPoll)
	mux.HandleFunc(TypeWebhookDeliver, w.deliver.ProcessWebhook)
	mux.HandleFunc(TypeWebhookReplay, w.deliver.ProcessReplay)
	mux.HandleFunc(TypeCancel, w.cancel.ProcessCancel)
	mux.HandleFunc(TypeDryRun, w.processDryRun)
	mux.HandleFunc(TypeApprovalDeadline, w.processApprovalDeadline)
	for _, t := range []string{TypePoll, TypeBatchPoll, TypeWebhookDeliver, TypeWebhookReplay, TypeCancel, TypeDryRun, TypeApprovalDeadline} {
		known[t] = true
	}
	for t, h := range w.p.cfg.Extra {
		mux.HandleFunc(t, h)
		known[t] = true
	}
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if !known[t.Type()] {
			return fmt.Errorf("unknown task type %q (known: %v): %w", t.Type(), Kinds(), asynq.SkipRetry)
		}
		return mux.ProcessTask(ctx, t)
	})
}

// IsFailure is the asynq IsFailure func: waiting for a busy resource does
// not use up a retry.
func (w *Worker) IsFailure(err error) bool {
	var we *waitError
	return !errors.As(err, &we)
}

// RetryDelay is the asynq RetryDelayFunc; n is how often the task was
// retried before this failure (0 after the first attempt). A task that
// waits (Wait, a busy resource) runs again after its own delay; otherwise
// a provider's or receiver's Retry-After wins (plus 1 s, see honour);
// webhook deliveries follow the configured schedule; other tasks back off
// exponentially from 1 s to Config.RetryBackoffMax. Schedule and backoff
// get jitter from Config.Rand (webhooks: the configured fraction; others
// ±20%).
func (w *Worker) RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	var we *waitError
	if errors.As(err, &we) {
		return we.Delay
	}
	if d, ok := retryAfter(err); ok {
		return d
	}
	if t != nil && t.Type() == TypeWebhookDeliver && len(w.p.cfg.Webhooks.Schedule) > 0 {
		i := min(max(n, 0), len(w.p.cfg.Webhooks.Schedule)-1)
		d := w.p.cfg.Webhooks.Schedule[i]
		return time.Duration(float64(d) * (1 + w.p.cfg.Webhooks.Jitter*(2*w.p.cfg.Rand()-1)))
	}
	return launchBackoff(n, w.p.cfg.Rand, w.p.cfg.RetryBackoffMax)
}

// PollNow runs the operation's scheduled poll at once (a provider callback
// arrived). It reports false when the operation does not exist or belongs
// to another provider. Nothing else changes: the poll reads the
// provider's status as usual.
func (w *Worker) PollNow(ctx context.Context, provider, operationID string) (bool, error) {
	ok, err := w.p.pollNow(ctx, provider, operationID)
	if ok && err == nil {
		_ = w.p.cfg.Store.AppendTimeline(ctx, operationID, ops.TimelineEvent{At: w.p.cfg.Now().UTC(), Type: ops.TimelineCallback,
			Message: "the provider called back: polled now"})
	}
	return ok, err
}

// ErrorHandler is the asynq ErrorHandler: one line per failed task, with
// the operation it belongs to. A wait is logged at debug level; so is the
// failure of a task whose operation already logged its end in its own
// line ("operation failed", with the error).
func (w *Worker) ErrorHandler(log *zap.Logger) asynq.ErrorHandler {
	return asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
		id, _ := asynq.GetTaskID(ctx)
		fields := []zap.Field{zap.String("task_type", t.Type()), zap.String("task_id", id)}
		var p struct {
			OperationID string `json:"operation_id"`
		}
		if json.Unmarshal(t.Payload(), &p) == nil && p.OperationID != "" {
			fields = append(fields, zap.String("operation_id", p.OperationID))
		}
		if !w.IsFailure(err) {
			log.Debug("task waits", append(fields, zap.Error(err))...)
			return
		}
		n, _ := asynq.GetRetryCount(ctx)
		max, _ := asynq.GetMaxRetry(ctx)
		final := errors.Is(err, asynq.SkipRetry) || n >= max
		fields = append(fields, zap.Int("retried", n), zap.Int("max_retry", max), zap.Bool("final", final), zap.Error(err))
		switch {
		case Ended(err):
			log.Debug("task failed; its operation ended and said why", fields...)
		case final:
			log.Error("task failed", fields...)
		default:
			log.Warn("task failed", fields...)
		}
	})
}
