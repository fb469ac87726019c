package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/testutil"
)

// A mixed fleet: one worker serves UCDN and Leaseweb, one UCDN alone.
// Installs and purges all succeed (the UCDN-only worker never takes an
// install: it does not listen on the Leaseweb queue). With the Leaseweb
// worker gone, installs wait in queued, the CLI saying why, and finish
// once it is back.
func TestMixedFleetNeverFailsUnservedWork(t *testing.T) {
	redisURL, _, cfg, _ := redisSetup(t, ucdnsim.Config{WaitingFor: 100 * time.Millisecond, RunningFor: 100 * time.Millisecond})
	lw := leasewebsim.New(leasewebsim.Config{APIKey: lwKey, TaskDuration: 50 * time.Millisecond})
	t.Cleanup(lw.Close)
	srv := httptest.NewServer(lw)
	t.Cleanup(srv.Close)
	t.Setenv("E2E_LSW_KEY", lwKey)
	purgeOnly := cfg + "operations:\n  busy_retry: 1s\n"
	full := withSection(t, purgeOnly, "providers", fmt.Sprintf(`  leaseweb:
    base_url: %s
    accounts:
      default:
        token: ${E2E_LSW_KEY}
`, srv.URL))
	full = withSection(t, full, "polling", "  server:install: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 2m}\n")
	capable := startWorker(t, full)
	startWorker(t, purgeOnly)

	rdb := redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBCLI})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, "opsworker", time.Hour)
	submit := func(kind, params string) string {
		r := cli(t, "--redis", redisURL, "submit", kind, "--provider", map[bool]string{true: "leaseweb", false: "ucdn"}[kind == "server:install"], "--params", params)
		require.Equal(t, 0, r.code, r.stderr)
		return strings.TrimSpace(r.stdout)
	}
	install := func(i int) string {
		return submit("server:install", fmt.Sprintf(`{"server_id":"%d","operating_system_id":"DEBIAN_11_64BIT"}`, 60000+i))
	}
	final := func(ids []string, within time.Duration) []*opstore.Operation {
		var ops []*opstore.Operation
		testutil.WaitFor(t, within, "every operation final", func() bool {
			var err error
			ops, err = store.GetMany(context.Background(), ids)
			if err != nil || len(ops) != len(ids) {
				return false
			}
			for _, op := range ops {
				if !op.State.Terminal() {
					return false
				}
			}
			return true
		})
		return ops
	}
	n := max(chaosOps()/4, 10)
	var ids []string
	for i := range n {
		ids = append(ids, install(i), submit("cdn:purge", fmt.Sprintf(`{"zone_name":"demo","zone_type":"objects","files":["/m%d.png"]}`, i)))
	}
	for _, op := range final(ids, 2*time.Minute) {
		assert.Equal(t, opstore.StateSucceeded, op.State, "%s %s: %s", op.Kind, op.ID, op.LastError)
	}

	require.NoError(t, capable.cmd.Process.Signal(syscall.SIGTERM))
	<-capable.done
	waiting := []string{install(1000), install(1001)}
	// Nobody takes them from the Leaseweb queue; the stopped worker
	// withdrew its accounts, so after the grace the CLI says why.
	testutil.WaitFor(t, 30*time.Second, "installs wait, saying why", func() bool {
		for _, id := range waiting {
			r := cli(t, "--redis", redisURL, "status", id)
			if r.code != 0 || !strings.Contains(r.stdout, "queued") ||
				!strings.Contains(r.stdout, `waiting: no running worker serves account "default" of leaseweb (served now: ucdn/default)`) {
				return false
			}
		}
		return true
	})
	ops, err := store.GetMany(context.Background(), waiting)
	require.NoError(t, err)
	for _, op := range ops {
		assert.Zero(t, op.Attempts, "no worker took %s", op.ID)
	}
	startWorker(t, full)
	for _, op := range final(waiting, time.Minute) {
		assert.Equal(t, opstore.StateSucceeded, op.State, "%s: %s", op.ID, op.LastError)
	}
}
