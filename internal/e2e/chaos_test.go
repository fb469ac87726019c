package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/simkit"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/testutil"
)

// chaosOps is the number of operations per chaos test: a short form in
// `make test` (CI), CHAOS_OPS=300 in `make chaos`.
func chaosOps() int {
	if n, err := strconv.Atoi(os.Getenv("CHAOS_OPS")); err == nil && n > 0 {
		return n
	}
	return 40
}

// hookCounter receives every webhook and counts deliveries per webhook-id.
type hookCounter struct {
	mu   sync.Mutex
	seen map[string]int
	srv  *httptest.Server
}

func newHookCounter(t *testing.T) *hookCounter {
	h := &hookCounter{seen: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		h.seen[r.Header.Get("webhook-id")]++
		h.mu.Unlock()
		w.WriteHeader(204)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookCounter) counts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.seen))
	for k, v := range h.seen {
		out[k] = v
	}
	return out
}

type chaosRig struct {
	redisURL string
	cfg      string
	lw       *leasewebsim.Server
	ucdn     *ucdnsim.Server
	hooks    *hookCounter
	store    *opstore.Store
	insp     *asynq.Inspector
}

func newChaosRig(t *testing.T, step time.Duration) *chaosRig {
	redisURL, us, cfg, insp := redisSetup(t, ucdnsim.Config{WaitingFor: step, RunningFor: step})
	lw := leasewebsim.New(leasewebsim.Config{APIKey: lwKey, TaskDuration: step, CloudStep: step, CDNDuration: step})
	t.Cleanup(lw.Close)
	srv := httptest.NewServer(lw)
	t.Cleanup(srv.Close)
	hooks := newHookCounter(t)
	t.Setenv("E2E_LSW_KEY", lwKey)
	// Breakers that trip and recover within the test's time: a brown-out
	// fails 40% of calls, an outage all of them.
	breaker := "        breaker: {failures: 10, window: 5s, cool_down: 1s}\n"
	token := "        token: ${E2E_UCDN_TOKEN}\n"
	require.Contains(t, cfg, token)
	cfg = strings.Replace(cfg, token, token+breaker, 1)
	cfg = withSection(t, cfg, "providers", fmt.Sprintf(`  leaseweb:
    base_url: %s
    accounts:
      default:
        token: ${E2E_LSW_KEY}
`+breaker, srv.URL))
	// Every kind gets a deadline longer than the worst recovery the rig
	// provokes: a task whose outcome Redis never took (a pause) waits out
	// asynq's lease and its recoverer, about two minutes.
	purge := "cdn:purge: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 2m}"
	require.Contains(t, cfg, purge, "the base config's cdn:purge polling line changed")
	cfg = strings.Replace(cfg, purge, strings.Replace(purge, "deadline: 2m", "deadline: 10m", 1), 1)
	cfg = withSection(t, cfg, "polling", `  server:install: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  server:rescue: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  instance:snapshot: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  asg:scale: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  instance:resize: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  vps:snapshot: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  cdn:invalidate: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  server:hardware_scan: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  server:power_cycle: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  instance:snapshot_restore: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  asg:create: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  asg:delete: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
  instance:reinstall: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 10m}
`)
	cfg += fmt.Sprintf(`operations:
  busy_retry: 1s
  retry_backoff_max: 4s
  # A brown-out fails over half the calls: give launches room.
  launch_max_retry: 40
webhooks:
  retry_schedule: [1s, 1s, 2s, 5s, 10s]
  ssrf:
    allow_cidrs: [127.0.0.0/8]
  subscriptions:
    - {name: chaos, url: %q}
`, hooks.srv.URL+"/hook")
	rdb := redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBCLI})
	t.Cleanup(func() { rdb.Close() })
	return &chaosRig{redisURL: redisURL, cfg: cfg, lw: lw, ucdn: us, hooks: hooks, store: opstore.New(rdb, "opsworker", time.Hour), insp: insp}
}

type chaosOp struct {
	kind, provider, params, key string
	id                          string
}

// mix builds n operations across the kinds: purge (UCDN and Leaseweb),
// install, rescue, hardware scan, power cycle, instance and VPS
// snapshots, snapshot restore, reinstall, auto scaling group create,
// scale and delete, resize and Leaseweb CDN invalidation, each server job on its
// own server and each cloud operation on its own instance, VPS or group
// (added to the simulator).
func (r *chaosRig) mix(n int) []*chaosOp {
	var ops []*chaosOp
	for i := 0; i < n; i++ {
		var o *chaosOp
		switch i % 15 {
		case 0:
			o = &chaosOp{kind: "cdn:purge", provider: "ucdn", params: fmt.Sprintf(`{"zone_name":"demo","zone_type":"objects","files":["/c%d.png"]}`, i)}
		case 1:
			o = &chaosOp{kind: "server:install", provider: "leaseweb", params: fmt.Sprintf(`{"server_id":"%d","operating_system_id":"DEBIAN_11_64BIT","password":"Chaos-Passw0rd"}`, 10000+i)}
		case 2:
			o = &chaosOp{kind: "server:rescue", provider: "leaseweb", params: fmt.Sprintf(`{"server_id":"%d"}`, 20000+i)}
		case 3:
			id := uuid.NewString()
			r.lw.AddMachine(leasewebsim.Machine{ID: id, Type: "lsw.m3.large", State: "RUNNING"}, false)
			o = &chaosOp{kind: "instance:snapshot", provider: "leaseweb", params: fmt.Sprintf(`{"instance_id":%q,"name":"chaos-%d"}`, id, i)}
		case 4:
			id := uuid.NewString()
			one := 1
			r.lw.AddGroup(leasewebsim.Group{ID: id, Type: "MANUAL", Desired: &one, Instances: 1})
			o = &chaosOp{kind: "asg:scale", provider: "leaseweb", params: fmt.Sprintf(`{"asg_id":%q,"desired_amount":3}`, id)}
		case 5:
			id := uuid.NewString()
			r.lw.AddMachine(leasewebsim.Machine{ID: id, Type: "lsw.m3.large", State: "RUNNING", Allowed: []string{"lsw.m3.xlarge"}}, false)
			o = &chaosOp{kind: "instance:resize", provider: "leaseweb", params: fmt.Sprintf(`{"instance_id":%q,"type":"lsw.m3.xlarge"}`, id)}
		case 6:
			id := fmt.Sprint(30000000 + i)
			r.lw.AddMachine(leasewebsim.Machine{ID: id, Type: "vps.s1", State: "RUNNING"}, true)
			o = &chaosOp{kind: "vps:snapshot", provider: "leaseweb", params: fmt.Sprintf(`{"vps_id":%q,"name":"chaos-%d"}`, id, i)}
		case 7:
			o = &chaosOp{kind: "cdn:invalidate", provider: "leaseweb", params: fmt.Sprintf(`{"files":["https://cdn.example.com/c%d.png"]}`, i)}
		case 8:
			o = &chaosOp{kind: "server:hardware_scan", provider: "leaseweb", params: fmt.Sprintf(`{"server_id":"%d"}`, 40000+i)}
		case 9:
			o = &chaosOp{kind: "server:power_cycle", provider: "leaseweb", params: fmt.Sprintf(`{"server_id":"%d"}`, 50000+i)}
		case 10:
			id := uuid.NewString()
			r.lw.AddMachine(leasewebsim.Machine{ID: id, Type: "lsw.m3.large", State: "RUNNING"}, false)
			snap, _ := r.lw.AddSnapshot(id)
			o = &chaosOp{kind: "instance:snapshot_restore", provider: "leaseweb", params: fmt.Sprintf(`{"instance_id":%q,"snapshot_id":%q}`, id, snap)}
		case 11:
			o = &chaosOp{kind: "asg:create", provider: "leaseweb", params: fmt.Sprintf(`{"type":"MANUAL","instance_id":%q,"reference":"chaos-%d","desired_amount":1}`, leasewebsim.DefaultMachines[0].ID, i)}
		case 12:
			id := uuid.NewString()
			one := 1
			r.lw.AddGroup(leasewebsim.Group{ID: id, Type: "MANUAL", Desired: &one, Instances: 1})
			o = &chaosOp{kind: "asg:delete", provider: "leaseweb", params: fmt.Sprintf(`{"asg_id":%q}`, id)}
		case 13:
			o = &chaosOp{kind: "cdn:purge", provider: "leaseweb", params: fmt.Sprintf(`{"files":["https://cdn.example.com/p%d.png"]}`, i)}
		case 14:
			id := uuid.NewString()
			r.lw.AddMachine(leasewebsim.Machine{ID: id, Type: "lsw.m3.large", State: "RUNNING"}, false)
			o = &chaosOp{kind: "instance:reinstall", provider: "leaseweb", params: fmt.Sprintf(`{"instance_id":%q,"image_id":"DEBIAN_12_64BIT"}`, id)}
		}
		o.key = fmt.Sprintf("chaos-%d", i)
		ops = append(ops, o)
	}
	return ops
}

func (r *chaosRig) submitAll(t *testing.T, ops []*chaosOp) {
	for _, o := range ops {
		res := cli(t, "--redis", r.redisURL, "submit", o.kind, "--provider", o.provider, "--params", o.params, "--key", o.key)
		require.Equal(t, 0, res.code, res.stderr)
		o.id = strings.TrimSpace(res.stdout)
	}
}

func (r *chaosRig) waitTerminal(t *testing.T, ops []*chaosOp, timeout time.Duration) map[string]*opstore.Operation {
	ids := make([]string, len(ops))
	for i, o := range ops {
		ids[i] = o.id
	}
	var got []*opstore.Operation
	defer func() {
		if t.Failed() { // say which did not end, and where they stand
			for _, op := range got {
				if !op.State.Terminal() {
					t.Logf("not final: %s %s on %s: %s (status %q, polls %d, poll_seq %d, last error %q)", op.ID, op.Kind, op.Provider, op.State, op.Status, op.Polls, op.PollSeq, op.LastError)
				}
			}
		}
	}()
	testutil.WaitFor(t, timeout, "every operation final", func() bool {
		var err error
		got, err = r.store.GetMany(context.Background(), ids)
		if err != nil {
			return false
		}
		for _, op := range got {
			if !op.State.Terminal() {
				return false
			}
		}
		return len(got) == len(ids)
	})
	out := map[string]*opstore.Operation{}
	for _, op := range got {
		out[op.ID] = op
	}
	return out
}

// check: every operation succeeded, one launch per non-idempotent
// operation, every final event delivered at least once under a stable
// webhook-id. A power cycle or a restore whose launch answer was lost
// while the machine already read settled again may instead fail saying
// it was not sent twice (the guard against a second reboot or restore);
// either way the provider accepted at most one call.
func (r *chaosRig) check(t *testing.T, ops []*chaosOp, final map[string]*opstore.Operation) {
	want := map[string]bool{}
	guarded := 0
	for _, o := range ops {
		op := final[o.id]
		var p struct {
			ServerID   string `json:"server_id"`
			InstanceID string `json:"instance_id"`
			VPSID      string `json:"vps_id"`
			ASGID      string `json:"asg_id"`
			SnapshotID string `json:"snapshot_id"`
			Reference  string `json:"reference"`
		}
		require.NoError(t, json.Unmarshal([]byte(o.params), &p))
		switch o.kind {
		case "server:power_cycle":
			assert.LessOrEqual(t, r.lw.CountCalls("POST", "/servers/"+p.ServerID+"/powerCycle"), 1, "at most one power cycle of %s", p.ServerID)
		case "instance:snapshot_restore":
			assert.LessOrEqual(t, r.lw.CountCalls("PUT", "/publicCloud/v1/instances/"+p.InstanceID+"/snapshots/"+p.SnapshotID), 1, "at most one restore of %s", p.InstanceID)
		}
		if (o.kind == "server:power_cycle" || o.kind == "instance:snapshot_restore") && op.State == opstore.StateFailed && strings.Contains(op.LastError, "was not sent") {
			guarded++
			want["evt_"+o.id+"_failed"] = true
			continue
		}
		want["evt_"+o.id+"_succeeded"] = true
		if !assert.Equal(t, opstore.StateSucceeded, op.State, "%s %s: %s", o.kind, o.id, op.LastError) {
			continue
		}
		assertDeclaredShapes(t, op)
		// Every non-idempotent kind: the provider accepted its launch once.
		switch o.kind {
		case "server:hardware_scan":
			assert.Equal(t, 1, r.lw.Launches(p.ServerID, "hardwareScan"), "one hardware scan of server %s", p.ServerID)
		case "server:power_cycle":
			assert.Equal(t, 1, r.lw.CountCalls("POST", "/servers/"+p.ServerID+"/powerCycle"), "one power cycle of %s", p.ServerID)
		case "instance:snapshot_restore":
			assert.Equal(t, 1, r.lw.CountCalls("PUT", "/publicCloud/v1/instances/"+p.InstanceID+"/snapshots/"+p.SnapshotID), "one restore of %s", p.InstanceID)
		case "asg:create":
			assert.Equal(t, 1, r.lw.GroupsWithReference(p.Reference), "one group %s", p.Reference)
		case "instance:reinstall":
			assert.Equal(t, 1, r.lw.CountCalls("PUT", "/publicCloud/v1/instances/"+p.InstanceID+"/reinstall"), "one reinstall of %s", p.InstanceID)
		case "asg:delete":
			assert.False(t, r.lw.GroupExists(p.ASGID), "group %s deleted", p.ASGID)
		case "server:install", "server:rescue":
			typ := map[string]string{"server:install": "install", "server:rescue": "rescueMode"}[o.kind]
			assert.Equal(t, 1, r.lw.Launches(p.ServerID, typ), "%s on server %s launched once", o.kind, p.ServerID)
		case "instance:snapshot":
			assert.Equal(t, 1, r.lw.CountCalls("POST", "/publicCloud/v1/instances/"+p.InstanceID+"/snapshots"), "one snapshot of %s", p.InstanceID)
		case "vps:snapshot":
			assert.Equal(t, 1, r.lw.CountCalls("POST", "/publicCloud/v1/vps/"+p.VPSID+"/snapshots"), "one snapshot of VPS %s", p.VPSID)
		case "asg:scale":
			assert.Equal(t, 1, r.lw.CountCalls("PUT", "/publicCloud/v1/autoScalingGroups/"+p.ASGID), "one update of group %s", p.ASGID)
		case "instance:resize":
			assert.Equal(t, 1, r.lw.CountCalls("PUT", "/publicCloud/v1/instances/"+p.InstanceID), "one type change of %s", p.InstanceID)
		}
	}
	t.Logf("%d power cycles or restores refused a second call after a lost answer", guarded)
	testutil.WaitFor(t, 60*time.Second, "every final event delivered", func() bool {
		c := r.hooks.counts()
		for id := range want {
			if c[id] == 0 {
				return false
			}
		}
		return true
	})
	dups := 0
	for id, n := range r.hooks.counts() {
		if want[id] && n > 1 {
			dups += n - 1
		}
	}
	t.Logf("%d operations; %d duplicate deliveries of final events (at-least-once; receivers dedupe on webhook-id)", len(ops), dups)
}

// Crash loop: two workers, one SIGKILLed and restarted every 2-3 s while
// the operations run.
func TestChaosCrashLoop(t *testing.T) {
	r := newChaosRig(t, 700*time.Millisecond) // operations live for seconds
	startWorker(t, r.cfg)                     // the survivor
	ops := r.mix(chaosOps())
	stopKills := crashLoop(t, r.cfg)
	r.submitAll(t, ops)
	time.Sleep(10 * time.Second) // kills while operations run
	t.Logf("worker SIGKILLed %d times", stopKills())
	final := r.waitTerminal(t, ops, 4*time.Minute)
	r.check(t, ops, final)
}

// crashLoop starts a worker on cfg and SIGKILLs it every 2 s, starting a
// new one each time, until the returned stop, which says how many kills
// there were.
func crashLoop(t *testing.T, cfg string) (stop func() int) {
	t.Helper()
	victim := startWorker(t, cfg)
	done := make(chan struct{})
	kills := 0
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Second):
			}
			_ = victim.cmd.Process.Signal(syscall.SIGKILL)
			<-victim.done
			kills++
			select {
			case <-done:
				return
			default:
			}
			victim = startWorker(t, cfg)
		}
	})
	return func() int {
		close(done)
		wg.Wait()
		return kills
	}
}

// Provider brown-out: 40% 503, 10% 429 (Retry-After 1), 5% slow answers
// from every simulator. Every operation still succeeds; none fails for a
// retryable reason; calls per operation stay bounded.
func TestChaosProviderBrownout(t *testing.T) {
	r := newChaosRig(t, 150*time.Millisecond)
	rates := simkit.Rates{Unavailable: 0.4, TooMany: 0.1, Slow: 0.05, RetryAfter: "1", SlowDelay: 300 * time.Millisecond}
	r.lw.SetRates(rates)
	r.ucdn.SetRates(rates)
	startWorker(t, r.cfg)
	startWorker(t, r.cfg)
	ops := r.mix(chaosOps())
	r.submitAll(t, ops)
	final := r.waitTerminal(t, ops, 4*time.Minute)
	r.lw.SetRates(simkit.Rates{})
	r.ucdn.SetRates(simkit.Rates{})
	r.check(t, ops, final)
	calls := len(r.lw.Calls()) + len(r.ucdn.Calls())
	perOp := float64(calls) / float64(len(ops))
	t.Logf("provider calls per operation under brown-out: %.1f", perOp)
	assert.Less(t, perOp, 60.0, "calls per operation stay bounded")
}

// Poison input straight into asynq: archived at once with a reason, and
// the worker goes on serving.
func TestChaosPoisonInput(t *testing.T) {
	r := newChaosRig(t, 150*time.Millisecond)
	startWorker(t, r.cfg)
	client := asynq.NewClientFromRedisClient(redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBCLI}))
	defer client.Close()
	huge := `{"provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":[` + strings.Repeat(`"/x",`, 5000) + `"/y"]}}`
	poison := map[string]struct{ typ, payload, reason string }{
		"malformed": {"cdn:purge", `{"provider":`, "malformed payload"},
		"unknown":   {"cdn:teleport", `{}`, "unknown task type"},
		"oversized": {"cdn:purge", huge, "params.files: at most 1000 files"},
		"utf8":      {"cdn:purge", "{\"provider\":\"ucdn\",\"params\":{\"zone_name\":\"\xff\xfe\",\"zone_type\":\"objects\",\"files\":[\"/a\"]}}", "params.zone_name"},
		"notobject": {"server:install", `[1,2,3]`, "malformed payload"},
	}
	for id, p := range poison {
		_, err := client.Enqueue(asynq.NewTask(p.typ, []byte(p.payload)), asynq.TaskID("poison-"+id))
		require.NoError(t, err)
	}
	testutil.WaitFor(t, 30*time.Second, "all poison archived", func() bool {
		a, _ := r.insp.ListArchivedTasks("default")
		return len(a) == len(poison)
	})
	archived, err := r.insp.ListArchivedTasks("default")
	require.NoError(t, err)
	for _, a := range archived {
		p := poison[strings.TrimPrefix(a.ID, "poison-")]
		assert.Contains(t, a.LastErr, p.reason, a.ID)
		assert.Zero(t, a.Retried, "%s never retried", a.ID)
	}
	ops := r.mix(4)
	r.submitAll(t, ops)
	r.check(t, ops, r.waitTerminal(t, ops, time.Minute))
}

// Redis outage: a dedicated Redis is paused for 10 s mid-run. The workers
// stay up, /readyz says not ready meanwhile, and every operation
// completes.
func TestChaosRedisOutage(t *testing.T) {
	requireRedisServer(t)
	addr := freeAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	rs := exec.Command("redis-server", "--port", port, "--bind", host, "--save", "", "--appendonly", "no")
	require.NoError(t, rs.Start())
	t.Cleanup(func() { _ = rs.Process.Kill(); _ = rs.Wait() })
	testutil.WaitFor(t, 10*time.Second, "redis up", func() bool {
		return exec.Command("redis-cli", "-h", host, "-p", port, "ping").Run() == nil
	})
	r := newChaosRig(t, 150*time.Millisecond)
	url := "redis://" + addr + "/0"
	cfg := strings.Replace(r.cfg, r.redisURL, url, 1)
	// Two workers, each with its own HTTP listener; /readyz is asked of the first.
	httpAddr := freeAddr(t)
	startWorker(t, cfg+fmt.Sprintf("http:\n  listen: %s\n", httpAddr))
	startWorker(t, cfg+fmt.Sprintf("http:\n  listen: %s\n", freeAddr(t)))
	r.redisURL = url
	r.store = opstore.New(redis.NewClient(&redis.Options{Addr: addr}), "opsworker", time.Hour)
	ops := r.mix(chaosOps() / 2)
	r.submitAll(t, ops)
	require.NoError(t, exec.Command("redis-cli", "-h", host, "-p", port, "client", "pause", "10000", "ALL").Run())
	time.Sleep(2 * time.Second)
	resp, err := http.Get("http://" + httpAddr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "not ready while Redis is paused")
	// A task whose completion could not be written during the pause stays
	// active in asynq until its lease (30 s) has expired and asynq's
	// recoverer, which runs once a minute, retries it: up to about 2
	// minutes for those operations.
	r.check(t, ops, r.waitTerminal(t, ops, 4*time.Minute))
	resp, err = http.Get("http://" + httpAddr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "ready again")
}
