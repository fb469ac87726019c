package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/webhookverify"
)

type hit struct {
	header http.Header
	body   []byte
}

type hookServer struct {
	mu     sync.Mutex
	hits   []hit
	status int
	srv    *httptest.Server
}

func newHookServer(t *testing.T, status int) *hookServer {
	h := &hookServer{status: status}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.hits = append(h.hits, hit{r.Header.Clone(), b})
		st := h.status
		h.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) got() []hit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hit(nil), h.hits...)
}

// delivery is a row of `enqueue webhooks list --output json`.
type delivery struct {
	OperationID string `json:"operation_id"`
	Destination string `json:"destination"`
	State       string `json:"state"`
	Attempts    int    `json:"attempts"`
	LastError   string `json:"last_error"`
}

func TestWebhooksCLI(t *testing.T) {
	redisURL, _, cfg, insp := redisSetup(t, ucdnsim.Config{})
	secret := webhookverify.NewSecret()
	t.Setenv("E2E_WEBHOOK_SECRET", secret.String())
	good := newHookServer(t, 200)
	broken := newHookServer(t, 500)
	cfg += fmt.Sprintf(`webhooks:
  retry_schedule: [1s]
  secrets: ["${E2E_WEBHOOK_SECRET}"]
  ssrf:
    allow_cidrs: [127.0.0.0/8]
  subscriptions:
    - {name: good, url: %q, events: [operation.succeeded]}
    - {name: broken, url: %q, events: [operation.succeeded]}
`, good.srv.URL+"/hook", broken.srv.URL+"/hook")
	startWorker(t, cfg)

	r := cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn", "--params", params, "--wait", "--output", "json")
	require.Equal(t, 0, r.code, r.stderr)
	opID := decodeOp(t, r.stdout).ID
	testutil.WaitFor(t, 10*time.Second, "delivered", func() bool { return len(good.got()) == 1 })

	// verify: the received request checks out; a tampered body does not.
	h := good.got()[0]
	dir := t.TempDir()
	bodyFile := filepath.Join(dir, "body.json")
	require.NoError(t, os.WriteFile(bodyFile, h.body, 0o600))
	args := []string{"webhooks", "verify", "--secret", secret.String(), "--body-file", bodyFile}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		args = append(args, "--header", k+": "+h.header.Get(k))
	}
	v := cli(t, args...)
	assert.Equal(t, 0, v.code, v.stderr)
	assert.Contains(t, v.stdout, "valid: evt_"+opID+"_succeeded")
	require.NoError(t, os.WriteFile(bodyFile, append(h.body, ' '), 0o600))
	v = cli(t, args...)
	assert.Equal(t, 1, v.code)
	assert.Contains(t, v.stderr, "no signature matches")

	// The broken receiver's delivery ends dead-lettered after 1 retry.
	var failed []delivery
	testutil.WaitFor(t, 20*time.Second, "dead-lettered", func() bool {
		l := cli(t, "--redis", redisURL, "webhooks", "list", "--failed", "--output", "json")
		failed = nil
		_ = json.Unmarshal([]byte(l.stdout), &failed)
		return len(failed) == 1 && failed[0].State == "archived"
	})
	assert.Equal(t, "sub:broken", failed[0].Destination)
	assert.Equal(t, 2, failed[0].Attempts)
	assert.Contains(t, failed[0].LastError, "http 500")
	assert.Len(t, broken.got(), 2)

	all := cli(t, "--redis", redisURL, "webhooks", "list", "--operation", opID)
	require.Equal(t, 0, all.code, all.stderr)
	assert.Contains(t, all.stdout, "completed")
	assert.Contains(t, all.stdout, "archived")

	// replay to one destination: same webhook-id, new series.
	broken.mu.Lock()
	broken.status = 200
	broken.mu.Unlock()
	rp := cli(t, "--redis", redisURL, "webhooks", "replay", opID, "--destination", broken.srv.URL+"/hook")
	require.Equal(t, 0, rp.code, rp.stderr)
	testutil.WaitFor(t, 10*time.Second, "replayed", func() bool { return len(broken.got()) == 3 })
	assert.Equal(t, "evt_"+opID+"_succeeded", broken.got()[2].header.Get("webhook-id"))
	assert.Len(t, good.got(), 1, "the other destination is left alone")

	// By name, and by the origin that status and list show.
	rp = cli(t, "--redis", redisURL, "webhooks", "replay", opID, "--destination", "sub:good", "--all")
	require.Equal(t, 0, rp.code, rp.stderr)
	testutil.WaitFor(t, 10*time.Second, "replayed by name", func() bool { return len(good.got()) == 2 })
	assert.Len(t, broken.got(), 3)
	// A destination that matches nothing is said so: the replay task is
	// archived with the reason, nothing is sent.
	rp = cli(t, "--redis", redisURL, "webhooks", "replay", opID, "--destination", "http://127.0.0.1:1")
	require.Equal(t, 0, rp.code, rp.stderr)
	testutil.WaitFor(t, 10*time.Second, "unmatched replay archived", func() bool {
		archived, _ := insp.ListArchivedTasks("default")
		for _, a := range archived {
			if a.Type == "webhook:replay" && strings.Contains(a.LastErr, "no destination of the operation matches http://127.0.0.1:1") {
				return true
			}
		}
		return false
	})
	assert.Len(t, good.got(), 2)
	assert.Len(t, broken.got(), 3)
	bad0 := cli(t, "--redis", redisURL, "webhooks", "replay", opID, "--destination", "ftp://x")
	assert.Equal(t, 2, bad0.code)

	bad := cli(t, "--redis", redisURL, "webhooks", "enable", "nobody")
	assert.Equal(t, 2, bad.code)
}

// The worker's HTTP server serves /healthz and the callback route, and a
// valid callback (through the real listener) finishes the operation long
// before its next poll.
func TestWorkerCallbackEndpoint(t *testing.T) {
	redisURL, sim, cfg, _ := redisSetup(t, ucdnsim.Config{WaitingFor: time.Hour})
	ln := freeAddr(t)
	t.Setenv("E2E_CALLBACK_SECRET", "e2e-callback-secret-0123456789")
	slow := strings.Replace(cfg, "polling:\n  cdn:purge: {initial: 200ms, multiplier: 1.5, max: 1s, jitter: 0.1, deadline: 2m}",
		"polling:\n  cdn:purge: {initial: 1m, multiplier: 1, max: 1m, jitter: 0, deadline: 1h}", 1)
	require.NotEqual(t, cfg, slow, "the base config's cdn:purge polling line changed")
	cfg = slow
	cfg += fmt.Sprintf(`http:
  listen: %s
webhooks:
  callbacks:
    public_base_url: http://%s
    secret: ${E2E_CALLBACK_SECRET}
`, ln, ln)
	startWorker(t, cfg)
	resp, err := http.Get("http://" + ln + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	r := cli(t, "--redis", redisURL, "submit", "cdn:purge", "--provider", "ucdn", "--params", params)
	require.Equal(t, 0, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	var handle string
	testutil.WaitFor(t, 10*time.Second, "running", func() bool {
		st := cli(t, "--redis", redisURL, "status", id, "--output", "json")
		op := decodeOp(t, st.stdout)
		handle = op.Handle
		return op.State == "running"
	})
	resp, err = http.Post("http://"+ln+"/v1/callbacks/ucdn/"+id+"/not-the-token", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	require.True(t, sim.Advance(handle))
	token := webhooks.CallbackToken([]byte("e2e-callback-secret-0123456789"), id)
	resp, err = http.Post("http://"+ln+"/v1/callbacks/ucdn/"+id+"/"+token, "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	w := cli(t, "--redis", redisURL, "wait", id, "--timeout", "30s", "--output", "json")
	require.Equal(t, 0, w.code, w.stderr)
	assert.Equal(t, "succeeded", string(decodeOp(t, w.stdout).State))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}
