package e2e

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/simkit"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
)

const lwKey = "e2e-leaseweb-key-0123456789"

// The worker is SIGKILLed right after the simulator accepted the install
// and before the worker learned the job's uuid. The restarted worker must
// adopt that job: exactly one install, and the operation succeeds. No
// line of any output carries the root password.
func TestInstallKilledAfterProviderAccepted(t *testing.T) {
	redisURL, _, cfg, _ := redisSetup(t, ucdnsim.Config{})
	lw := leasewebsim.New(leasewebsim.Config{APIKey: lwKey, TaskDuration: 300 * time.Millisecond})
	t.Cleanup(lw.Close)
	srv := httptest.NewServer(lw)
	t.Cleanup(srv.Close)
	accepted := make(chan struct{}, 1)
	lw.OnHeldEffect(func(simkit.Call) { accepted <- struct{}{} })
	lw.Inject(simkit.Fault{Kind: simkit.FaultHoldAfterEffect, Method: "POST", PathPrefix: "/servers/4242/install"})
	t.Setenv("E2E_LSW_KEY", lwKey)
	cfg = withSection(t, cfg, "providers", fmt.Sprintf(`  leaseweb:
    base_url: %s
    timeout: 30s
    accounts:
      default:
        token: ${E2E_LSW_KEY}
`, srv.URL))
	cfg = withSection(t, cfg, "polling", "  server:install: {initial: 200ms, multiplier: 1, max: 500ms, jitter: 0, deadline: 5m}\n")

	w := startWorker(t, cfg)
	const password = "E2e-Root-Passw0rd"
	params := `{"server_id":"4242","operating_system_id":"DEBIAN_11_64BIT","password":"` + password + `","post_install_script":"#!/bin/sh\necho ok"}`
	r := cli(t, "--redis", redisURL, "submit", "server:install", "--provider", "leaseweb", "--params", params)
	require.Equal(t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)

	select {
	case <-accepted:
	case <-time.After(15 * time.Second):
		t.Fatalf("the install never reached the simulator\n%s", w.out.String())
	}
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
	<-w.done
	lw.ReleaseHangs()
	st := decodeOp(t, cli(t, "--redis", redisURL, "status", id, "--output", "json").stdout)
	require.Equal(t, opstore.StateLaunching, st.State, "killed between the provider's acceptance and saving the job")
	require.Empty(t, st.Handle)

	// asynq hands the killed worker's in-flight launch task to another
	// worker once its lease expires (about a minute).
	w2 := startWorker(t, cfg)
	wr := cli(t, "--redis", redisURL, "wait", id, "--timeout", "120s", "--output", "json")
	require.Equal(t, 0, wr.code, wr.stderr+w2.out.String())
	done := decodeOp(t, wr.stdout)
	assert.Equal(t, opstore.StateSucceeded, done.State)
	assert.Equal(t, 1, lw.Launches("4242", "install"), "exactly one install")
	assert.Equal(t, 1, lw.CountCalls("POST", "/servers/4242/install"))
	assert.Contains(t, w2.out.String(), "adopted the job an interrupted launch created")

	text := cli(t, "--redis", redisURL, "status", id)
	for name, out := range map[string]string{"first worker": w.out.String(), "second worker": w2.out.String(), "status json": wr.stdout, "status text": text.stdout, "wait stderr": wr.stderr} {
		assert.NotContains(t, out, password, name)
		assert.NotContains(t, out, lwKey, name)
	}
}
