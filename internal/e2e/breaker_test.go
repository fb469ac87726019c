package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/simkit"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/ops"
	"github.com/opsworker/opsworker/webhookverify"
)

// UCDN answers 503 to everything for a while (10 s; 60 s in make chaos),
// with purges in flight over two workers. The account's breaker opens
// after its failures, so during the outage the provider sees little more
// than the probes; no purge fails, and all finish after the recovery.
func TestChaosProviderOutageBreaker(t *testing.T) {
	outage := 10 * time.Second
	if chaosOps() >= 300 {
		outage = time.Minute
	}
	const coolDown = 2 * time.Second
	redisURL, sim, cfg, _ := redisSetup(t, ucdnsim.Config{WaitingFor: 200 * time.Millisecond, RunningFor: 200 * time.Millisecond})
	token := "        token: ${E2E_UCDN_TOKEN}\n"
	require.Contains(t, cfg, token)
	cfg = strings.Replace(cfg, token, token+fmt.Sprintf("        breaker: {failures: 5, window: 10s, cool_down: %s}\n", coolDown), 1)
	cfg = strings.Replace(cfg, "deadline: 2m}", "deadline: 5m}", 1)
	oncall := newHookServer(t, 200)
	secret := webhookverify.NewSecret()
	t.Setenv("E2E_WEBHOOK_SECRET", secret.String())
	cfg += fmt.Sprintf(`webhooks:
  secrets: ["${E2E_WEBHOOK_SECRET}"]
  ssrf:
    allow_cidrs: [127.0.0.0/8]
  subscriptions:
    - {name: oncall, url: %q, events: [provider.degraded, provider.recovered]}
`, oncall.srv.URL+"/hook")
	w1, w2 := startWorker(t, cfg), startWorker(t, cfg)

	sim.SetRates(simkit.Rates{Unavailable: 1})
	down := time.Now()
	n := max(chaosOps()/3, 20)
	ids := make([]string, n)
	for i := range n {
		r := cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn",
			"--params", fmt.Sprintf(`{"zone_name":"demo","zone_type":"objects","files":["/o%d.png"]}`, i))
		require.Equal(t, 0, r.code, r.stderr)
		ids[i] = strings.TrimSpace(r.stdout)
	}
	time.Sleep(time.Until(down.Add(outage)))
	sim.SetRates(simkit.Rates{})
	up := time.Now()

	rdb := redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBCLI})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, "opsworker", time.Hour)
	var done []*opstore.Operation
	testutil.WaitFor(t, 3*time.Minute, "every purge final", func() bool {
		var err error
		done, err = store.GetMany(context.Background(), ids)
		if err != nil || len(done) != n {
			return false
		}
		for _, op := range done {
			if !op.State.Terminal() {
				return false
			}
		}
		return true
	})
	for _, op := range done {
		assert.Equal(t, opstore.StateSucceeded, op.State, "%s: %s", op.ID, op.LastError)
	}
	during := 0
	for _, c := range sim.Calls() {
		if !c.At.Before(down) && c.At.Before(up) {
			during++
		}
	}
	probes := int(outage / coolDown)
	t.Logf("%d purges, outage %s: %d provider calls during it (about %d probes at one per %s cool-down), all done %s after recovery",
		n, outage, during, probes, coolDown, time.Since(up).Round(100*time.Millisecond))
	// The failures that open the breaker, calls already in flight from
	// both workers (4 each), and one probe per cool-down.
	assert.LessOrEqual(t, during, 5+8+probes+2, "the breaker holds the calls back")
	assert.Contains(t, w1.out.String()+w2.out.String(), "provider account circuit open", "the change is logged, by the replica that made it")

	// The on-call subscription heard of the outage once, and of its end
	// once (the breaker may open again on a failed probe: that is the
	// same outage, not a new event).
	testutil.WaitFor(t, 30*time.Second, "provider events delivered", func() bool { return len(oncall.got()) >= 2 })
	time.Sleep(2 * time.Second) // a duplicate would be on its way by now
	types := map[string]int{}
	var degradedAt []time.Time
	for _, h := range oncall.got() {
		// The degraded event arrived at the outage's start, minutes ago.
		require.NoError(t, webhookverify.Verify(h.header, h.body, 10*time.Minute, time.Now(), secret))
		var ev ops.Event
		require.NoError(t, json.Unmarshal(h.body, &ev))
		var data ops.ProviderHealth
		require.NoError(t, json.Unmarshal(ev.Data, &data))
		assert.Equal(t, "ucdn", data.Provider)
		types[ev.Type]++
		degradedAt = append(degradedAt, data.DegradedAt)
	}
	assert.Equal(t, map[string]int{ops.EventProviderDegraded: 1, ops.EventProviderRecovered: 1}, types)
	if len(degradedAt) == 2 {
		assert.Equal(t, degradedAt[0], degradedAt[1], "both name the same outage")
		assert.WithinDuration(t, down, degradedAt[0], outage, "it opened during the outage")
	}
}
