package e2e

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/testutil"
)

// requireRedisServer skips the test without Debian's redis-server and
// redis-cli, except under CI=true, where it fails: CI must not pass by
// skipping.
func requireRedisServer(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (.ci/run installs Debian's redis-server)", bin)
			}
			t.Skipf("%s not installed", bin)
		}
	}
}

// startCluster runs a 3-master Redis Cluster on loopback ports with
// Debian's redis-server and redis-cli, and returns its node addresses.
func startCluster(t *testing.T) []string {
	t.Helper()
	requireRedisServer(t)
	var addrs []string
	for i := 0; i < 3; i++ {
		addr := freeAddr(t)
		port := addr[strings.LastIndex(addr, ":")+1:]
		dir := t.TempDir()
		cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", dir+"/nodes.conf", "--dir", dir, "--save", "", "--appendonly", "no")
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addrs = append(addrs, addr)
	}
	for _, a := range addrs {
		host, port, _ := strings.Cut(a, ":")
		testutil.WaitFor(t, 10*time.Second, "redis node "+a, func() bool {
			return exec.Command("redis-cli", "-h", host, "-p", port, "ping").Run() == nil
		})
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	require.NoError(t, err, string(out))
	host, port, _ := strings.Cut(addrs[0], ":")
	testutil.WaitFor(t, 20*time.Second, "cluster_state:ok", func() bool {
		out, _ := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
		return strings.Contains(string(out), "cluster_state:ok")
	})
	return addrs
}

// The purge pipeline end to end on a 3-master Redis Cluster, with two
// worker processes.
func TestPipelineOnRedisCluster(t *testing.T) {
	addrs := startCluster(t)
	url := "redis-cluster://" + strings.Join(addrs, ",")
	sim := ucdnsim.New(ucdnsim.Config{Token: simToken, WaitingFor: 200 * time.Millisecond, RunningFor: 200 * time.Millisecond})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := workerConfig(url, srv.URL)
	startWorker(t, cfg)
	startWorker(t, cfg)
	var ids []string
	for i := 0; i < 6; i++ {
		r := cli(t, "--redis", url, "submit", "cdn:purge", "--provider", "ucdn", "--params",
			fmt.Sprintf(`{"zone_name":"demo","zone_type":"objects","files":["/f%d.png"]}`, i), "--key", fmt.Sprintf("cluster-%d", i))
		require.Equal(t, 0, r.code, r.stderr)
		ids = append(ids, strings.TrimSpace(r.stdout))
	}
	for _, id := range ids {
		r := cli(t, "--redis", url, "wait", id, "--timeout", "60s", "--output", "json")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, opstore.StateSucceeded, decodeOp(t, r.stdout).State)
	}
	assert.Equal(t, 6, sim.CountCalls("POST", "/purge/zone"), "one purge per operation")
	r := cli(t, "--redis", url, "list", "--state", "succeeded", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, 6, strings.Count(r.stdout, `"kind": "cdn:purge"`))
}
