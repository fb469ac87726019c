package e2e

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers/ionos/ionossim"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/testutil"
)

// The shipped runbooks under a crash loop: two workers, one SIGKILLed
// every 2 s while the runs go on (chaosOps()/3 runs: 13 in make test, 100
// in make chaos), half safe-resize (each on its own instance), half
// cdn-rollout (each on its own distribution and domain). Every run ends
// succeeded with every step's operation; each non-idempotent provider
// call (a snapshot, a type change) happened exactly once; the idempotent
// ones (the distribution's PUT, the purge, the invalidation) at least
// once; each run's final runbook.* event went out under one id.
func TestChaosRunbookCrashLoop(t *testing.T) {
	r := newChaosRig(t, 300*time.Millisecond)
	ionos := ionossim.New(ionossim.Config{Token: "ionos-chaos-token-0123", Duration: 300 * time.Millisecond})
	isrv := httptest.NewServer(ionos)
	t.Cleanup(isrv.Close)
	t.Setenv("E2E_IONOS_TOKEN", "ionos-chaos-token-0123")
	cfg := withSection(t, r.cfg, "providers", fmt.Sprintf("  ionos:\n    base_url: %s\n    accounts:\n      default:\n        token: ${E2E_IONOS_TOKEN}\n", isrv.URL))
	cfg = withSection(t, cfg, "polling", `  cdn:distribution_ensure: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  instance:snapshot_delete: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
`)
	sub := fmt.Sprintf("    - {name: chaos, url: %q}\n", r.hooks.srv.URL+"/hook")
	require.Contains(t, cfg, sub)
	cfg = strings.Replace(cfg, sub, sub+fmt.Sprintf("    - {name: runs, url: %q, events: [runbook.succeeded, runbook.failed, runbook.canceled]}\n", r.hooks.srv.URL+"/runs"), 1)
	example, err := os.ReadFile("../../config/example.yaml")
	require.NoError(t, err)
	i := strings.Index(string(example), "\nrunbooks:\n")
	require.Positive(t, i)
	cfg += string(example[i+1:])

	startWorker(t, cfg) // the survivor
	n := max(chaosOps()/3, 10)
	stopKills := crashLoop(t, cfg)
	type started struct{ id, runbook, instance, dist, domain string }
	runs := make([]started, n)
	start := time.Now()
	for i := range n {
		s := started{runbook: "safe-resize"}
		args := []string{"--redis", r.redisURL, "run"}
		if i%2 == 0 {
			s.instance = uuid.NewString()
			r.lw.AddMachine(leasewebsim.Machine{ID: s.instance, Type: "lsw.m3.large", State: "RUNNING", Allowed: []string{"lsw.m3.xlarge"}}, false)
			args = append(args, "safe-resize", "--input", "instance="+s.instance)
		} else {
			s.runbook, s.dist, s.domain = "cdn-rollout", uuid.NewString(), fmt.Sprintf("r%d.example.com", i)
			args = append(args, "cdn-rollout", "--input", "distribution="+s.dist, "--input", "domain="+s.domain)
		}
		res := cli(t, args...)
		require.Equal(t, 0, res.code, res.stderr)
		s.id = strings.TrimSpace(res.stdout)
		runs[i] = s
	}
	time.Sleep(8 * time.Second) // kills while the runs go on
	kills := stopKills()
	final := make([]runbook.Run, n)
	rdb := redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBCLI})
	t.Cleanup(func() { rdb.Close() })
	testutil.WaitFor(t, 4*time.Minute, "every run ended", func() bool {
		for i, s := range runs {
			run, err := runbook.ReadRun(t.Context(), rdb, "opsworker", s.id)
			if err != nil || runbook.Active(run.State) {
				return false
			}
			final[i] = *run
		}
		return true
	})
	// The CLI shows the same.
	out := cli(t, "--redis", r.redisURL, "--output", "json", "runs", runs[0].id)
	require.Equal(t, 0, out.code, out.stderr)
	var shown runbook.Run
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &shown))
	assert.Equal(t, final[0].State, shown.State)
	t.Logf("%d runs of safe-resize and cdn-rollout, worker SIGKILLed %d times, all ended after %s", n, kills, time.Since(start).Round(time.Second))
	repeated := 0
	for i, s := range runs {
		run := final[i]
		assert.Equal(t, runbook.RunSucceeded, run.State, "run %s (%s): %s", run.ID, s.runbook, run.Error)
		for _, st := range run.Steps {
			assert.Equal(t, "succeeded", st.State, "run %s step %s", run.ID, st.ID)
			assert.NotEmpty(t, st.OperationID, "run %s step %s has its operation", run.ID, st.ID)
		}
		count := func(c int) int {
			if c > 1 {
				repeated++
			}
			return c
		}
		if s.runbook == "safe-resize" {
			assert.Len(t, run.Steps, 3, "snap, resize, cleanup")
			inst := "/publicCloud/v1/instances/" + s.instance
			assert.Equal(t, 1, r.lw.CountCalls("POST", inst+"/snapshots"), "one snapshot of %s", s.instance)
			typeChanges := 0
			for _, c := range r.lw.Calls() {
				if c.Method == "PUT" && c.Path == inst {
					typeChanges++
				}
			}
			assert.Equal(t, 1, typeChanges, "one type change of %s", s.instance)
			assert.GreaterOrEqual(t, count(r.lw.CountCalls("DELETE", inst+"/snapshots/")), 1, "the snapshot of %s deleted", s.instance)
			continue
		}
		assert.Len(t, run.Steps, 3, "distribution, purge, invalidate")
		assert.GreaterOrEqual(t, count(ionos.CountCalls("PUT", "/distributions/"+s.dist)), 1, "distribution %s ensured", s.dist)
		invalidations := 0
		for _, c := range r.lw.Calls() {
			if c.Method == "POST" && c.Path == "/cdn/v2/invalidations" && strings.Contains(c.Body, s.domain+"/") {
				invalidations++
			}
		}
		assert.GreaterOrEqual(t, count(invalidations), 1, "%s invalidated", s.domain)
	}
	// Idempotent calls whose answer a kill lost may be sent again.
	t.Logf("idempotent steps whose call was sent more than once: %d", repeated)
	testutil.WaitFor(t, 60*time.Second, "each run's final event delivered", func() bool {
		c := r.hooks.counts()
		for _, s := range runs {
			if c["evt_run_"+s.id+"_succeeded"] == 0 {
				return false
			}
		}
		return true
	})
	c := r.hooks.counts()
	for _, s := range runs {
		for _, other := range []string{"failed", "canceled"} {
			assert.Zero(t, c["evt_run_"+s.id+"_"+other], "run %s: one final event", s.id)
		}
	}
}
