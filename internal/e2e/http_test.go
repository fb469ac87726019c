package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/testutil"
)

const (
	roTok = "e2e-read-token-0123456789"
	rwTok = "e2e-write-token-0123456789"
)

func startHTTPWorker(t *testing.T) string {
	t.Helper()
	base, _, _ := startHTTPWorkerProc(t)
	return base
}

// startHTTPWorkerProc is startHTTPWorker that also returns the process
// and an Inspector on its Redis; extra is appended to the config.
func startHTTPWorkerProc(t *testing.T, extra ...string) (string, *workerProc, *asynq.Inspector) {
	t.Helper()
	_, _, cfg, insp := redisSetup(t, ucdnsim.Config{})
	addr := freeAddr(t)
	t.Setenv("E2E_RO", roTok)
	t.Setenv("E2E_RW", rwTok)
	cfg += fmt.Sprintf(`http:
  listen: %s
  tokens:
    - {name: viewer, token: "${E2E_RO}", scope: read}
    - {name: ci, token: "${E2E_RW}", scope: write}
`, addr) + strings.Join(extra, "")
	w := startWorker(t, cfg)
	return "http://" + addr, w, insp
}

func get(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func basic(tok string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+tok))
}

// The operator surface of a running worker: health, the API, metrics
// and the queue UI behind the same tokens.
func TestOperatorSurface(t *testing.T) {
	base := startHTTPWorker(t)
	code, _ := get(t, base+"/healthz", "")
	assert.Equal(t, 200, code)
	code, _ = get(t, base+"/readyz", "")
	assert.Equal(t, 200, code)

	body := `{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}}`
	req, _ := http.NewRequest("POST", base+"/v1/operations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+rwTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var op map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&op))
	resp.Body.Close()
	require.Equal(t, 202, resp.StatusCode)
	testutil.WaitFor(t, 20*time.Second, "succeeded via the API", func() bool {
		_, b := get(t, base+"/v1/operations/"+op["id"].(string), "Bearer "+roTok)
		return strings.Contains(b, `"state":"succeeded"`)
	})

	_, metrics := get(t, base+"/metrics", "")
	for _, want := range []string{
		`opsworker_operations_finished_total{kind="cdn:purge",provider="ucdn",state="succeeded"} 1`,
		`opsworker_operations_started_total{kind="cdn:purge",provider="ucdn"} 1`,
		`opsworker_provider_calls_total{class="2xx",endpoint="purge",provider="ucdn"} 1`,
		`opsworker_queue_tasks{queue="ops:ucdn",state="pending"}`,
		`opsworker_operation_duration_seconds_bucket{kind="cdn:purge"`,
		`opsworker_queue_scrape_ok 1`,
	} {
		assert.Contains(t, metrics, want)
	}

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(base + "/ui/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "the UI needs a login")
	assert.Equal(t, "/ui/login", resp.Header.Get("Location"))
	code, _ = get(t, base+"/ui/api/queues", "")
	assert.Equal(t, 401, code, "the UI's API needs a session or a token")
	code, page := get(t, base+"/ui/", basic(roTok))
	assert.Equal(t, 200, code)
	assert.Contains(t, page, "<html")
	code, queues := get(t, base+"/ui/api/queues", basic(roTok))
	assert.Equal(t, 200, code)
	assert.Contains(t, queues, `"queue":"ops:ucdn"`, "the purge went to its provider's queue")

	pause := func(tok string) int {
		req, _ := http.NewRequest("POST", base+"/ui/api/queues/default:pause", nil)
		req.Header.Set("Authorization", basic(tok))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.GreaterOrEqual(t, pause(roTok), 400, "read scope: a read-only UI")
	assert.Less(t, pause(rwTok), 300, "write scope may act")
	req, _ = http.NewRequest("POST", base+"/ui/api/queues/default:resume", nil)
	req.Header.Set("Authorization", basic(rwTok))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// A real browser loads the queue UI through the auth and sees the queue.
// The screenshot is kept in test-artifacts/.
func TestQueueUIInBrowser(t *testing.T) {
	requireChromium(t)
	base := startHTTPWorker(t)
	// An operation, so the queue exists.
	req, _ := http.NewRequest("POST", base+"/v1/operations", strings.NewReader(`{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}}`))
	req.Header.Set("Authorization", "Bearer "+rwTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 202, resp.StatusCode)
	ctx := newBrowser(t, 150*time.Second)
	var text string
	var shot []byte
	err = chromedp.Run(ctx,
		network.Enable(),
		network.SetExtraHTTPHeaders(network.Headers{"Authorization": basic(roTok)}),
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitReady("body", chromedp.ByQuery),
	)
	require.NoError(t, err, "load the UI")
	pollErr := chromedp.Run(ctx, chromedp.Poll(`document.body.innerText.includes("ops:ucdn")`, nil, chromedp.WithPollingTimeout(60*time.Second)))
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Text("body", &text, chromedp.ByQuery),
		chromedp.FullScreenshot(&shot, 100), // PNG
	))
	saveArtifact(t, "queue-ui.png", shot)
	require.NoError(t, pollErr, "the queue never showed; the page said:\n%s", text)
	assert.Contains(t, text, "ops:ucdn", "the purge's queue is listed")
}

// requireChromium skips the test without Chromium, except in CI, and
// returns its path.
func requireChromium(t *testing.T) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (.ci/run installs Debian's chromium)")
		}
		t.Skip("chromium not installed: apt-get install chromium (make test-deps)")
	}
	return chromium
}

// newBrowser starts a headless Chromium with a fresh profile for the
// test and returns its context, ending after timeout. A first start of a
// freshly installed Chromium (font caches) can be slow on a loaded
// machine: be generous.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	chromium := requireChromium(t)
	profile, err := os.MkdirTemp("", "opsworker-chromium-")
	require.NoError(t, err)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 1024), chromedp.UserDataDir(profile))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, timeout)
	// Stop the browser, wait for its process, then remove the profile.
	// Chromium's helper processes may still be writing to it for a moment
	// after the main process exits, so the removal is retried; t.TempDir's
	// single RemoveAll fails the test on that race.
	t.Cleanup(func() {
		cancel()
		cancelBrowser()
		cancelAlloc()
		removeProfile(t, profile)
	})
	return ctx
}

// saveArtifact keeps a screenshot in test-artifacts/.
func saveArtifact(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := filepath.Join("..", "..", "test-artifacts")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", filepath.Join(dir, name), len(png))
}

// removeProfile removes a browser profile directory, retrying while the
// browser's last helper processes finish writing to it.
func removeProfile(t *testing.T, dir string) {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("browser profile %s left behind: %v", dir, err)
}
