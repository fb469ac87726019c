package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/ops"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opsworker-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, name := range []string{"worker", "enqueue"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", name, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const simToken = "e2e-secret-token-0123456789abcdef"

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type workerProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// startWorker runs the worker binary with the config text and waits until
// it reports ready.
func startWorker(t *testing.T, cfg string) *workerProc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	// The tests' workers run simulated providers on a real Redis.
	cmd := exec.Command(filepath.Join(binDir, "worker"), "--dev", "--config", path)
	cmd.Env = append(os.Environ(), "E2E_UCDN_TOKEN="+simToken)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	w := &workerProc{cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { w.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-w.done
		}
		if t.Failed() {
			t.Logf("worker output:\n%s", out.String())
		}
	})
	testutil.WaitFor(t, 15*time.Second, "worker ready", func() bool {
		select {
		case err := <-w.done:
			t.Fatalf("worker exited early: %v\n%s", err, out.String())
		default:
		}
		return strings.Contains(out.String(), "worker ready")
	})
	return w
}

type result struct {
	code           int
	stdout, stderr string
}

func cli(t *testing.T, args ...string) result {
	t.Helper()
	return cliWithin(t, 2*time.Minute, args...)
}

// cliWithin is cli for a command that may take up to timeout.
func cliWithin(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "enqueue"), args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run enqueue: %v", err)
	}
	return result{code, so.String(), se.String()}
}

func decodeOp(t *testing.T, s string) opstore.Operation {
	t.Helper()
	var op opstore.Operation
	require.NoError(t, json.Unmarshal([]byte(s), &op), s)
	assertDeclaredShapes(t, &op)
	return op
}

// assertDeclaredShapes checks that what the worker stored as op's result
// and progress decodes into the types the ops package declares for its
// kind (its params type's NewResult, and ops.Progress), with no field
// those types lack: the public types and the OpenAPI document generated
// from them describe what executors really write.
func assertDeclaredShapes(t *testing.T, op *opstore.Operation) {
	t.Helper()
	strict := []jsonv2.Options{jsonv2.RejectUnknownMembers(true)}
	if hasJSON(op.Progress) {
		assert.NoError(t, jsonv2.Unmarshal(op.Progress, new(ops.Progress), strict...), "%s on %s: progress %s", op.Kind, op.Provider, op.Progress)
	}
	if !hasJSON(op.Result) {
		return
	}
	for _, pt := range ops.ParamsTypes() {
		if pt.Kind == op.Kind && pt.Provider == op.Provider {
			assert.NoError(t, jsonv2.Unmarshal(op.Result, pt.NewResult(), strict...), "%s on %s: result %s", op.Kind, op.Provider, op.Result)
			return
		}
	}
	t.Errorf("%s on %s is not a registered kind", op.Kind, op.Provider)
}

func hasJSON(b json.RawMessage) bool {
	s := strings.TrimSpace(string(b))
	return s != "" && s != "null"
}

// withSection inserts text (YAML lines indented under the key) at the top
// of a config's top-level section, failing the test if the section is
// missing, so a renamed key cannot silently leave a test on defaults.
func withSection(t *testing.T, cfg, section, text string) string {
	t.Helper()
	head := section + ":\n"
	i := 0
	if !strings.HasPrefix(cfg, head) {
		if i = strings.Index(cfg, "\n"+head); i < 0 {
			t.Fatalf("config has no top-level %q section", section)
		}
		i++
	}
	i += len(head)
	return cfg[:i] + text + cfg[i:]
}

// workerConfig is a worker config on redisURL with the UCDN client
// pointed at the simulator at simURL; tests add sections with withSection.
func workerConfig(redisURL, simURL string) string {
	return fmt.Sprintf(`log: {format: json, level: debug}
redis:
  url: %s
worker:
  concurrency: 4
  shutdown_timeout: 3s
  task_check_interval: 50ms
  delayed_task_check_interval: 100ms
polling:
  cdn:purge: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 2m}
providers:
  ucdn:
    base_url: %s/v4
    timeout: 5s
    accounts:
      default:
        token: ${E2E_UCDN_TOKEN}
`, redisURL, simURL)
}

// redisSetup gives a flushed real-Redis DB, the simulator on a loopback
// port and a worker config pointing at both.
func redisSetup(t *testing.T, sim ucdnsim.Config) (redisURL string, s *ucdnsim.Server, cfg string, insp *asynq.Inspector) {
	t.Helper()
	rdb := testutil.Redis(t, testutil.DBCLI)
	sim.Token = simToken
	s = ucdnsim.New(sim)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.ReleaseHangs)
	redisURL = fmt.Sprintf("redis://%s/%d", testutil.RedisAddr(t), testutil.DBCLI)
	cfg = workerConfig(redisURL, srv.URL)
	return redisURL, s, cfg, asynq.NewInspectorFromRedisClient(rdb)
}

const params = `{"zone_name":"demo","zone_type":"objects","files":["/a.png","https://cdn.example.com/b.css"]}`

func TestSubmitWaitSucceeds(t *testing.T) {
	redisURL, sim, cfg, _ := redisSetup(t, ucdnsim.Config{WaitingFor: 300 * time.Millisecond, RunningFor: 300 * time.Millisecond})
	w := startWorker(t, cfg)
	start := time.Now()
	r := cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn", "--params", params, "--wait", "--output", "json")
	elapsed := time.Since(start)
	require.Equal(t, 0, r.code, r.stderr)
	op := decodeOp(t, r.stdout)
	assert.Equal(t, opstore.StateSucceeded, op.State)
	assert.Len(t, op.Handle, 32)
	assert.Contains(t, r.stderr, "running")
	assert.Contains(t, r.stderr, "succeeded")
	assert.Equal(t, 1, sim.CountCalls("POST", "/purge/zone"))
	t.Logf("submit → succeeded in %s (%d polls)", elapsed, op.Polls)

	// status and list see it; text output too.
	r = cli(t, "--redis", redisURL, "status", op.ID)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "state:")
	assert.Contains(t, r.stdout, "succeeded")
	r = cli(t, "--redis", redisURL, "list", "--state", "succeeded", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, op.ID)

	assert.NotContains(t, w.out.String(), simToken, "the API token never reaches the logs")
}

func TestFailedOperationExitsOne(t *testing.T) {
	redisURL, _, cfg, _ := redisSetup(t, ucdnsim.Config{})
	startWorker(t, cfg)
	r := cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn", "--params",
		`{"zone_name":"demo","zone_type":"objects","files":["/`+ucdnsim.FailMarker+`"]}`, "--wait", "--output", "json")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Equal(t, opstore.StateFailed, decodeOp(t, r.stdout).State)
	assert.Contains(t, r.stderr, "ended failed")
}

func TestBadInputExitsTwoAndEnqueuesNothing(t *testing.T) {
	redisURL, _, _, insp := redisSetup(t, ucdnsim.Config{})
	tests := []struct {
		name  string
		args  []string
		field string
	}{
		{"NoZoneName", []string{"submit", "cdn:purge", "--provider", "ucdn", "--params", `{"zone_type":"objects","files":["/a.png"]}`}, "zone_name"},
		{"BadZoneType", []string{"submit", "cdn:purge", "--provider", "ucdn", "--params", `{"zone_name":"d","zone_type":"x","files":["/a.png"]}`}, "zone_type"},
		{"UnknownTaskType", []string{"submit", "cdn:nuke", "--provider", "ucdn", "--params", params}, "task_type"},
		{"NoProvider", []string{"submit", "cdn:purge", "--params", params}, "provider"},
		{"NoParams", []string{"submit", "cdn:purge", "--provider", "ucdn"}, "params"},
		{"BadJSON", []string{"submit", "cdn:purge", "--provider", "ucdn", "--params", `{"zone_name":`}, "params"},
		{"BadCallback", []string{"submit", "cdn:purge", "--provider", "ucdn", "--params", params, "--callback", "not-a-url"}, "callback_url"},
		{"BadOutput", []string{"--output", "yaml", "list"}, "--output"},
		{"UnknownFlag", []string{"submit", "cdn:purge", "--provder", "ucdn"}, "provder"},
		{"BadState", []string{"list", "--state", "done"}, "--state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, append([]string{"--redis", redisURL}, tc.args...)...)
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.field)
		})
	}
	queues, err := insp.Queues()
	require.NoError(t, err)
	assert.Empty(t, queues, "nothing was enqueued")
}

func TestNoRedisExitsThree(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // a port nobody listens on
	for _, args := range [][]string{
		{"submit", "cdn:purge", "--provider", "ucdn", "--params", params},
		{"status", "x"},
		{"list"},
	} {
		r := cli(t, append([]string{"--redis", "redis://" + addr + "/0"}, args...)...)
		assert.Equal(t, 3, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "cannot reach Redis")
	}
}

func TestIdempotencyKeyViaCLI(t *testing.T) {
	redisURL, sim, cfg, insp := redisSetup(t, ucdnsim.Config{})
	startWorker(t, cfg)
	a := cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn", "--params", params, "--key", "release-9", "--wait", "--output", "json")
	require.Equal(t, 0, a.code, a.stderr)
	b := cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn", "--params", params, "--key", "release-9")
	require.Equal(t, 0, b.code, b.stderr)
	assert.Equal(t, decodeOp(t, a.stdout).ID, strings.TrimSpace(b.stdout))
	assert.Contains(t, b.stderr, "nothing new was launched")
	c := cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn", "--params", `{"zone_name":"demo","zone_type":"objects","files":["/x"]}`, "--key", "release-9")
	assert.Equal(t, 2, c.code)
	assert.Contains(t, c.stderr, "idempotency_key")
	// A launch the refused submit had queued would still be in asynq now
	// or, once run, would have called the provider: look in that order.
	// The first operation's launch may still be finishing (active).
	first := tasks.LaunchTaskID(decodeOp(t, a.stdout).ID)
	for _, task := range queuedTasks(t, insp) {
		if task.Type == tasks.TypeCDNPurge {
			assert.True(t, task.ID == first && task.State == asynq.TaskStateActive, "a launch was queued: %s (%s)", task.ID, task.State)
		}
	}
	assert.Equal(t, 1, sim.CountCalls("POST", "/purge/zone"))
}

// queuedTasks lists the tasks of every queue in every state asynq keeps.
func queuedTasks(t *testing.T, insp *asynq.Inspector) []*asynq.TaskInfo {
	t.Helper()
	queues, err := insp.Queues()
	require.NoError(t, err)
	var all []*asynq.TaskInfo
	for _, q := range queues {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			insp.ListPendingTasks, insp.ListActiveTasks, insp.ListScheduledTasks,
			insp.ListRetryTasks, insp.ListArchivedTasks, insp.ListCompletedTasks,
		} {
			got, err := list(q, asynq.PageSize(1000))
			require.NoError(t, err)
			all = append(all, got...)
		}
	}
	return all
}

// The worker is SIGKILLed after the purge was launched and before it
// finished; a new worker finishes the operation without a second purge.
func TestCrashAfterLaunch(t *testing.T) {
	redisURL, sim, cfg, _ := redisSetup(t, ucdnsim.Config{WaitingFor: 2 * time.Second, RunningFor: 2 * time.Second})
	w := startWorker(t, cfg)
	r := cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn", "--params", params)
	require.Equal(t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)

	testutil.WaitFor(t, 10*time.Second, "purge launched and running", func() bool {
		st := cli(t, "--redis", redisURL, "status", id, "--output", "json")
		return st.code == 0 && decodeOp(t, st.stdout).State == opstore.StateRunning
	})
	require.Equal(t, 1, sim.CountCalls("POST", "/purge/zone"))
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
	<-w.done
	status, _ := sim.JobStatus(strings.TrimSpace(decodeOp(t, cli(t, "--redis", redisURL, "status", id, "--output", "json").stdout).Handle))
	assert.NotEqual(t, "finished", status, "killed before the job completed")

	startWorker(t, cfg)
	r = cli(t, "--redis", redisURL, "wait", id, "--timeout", "90s", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, opstore.StateSucceeded, decodeOp(t, r.stdout).State)
	assert.Equal(t, 1, sim.CountCalls("POST", "/purge/zone"), "exactly one purge call")
}

func TestGracefulShutdown(t *testing.T) {
	_, _, cfg, _ := redisSetup(t, ucdnsim.Config{})
	w := startWorker(t, cfg)
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-w.done:
		require.NoError(t, err, "exit code 0")
	case <-time.After(15 * time.Second):
		t.Fatal("worker did not exit after SIGTERM")
	}
	assert.Contains(t, w.out.String(), "shutting down")
	assert.Contains(t, w.out.String(), `"stopped"`)
}

// The embedded default: in-process Redis and simulator, nothing else.
func TestEmbeddedDefaults(t *testing.T) {
	t.Parallel()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		return ln.Addr().String()
	}
	addr, httpAddr := free(), free()
	dev, err := os.ReadFile("../../config/dev.yaml")
	require.NoError(t, err)
	cfg := strings.Replace(string(dev), "embedded_addr: 127.0.0.1:16379", "embedded_addr: "+addr, 1)
	cfg = strings.Replace(cfg, "listen: 127.0.0.1:8080", "listen: "+httpAddr, 1)
	require.Contains(t, cfg, "embedded_addr: "+addr)
	require.Contains(t, cfg, "listen: "+httpAddr)
	w := startWorker(t, cfg)
	assert.Contains(t, w.out.String(), "NOTHING IS PERSISTED")
	start := time.Now()
	r := cli(t, "--redis", "redis://"+addr+"/0", "submit", "cdn:purge", "--provider", "ucdn", "--params", `{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}`, "--wait", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, opstore.StateSucceeded, decodeOp(t, r.stdout).State)
	t.Logf("embedded default: submit → succeeded in %s", time.Since(start))

	// The tour: the dev token, printed once, opens the API.
	m := regexp.MustCompile(`export OPSWORKER_TOKEN=(dev-[0-9a-f]{32})\n`).FindStringSubmatch(w.out.String())
	require.NotNil(t, m, "make run prints a dev token")
	token, base := m[1], "http://"+httpAddr

	// Every example of the docs runs as written: the README's curl
	// submit, each kind's curl example in docs/kinds.md, and (make demo)
	// each kind's example through the CLI, to a final state.
	shell := func(cmdline string) string {
		cmdline = strings.ReplaceAll(cmdline, "http://127.0.0.1:8080", base)
		cmd := exec.Command("sh", "-c", cmdline)
		cmd.Env = append(os.Environ(), "OPSWORKER_TOKEN="+token)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", cmdline, out)
		return string(out)
	}
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	kinds, err := os.ReadFile("../../docs/kinds.md")
	require.NoError(t, err)
	// A curl command: its lines up to the first that does not end in "\".
	curlRe := regexp.MustCompile(`(?m)^curl -sS (?:.*\\\n)+.*$`)
	readmeCurls := curlRe.FindAllString(string(readme), -1)
	require.NotEmpty(t, readmeCurls)
	out := shell(readmeCurls[0])
	var created struct{ ID, State string }
	require.NoError(t, json.Unmarshal([]byte(out), &created), out)
	require.NotEmpty(t, created.ID, out)
	kindCurls := curlRe.FindAllString(string(kinds), -1)
	n := 0
	for _, c := range kindCurls {
		if strings.Contains(c, "<") || strings.Contains(c, "…") {
			continue // a placeholder to fill in
		}
		out := shell(c)
		var op struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(out), &op), "%s\n%s", c, out)
		require.NotEmpty(t, op.ID, "%s\n%s", c, out)
		n++
	}
	assert.GreaterOrEqual(t, n, len(tasks.Specs()), "a curl example per kind ran")
	// The examples on server 12345 take turns (one operation per server
	// at a time): about a minute in all, more on a busy machine.
	demo := cliWithin(t, 5*time.Minute, "--redis", "redis://"+addr+"/0", "demo", "--not-production-i-am-sure", "--timeout", "4m")
	require.Equal(t, 0, demo.code, demo.stderr)
	for _, s := range tasks.Specs() {
		assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(s.Kind)+` +`+s.Provider+` +(succeeded|failed|timed_out|canceled) `, demo.stdout, "make demo: %s on %s ended", s.Kind, s.Provider)
	}
	t.Logf("the docs' examples ran in %s:\n%s", time.Since(start), demo.stdout)
}

// runWorker runs the worker binary to its end with args and extra
// environment variables.
func runWorker(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "worker"), args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run worker: %v", err)
	}
	return result{code, so.String(), se.String()}
}

// checkConfigSecret is in the environment of TestCheckConfig's workers;
// no output may show any of it.
const checkConfigSecret = "Zq9vKx3WmT7pLr2Yh8Nd"

// --check-config refuses every config the worker refuses at start-up
// (without touching the network), with the same message, and neither
// shows a secret.
func TestCheckConfig(t *testing.T) {
	t.Parallel()
	// Redis is never reached: a config that passed the checks would make
	// the worker fail on connecting, with another message.
	base := `redis:
  url: redis://127.0.0.1:1/0
providers:
  ucdn:
    simulate: true
    accounts:
      default: {}
`
	schedule := func(fields string) string {
		return base + "schedules:\n  - {name: nightly, spec: '0 3 * * *', task_type: cdn:purge, provider: ucdn, " + fields + "}\n"
	}
	params := "params: {zone_name: z, zone_type: objects, files: [/a]}"
	tests := []struct {
		name, config, want string
	}{
		{"UnknownKey", "redis:\n  embeded: true\n", "redis.embeded: unknown key"},
		{"ScheduleParams", schedule("params: {zone_type: objects, files: [/a]}"), "schedules[0] (nightly): params.zone_name"},
		{"ScheduleKind", strings.Replace(schedule(params), "cdn:purge", "cdn:nuke", 1), "schedules[0] (nightly): "},
		{"ScheduleProvider", strings.Replace(schedule(params), "provider: ucdn", "provider: akamai", 1), "schedules[0] (nightly): "},
		{"ScheduleCallbackURL", schedule(params + ", callback_url: 'ftp://hooks.example.com/x'"), "schedules[0] (nightly): callback_url: "},
		{"ScheduleEveryZero", strings.Replace(schedule(params), "'0 3 * * *'", "'@every 0s'", 1), "schedules[0] (nightly).spec: @every 0s: interval must be at least 1s"},
		{"RedisURLBadPort", strings.Replace(base, "redis://127.0.0.1:1/0", "redis://:${E2E_SECRET}@127.0.0.1:notaport/0", 1), "redis.url: host 1: port must be a number"},
		{"RedisURLSentinel", strings.Replace(base, "redis://127.0.0.1:1/0", "redis-sentinel://:${E2E_SECRET}@127.0.0.1:1/0", 1), "redis.url: "},
		{"TokenInScope", base + "http:\n  tokens:\n    - {name: ci, token: api-token-0123456789, scope: \"${E2E_SECRET}\"}\n", "http.tokens[0].scope: must be read or write"},
		{"SecretsScalar", base + "webhooks:\n  secrets: ${E2E_SECRET}\n", "webhooks.secrets: "},
		{"WebhookSecret", base + "webhooks:\n  secrets: [nope]\n", "webhooks.secrets[0]: webhook secret"},
		{"LogLevel", base + "log:\n  level: verbose\n", "log.level: must be debug, info, warn or error"},
	}
	env := []string{"E2E_SECRET=" + checkConfigSecret}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "bad.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tc.config), 0o600))
			start := runWorker(t, env, "--dev", "--config", path)
			check := runWorker(t, env, "--dev", "--check-config", "--config", path)
			assert.NotEqual(t, 0, start.code, start.stdout+start.stderr)
			assert.NotEqual(t, 0, check.code, check.stdout+check.stderr)
			assert.Contains(t, start.stderr, tc.want)
			assert.Equal(t, start.stderr, check.stderr, "--check-config says what start-up says")
			for _, out := range []string{start.stdout, start.stderr, check.stdout, check.stderr} {
				for i := 0; i+6 <= len(checkConfigSecret); i++ {
					require.NotContains(t, out, checkConfigSecret[i:i+6])
				}
			}
		})
	}
	t.Run("Ok", func(t *testing.T) {
		t.Parallel()
		r := runWorker(t, nil, "--check-config", "--config", "../../config/dev.yaml")
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "config ok")
		// It does not connect to Redis: an unreachable one is fine.
		path := filepath.Join(t.TempDir(), "ok.yaml")
		require.NoError(t, os.WriteFile(path, []byte(base), 0o600))
		r = runWorker(t, nil, "--dev", "--check-config", "--config", path)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "config ok")
		// Without --dev, simulated providers on a real Redis are refused.
		r = runWorker(t, nil, "--check-config", "--config", path)
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "providers.ucdn.simulate: a simulated provider on a real Redis (redis.url) is refused unless the worker runs with --dev")
	})
}

// The Redis password appears neither in the "connected to redis" line nor
// in the error of a refused connection.
func TestRedisPasswordNotShown(t *testing.T) {
	t.Parallel()
	const pw = "Zq9vKx3WmT7pLr2Yh8Nd-redis"
	mr := miniredis.RunT(t)
	mr.RequireAuth(pw)
	cfg := strings.Replace(workerConfig("redis://:"+pw+"@"+mr.Addr()+"/0", "http://127.0.0.1:1"), "log: {format: json, level: debug}", "log: {format: json, level: info}", 1)
	w := startWorker(t, cfg)
	out := w.out.String()
	assert.Contains(t, out, "connected to redis")
	assert.NotContains(t, out, pw[:8])

	wrong := strings.Replace(cfg, pw, "Wr0ngPa55-Yh8NdQ4", 1)
	path := filepath.Join(t.TempDir(), "wrong.yaml")
	require.NoError(t, os.WriteFile(path, []byte(wrong), 0o600))
	r := runWorker(t, []string{"E2E_UCDN_TOKEN=" + simToken}, "--config", path)
	require.NotEqual(t, 0, r.code)
	// A fatal error after start-up is a log line in the configured
	// format (JSON here).
	assert.Regexp(t, `\{"level":"error","ts":"[^"]+","caller":"[^"]+","msg":"worker failed","error":"redis [^"]*"\}`, r.stderr)
	assert.NotContains(t, r.stdout+r.stderr, "Wr0ngPa55")
}
