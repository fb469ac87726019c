package ucdnsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/testutil"
)

func setup(t *testing.T, cfg ucdnsim.Config) (*ucdnsim.Server, *httptest.Server, *testutil.Clock) {
	t.Helper()
	clk := testutil.NewClock(time.Unix(1_700_000_000, 0))
	cfg.Now = clk.Now
	sim := ucdnsim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv, clk
}

func do(t *testing.T, method, u, ctype, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var auth = map[string]string{"X-UCDN-Token": "tok"}

func purge(t *testing.T, base, zone, files string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"files": files})
	code, out := do(t, "POST", base+"/v4/purge/zone?zone_name="+zone+"&zone_type=objects", "application/json", string(body), auth)
	require.Equal(t, 200, code, out)
	var m map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	assert.Equal(t, "Purge request received", m["message"])
	return m["job_id"]
}

func TestJobStateMachine(t *testing.T) {
	t.Parallel()
	sim, srv, clk := setup(t, ucdnsim.Config{Token: "tok", WaitingFor: time.Second, RunningFor: 2 * time.Second})
	id := purge(t, srv.URL, "zone-1", "/example/logo.png\nhttps://cdn.example.com/b.css")
	require.Len(t, id, 32)

	status := func() map[string]any {
		code, out := do(t, "GET", srv.URL+"/v4/purge/job/"+id+"/", "", "", auth)
		require.Equal(t, 200, code, out)
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &m))
		return m
	}
	assert.Equal(t, "waiting", status()["status"])
	clk.Add(time.Second)
	assert.Equal(t, "running", status()["status"])
	clk.Add(2 * time.Second)
	m := status()
	assert.Equal(t, "finished", m["status"])
	assert.Equal(t, []any{"http://a1-121.so.clients.cdn13.com/example/logo.png", "http://a1-121.so.clients.cdn13.com/b.css"}, m["files"])
	assert.Equal(t, float64(1_700_000_000), m["created_at"])
	// Without the trailing slash too: the documented paths and examples
	// disagree on it.
	code, _ := do(t, "GET", srv.URL+"/v4/purge/job/"+id, "", "", auth)
	assert.Equal(t, 200, code)
	assert.Equal(t, 1, sim.CountCalls("POST", "/purge/zone"))
}

func TestFailingJobs(t *testing.T) {
	t.Parallel()
	sim, srv, _ := setup(t, ucdnsim.Config{})
	a := purge(t, srv.URL, "z", "/ok")
	b := purge(t, srv.URL, "z", "/x/"+ucdnsim.FailMarker)
	sim.FailNextJobs(1)
	c := purge(t, srv.URL, "z", "/ok")
	d := purge(t, srv.URL, "z", "/ok")
	for id, want := range map[string]string{a: "finished", b: "failed", c: "failed", d: "finished"} {
		st, ok := sim.JobStatus(id)
		require.True(t, ok)
		assert.Equal(t, want, st, id)
	}
}

func TestAuthAndValidation(t *testing.T) {
	t.Parallel()
	_, srv, _ := setup(t, ucdnsim.Config{Token: "tok", Zones: []string{"known"}})
	tests := []struct {
		name         string
		method, path string
		ctype, body  string
		hdr          map[string]string
		code         int
		msg          string
	}{
		{"NoToken", "GET", "/v4/purge", "", "", nil, 401, "invalid token"},
		{"WrongToken", "GET", "/v4/purge", "", "", map[string]string{"X-UCDN-Token": "nope"}, 401, "invalid token"},
		{"QueryToken", "GET", "/v4/purge?token=tok", "", "", nil, 200, ""},
		{"NoContentType", "POST", "/v4/purge/zone?zone_name=known&zone_type=objects", "", `{"files":"/a"}`, auth, 400, "Content-Type"},
		{"UnknownZone", "POST", "/v4/purge/zone?zone_name=other&zone_type=objects", "application/json", `{"files":"/a"}`, auth, 532, "does not exist"},
		{"BadZoneType", "POST", "/v4/purge/zone?zone_name=known&zone_type=video", "application/json", `{"files":"/a"}`, auth, 532, "zone_type"},
		{"FilesArray", "POST", "/v4/purge/zone?zone_name=known&zone_type=objects", "application/json", `{"files":["/a"]}`, auth, 532, "string"},
		{"NoFiles", "POST", "/v4/purge/zone?zone_name=known&zone_type=objects", "application/json", `{"files":""}`, auth, 532, "No files"},
		{"Form", "POST", "/v4/purge/zone/?zone_name=known&zone_type=livestream", "application/x-www-form-urlencoded", url.Values{"files": {"/a\n/b"}}.Encode(), auth, 200, "Purge request received"},
		{"UnknownJob", "GET", "/v4/purge/job/0000/", "", "", auth, 532, "not found"},
		{"BadCount", "GET", "/v4/purge?count=501", "", "", auth, 532, "count"},
		{"UnknownPath", "GET", "/v4/zones", "", "", auth, 404, "Not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := do(t, tc.method, srv.URL+tc.path, tc.ctype, tc.body, tc.hdr)
			assert.Equal(t, tc.code, code, out)
			assert.Contains(t, out, tc.msg)
		})
	}
}

func TestListAndDelete(t *testing.T) {
	t.Parallel()
	sim, srv, clk := setup(t, ucdnsim.Config{WaitingFor: time.Second, RunningFor: time.Second})
	done := purge(t, srv.URL, "z", "/1")
	clk.Add(3 * time.Second)
	waiting := purge(t, srv.URL, "z", "/2")
	clk.Add(1500 * time.Millisecond) // waiting → running
	running := purge(t, srv.URL, "z", "/3")

	list := func(q string) []string {
		code, out := do(t, "GET", srv.URL+"/v4/purge/"+q, "", "", auth)
		require.Equal(t, 200, code, out)
		var jobs []struct {
			JobID string `json:"job_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &jobs))
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.JobID)
		}
		return ids
	}
	// Default: waiting, running and failed only, newest first.
	assert.Equal(t, []string{running, waiting}, list(""))
	assert.Equal(t, []string{done}, list("?status=finished"))
	assert.Len(t, list("?status=finished&count=1"), 1)

	code, out := do(t, "DELETE", srv.URL+"/v4/purge/job/"+waiting, "", "", auth)
	assert.Equal(t, 532, code, out)
	assert.Contains(t, out, "waiting or finished")
	code, out = do(t, "DELETE", srv.URL+"/v4/purge/job/"+done+"/", "", "", auth)
	assert.Equal(t, 200, code, out)
	assert.JSONEq(t, `{"message":"The purge job was removed"}`, out)
	_, ok := sim.JobStatus(done)
	assert.False(t, ok)
	code, _ = do(t, "GET", srv.URL+"/v4/purge/job/"+done+"/", "", "", auth)
	assert.Equal(t, 532, code)
}

func TestFaultsAreRecordedAndConsumed(t *testing.T) {
	t.Parallel()
	sim, srv, _ := setup(t, ucdnsim.Config{})
	sim.Inject(ucdnsim.Fault{Kind: ucdnsim.FaultStatus, Status: 503, RetryAfter: "4", Times: 2, PathPrefix: "/purge/zone"})
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("POST", srv.URL+"/v4/purge/zone?zone_name=z&zone_type=objects", strings.NewReader(`{"files":"/a"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-UCDN-Token", "t")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, "4", resp.Header.Get("Retry-After"))
		resp.Body.Close()
	}
	purge(t, srv.URL, "z", "/a")
	calls := sim.Calls()
	require.Len(t, calls, 3)
	assert.Equal(t, 503, calls[0].Status)
	assert.Equal(t, 200, calls[2].Status)
	assert.Equal(t, 1, sim.CountCalls("POST", "/purge/zone"), "only 2xx answers count")
}

func TestAfterEffectFaultCreatesJobButDropsAnswer(t *testing.T) {
	t.Parallel()
	sim, srv, _ := setup(t, ucdnsim.Config{})
	sim.Inject(ucdnsim.Fault{Kind: ucdnsim.FaultAfterEffect})
	req, _ := http.NewRequest("POST", srv.URL+"/v4/purge/zone?zone_name=z&zone_type=objects", strings.NewReader(`{"files":"/a"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-UCDN-Token", "t")
	_, err := http.DefaultClient.Do(req)
	require.Error(t, err)
	assert.Equal(t, 1, sim.CountCalls("POST", "/purge/zone"))
}
