package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/testutil"
)

// attackPage is a page of another origin that tries, with whatever
// credentials the browser holds for the worker, to submit an operation
// and to pause the queue of UCDN operations: HTML form POSTs (text/plain and
// urlencoded, the kinds a page may send anywhere) and no-cors fetches
// with credentials. %[1]s is the worker's base URL, %[2]s tags the run.
const attackPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title></head>
<body>
<h1>A page of another origin (%[2]s)</h1>
<iframe name="sink-op" width="400" height="80"></iframe>
<iframe name="sink-pause" width="400" height="80"></iframe>
<form id="op" method="POST" enctype="text/plain" target="sink-op" action="%[1]s/v1/operations?attack=%[2]s-form">
<input type="hidden" name='{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":["/csrf-form"]},"idempotency_key":"csrf' value='"}'>
</form>
<form id="pause" method="POST" target="sink-pause" action="%[1]s/ui/api/queues/ops:ucdn:pause?attack=%[2]s-form"></form>
<pre id="log"></pre>
<script>
const log = m => { document.getElementById("log").textContent += m + "\n"; };
document.getElementById("op").submit();
document.getElementById("pause").submit();
const body = JSON.stringify({task_type: "cdn:purge", provider: "ucdn", params: {zone_name: "demo", zone_type: "objects", files: ["/csrf-fetch"]}});
Promise.allSettled([
  fetch("%[1]s/v1/operations?attack=%[2]s-fetch", {method: "POST", credentials: "include", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body}),
  fetch("%[1]s/ui/api/queues/ops:ucdn:pause?attack=%[2]s-fetch", {method: "POST", credentials: "include", mode: "no-cors"}),
]).then(rs => log("fetches: " + rs.map(r => r.status).join(", ")));
</script>
</body></html>
`

// A browser holding credentials for the queue UI (a cached Basic
// login, then a session from the login form) visits pages of other
// origins — 127.0.0.1 on another port (same site) and localhost (another
// site) — that try to submit an operation and pause the queue. Nothing
// changes. The logged-in user's own UI still loads, shows the queue and
// may pause it. Screenshots are kept in test-artifacts/.
func TestQueueUIRefusesCrossOriginWrites(t *testing.T) {
	requireChromium(t)
	base, w, insp := startHTTPWorkerProc(t)
	workerHost := strings.TrimPrefix(base, "http://")
	// An operation, so the queue exists.
	req, _ := http.NewRequest("POST", base+"/v1/operations", strings.NewReader(`{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}}`))
	req.Header.Set("Authorization", "Bearer "+rwTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 202, resp.StatusCode)
	require.Equal(t, 1, countOps(t, base))
	require.False(t, queuePaused(t, insp))

	attacker := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, attackPage, base, r.URL.Query().Get("run"))
	}))
	t.Cleanup(attacker.Close)

	ctx := newBrowser(t, 240*time.Second)
	require.NoError(t, chromedp.Run(ctx, network.Enable()))
	// What the worker answered to each attack request, by URL.
	var mu sync.Mutex
	answers := map[string]int64{}
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceived); ok && strings.HasPrefix(e.Response.URL, base) && strings.Contains(e.Response.URL, "attack=") {
			mu.Lock()
			answers[e.Response.URL] = e.Response.Status
			mu.Unlock()
		}
	})
	attack := func(pageBase, run string) {
		t.Helper()
		require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(pageBase+"/?run="+run)))
		want := []string{
			base + "/v1/operations?attack=" + run + "-form",
			base + "/ui/api/queues/ops:ucdn:pause?attack=" + run + "-form",
			base + "/v1/operations?attack=" + run + "-fetch",
			base + "/ui/api/queues/ops:ucdn:pause?attack=" + run + "-fetch",
		}
		testutil.WaitFor(t, 30*time.Second, "the worker answered every request of "+run, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, u := range want {
				if _, ok := answers[u]; !ok {
					return false
				}
			}
			return true
		})
		require.NoError(t, chromedp.Run(ctx, chromedp.Poll(`document.getElementById("log").textContent.includes("fetches")`, nil, chromedp.WithPollingTimeout(20*time.Second))))
		mu.Lock()
		for _, u := range want {
			assert.Equal(t, int64(http.StatusForbidden), answers[u], "%s: refused as cross-origin", u)
		}
		mu.Unlock()
		var shot []byte
		require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&shot, 100)))
		saveArtifact(t, "queue-ui-cross-origin-"+run+".png", shot)
		assert.Equal(t, 1, countOps(t, base), "%s: no operation was created", run)
		assert.False(t, queuePaused(t, insp), "%s: the queue is not paused", run)
	}
	sameSite := attacker.URL // 127.0.0.1, another port
	otherSite := strings.Replace(attacker.URL, "127.0.0.1", "localhost", 1)

	// 1. Basic credentials in the URL: a browser caches them only when the
	// server asks for Basic auth, which the worker no longer does.
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate("http://ops:"+rwTok+"@"+workerHost+"/ui/")))
	attack(sameSite, "basic-same-site")

	// 2. The login form: a session cookie (SameSite=Strict, which a page
	// on the same site but another origin still gets sent).
	var loc string
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.Location(&loc),
	))
	assert.Equal(t, base+"/ui/login", loc, "an unauthenticated page load goes to the login form")
	var shot []byte
	require.NoError(t, chromedp.Run(ctx,
		chromedp.SendKeys("#token", rwTok, chromedp.ByQuery),
		chromedp.FullScreenshot(&shot, 100),
	))
	saveArtifact(t, "queue-ui-login.png", shot)
	var text string
	require.NoError(t, chromedp.Run(ctx, chromedp.Submit("#token", chromedp.ByQuery)))
	testutil.WaitFor(t, 30*time.Second, "the login redirects to the UI", func() bool {
		var at string
		return chromedp.Run(ctx, chromedp.Location(&at)) == nil && at == base+"/ui/"
	})
	pollErr := chromedp.Run(ctx, chromedp.Poll(`document.body && document.body.innerText.includes("ops:ucdn")`, nil, chromedp.WithPollingTimeout(60*time.Second)))
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &text), chromedp.Location(&loc)))
	require.NoError(t, pollErr, "the queue never showed after login; %s said:\n%s", loc, text)
	cookies, err := getCookies(ctx, base)
	require.NoError(t, err)
	require.Len(t, cookies, 1, "one session cookie")
	session := cookies[0]
	assert.True(t, session.HTTPOnly)
	assert.Equal(t, network.CookieSameSiteStrict, session.SameSite)
	assert.NotContains(t, session.Value, rwTok)

	attack(sameSite, "session-same-site")
	attack(otherSite, "session-cross-site")

	// 3. The user's own UI still works: it loads, lists the queue, and its
	// pause and resume buttons act.
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(base+"/ui/"),
		chromedp.Poll(`document.body && document.body.innerText.includes("ops:ucdn")`, nil, chromedp.WithPollingTimeout(60*time.Second)),
	))
	clickQueueAction(t, ctx, false)
	testutil.WaitFor(t, 20*time.Second, "paused from the UI", func() bool { return queuePaused(t, insp) })
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Poll(`document.body && document.body.innerText.includes("paused")`, nil, chromedp.WithPollingTimeout(60*time.Second)),
		chromedp.FullScreenshot(&shot, 100),
	))
	saveArtifact(t, "queue-ui-paused.png", shot)
	clickQueueAction(t, ctx, true)
	testutil.WaitFor(t, 20*time.Second, "resumed from the UI", func() bool { return !queuePaused(t, insp) })

	// 4. Logging out ends the session in this browser.
	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(base+"/ui/login"),
		chromedp.WaitVisible(`form[action="/ui/logout"] button`, chromedp.ByQuery),
		chromedp.Click(`form[action="/ui/logout"] button`, chromedp.ByQuery),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.Location(&loc),
	))
	assert.Equal(t, base+"/ui/login", loc, "after logout the UI asks to sign in again")
	cookies, err = getCookies(ctx, base)
	require.NoError(t, err)
	assert.Empty(t, cookies, "the session cookie is gone")

	assert.NotContains(t, w.out.String(), session.Value, "the session cookie never reaches the logs")
	assert.NotContains(t, w.out.String(), rwTok, "nor the token")
}

// clickQueueAction hovers the ops:ucdn queue's actions cell in the queue
// UI's overview table, which shows its buttons, and clicks the pause
// (resume false) or resume button. The buttons are told apart by their
// colour: their tooltip text is only an attribute while the tooltip is
// closed.
func clickQueueAction(t *testing.T, ctx context.Context, resume bool) {
	t.Helper()
	hover := `(() => {
		const row = [...document.querySelectorAll("table[aria-label='queues overview table'] tbody tr")].find(r => r.innerText.includes("ops:ucdn"));
		if (!row) return false;
		row.lastElementChild.dispatchEvent(new MouseEvent("mouseover", {bubbles: true}));
		return true;
	})()`
	button := "MuiIconButton-colorPrimary" // Pause
	if resume {
		button = "MuiIconButton-colorSecondary"
	}
	var ok bool
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(hover, &ok)))
	require.True(t, ok, "the purge queue's row")
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Run(cctx, chromedp.Click(`table[aria-label='queues overview table'] button.`+button, chromedp.ByQuery)))
}

// getCookies returns the browser's cookies for url.
func getCookies(ctx context.Context, url string) ([]*network.Cookie, error) {
	var out []*network.Cookie
	err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		out, err = network.GetCookies().WithURLs([]string{url}).Do(ctx)
		return err
	}))
	return out, err
}

// countOps counts the operations the API lists.
func countOps(t *testing.T, base string) int {
	t.Helper()
	code, body := get(t, base+"/v1/operations?limit=500", "Bearer "+roTok)
	require.Equal(t, 200, code, body)
	var page struct {
		Operations []json.RawMessage `json:"operations"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	return len(page.Operations)
}

func queuePaused(t *testing.T, insp *asynq.Inspector) bool {
	t.Helper()
	info, err := insp.GetQueueInfo("ops:ucdn")
	require.NoError(t, err)
	return info.Paused
}
