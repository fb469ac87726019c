package webhooks_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/webhooks"
)

func TestSendHeadersAndExactBody(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"evt_1","type":"operation.succeeded"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		assert.Equal(t, "opsworker/test", r.Header.Get("User-Agent"))
		assert.Equal(t, "evt_1", r.Header.Get("webhook-id"))
		assert.NotEmpty(t, r.Header.Get("webhook-timestamp"))
		got, _ := io.ReadAll(r.Body)
		assert.Equal(t, string(body), string(got))
		// A huge answer is read only up to the cap.
		w.Write([]byte(strings.Repeat("x", 1<<20)))
	}))
	defer srv.Close()
	require.NoError(t, open(time.Second).Send(t.Context(), srv.URL, "evt_1", body, nil))
}

func TestSendNeverFollowsRedirects(t *testing.T) {
	t.Parallel()
	var followed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Store(true) }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	err := open(time.Second).Send(t.Context(), srv.URL+"/h?token=secret", "e", []byte(`{}`), nil)
	var de *webhooks.DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, http.StatusTemporaryRedirect, de.StatusCode)
	assert.False(t, de.Retryable)
	assert.False(t, followed.Load())
	assert.NotContains(t, err.Error(), "secret")
}

func TestSendTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	err := open(100*time.Millisecond).Send(t.Context(), srv.URL+"/h?token=secret", "e", []byte(`{}`), nil)
	var de *webhooks.DeliveryError
	require.ErrorAs(t, err, &de)
	assert.True(t, de.Retryable)
	assert.Zero(t, de.StatusCode)
	assert.NotContains(t, err.Error(), "secret")
}

func TestSendRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "ftp://x/y", "/relative", "http://"} {
		err := open(time.Second).Send(t.Context(), u, "e", []byte(`{}`), nil)
		var de *webhooks.DeliveryError
		require.ErrorAs(t, err, &de, u)
		assert.False(t, de.Retryable, u)
	}
}
