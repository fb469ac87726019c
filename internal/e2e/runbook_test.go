package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/testutil"
)

// runbookRig is a worker with the shipped runbooks (config/example.yaml),
// the simulated providers and the HTTP API.
type runbookRig struct {
	base, redisURL, cfg string
	proc                *workerProc
}

func startRunbookWorker(t *testing.T) *runbookRig {
	t.Helper()
	redisURL, _, cfg, _ := redisSetup(t, ucdnsim.Config{WaitingFor: 100 * time.Millisecond, RunningFor: 100 * time.Millisecond})
	cfg = withSection(t, cfg, "providers", `  leaseweb:
    simulate: true
    simulator: {task_duration: 100ms, cloud_step: 200ms}
    accounts:
      default: {}
  ionos:
    simulate: true
    simulator_duration: 300ms
    accounts:
      default: {}
`)
	var polling strings.Builder
	for _, k := range []string{"instance:snapshot", "instance:resize", "instance:snapshot_restore", "instance:snapshot_delete", "instance:reinstall",
		"server:rescue", "server:power_cycle", "cdn:invalidate", "cdn:distribution_ensure"} {
		fmt.Fprintf(&polling, "  %s: {initial: 100ms, multiplier: 1, max: 100ms, jitter: 0, deadline: 1m}\n", k)
	}
	cfg = withSection(t, cfg, "polling", polling.String())
	example, err := os.ReadFile("../../config/example.yaml")
	require.NoError(t, err)
	i := strings.Index(string(example), "\nrunbooks:\n")
	require.Positive(t, i, "example.yaml ships runbooks")
	addr := freeAddr(t)
	t.Setenv("E2E_RW", rwTok)
	cfg += fmt.Sprintf("http:\n  listen: %s\n  tokens:\n    - {name: ci, token: \"${E2E_RW}\", scope: write}\n", addr) + string(example[i+1:])
	proc := startWorker(t, cfg)
	return &runbookRig{base: "http://" + addr, redisURL: redisURL, cfg: cfg, proc: proc}
}

func (r *runbookRig) call(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, r.base+path, strings.NewReader(body))
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

// start starts a run through the API and waits until it ends.
func (r *runbookRig) run(t *testing.T, name, inputs string) runbook.Run {
	t.Helper()
	code, b := r.call(t, "POST", "/v1/runbooks/"+name+"/runs", `{"inputs":`+inputs+`,"labels":{"change":"CHG-9"}}`)
	require.Equal(t, 202, code, string(b))
	var run runbook.Run
	require.NoError(t, json.Unmarshal(b, &run))
	return r.await(t, run.ID, func(run runbook.Run) bool { return !runbook.Active(run.State) })
}

func (r *runbookRig) await(t *testing.T, id string, ok func(runbook.Run) bool) runbook.Run {
	t.Helper()
	var run runbook.Run
	testutil.WaitFor(t, time.Minute, "run "+id, func() bool {
		code, b := r.call(t, "GET", "/v1/runs/"+id, "")
		return code == 200 && json.Unmarshal(b, &run) == nil && ok(run)
	})
	return run
}

func runSteps(r runbook.Run) map[string]string {
	out := map[string]string{}
	for _, s := range r.Steps {
		out[s.ID] = s.State
	}
	return out
}

// The shipped runbooks end to end, with their failure paths: safe-resize
// (a resize the instance may not take restores the snapshot), cdn-rollout
// (purge and invalidation after the distribution; a failed distribution
// skips them), cloud-reinstall (after deleting a snapshot); and bad
// starts.
func TestShippedRunbooksThroughTheAPI(t *testing.T) {
	r := startRunbookWorker(t)
	const inst = `"instance":"ace712e9-a166-47f1-9065-4af0f7e7fce1"`
	ok := r.run(t, "safe-resize", `{`+inst+`,"type":"lsw.m3.xlarge"}`)
	assert.Equal(t, runbook.RunSucceeded, ok.State, ok.Error)
	assert.Equal(t, map[string]string{"snap": "succeeded", "resize": "succeeded", "cleanup": "succeeded"}, runSteps(ok))
	bad := r.run(t, "safe-resize", `{`+inst+`,"type":"lsw.zz.huge"}`)
	assert.Equal(t, runbook.RunFailed, bad.State)
	assert.Contains(t, bad.Error, `step "resize" failed`)
	assert.Equal(t, map[string]string{"snap": "succeeded", "resize": "failed", "restore": "succeeded", "cleanup": "succeeded"}, runSteps(bad))

	const dist = `"distribution":"9ba15778-16c4-543c-8775-e52acf4853f5"`
	roll := r.run(t, "cdn-rollout", `{`+dist+`,"domain":"cdn.example.com"}`)
	assert.Equal(t, runbook.RunSucceeded, roll.State, roll.Error)
	assert.Equal(t, map[string]string{"distribution": "succeeded", "purge": "succeeded", "invalidate": "succeeded"}, runSteps(roll))
	broken := r.run(t, "cdn-rollout", `{`+dist+`,"domain":"fail-cdn.example.com"}`)
	assert.Equal(t, runbook.RunFailed, broken.State)
	assert.Contains(t, broken.Error, `step "distribution" failed`)
	assert.Equal(t, map[string]string{"distribution": "failed", "purge": "skipped", "invalidate": "skipped"}, runSteps(broken))

	// A snapshot to delete, made by an operation of its own.
	cliRun := cli
	cli := cli(t, "--redis", r.redisURL, "--output", "json", "submit", "instance:snapshot", "--provider", "leaseweb", "--wait",
		"--params", `{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","name":"old"}`)
	require.Equal(t, 0, cli.code, cli.stderr)
	var snap struct {
		Result struct {
			SnapshotID string `json:"snapshot_id"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(cli.stdout), &snap))
	re := r.run(t, "cloud-reinstall", `{`+inst+`,"snapshot":"`+snap.Result.SnapshotID+`"}`)
	assert.Equal(t, runbook.RunSucceeded, re.State, re.Error)
	assert.Equal(t, map[string]string{"drop-snapshot": "succeeded", "reinstall": "succeeded"}, runSteps(re))
	// Its failure path: an image the provider does not know fails the
	// reinstall, after the snapshot is gone.
	snapAgain := cliRun(t, "--redis", r.redisURL, "--output", "json", "submit", "instance:snapshot", "--provider", "leaseweb", "--wait",
		"--params", `{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","name":"old2"}`)
	require.Equal(t, 0, snapAgain.code, snapAgain.stderr)
	require.NoError(t, json.Unmarshal([]byte(snapAgain.stdout), &snap))
	badImage := r.run(t, "cloud-reinstall", `{`+inst+`,"snapshot":"`+snap.Result.SnapshotID+`","image":"NO_SUCH_IMAGE_64BIT"}`)
	assert.Equal(t, runbook.RunFailed, badImage.State)
	assert.Contains(t, badImage.Error, `step "reinstall" failed`)
	assert.Equal(t, map[string]string{"drop-snapshot": "succeeded", "reinstall": "failed"}, runSteps(badImage))

	// A dry run checks the inputs and the first step at the provider, and
	// starts nothing.
	_, b := r.call(t, "GET", "/v1/runs?limit=200", "")
	var before struct{ Runs []runbook.Run }
	require.NoError(t, json.Unmarshal(b, &before))
	code, b := r.call(t, "POST", "/v1/runbooks/safe-resize/runs", `{"dry_run":true,"inputs":{`+inst+`}}`)
	require.Equal(t, 200, code, string(b))
	var plan runbook.RunPlan
	require.NoError(t, json.Unmarshal(b, &plan))
	require.Len(t, plan.Steps, 1)
	assert.Equal(t, "snap", plan.Steps[0].ID)
	require.NotNil(t, plan.Steps[0].Plan)
	assert.Equal(t, "launch", plan.Steps[0].Plan.Outcome)
	assert.Equal(t, []string{"resize"}, plan.Later)
	_, b = r.call(t, "GET", "/v1/runs?limit=200", "")
	var after struct{ Runs []runbook.Run }
	require.NoError(t, json.Unmarshal(b, &after))
	assert.Len(t, after.Runs, len(before.Runs), "a dry run starts no run")
	code, b = r.call(t, "POST", "/v1/runbooks/safe-resize/runs", `{"dry_run":true,"inputs":{}}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, string(b), `"field":"inputs.instance"`)

	code, b = r.call(t, "POST", "/v1/runbooks/safe-resize/runs", `{"inputs":{}}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, string(b), `"field":"inputs.instance"`)
	code, _ = r.call(t, "POST", "/v1/runbooks/nope/runs", `{}`)
	assert.Equal(t, 404, code)

	// A runbook given inline (POST /v1/runs) runs like a configured one;
	// an Idempotency-Key gives the same run back, 409 for other inputs.
	const adhoc = `{"name":"adhoc-rescue","inputs":[{"name":"server","type":"string","required":true}],` +
		`"steps":[{"id":"rescue","kind":"server:rescue","provider":"leaseweb","params":{"server_id":"{{ .inputs.server }}"}},` +
		`{"id":"check","gate":{"message":"Looked at it?","timeout":"30m"}},` +
		`{"id":"reboot","kind":"server:power_cycle","provider":"leaseweb","params":{"server_id":"{{ .inputs.server }}"}}]}`
	post := func(body, key string) (int, []byte) {
		req, _ := http.NewRequest("POST", r.base+"/v1/runs", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+rwTok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, b = post(`{"runbook":`+adhoc+`,"inputs":{"server":"12349"}}`, "adhoc-12349")
	require.Equal(t, 202, code, string(b))
	var first runbook.Run
	require.NoError(t, json.Unmarshal(b, &first))
	code, b = post(`{"runbook":`+adhoc+`,"inputs":{"server":"12349"}}`, "adhoc-12349")
	require.Equal(t, 200, code, string(b))
	var second runbook.Run
	require.NoError(t, json.Unmarshal(b, &second))
	assert.Equal(t, first.ID, second.ID, "the same key gives the same run")
	code, b = post(`{"runbook":`+adhoc+`,"inputs":{"server":"12350"}}`, "adhoc-12349")
	assert.Equal(t, 409, code, string(b))
	waiting := r.await(t, first.ID, func(run runbook.Run) bool { return run.State == runbook.RunWaitingGate })
	require.NotNil(t, waiting.Definition)
	assert.Equal(t, "adhoc-rescue", waiting.Runbook)
	code, b = r.call(t, "POST", "/v1/runs/"+first.ID+"/gates/check/continue", "")
	require.Equal(t, 200, code, string(b))
	adhocDone := r.await(t, first.ID, func(run runbook.Run) bool { return !runbook.Active(run.State) })
	assert.Equal(t, runbook.RunSucceeded, adhocDone.State, adhocDone.Error)
	assert.Equal(t, map[string]string{"rescue": "succeeded", "check": "succeeded", "reboot": "succeeded"}, runSteps(adhocDone))
	// Errors in an inline definition name its field.
	for body, field := range map[string]string{
		`{"inputs":{}}`: "runbook",
		`{"runbook":` + strings.Replace(adhoc, `"30m"`, `"soon"`, 1) + `}`:                                        "runbook.steps[1].gate.timeout",
		`{"runbook":` + strings.Replace(adhoc, `.inputs.server`, `.inputs.host`, 1) + `,"inputs":{"server":"1"}}`: "runbook.steps[rescue].params.server_id",
		`{"runbook":` + adhoc + `,"inputs":{"sever":"1"}}`:                                                        "inputs.sever",
	} {
		code, b = r.call(t, "POST", "/v1/runs", body)
		assert.Equal(t, 400, code, body)
		var p struct{ Field, Detail string }
		require.NoError(t, json.Unmarshal(b, &p))
		assert.Equal(t, field, p.Field, "%s: %s", body, p.Detail)
	}
}

// rescue-session from the CLI: the run waits at its gate, across a
// worker killed and started again, until `enqueue gate` continues it and
// it reboots; another run is canceled at its gate.
func TestRunbookGateFromTheCLI(t *testing.T) {
	r := startRunbookWorker(t)
	out := cli(t, "--redis", r.redisURL, "run", "rescue-session", "--input", "server=12345", "--label", "change=CHG-10")
	require.Equal(t, 0, out.code, out.stderr)
	id := strings.TrimSpace(out.stdout)
	waiting := r.await(t, id, func(run runbook.Run) bool { return run.State == runbook.RunWaitingGate })
	assert.Equal(t, "waiting", runSteps(waiting)["work-done"])
	require.NoError(t, r.proc.cmd.Process.Kill())
	<-r.proc.done
	r.proc = startWorker(t, r.cfg)
	waiting = r.await(t, id, func(run runbook.Run) bool { return true })
	assert.Equal(t, runbook.RunWaitingGate, waiting.State, "still waiting after the restart")
	show := cli(t, "--redis", r.redisURL, "runs", id)
	require.Equal(t, 0, show.code, show.stderr)
	assert.Contains(t, show.stdout, "Repair the server in rescue mode")
	gate := cli(t, "--redis", r.redisURL, "--as", "lead", "gate", id, "work-done", "continue")
	require.Equal(t, 0, gate.code, gate.stderr)
	done := r.await(t, id, func(run runbook.Run) bool { return !runbook.Active(run.State) })
	assert.Equal(t, runbook.RunSucceeded, done.State, done.Error)
	assert.Equal(t, "lead", done.Steps[1].DecidedBy.Name)
	events := cli(t, "--redis", r.redisURL, "runs", id, "--events")
	require.Equal(t, 0, events.code, events.stderr)
	assert.Regexp(t, `(?m)started .*cli unknown \(unauthenticated\)`, events.stdout)
	assert.Regexp(t, `(?m)gate_waiting +work-done `, events.stdout)
	assert.Regexp(t, `(?m)gate_decided +work-done +succeeded +cli lead \(unauthenticated\)`, events.stdout)
	assert.Regexp(t, `(?m)step_ended +reboot +succeeded +operation `, events.stdout)
	assert.Regexp(t, `(?m)finished +succeeded`, events.stdout)
	code, b := r.call(t, "GET", "/v1/runs/"+id+"/events", "")
	require.Equal(t, 200, code, string(b))
	var timeline struct{ Events []runbook.RunEvent }
	require.NoError(t, json.Unmarshal(b, &timeline))
	require.NotEmpty(t, timeline.Events)
	assert.Equal(t, runbook.EventStarted, timeline.Events[0].Type)
	assert.Equal(t, runbook.EventFinished, timeline.Events[len(timeline.Events)-1].Type)
	assert.Equal(t, runbook.RunSucceeded, timeline.Events[len(timeline.Events)-1].State)

	out = cli(t, "--redis", r.redisURL, "run", "rescue-session", "--input", "server=12346")
	require.Equal(t, 0, out.code, out.stderr)
	id = strings.TrimSpace(out.stdout)
	r.await(t, id, func(run runbook.Run) bool { return run.State == runbook.RunWaitingGate })
	cancel := cli(t, "--redis", r.redisURL, "cancel-run", id)
	require.Equal(t, 0, cancel.code, cancel.stderr)
	done = r.await(t, id, func(run runbook.Run) bool { return !runbook.Active(run.State) })
	assert.Equal(t, runbook.RunCanceled, done.State)
	assert.Equal(t, "skipped", runSteps(done)["reboot"])

	// Aborting at the gate ends the run canceled too, naming the gate.
	out = cli(t, "--redis", r.redisURL, "run", "rescue-session", "--input", "server=12347")
	require.Equal(t, 0, out.code, out.stderr)
	id = strings.TrimSpace(out.stdout)
	r.await(t, id, func(run runbook.Run) bool { return run.State == runbook.RunWaitingGate })
	abort := cli(t, "--redis", r.redisURL, "--as", "lead", "gate", id, "work-done", "abort")
	require.Equal(t, 0, abort.code, abort.stderr)
	done = r.await(t, id, func(run runbook.Run) bool { return !runbook.Active(run.State) })
	assert.Equal(t, runbook.RunCanceled, done.State)
	assert.Equal(t, `gate "work-done": aborted by cli lead (unauthenticated)`, done.Error)

	bad := cli(t, "--redis", r.redisURL, "run", "rescue-session")
	assert.Equal(t, 2, bad.code, "a required input is missing")
	assert.Contains(t, bad.stderr, "inputs.server: required")

	// A runbook in a file, run and followed to its end.
	file := filepath.Join(t.TempDir(), "reboot.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`name: reboot-twice
inputs:
  - {name: server, type: string, required: true}
steps:
  - {id: first, kind: server:power_cycle, provider: leaseweb, params: {server_id: "{{ .inputs.server }}"}}
  - {id: second, kind: server:power_cycle, provider: leaseweb, params: {server_id: "{{ .inputs.server }}"}}
`), 0o600))
	out = cli(t, "--redis", r.redisURL, "run", "--file", file, "--input", "server=12347", "--wait")
	require.Equal(t, 0, out.code, out.stderr)
	assert.Contains(t, out.stderr, "step second: succeeded")
	require.NoError(t, os.WriteFile(file, []byte(`name: broken
steps:
  - {id: a, kind: server:power_cycle, provider: leaseweb, params: {server_id: "{{ .steps.b.handle }}"}}
`), 0o600))
	out = cli(t, "--redis", r.redisURL, "run", "--file", file)
	assert.Equal(t, 2, out.code)
	assert.Contains(t, out.stderr, `runbook "broken" step "a" params.server_id: step "b" is not one this step runs after`)
}

// The console lists runs and shows one with its steps linked to their
// operations; a write token continues a gate from it.
func TestRunbookGateInTheConsole(t *testing.T) {
	r := startRunbookWorker(t)
	code, b := r.call(t, "POST", "/v1/runbooks/rescue-session/runs", `{"inputs":{"server":"12348"}}`)
	require.Equal(t, 202, code, string(b))
	var run runbook.Run
	require.NoError(t, json.Unmarshal(b, &run))
	r.await(t, run.ID, func(run runbook.Run) bool { return run.State == runbook.RunWaitingGate })

	ctx := newBrowser(t, 120*time.Second)
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(true)) }()
		}
	})
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(r.base+"/console/runs"),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.SendKeys("#token", rwTok, chromedp.ByQuery),
		chromedp.Submit("#token", chromedp.ByQuery),
	))
	// The sign-in lands on the operations page; then the runs.
	testutil.WaitFor(t, 20*time.Second, "signed in", func() bool {
		var at string
		return chromedp.Run(ctx, chromedp.Location(&at)) == nil && at == r.base+"/console/"
	})
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(r.base+"/console/runs")))
	testutil.WaitFor(t, 20*time.Second, "the runs page", func() bool {
		var body string
		return chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &body)) == nil && strings.Contains(body, run.ID)
	})
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(r.base+"/console/runs/"+run.ID), chromedp.WaitVisible("#detail", chromedp.ByQuery)))
	// The step graph: one box per step, drawn apart, in the run's states;
	// a step's box links to its operation.
	var nodes []struct {
		Step, Class, Href string
		X, Y, W, H        float64
	}
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll("#run-graph g.node")].map(g => {
		const r = g.querySelector("rect").getBoundingClientRect(), a = g.querySelector("a");
		return {Step: g.dataset.step, Class: g.getAttribute("class"), Href: a ? a.getAttribute("href") : "", X: r.x, Y: r.y, W: r.width, H: r.height};
	})`, &nodes)))
	require.Len(t, nodes, 3, "rescue, work-done, reboot")
	byStep := map[string]int{}
	for i, n := range nodes {
		byStep[n.Step] = i
		assert.Positive(t, n.W, "drawn: %s", n.Step)
		for _, o := range nodes[:i] {
			apart := n.X >= o.X+o.W || o.X >= n.X+n.W || n.Y >= o.Y+o.H || o.Y >= n.Y+n.H
			assert.True(t, apart, "%s and %s overlap", n.Step, o.Step)
		}
	}
	var timelineRows int
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll("#run-timeline tbody tr").length`, &timelineRows)))
	assert.GreaterOrEqual(t, timelineRows, 4, "started, the rescue started and ended, the gate waits")
	rescue, gateNode := nodes[byStep["rescue"]], nodes[byStep["work-done"]]
	assert.Contains(t, rescue.Class, "node-succeeded")
	assert.Equal(t, "/console/ops/"+waitingRun(t, r, run.ID).Steps[0].OperationID, rescue.Href)
	assert.Contains(t, gateNode.Class, "node-waiting")
	assert.Less(t, rescue.X, gateNode.X, "in order, left to right")
	var png []byte
	require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)))
	saveArtifact(t, "console-run-gate.png", png)
	require.NoError(t, chromedp.Run(ctx, chromedp.Click(`form[action$="/gates/work-done/continue"] button`, chromedp.ByQuery)))
	done := r.await(t, run.ID, func(run runbook.Run) bool { return !runbook.Active(run.State) })
	assert.Equal(t, runbook.RunSucceeded, done.State, done.Error)
	assert.Equal(t, "ci", done.Steps[1].DecidedBy.Name)
	testutil.WaitFor(t, 20*time.Second, "the page shows it", func() bool {
		var body string
		return chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &body)) == nil && strings.Contains(body, "by token ci")
	})
	require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)))
	saveArtifact(t, "console-run-done.png", png)
	// Clicking a step's box opens its operation.
	require.NoError(t, chromedp.Run(ctx, chromedp.Click(`#run-graph g.node[data-step="reboot"] a`, chromedp.ByQuery)))
	testutil.WaitFor(t, 20*time.Second, "the reboot's operation page", func() bool {
		var at string
		return chromedp.Run(ctx, chromedp.Location(&at)) == nil && at == r.base+"/console/ops/"+done.Steps[2].OperationID
	})
}

func waitingRun(t *testing.T, r *runbookRig, id string) runbook.Run {
	t.Helper()
	return r.await(t, id, func(run runbook.Run) bool { return run.State == runbook.RunWaitingGate })
}
