package tasks_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
)

// retryWorker is a Worker configured by mod, for its RetryDelay (the
// RetryDelayFunc cmd/worker gives asynq).
func retryWorker(t *testing.T, mod func(*tasks.Config)) *tasks.Worker {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	cfg := tasks.Config{
		Store:    opstore.New(rdb, "ow", time.Hour),
		Enqueuer: client,
		Sender:   webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}),
	}
	if mod != nil {
		mod(&cfg)
	}
	w, err := tasks.NewWorker(cfg)
	require.NoError(t, err)
	return w
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	hook := asynq.NewTask(tasks.TypeWebhookDeliver, nil)
	launch := asynq.NewTask(tasks.TypeCDNPurge, nil)
	poll := asynq.NewTask(tasks.TypePoll, nil)
	plain := errors.New("http 500")
	// A provider's Retry-After reaches RetryDelay wrapped, as the launch
	// and poll handlers return it.
	providerWait := fmt.Errorf("launch: %w", &providers.Error{Provider: "ucdn", StatusCode: 429, RetryAfter: 7 * time.Second, Class: providers.Retryable})
	receiverWait := fmt.Errorf("deliver evt_x (attempt 1 of 4): %w", &webhooks.DeliveryError{StatusCode: 503, Retryable: true, RetryAfter: 3 * time.Second})
	tests := []struct {
		name string
		rnd  float64 // what Config.Rand returns
		n    int
		err  error
		task *asynq.Task
		want time.Duration
	}{
		// Retry-After, plus 1 s because asynq keeps retry times in whole
		// seconds; no jitter, whatever the task and retry count.
		{"ProviderRetryAfter", 0.5, 0, providerWait, launch, 8 * time.Second},
		{"ProviderRetryAfterNoJitter", 0, 0, providerWait, launch, 8 * time.Second},
		{"ProviderRetryAfterLateRetry", 0.9, 9, providerWait, launch, 8 * time.Second},
		{"ProviderRetryAfterOnPoll", 0.5, 2, providerWait, poll, 8 * time.Second},
		{"ReceiverRetryAfter", 0.5, 0, receiverWait, hook, 4 * time.Second},
		{"ReceiverRetryAfterBeatsSchedule", 0, 2, receiverWait, hook, 4 * time.Second},

		// Webhooks: the configured schedule (10s, 1m, 1h), ±20% jitter;
		// past its end, its last wait.
		{"WebhookFirstRetry", 0.5, 0, plain, hook, 10 * time.Second},
		{"WebhookSecondRetry", 0.5, 1, plain, hook, time.Minute},
		{"WebhookThirdRetry", 0.5, 2, plain, hook, time.Hour},
		{"WebhookPastSchedule", 0.5, 9, plain, hook, time.Hour},
		{"WebhookJitterLowest", 0, 1, plain, hook, 48 * time.Second},
		{"WebhookJitterUp", 0.75, 1, plain, hook, 66 * time.Second},
		{"WebhookReceiverWithoutRetryAfter", 0.5, 0, fmt.Errorf("deliver: %w", &webhooks.DeliveryError{StatusCode: 503, Retryable: true}), hook, 10 * time.Second},

		// Launches (and every other task): 1 s doubling, capped at
		// RetryBackoffMax (1m), ±20%.
		{"LaunchFirstRetry", 0.5, 0, plain, launch, time.Second},
		{"LaunchDoubles", 0.5, 1, plain, launch, 2 * time.Second},
		{"LaunchDoublesAgain", 0.5, 2, plain, launch, 4 * time.Second},
		{"LaunchBelowCap", 0.5, 5, plain, launch, 32 * time.Second},
		{"LaunchCapped", 0.5, 6, plain, launch, time.Minute},
		{"LaunchCappedLate", 0.5, 40, plain, launch, time.Minute},
		{"LaunchJitterLowest", 0, 3, plain, launch, 6400 * time.Millisecond},
		{"LaunchJitterUp", 0.75, 3, plain, launch, 8800 * time.Millisecond},
		{"LaunchCappedJitter", 0, 40, plain, launch, 48 * time.Second},
		{"ProviderErrorWithoutRetryAfter", 0.5, 1, fmt.Errorf("launch: %w", &providers.Error{Provider: "ucdn", StatusCode: 503, Class: providers.Retryable}), launch, 2 * time.Second},
		{"PollBacksOffLikeLaunch", 0.5, 2, plain, poll, 4 * time.Second},

		// A task that waits (tasks.Wait, a busy resource) runs again
		// after its own delay: no jitter, no backoff, and it beats a
		// Retry-After it wraps.
		{"Wait", 0, 0, tasks.Wait(3*time.Second, errors.New("old snapshot s-1 is being deleted")), launch, 3 * time.Second},
		{"WaitLateRetry", 0.9, 9, tasks.Wait(3*time.Second, errors.New("old snapshot s-1 is being deleted")), launch, 3 * time.Second},
		{"WaitWrapped", 0.5, 0, fmt.Errorf("launch: %w", tasks.Wait(2*time.Second, errors.New("busy"))), launch, 2 * time.Second},
		{"WaitBeatsRetryAfter", 0.5, 0, tasks.Wait(2*time.Second, providerWait), launch, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := retryWorker(t, func(c *tasks.Config) {
				c.Webhooks.Schedule = []time.Duration{10 * time.Second, time.Minute, time.Hour}
				c.Webhooks.Jitter = 0.2
				c.RetryBackoffMax = time.Minute
				c.Rand = func() float64 { return tc.rnd }
			})
			got := w.RetryDelay(tc.n, tc.err, tc.task)
			assert.InDelta(t, float64(tc.want), float64(got), float64(time.Microsecond), "got %s", got)
		})
	}
}

// The webhook jitter is the configured fraction; launches keep ±20%
// whatever it is.
func TestRetryDelayJitterIsPerKind(t *testing.T) {
	t.Parallel()
	w := retryWorker(t, func(c *tasks.Config) {
		c.Webhooks.Schedule = []time.Duration{10 * time.Second}
		c.Webhooks.Jitter = 0
		c.Rand = func() float64 { return 0 }
	})
	err := errors.New("x")
	assert.Equal(t, 10*time.Second, w.RetryDelay(0, err, asynq.NewTask(tasks.TypeWebhookDeliver, nil)), "no webhook jitter configured")
	assert.Equal(t, 800*time.Millisecond, w.RetryDelay(0, err, asynq.NewTask(tasks.TypeCDNPurge, nil)), "launches: −20% at the lowest")
}

// With the defaults cmd/worker runs with (math/rand/v2, the default
// schedule, webhooks.jitter 0.2, operations.retry_backoff_max 5m), every
// wait stays within its bounds and the jitter spreads them.
func TestRetryDelayDefaults(t *testing.T) {
	t.Parallel()
	w := retryWorker(t, func(c *tasks.Config) { c.Webhooks.Jitter = 0.2 })
	hook := asynq.NewTask(tasks.TypeWebhookDeliver, nil)
	launch := asynq.NewTask(tasks.TypeCDNPurge, nil)
	err := errors.New("x")
	within := func(t *testing.T, what string, base time.Duration, f func() time.Duration) {
		t.Helper()
		lo, hi := time.Duration(0.8*float64(base)), time.Duration(1.2*float64(base))
		seen := map[time.Duration]bool{}
		for range 500 {
			d := f()
			require.GreaterOrEqual(t, d, lo, what)
			require.LessOrEqual(t, d, hi, what)
			seen[d] = true
		}
		assert.Greater(t, len(seen), 1, "%s: jittered", what)
	}
	for i, want := range tasks.DefaultWebhookSchedule {
		within(t, fmt.Sprintf("webhook retry %d", i), want, func() time.Duration { return w.RetryDelay(i, err, hook) })
	}
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		within(t, fmt.Sprintf("launch retry %d", n), want, func() time.Duration { return w.RetryDelay(n, err, launch) })
	}
	within(t, "launch retry 30 (capped)", 5*time.Minute, func() time.Duration { return w.RetryDelay(30, err, launch) })
	assert.True(t, strings.HasPrefix(tasks.TypePoll, "op:"))
}
