package flow_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/testutil"
)

// Three limiters (three replicas) on one Redis share one account's
// limit: over any 1 s window the calls they let through stay within the
// rate plus the burst, and the limit is used, not starved.
func TestLimitIsSharedAcrossReplicas(t *testing.T) {
	rdb, prefix := flowRedis(t)
	const perSecond, burst = 10, 1
	var mu sync.Mutex
	var calls []time.Time
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	throttled := 0
	for r := 0; r < 3; r++ {
		l := flow.NewLimiter(rdb, prefix, "leaseweb", "default", perSecond, burst)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					err := l.Wait(ctx)
					if d, ok := flow.IsThrottled(err); ok {
						mu.Lock()
						throttled++
						mu.Unlock()
						select {
						case <-ctx.Done():
						case <-time.After(d):
						}
						continue
					}
					if err != nil {
						return
					}
					mu.Lock()
					calls = append(calls, time.Now())
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	require.NotEmpty(t, calls)
	peak := 0
	for i, start := range calls {
		n := 0
		for _, c := range calls[i:] {
			if c.Sub(start) < time.Second {
				n++
			}
		}
		peak = max(peak, n)
	}
	t.Logf("%d calls in 3 s, peak %d in a 1 s window, %d waits handed back", len(calls), peak, throttled)
	assert.LessOrEqual(t, peak, perSecond+burst, "the peak over any 1 s window")
	assert.GreaterOrEqual(t, len(calls), 2*perSecond, "the limit is used, not starved")
}

// A wait longer than MaxWait is handed back, not slept: the call was not
// counted, and the caller learns how long to stay away.
func TestLongWaitIsHandedBack(t *testing.T) {
	rdb, prefix := flowRedis(t)
	l := flow.NewLimiter(rdb, prefix, "leaseweb", "slow", 1, 1)
	require.NoError(t, l.Wait(t.Context()))
	start := time.Now()
	d, ok := flow.IsThrottled(l.Wait(t.Context()))
	require.True(t, ok)
	assert.Less(t, time.Since(start), flow.MaxWait, "handed back at once")
	assert.InDelta(t, time.Second, d, float64(200*time.Millisecond))
}

// A provider's Retry-After holds the account on every replica.
func TestHoldStopsEveryReplica(t *testing.T) {
	rdb, prefix := flowRedis(t)
	a := flow.NewLimiter(rdb, prefix, "ucdn", "default", 100, 10)
	b := flow.NewLimiter(rdb, prefix, "ucdn", "default", 100, 10)
	require.NoError(t, b.Wait(t.Context()))
	a.Hold(t.Context(), 3*time.Second)
	d, ok := flow.IsThrottled(b.Wait(t.Context()))
	require.True(t, ok, "held")
	assert.Greater(t, d, 2*time.Second)
	a.Hold(t.Context(), time.Second) // shorter: the longer hold stays
	d, _ = flow.IsThrottled(b.Wait(t.Context()))
	assert.Greater(t, d, 2*time.Second)
	other := flow.NewLimiter(rdb, prefix, "ucdn", "other", 100, 10)
	assert.NoError(t, other.Wait(t.Context()), "another account is not held")
}

// Without Redis the process limits itself at the same rate: calls slow
// down, they do not stop.
func TestRedisDownFallsBackToTheProcess(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	l := flow.NewLimiter(rdb, "owtest", "edgio", "default", 20, 1)
	start := time.Now()
	for i := 0; i < 5; i++ {
		require.NoError(t, l.Wait(t.Context()))
	}
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "5 calls at 20/s with burst 1 take at least 4 intervals")
}

// flowRedis is a client on the real Redis's database for flow tests and
// a key prefix of this test alone. The database is not flushed: other
// packages' tests use it at the same time, each under its own prefix,
// and the limiter's keys expire by themselves.
func flowRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBFlow})
	t.Cleanup(func() { rdb.Close() })
	return rdb, "owtest-" + uuid.NewString()
}
