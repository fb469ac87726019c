package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/ops"
)

// A dry run through the worker's API answers the plan, with the write it
// would send; it stores nothing and sends no write. A paused account makes
// it say the operation would wait; bad params name the field.
func TestDryRunThroughTheAPI(t *testing.T) {
	base, w, _ := startHTTPWorkerProc(t)
	post := func(path, body string) (int, []byte) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
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
	purge := `{"task_type":"cdn:purge","provider":"ucdn","dry_run":true,"params":{"zone_name":"shop","zone_type":"objects","files":["/a.png"]}}`
	code, body := post("/v1/operations", purge)
	require.Equal(t, 200, code, string(body))
	var plan ops.Plan
	require.NoError(t, json.Unmarshal(body, &plan))
	assert.Equal(t, ops.PlanLaunch, plan.Outcome, string(body))
	assert.Equal(t, "ucdn:zone:shop", plan.Resource)
	require.Len(t, plan.Calls, 1)
	assert.Equal(t, "POST", plan.Calls[0].Method)
	assert.False(t, plan.Calls[0].Sent)
	assert.Contains(t, string(plan.Calls[0].Body), "/a.png")
	assert.Equal(t, 0, countOps(t, base), "nothing stored")

	code, body = post("/v1/providers/ucdn/accounts/default/pause", "")
	require.Equal(t, 200, code, string(body))
	code, body = post("/v1/operations", purge)
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &plan))
	assert.Equal(t, ops.PlanWait, plan.Outcome)
	assert.Contains(t, plan.Reason, "paused by an operator")

	code, body = post("/v1/operations", strings.Replace(purge, `"zone_type":"objects"`, `"zone_type":"nope"`, 1))
	assert.Equal(t, 400, code)
	assert.Contains(t, string(body), `"field":"params.zone_type"`)
	assert.Contains(t, w.out.String(), "audit: dry run")
}

// `enqueue submit --dry-run` has a worker of the provider run the dry run
// and prints its plan; nothing is submitted.
func TestDryRunThroughTheCLI(t *testing.T) {
	redisURL, sim, cfg, _ := redisSetup(t, ucdnsim.Config{})
	startWorker(t, cfg)
	r := cli(t, "--redis", redisURL, "--output", "json", "submit", "cdn:purge", "--provider", "ucdn", "--dry-run",
		"--params", `{"zone_name":"shop","zone_type":"objects","files":["/b.png"]}`)
	require.Equal(t, 0, r.code, r.stderr)
	var plan ops.Plan
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &plan), r.stdout)
	assert.Equal(t, ops.PlanLaunch, plan.Outcome)
	require.Len(t, plan.Calls, 1)
	assert.False(t, plan.Calls[0].Sent)
	assert.Empty(t, sim.Calls(), "the provider got no call")
	r = cli(t, "--redis", redisURL, "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "cdn:purge", "nothing submitted")

	r = cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn", "--dry-run",
		"--params", `{"zone_name":"shop","zone_type":"objects","files":["/b.png"]}`)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "would:   launch")
	assert.Contains(t, r.stdout, "would send: POST")
}
