package providers_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/testutil"
)

// A 429 with Retry-After holds the account on every replica: the next
// call, from another replica's client, is not sent before then, and its
// error says so without counting as the provider's answer.
func TestTooManyRequestsHoldsTheAccount(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	rdb := redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBFlow})
	t.Cleanup(func() { rdb.Close() })
	prefix := "owtest-" + uuid.NewString()
	check := func(*http.Response, []byte) *providers.Error { return &providers.Error{} }
	type seen struct {
		status int
		cause  string
	}
	var mu sync.Mutex
	var observed []seen
	replica := func() *providers.Base {
		b, err := providers.NewBase("p", srv.URL, check, providers.WithRateLimiter(flow.NewLimiter(rdb, prefix, "p", "default", 100, 10)),
			providers.WithObserver(func(_, _ string, status int, _ time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				observed = append(observed, seen{status: status})
			}),
			providers.WithHoldObserver(func(provider, account, cause string) {
				mu.Lock()
				defer mu.Unlock()
				observed = append(observed, seen{cause: provider + "/" + account + " " + cause})
			}))
		require.NoError(t, err)
		return b
	}
	a, b := replica(), replica()
	err := a.Call(t.Context(), "post", "POST", "/x", nil, map[string]int{"a": 1}, nil)
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, http.StatusTooManyRequests, pe.StatusCode)

	err = b.Call(t.Context(), "post", "POST", "/x", nil, map[string]int{"a": 1}, nil)
	require.ErrorAs(t, err, &pe)
	d, ok := flow.IsThrottled(err)
	require.True(t, ok, "held back: %v", err)
	assert.Greater(t, d, 2*time.Second)
	assert.True(t, pe.NotProcessed(), "never sent")
	assert.Equal(t, int32(1), calls.Load(), "the second replica sent nothing")
	assert.Contains(t, err.Error(), "held by the provider's Retry-After of p:default")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []seen{{status: 429}, {cause: "p/default retry_after"}}, observed,
		"one call observed; the held one is a hold, not a call")
}
