package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/testutil"
)

// Runs under a crash loop: two workers, one SIGKILLed every 2 s while the
// runs go on (chaosOps()/3 runs: 13 in make test, 100 in make chaos).
// Each run of rescue → hardware scan → purge ends succeeded; each step's
// provider launch happened exactly once (the simulators count them) and
// none was skipped.
func TestChaosRunbookCrashLoop(t *testing.T) {
	r := newChaosRig(t, 300*time.Millisecond)
	cfg := r.cfg + `runbooks:
  - name: rescue-scan-purge
    inputs:
      - {name: server, type: string, required: true}
    steps:
      - id: rescue
        kind: server:rescue
        provider: leaseweb
        params: {server_id: "{{ .inputs.server }}"}
      - id: scan
        kind: server:hardware_scan
        provider: leaseweb
        params: {server_id: "{{ .inputs.server }}"}
      - id: purge
        kind: cdn:purge
        provider: ucdn
        params: {zone_name: demo, zone_type: objects, files: ["/run-{{ .inputs.server }}.png"]}
`
	startWorker(t, cfg) // the survivor
	n := max(chaosOps()/3, 10)
	stopKills := crashLoop(t, cfg)
	ids := make([]string, n)
	start := time.Now()
	for i := range n {
		res := cli(t, "--redis", r.redisURL, "run", "rescue-scan-purge", "--input", fmt.Sprintf("server=%d", 70000+i))
		require.Equal(t, 0, res.code, res.stderr)
		ids[i] = strings.TrimSpace(res.stdout)
	}
	time.Sleep(8 * time.Second) // kills while the runs go on
	kills := stopKills()
	runs := make([]runbook.Run, n)
	testutil.WaitFor(t, 4*time.Minute, "every run ended", func() bool {
		for i, id := range ids {
			out := cli(t, "--redis", r.redisURL, "--output", "json", "runs", id)
			if out.code != 0 || json.Unmarshal([]byte(out.stdout), &runs[i]) != nil || runbook.Active(runs[i].State) {
				return false
			}
		}
		return true
	})
	t.Logf("%d runs of 3 steps, worker SIGKILLed %d times, all ended after %s", n, kills, time.Since(start).Round(time.Second))
	purges := map[string]int{}
	for _, c := range r.ucdn.Calls() {
		if c.Method == "POST" && strings.Contains(c.Body, "/run-") {
			i := strings.Index(c.Body, "/run-")
			purges[c.Body[i:i+len("/run-70000")]]++
		}
	}
	dupPurges := 0
	for i, run := range runs {
		server := fmt.Sprint(70000 + i)
		assert.Equal(t, runbook.RunSucceeded, run.State, "run %s: %s", run.ID, run.Error)
		for _, s := range run.Steps {
			assert.Equal(t, "succeeded", s.State, "run %s step %s", run.ID, s.ID)
			assert.NotEmpty(t, s.OperationID, "run %s step %s has its operation", run.ID, s.ID)
		}
		assert.Equal(t, 1, r.lw.Launches(server, "rescueMode"), "one rescue of %s", server)
		assert.Equal(t, 1, r.lw.Launches(server, "hardwareScan"), "one scan of %s", server)
		assert.GreaterOrEqual(t, purges["/run-"+server], 1, "%s purged", server)
		if purges["/run-"+server] > 1 {
			dupPurges++
		}
	}
	// A purge is idempotent at UCDN: one whose answer a kill lost may be
	// sent again. Report it; the non-idempotent launches are asserted once.
	t.Logf("runs whose purge was sent more than once: %d of %d", dupPurges, n)
}
