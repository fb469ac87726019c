package ucdn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
)

const token = "acf0230d03f5b71d7252e336106f7338"

// setup serves mux under /v4 and returns a client for it.
func setup(t *testing.T, opts ...ucdn.Option) (*ucdn.Client, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(http.StripPrefix("/v4", mux))
	t.Cleanup(srv.Close)
	c, err := ucdn.New(srv.URL+"/v4", append([]ucdn.Option{ucdn.WithToken(token)}, opts...)...)
	require.NoError(t, err)
	return c, mux
}

func TestPurgeRequestShape(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("/purge/zone", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, token, r.Header.Get("X-UCDN-Token"))
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		assert.Equal(t, "test-zone", r.URL.Query().Get("zone_name"))
		assert.Equal(t, "objects", r.URL.Query().Get("zone_type"))
		assert.Empty(t, r.URL.Query().Get("token"), "token must not travel in the URL")
		b, _ := io.ReadAll(r.Body)
		assert.JSONEq(t, `{"files":"/example/logo.png\n/second/file"}`, string(b))
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, `{"message": "Purge request received", "job_id": "3cfb478531097f1830056a828752cbdd"}`)
	})
	resp, err := c.Purge(t.Context(), &ucdn.PurgeRequest{ZoneName: "test-zone", ZoneType: "objects", Files: []string{"/example/logo.png", "/second/file"}})
	require.NoError(t, err)
	assert.Equal(t, "3cfb478531097f1830056a828752cbdd", resp.JobID)
}

func TestPurge204WithoutBodyIsAnError(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("/purge/zone", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	_, err := c.Purge(t.Context(), &ucdn.PurgeRequest{ZoneName: "z", ZoneType: "objects", Files: []string{"/a"}})
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Message, "without job_id")
}

func TestGetPurgeJobDecodesDocumentedExample(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("/purge/job/2170dd23decc45691adf28987282d0bc/", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodGet, r.Method)
		// The "View purge job" example of https://api.ucdn.com/docs/,
		// escaped slashes included.
		fmt.Fprint(w, `{
    "job_id": "2170dd23decc45691adf28987282d0bc",
    "files": [
        "http:\/\/a1-121.so.clients.cdn13.com\/example\/logo.png",
        "http:\/\/a1-121.so.clients.cdn13.com\/second\/file"
    ],
    "status": "finished",
    "created_at": 1435318980
}`)
	})
	job, err := c.GetPurgeJob(t.Context(), "2170dd23decc45691adf28987282d0bc")
	require.NoError(t, err)
	assert.Equal(t, "finished", job.Status)
	assert.Equal(t, int64(1435318980), job.CreatedAt)
	assert.Equal(t, "http://a1-121.so.clients.cdn13.com/example/logo.png", job.Files[0])
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status     int
		body       string
		retryAfter string
		retryable  bool
		message    string
		wantAfter  time.Duration
	}{
		{400, `{"message":"Bad request"}`, "", false, "Bad request", 0},
		{401, `{"message":"Invalid token"}`, "", false, "Invalid token", 0},
		{404, `"Not found"`, "", false, "Not found", 0},
		{409, `{"error":"Conflict"}`, "", false, "Conflict", 0},
		{408, ``, "", true, "", 0},
		{429, `{"message":"Too many requests"}`, "3", true, "Too many requests", 3 * time.Second},
		{500, `<html>oops</html>`, "", true, "<html>oops</html>", 0},
		{501, ``, "", false, "", 0},
		{503, `{"message":"maintenance"}`, "10", true, "maintenance", 10 * time.Second},
		{504, `{"message":"Storage backend failed"}`, "", true, "Storage backend failed", 0},
		{532, `{"message":"Zone not found"}`, "", false, "Zone not found", 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			c, mux := setup(t)
			mux.HandleFunc("/purge/job/x/", func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.Header().Set("X-Request-Id", "req-42")
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			})
			_, err := c.GetPurgeJob(t.Context(), "x")
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.status, pe.StatusCode)
			assert.Equal(t, tc.retryable, pe.Retryable())
			assert.Equal(t, tc.message, pe.Message)
			assert.Equal(t, tc.wantAfter, pe.RetryAfter)
			assert.Equal(t, "req-42", pe.RequestID)
			assert.Equal(t, "ucdn", pe.Provider)
			assert.NotContains(t, err.Error(), token)
		})
	}
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	sim := ucdnsim.New(ucdnsim.Config{Token: token})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.ReleaseHangs)
	c, err := ucdn.New(srv.URL+"/v4", ucdn.WithToken(token), ucdn.WithHTTPClient(&http.Client{Timeout: 300 * time.Millisecond}))
	require.NoError(t, err)
	req := &ucdn.PurgeRequest{ZoneName: "z", ZoneType: "objects", Files: []string{"/a"}}

	tests := []struct {
		name  string
		fault ucdnsim.Fault
		check func(t *testing.T, pe *providers.Error)
	}{
		{"Hang", ucdnsim.Fault{Kind: ucdnsim.FaultHang}, func(t *testing.T, pe *providers.Error) {
			assert.True(t, pe.Retryable())
			assert.Zero(t, pe.StatusCode)
		}},
		{"Drop", ucdnsim.Fault{Kind: ucdnsim.FaultDrop}, func(t *testing.T, pe *providers.Error) { assert.True(t, pe.Retryable()) }},
		{"BadJSON", ucdnsim.Fault{Kind: ucdnsim.FaultBadJSON}, func(t *testing.T, pe *providers.Error) {
			assert.True(t, pe.Retryable())
			assert.Equal(t, 200, pe.StatusCode)
			assert.Contains(t, pe.Message, "malformed JSON")
		}},
		{"TooManyRequests", ucdnsim.Fault{Kind: ucdnsim.FaultStatus, Status: 429, RetryAfter: "2"}, func(t *testing.T, pe *providers.Error) {
			assert.True(t, pe.Retryable())
			assert.Equal(t, 2*time.Second, pe.RetryAfter)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim.Inject(tc.fault)
			_, err := c.Purge(t.Context(), req)
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			tc.check(t, pe)
			assert.NotContains(t, err.Error(), token)
		})
	}
	// After the faults, the next call works.
	resp, err := c.Purge(t.Context(), req)
	require.NoError(t, err)
	assert.Len(t, resp.JobID, 32)
}

func TestCanceledContextIsPermanent(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	// Canceled while the provider holds the request.
	mux.HandleFunc("/purge/job/x/", func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	})
	_, err := c.GetPurgeJob(ctx, "x")
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.False(t, pe.Retryable())
	assert.True(t, errors.Is(err, context.Canceled))
}

func TestRateLimiterSpacesCalls(t *testing.T) {
	t.Parallel()
	// Counting, not timing: with burst 1 and a limiter that never refills
	// within the test, the second call cannot proceed before its ctx ends.
	c, mux := setup(t, ucdn.WithRateLimiter(newLimiter(0.001, 1)))
	calls := 0
	mux.HandleFunc("/purge/job/x/", func(w http.ResponseWriter, r *http.Request) {
		calls++
		json.NewEncoder(w).Encode(map[string]any{"job_id": "x", "status": "waiting"})
	})
	_, err := c.GetPurgeJob(t.Context(), "x")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = c.GetPurgeJob(ctx, "x")
	require.Error(t, err)
	assert.Equal(t, 1, calls)
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"ftp://x", "::", "api.ucdn.com/v4"} {
		_, err := ucdn.New(u)
		assert.Error(t, err, u)
	}
	_, err := ucdn.New(strings.TrimSpace(" https://api.ucdn.com/v4 "))
	assert.NoError(t, err)
}
