package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/testutil"
)

// The shipped safe-resize runbook (config/example.yaml) through the
// worker's API: a resize to an allowed type succeeds step by step; one to
// a type the instance may not take fails at the resize, restores the
// snapshot, deletes it, and the run ends failed naming the resize.
func TestSafeResizeRunbookThroughTheAPI(t *testing.T) {
	_, _, cfg, _ := redisSetup(t, ucdnsim.Config{})
	lw := leasewebsim.New(leasewebsim.Config{APIKey: lwKey, CloudStep: 200 * time.Millisecond})
	t.Cleanup(lw.Close)
	lwSrv := httptest.NewServer(lw)
	t.Cleanup(lwSrv.Close)
	t.Setenv("E2E_LSW_KEY", lwKey)
	cfg = withSection(t, cfg, "providers", fmt.Sprintf("  leaseweb:\n    base_url: %s\n    accounts:\n      default:\n        token: ${E2E_LSW_KEY}\n", lwSrv.URL))
	cfg = withSection(t, cfg, "polling", "  instance:snapshot: {initial: 100ms, multiplier: 1, max: 100ms, jitter: 0, deadline: 1m}\n"+
		"  instance:resize: {initial: 100ms, multiplier: 1, max: 100ms, jitter: 0, deadline: 1m}\n"+
		"  instance:snapshot_restore: {initial: 100ms, multiplier: 1, max: 100ms, jitter: 0, deadline: 1m}\n"+
		"  instance:snapshot_delete: {initial: 100ms, multiplier: 1, max: 100ms, jitter: 0, deadline: 1m}\n")
	example, err := os.ReadFile("../../config/example.yaml")
	require.NoError(t, err)
	i := strings.Index(string(example), "\nrunbooks:\n")
	require.Positive(t, i, "example.yaml ships runbooks")
	addr := freeAddr(t)
	t.Setenv("E2E_RW", rwTok)
	cfg += fmt.Sprintf("http:\n  listen: %s\n  tokens:\n    - {name: ci, token: \"${E2E_RW}\", scope: write}\n", addr) + string(example[i+1:])
	startWorker(t, cfg)
	base := "http://" + addr
	call := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+rwTok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	run := func(typ string) runbook.Run {
		code, b := call("POST", "/v1/runbooks/safe-resize/runs", `{"inputs":{"instance":"ace712e9-a166-47f1-9065-4af0f7e7fce1","type":"`+typ+`"},"labels":{"change":"CHG-9"}}`)
		require.Equal(t, 202, code, string(b))
		var r runbook.Run
		require.NoError(t, json.Unmarshal(b, &r))
		testutil.WaitFor(t, time.Minute, "run "+r.ID+" ends", func() bool {
			code, b := call("GET", "/v1/runs/"+r.ID, "")
			return code == 200 && json.Unmarshal(b, &r) == nil && r.State != runbook.RunRunning
		})
		return r
	}
	states := func(r runbook.Run) map[string]string {
		out := map[string]string{}
		for _, s := range r.Steps {
			out[s.ID] = s.State
		}
		return out
	}
	ok := run("lsw.m3.xlarge")
	assert.Equal(t, runbook.RunSucceeded, ok.State, ok.Error)
	assert.Equal(t, map[string]string{"snap": "succeeded", "resize": "succeeded", "cleanup": "succeeded"}, states(ok))

	bad := run("lsw.zz.huge")
	assert.Equal(t, runbook.RunFailed, bad.State)
	assert.Contains(t, bad.Error, `step "resize" failed`)
	assert.Equal(t, map[string]string{"snap": "succeeded", "resize": "failed", "restore": "succeeded", "cleanup": "succeeded"}, states(bad))

	code, b := call("POST", "/v1/runbooks/safe-resize/runs", `{"inputs":{}}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, string(b), `"field":"inputs.instance"`)
	code, _ = call("POST", "/v1/runbooks/nope/runs", `{}`)
	assert.Equal(t, 404, code)
}
