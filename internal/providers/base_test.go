package providers_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	check := func(resp *http.Response, _ []byte, _ time.Time) *providers.Error {
		return &providers.Error{StatusCode: resp.StatusCode, Class: providers.ClassifyStatus(resp.StatusCode)}
	}
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

// An empty token sends no Authorization header at all, not a bare scheme.
func TestWithAuthorization(t *testing.T) {
	t.Parallel()
	got := make(chan []string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Values("Authorization")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	check := func(resp *http.Response, _ []byte, _ time.Time) *providers.Error { return nil }
	for token, want := range map[string][]string{"abc": {"Bearer abc"}, "": nil} {
		b, err := providers.NewBase("p", srv.URL, check, providers.WithAuthorization("Bearer ", token))
		require.NoError(t, err)
		require.NoError(t, b.Call(t.Context(), "get", "GET", "/x", nil, nil, nil))
		assert.Equal(t, want, <-got, "token %q", token)
	}
}
