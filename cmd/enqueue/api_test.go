package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsworker/opsworker/internal/testutil/apitest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

const (
	writeSecret = "cli-write-secret-0123456789"
	otherSecret = "cli-other-secret-0123456789"
	readSecret  = "cli-read-secret-0123456789"
)

// apiRig is the worker's real HTTP API on a miniredis-backed store, with
// a runbook coordinator whose runs advance and no provider worker:
// operations stay queued unless the test moves them.
type apiRig struct {
	url   string
	redis string
	store *opstore.Store

	mu  sync.Mutex
	all bytes.Buffer // everything the CLI printed, for the leak check
}

func startAPI(t *testing.T) *apiRig {
	t.Helper()
	isolateCLI(t)
	srv := apitest.Start(t, apitest.Options{
		Tokens: []api.Token{{Name: "ci", Secret: writeSecret, Scope: api.ScopeWrite}, {Name: "lead", Secret: otherSecret, Scope: api.ScopeWrite},
			{Name: "ro", Secret: readSecret, Scope: api.ScopeRead}},
		// An operation labeled hold=yes waits for its approval.
		Hold: func(ctx context.Context, store *opstore.Store, op *opstore.Operation) (bool, error) {
			if op.Labels["hold"] != "yes" {
				return false, nil
			}
			_, err := store.Update(ctx, op, opstore.Change{To: opstore.StatePendingApproval})
			return err == nil, err
		}})
	r := &apiRig{url: srv.URL, redis: srv.RedisURL, store: srv.Store}
	t.Cleanup(func() {
		for _, s := range []string{writeSecret, otherSecret, readSecret} {
			assert.NotContains(t, r.all.String(), s, "a token in the CLI's output")
		}
	})
	return r
}

// isolateCLI gives the CLI an empty environment and contexts file.
func isolateCLI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	for _, k := range []string{"OPSWORKER_API_URL", "OPSWORKER_TOKEN", "OPSWORKER_REDIS_URL", "OPSWORKER_CONTEXT", "OPSWORKER_OPS_TOKEN"} {
		t.Setenv(k, "")
	}
	return dir
}

// sh runs the CLI against the API with token (env OPSWORKER_TOKEN).
func (r *apiRig) sh(t *testing.T, token string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("OPSWORKER_TOKEN", token)
	var out, errOut bytes.Buffer
	code := run(t.Context(), append([]string{"--api", r.url}, args...), strings.NewReader(""), &out, &errOut)
	r.mu.Lock()
	r.all.WriteString(out.String() + errOut.String())
	r.mu.Unlock()
	return code, out.String(), errOut.String()
}

const purgeParams = `{"zone_name":"shop","zone_type":"objects","files":["/a.png"]}`

func TestAPIModeSubmitStatusListCancel(t *testing.T) {
	r := startAPI(t)
	code, out, errOut := r.sh(t, writeSecret, "submit", "cdn:purge", "--provider", "ucdn", "--params", purgeParams, "--label", "change=CHG-7", "--key", "k-1")
	require.Equal(t, 0, code, errOut)
	id := strings.TrimSpace(out)
	op, err := r.store.Get(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, &ops.Actor{Name: "ci", Via: ops.ViaAPI, Authenticated: true}, op.SubmittedBy, "the token, not --as, submitted it")
	assert.Equal(t, "CHG-7", op.Labels["change"])

	// The same key: the same operation, said on stderr.
	code, out, errOut = r.sh(t, writeSecret, "submit", "cdn:purge", "--provider", "ucdn", "--params", purgeParams, "--label", "change=CHG-7", "--key", "k-1")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, id, strings.TrimSpace(out))
	assert.Contains(t, errOut, "nothing new was launched")
	// The API's own validation names the field.
	code, _, errOut = r.sh(t, writeSecret, "submit", "cdn:purge", "--provider", "ucdn", "--params", purgeParams, "--callback", "ftp://x.example.com/")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "callback")

	code, out, errOut = r.sh(t, readSecret, "status", id)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "state:")
	assert.Contains(t, out, "labels:           change=CHG-7")
	code, out, errOut = r.sh(t, readSecret, "-o", "json", "status", "--events", id)
	require.Equal(t, 0, code, errOut)
	var st struct {
		ID     string              `json:"id"`
		Events []ops.TimelineEvent `json:"events"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, id, st.ID)
	require.NotEmpty(t, st.Events)
	code, out, _ = r.sh(t, readSecret, "history", id)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "submitted")
	code, _, errOut = r.sh(t, readSecret, "status", "nosuch")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "operation nosuch: not found")

	// Five more, then list pages through the API's cursors.
	for i := range 5 {
		code, _, errOut = r.sh(t, writeSecret, "submit", "cdn:purge", "--provider", "ucdn", "--params", strings.Replace(purgeParams, "/a.png", "/"+string(rune('b'+i)), 1))
		require.Equal(t, 0, code, errOut)
	}
	code, out, errOut = r.sh(t, readSecret, "list", "--limit", "2", "-o", "jsonl")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, 2, strings.Count(out, "\n"), out)
	require.True(t, strings.HasPrefix(errOut, "next_cursor: "), errOut)
	cursor := strings.Fields(errOut)[1]
	code, out, errOut = r.sh(t, readSecret, "list", "--cursor", cursor, "--all", "-o", "jsonl")
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, errOut, "to the end: no cursor")
	seen := 2
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var o ops.Operation
		require.NoError(t, json.Unmarshal(sc.Bytes(), &o), "each line one object: %s", sc.Text())
		seen++
	}
	assert.Equal(t, 6, seen)
	code, out, _ = r.sh(t, readSecret, "list", "--all", "--limit", "4", "-o", "json")
	require.Equal(t, 0, code)
	var list []ops.Operation
	require.NoError(t, json.Unmarshal([]byte(out), &list), "-o json stays an array")
	assert.Len(t, list, 4)
	code, out, _ = r.sh(t, readSecret, "list", "--label", "change=CHG-7")
	require.Equal(t, 0, code)
	assert.Equal(t, 2, strings.Count(out, "\n"), "a header and the labeled one:\n%s", out)
	code, _, errOut = r.sh(t, readSecret, "list", "--cursor", "bogus")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "(field cursor)")

	// A read token cannot cancel; a write token can, and --wait exits 0
	// when the operation ends canceled, 1 when it ended otherwise.
	code, _, errOut = r.sh(t, readSecret, "cancel", id)
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "lacks scope write")
	for _, tc := range []struct {
		end  opstore.State
		code int
	}{{opstore.StateCanceled, 0}, {opstore.StateSucceeded, 1}} {
		code, out, errOut = r.sh(t, writeSecret, "submit", "server:install", "--provider", "leaseweb",
			"--params", `{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT"}`)
		require.Equal(t, 0, code, errOut)
		sid := strings.TrimSpace(out)
		go func() {
			// The worker's side: the cancel is taken, the operation ends.
			time.Sleep(300 * time.Millisecond)
			op, err := r.store.Get(context.Background(), sid)
			if err == nil {
				_, _ = r.store.Update(context.Background(), op, opstore.Change{To: tc.end})
			}
		}()
		code, _, errOut = r.sh(t, writeSecret, "cancel", sid, "--wait", "--timeout", "10s")
		assert.Equal(t, tc.code, code, errOut)
		assert.Contains(t, errOut, "cancel of "+sid+" requested")
		assert.Contains(t, errOut, string(tc.end))
		code, _, errOut = r.sh(t, writeSecret, "cancel", sid)
		assert.Equal(t, exitBadInput, code)
		assert.Contains(t, errOut, "already ended "+string(tc.end))
	}
	// wait follows through the API too.
	code, _, errOut = r.sh(t, readSecret, "wait", id, "--timeout", "300ms")
	assert.Equal(t, exitTimeout, code, errOut)
	assert.Contains(t, errOut, "still queued")
}

// The scopes apply: a read token cannot submit (exit 2, the scope named);
// a missing or wrong token is exit 2; an unreachable API exit 3; --token
// is refused without echoing it.
func TestAPIModeTokens(t *testing.T) {
	r := startAPI(t)
	code, out, errOut := r.sh(t, readSecret, "submit", "cdn:purge", "--provider", "ucdn", "--params", purgeParams)
	assert.Equal(t, exitBadInput, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "the token lacks scope write")
	ids, err := r.store.List(t.Context(), opstore.Filter{})
	require.NoError(t, err)
	assert.Empty(t, ids, "nothing was submitted")

	code, _, errOut = r.sh(t, "", "list")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "token missing")
	assert.Contains(t, errOut, "OPSWORKER_TOKEN")
	code, _, errOut = r.sh(t, "not-a-token-0123456789", "list")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "token missing or not valid")
	assert.NotContains(t, errOut, "not-a-token-0123456789")

	code, _, errOut = r.sh(t, writeSecret, "--token", writeSecret, "list")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "--token is not accepted")
	var help bytes.Buffer
	t.Setenv("OPSWORKER_TOKEN", writeSecret)
	run(t.Context(), []string{"--help"}, strings.NewReader(""), &help, &help)
	assert.NotContains(t, help.String(), writeSecret)
	assert.Contains(t, help.String(), "--api")

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	t.Setenv("OPSWORKER_TOKEN", writeSecret)
	var o, e bytes.Buffer
	code = run(t.Context(), []string{"--api", dead.URL, "status", "x"}, strings.NewReader(""), &o, &e)
	assert.Equal(t, exitNoRedis, code, e.String())
	assert.Contains(t, e.String(), "cannot reach the API at "+dead.URL)
	assert.NotContains(t, e.String(), writeSecret)
}

// In API mode a command the API does not cover refuses, naming --redis,
// unless --redis is on its command line; with both set the API wins,
// said once.
func TestAPIModeRedisOnlyCommands(t *testing.T) {
	r := startAPI(t)
	code, _, errOut := r.sh(t, writeSecret, "webhooks", "list")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "webhooks list is not covered by the HTTP API")
	assert.Contains(t, errOut, "--redis")
	t.Setenv("OPSWORKER_REDIS_URL", r.redis)
	code, _, errOut = r.sh(t, writeSecret, "schedules")
	assert.Equal(t, exitBadInput, code, "an env Redis is not used silently")
	assert.Contains(t, errOut, "--redis")
	code, _, errOut = r.sh(t, writeSecret, "--redis", r.redis, "webhooks", "list")
	assert.Equal(t, 0, code, errOut)

	code, out, errOut := r.sh(t, writeSecret, "--redis", r.redis, "submit", "cdn:purge", "--provider", "ucdn", "--params", purgeParams)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, 1, strings.Count(errOut, "using the API"), errOut)
	op, err := r.store.Get(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err)
	assert.Equal(t, ops.ViaAPI, op.SubmittedBy.Via, "it went through the API")

	// --api= turns API mode off: Redis as before.
	code, out, errOut = r.sh(t, writeSecret, "--api=", "--redis", r.redis, "--as", "alice", "submit", "cdn:purge", "--provider", "ucdn", "--params", purgeParams)
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, errOut, "using the API")
	op, err = r.store.Get(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err)
	assert.Equal(t, &ops.Actor{Name: "alice", Via: ops.ViaCLI}, op.SubmittedBy)

	// Accounts pause through the API.
	code, out, errOut = r.sh(t, writeSecret, "-o", "json", "account", "pause", "leaseweb", "default")
	require.Equal(t, 0, code, errOut)
	assert.JSONEq(t, `{"provider":"leaseweb","account":"default","paused":true,"was_paused":false}`, out)
}

// Approvals: the submitting token cannot approve; another write token
// can; reject of one not waiting says so.
func TestAPIModeApproveReject(t *testing.T) {
	r := startAPI(t)
	submit := func() string {
		code, out, errOut := r.sh(t, writeSecret, "submit", "cdn:purge", "--provider", "ucdn", "--params", purgeParams, "--label", "hold=yes")
		require.Equal(t, 0, code, errOut)
		return strings.TrimSpace(out)
	}
	a, b := submit(), submit()
	code, _, errOut := r.sh(t, writeSecret, "approve", a)
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "cannot approve it")
	code, out, errOut := r.sh(t, otherSecret, "approve", a)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "approved "+a)
	code, _, errOut = r.sh(t, otherSecret, "reject", b)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "rejection of "+b+" queued")
	code, _, errOut = r.sh(t, otherSecret, "reject", a)
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "does not wait for an approval (it is queued)")
}

// Runbook runs start, are shown, decided and canceled through the API.
func TestAPIModeRuns(t *testing.T) {
	r := startAPI(t)
	code, out, errOut := r.sh(t, writeSecret, "run", "check", "--label", "change=CHG-9")
	require.Equal(t, 0, code, errOut)
	id := strings.TrimSpace(out)
	require.Eventually(t, func() bool {
		_, out, _ := r.sh(t, readSecret, "runs", id)
		return strings.Contains(out, "waiting")
	}, 10*time.Second, 20*time.Millisecond)
	code, out, _ = r.sh(t, readSecret, "-o", "jsonl", "runs")
	require.Equal(t, 0, code)
	assert.Equal(t, 1, strings.Count(out, "\n"))
	assert.Contains(t, out, `"id":"`+id+`"`)
	code, _, errOut = r.sh(t, readSecret, "gate", id, "ok", "continue")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "lacks scope write")
	code, out, errOut = r.sh(t, writeSecret, "gate", id, "ok", "continue")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "succeeded")
	code, out, _ = r.sh(t, readSecret, "runs", id, "--events")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "gate_decided")
	code, _, errOut = r.sh(t, writeSecret, "cancel-run", id)
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "already ended succeeded")

	file := filepath.Join(t.TempDir(), "rb.yaml")
	require.NoError(t, os.WriteFile(file, []byte("name: adhoc\nsteps:\n  - id: g\n    gate: {message: \"go?\", timeout: 30m}\n"), 0o600))
	code, out, errOut = r.sh(t, writeSecret, "run", "--file", file)
	require.Equal(t, 0, code, errOut)
	inline := strings.TrimSpace(out)
	require.Eventually(t, func() bool {
		_, out, _ := r.sh(t, readSecret, "runs", inline)
		return strings.Contains(out, "waiting")
	}, 10*time.Second, 20*time.Millisecond)
	code, out, errOut = r.sh(t, writeSecret, "cancel-run", inline, "--no-compensate")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "run "+inline)
	code, _, errOut = r.sh(t, readSecret, "runs", "nosuch")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "run nosuch: not found")
}

// Completion offers the registry's kinds and the recent operations' ids,
// through the API in API mode, and never an error on stdout.
func TestAPIModeCompletion(t *testing.T) {
	r := startAPI(t)
	code, out, errOut := r.sh(t, writeSecret, "submit", "cdn:purge", "--provider", "ucdn", "--params", purgeParams)
	require.Equal(t, 0, code, errOut)
	id := strings.TrimSpace(out)
	_, out, _ = r.sh(t, readSecret, "__complete", "status", "")
	assert.Contains(t, out, id+"\tcdn:purge queued\n")
	_, out, _ = r.sh(t, readSecret, "__complete", "cancel", id[:4])
	assert.Contains(t, out, id+"\t")
	_, out, _ = r.sh(t, readSecret, "__complete", "submit", "")
	for _, k := range tasks.Kinds() {
		assert.Contains(t, out, k+"\n")
	}
	// No token: no ids, no error on stdout.
	_, out, _ = r.sh(t, "", "__complete", "status", "")
	assert.Equal(t, ":4\n", out[strings.LastIndex(out[:len(out)-1], "\n")+1:])
	assert.NotContains(t, out, "token")
	// Redis mode completes from Redis.
	t.Setenv("OPSWORKER_TOKEN", "")
	var o, e bytes.Buffer
	run(t.Context(), []string{"--redis", r.redis, "__complete", "wait", ""}, strings.NewReader(""), &o, &e)
	assert.Contains(t, o.String(), id+"\t")
}
