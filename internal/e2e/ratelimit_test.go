package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/testutil"
)

// Three worker processes on one Redis share the UCDN account's limit of
// 10 calls a second: over any 1 s window the simulator sees at most 11
// (the limit and its burst of 1), and every purge succeeds. CHAOS_OPS
// purges (40 in make test, 300 in make chaos).
func TestChaosSharedRateLimit(t *testing.T) {
	const perSecond = 10
	redisURL, sim, cfg, _ := redisSetup(t, ucdnsim.Config{WaitingFor: 300 * time.Millisecond, RunningFor: 300 * time.Millisecond})
	token := "        token: ${E2E_UCDN_TOKEN}\n"
	require.Contains(t, cfg, token)
	cfg = strings.Replace(cfg, token, token+fmt.Sprintf("        rate_limit: %d\n        burst: 1\n", perSecond), 1)
	for range 3 {
		startWorker(t, cfg)
	}
	n := chaosOps()
	start := time.Now()
	ids := make([]string, n)
	for i := range n {
		r := cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn",
			"--params", fmt.Sprintf(`{"zone_name":"demo","zone_type":"objects","files":["/r%d.png"]}`, i))
		require.Equal(t, 0, r.code, r.stderr)
		ids[i] = strings.TrimSpace(r.stdout)
	}
	rdb := redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBCLI})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, "opsworker", time.Hour)
	var ops []*opstore.Operation
	testutil.WaitFor(t, time.Duration(n)*time.Second+time.Minute, "every purge final", func() bool {
		var err error
		ops, err = store.GetMany(context.Background(), ids)
		if err != nil || len(ops) != n {
			return false
		}
		for _, op := range ops {
			if !op.State.Terminal() {
				return false
			}
		}
		return true
	})
	took := time.Since(start)
	for _, op := range ops {
		assert.Equal(t, opstore.StateSucceeded, op.State, "%s: %s", op.ID, op.LastError)
	}
	calls := sim.Calls()
	peak := 0
	for i, c := range calls {
		k := 0
		for _, d := range calls[i:] {
			if d.At.Sub(c.At) < time.Second {
				k++
			}
		}
		peak = max(peak, k)
	}
	ideal := time.Duration(float64(len(calls)) / perSecond * float64(time.Second))
	t.Logf("%d purges over 3 workers: %d provider calls (%.1f per purge), peak %d in any 1 s window (limit %d), %s in all against %s at the limit",
		n, len(calls), float64(len(calls))/float64(n), peak, perSecond, took.Round(100*time.Millisecond), ideal.Round(100*time.Millisecond))
	assert.LessOrEqual(t, peak, perSecond+1, "the limit and its burst, across three processes")
}
