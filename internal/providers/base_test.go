package providers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/httpclass/httpclasstest"
	"github.com/opsworker/opsworker/internal/providers"
)

func TestReadRetries(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(503)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	check := func(*http.Response, []byte) *providers.Error { return &providers.Error{} }
	b, err := providers.NewBase("p", srv.URL, check, providers.WithReadRetries(2))
	require.NoError(t, err)
	var out map[string]bool
	require.NoError(t, b.Call(t.Context(), "get", "GET", "/x", nil, nil, &out))
	assert.True(t, out["ok"])
	assert.Equal(t, int32(3), calls.Load(), "two retries")

	calls.Store(0)
	err = b.Call(t.Context(), "post", "POST", "/x", nil, map[string]int{"a": 1}, &out)
	require.Error(t, err, "writes are not retried")
	assert.Equal(t, int32(1), calls.Load())
}

// A short Retry-After is waited for before the read is tried again.
func TestReadRetriesHonourRetryAfter(t *testing.T) {
	t.Parallel()
	var first atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(0, time.Now().UnixNano()) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		assert.GreaterOrEqual(t, time.Since(time.Unix(0, first.Load())), time.Second, "retried before the Retry-After")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	check := func(*http.Response, []byte) *providers.Error { return &providers.Error{} }
	b, err := providers.NewBase("p", srv.URL, check, providers.WithReadRetries(1))
	require.NoError(t, err)
	require.NoError(t, b.Call(t.Context(), "get", "GET", "/x", nil, nil, nil))
}

// The read retries inside one call follow the shared classification: a
// GET is tried again exactly when its failure is retryable and any
// Retry-After is short, and the call reports the same class and wait as a
// call without retries.
func TestReadRetriesFollowTheContract(t *testing.T) {
	t.Parallel()
	check := func(*http.Response, []byte) *providers.Error { return &providers.Error{} }
	httpclasstest.Run(t, httpclasstest.Target{
		Call: func(t *testing.T, ctx context.Context, base string) httpclasstest.Outcome {
			var attempts atomic.Int32
			b, err := providers.NewBase("p", base, check,
				providers.WithHTTPClient(&http.Client{Timeout: httpclasstest.Timeout}),
				providers.WithReadRetries(1),
				providers.WithObserver(func(string, string, int, time.Duration) { attempts.Add(1) }))
			require.NoError(t, err)
			got := outcome(t, b.Call(ctx, "get", http.MethodGet, "/x", nil, nil, &map[string]any{}))
			want := int32(1)
			if got.Class.Retryable() && got.RetryAfter <= 2*time.Second {
				want = 2
			}
			assert.Equal(t, want, attempts.Load(), "attempts for a %s failure", got.Class)
			return got
		},
	})
}

// An empty token sends no Authorization header at all, not a bare scheme.
func TestWithAuthorization(t *testing.T) {
	t.Parallel()
	got := make(chan []string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Values("Authorization")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	check := func(*http.Response, []byte) *providers.Error { return nil }
	for token, want := range map[string][]string{"abc": {"Bearer abc"}, "": nil} {
		b, err := providers.NewBase("p", srv.URL, check, providers.WithAuthorization("Bearer ", token))
		require.NoError(t, err)
		require.NoError(t, b.Call(t.Context(), "get", "GET", "/x", nil, nil, nil))
		assert.Equal(t, want, <-got, "token %q", token)
	}
}
