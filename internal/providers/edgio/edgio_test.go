package edgio_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/edgio"
	"github.com/opsworker/opsworker/internal/providers/edgio/edgiosim"
)

func TestPurgeRequestShape(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v2/mcc/customers/0001/edge/purge", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "TOK:secret-token", r.Header.Get("Authorization"))
		var body map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		assert.Equal(t, map[string]any{"MediaPath": "http://wpc.0001.edgecastcdn.net/000001/*", "MediaType": float64(8)}, body)
		io.WriteString(w, `{"Id":"p-1"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := edgio.New(srv.URL, edgio.WithToken("secret-token"))
	require.NoError(t, err)
	p, err := c.CreatePurge(t.Context(), "0001", &edgio.PurgeRequest{MediaPath: "http://wpc.0001.edgecastcdn.net/000001/*", MediaType: 8})
	require.NoError(t, err)
	assert.Equal(t, "p-1", p.ID)
}

func TestStatusesAndErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status    int
		retryable bool
	}{{400, false}, {401, false}, {403, false}, {404, false}, {429, true}, {500, true}, {503, true}} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-Id", "r-9")
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"Message":"nope"}`)
			}))
			t.Cleanup(srv.Close)
			c, _ := edgio.New(srv.URL, edgio.WithToken("secret-token"))
			_, err := c.GetPurge(t.Context(), "0001", "x")
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.retryable, pe.Retryable())
			assert.Contains(t, pe.Message, "nope")
			assert.Equal(t, "r-9", pe.RequestID)
			assert.NotContains(t, err.Error(), "secret-token")
			if tc.status == 403 {
				assert.Contains(t, pe.Message, "PUT method")
			}
		})
	}
}

func TestSimulatorLimitAndPermissions(t *testing.T) {
	t.Parallel()
	sim := edgiosim.New(edgiosim.Config{Duration: time.Hour, Tokens: map[string][]string{"rw": {"GET", "PUT"}, "ro": {"GET"}}})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	rw, _ := edgio.New(srv.URL, edgio.WithToken("rw"))
	ro, _ := edgio.New(srv.URL, edgio.WithToken("ro"))
	_, err := ro.CreatePurge(t.Context(), "0001", &edgio.PurgeRequest{MediaPath: "/a", MediaType: 3})
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 403, pe.StatusCode, "a token without PUT")
	var first string
	for i := 0; i < edgio.MaxOutstanding; i++ {
		p, err := rw.CreatePurge(t.Context(), "0001", &edgio.PurgeRequest{MediaPath: fmt.Sprintf("/%d", i), MediaType: 3})
		require.NoError(t, err)
		if i == 0 {
			first = p.ID
		}
	}
	_, err = rw.CreatePurge(t.Context(), "0001", &edgio.PurgeRequest{MediaPath: "/51", MediaType: 3})
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Message, "outstanding")
	got, err := ro.GetPurge(t.Context(), "0001", first)
	require.NoError(t, err)
	assert.False(t, got.Done())
	sim.Complete()
	got, err = ro.GetPurge(t.Context(), "0001", first)
	require.NoError(t, err)
	assert.True(t, got.Done())
}
