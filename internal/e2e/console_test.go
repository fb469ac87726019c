package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/testutil"
)

// The operations console in a real browser: sign in, find a purge by its
// label and watch it go from running to succeeded; an install that needs
// an approval cannot be approved by its submitter, is approved by a
// second user, and launches; a read user sees no buttons and cannot
// post. Screenshots go to test-artifacts/console-*.png.
func TestConsoleInBrowser(t *testing.T) {
	_, _, cfg, _ := redisSetup(t, ucdnsim.Config{WaitingFor: 3 * time.Second, RunningFor: 3 * time.Second})
	lw := leasewebsim.New(leasewebsim.Config{APIKey: lwKey, TaskDuration: time.Second})
	t.Cleanup(lw.Close)
	lwSrv := httptest.NewServer(lw)
	t.Cleanup(lwSrv.Close)
	t.Setenv("E2E_LSW_KEY", lwKey)
	cfg = withSection(t, cfg, "providers", fmt.Sprintf("  leaseweb:\n    base_url: %s\n    accounts:\n      default:\n        token: ${E2E_LSW_KEY}\n", lwSrv.URL))
	const leadTok = "e2e-lead-token-0123456789"
	addr := freeAddr(t)
	t.Setenv("E2E_RO", roTok)
	t.Setenv("E2E_RW", rwTok)
	t.Setenv("E2E_LEAD", leadTok)
	cfg += fmt.Sprintf(`http:
  listen: %s
  tokens:
    - {name: viewer, token: "${E2E_RO}", scope: read}
    - {name: ci, token: "${E2E_RW}", scope: write}
    - {name: lead, token: "${E2E_LEAD}", scope: write}
approvals:
  - kind: server:install
`, addr)
	startWorker(t, cfg)
	base := "http://" + addr
	submit := func(body string) map[string]any {
		req, _ := http.NewRequest("POST", base+"/v1/operations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+rwTok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, 202, resp.StatusCode, string(b))
		var op map[string]any
		require.NoError(t, json.Unmarshal(b, &op))
		return op
	}
	purge := submit(`{"task_type":"cdn:purge","provider":"ucdn","labels":{"change":"CHG-7"},"params":{"zone_name":"shop","zone_type":"objects","files":["/index.html"]}}`)
	install := submit(`{"task_type":"server:install","provider":"leaseweb","labels":{"change":"CHG-8"},"params":{"server_id":"4242","operating_system_id":"UBUNTU_22_04_64BIT","password":"C0nsole-S3cret-Pw"}}`)
	require.Equal(t, "pending_approval", install["state"])
	purgeID, installID := purge["id"].(string), install["id"].(string)

	browser := func(tok string) context.Context {
		ctx := newBrowser(t, 150*time.Second)
		// Accept the confirmation a destructive button asks for.
		chromedp.ListenTarget(ctx, func(ev any) {
			if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
				go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(true)) }()
			}
		})
		require.NoError(t, chromedp.Run(ctx,
			chromedp.Navigate(base+"/console/"),
			chromedp.WaitVisible("#token", chromedp.ByQuery),
			chromedp.SendKeys("#token", tok, chromedp.ByQuery),
			chromedp.Submit("#token", chromedp.ByQuery),
			chromedp.WaitVisible("table.ops", chromedp.ByQuery),
		))
		return ctx
	}
	shot := func(ctx context.Context, name string) {
		var png []byte
		require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)))
		saveArtifact(t, "console-"+name+".png", png)
	}
	// waitText waits until the page shows text; an evaluation that fails
	// while a form's answer loads is tried again.
	waitText := func(ctx context.Context, text string, within time.Duration) {
		t.Helper()
		var body string
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			if chromedp.Run(ctx, chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &body)) == nil && strings.Contains(body, text) {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("waiting for %q; the page says:\n%s", text, body)
	}

	// The submitter: find the purge by its label, watch it finish.
	ci := browser(rwTok)
	// The page may still be settling after the sign-in's redirect: a
	// node that went away is looked up again.
	var err error
	for range 5 {
		if err = chromedp.Run(ci,
			chromedp.SetValue(`input[name="label"]`, "change=CHG-7", chromedp.ByQuery),
			chromedp.Submit(`input[name="label"]`, chromedp.ByQuery),
		); err == nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	require.NoError(t, err, "search by label")
	// The form loads the searched page (evaluations fail while it does).
	testutil.WaitFor(t, 20*time.Second, "the search page", func() bool {
		var at string
		return chromedp.Run(ci, chromedp.Location(&at)) == nil && strings.Contains(at, "label=change")
	})
	waitText(ci, purgeID, 20*time.Second)
	var rows int
	require.NoError(t, chromedp.Run(ci, chromedp.Evaluate(`document.querySelectorAll("#rows tr[data-id]").length`, &rows)))
	assert.Equal(t, 1, rows, "the label finds the purge alone")
	shot(ci, "search-by-label")
	require.NoError(t, chromedp.Run(ci, chromedp.Click(`a[href="/console/ops/`+purgeID+`"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#detail", chromedp.ByQuery)))
	waitText(ci, "running", 20*time.Second)
	shot(ci, "purge-running")
	waitText(ci, "succeeded", 40*time.Second)
	waitText(ci, "finished", 10*time.Second)
	shot(ci, "purge-succeeded")

	// Its submitter cannot approve the install.
	require.NoError(t, chromedp.Run(ci, chromedp.Navigate(base+"/console/ops/"+installID), chromedp.WaitVisible("#detail", chromedp.ByQuery)))
	waitText(ci, "another write token must approve it", 20*time.Second)
	var approveButtons int
	require.NoError(t, chromedp.Run(ci, chromedp.Evaluate(`document.querySelectorAll('form[action$="/approve"]').length`, &approveButtons)))
	assert.Zero(t, approveButtons)
	shot(ci, "install-own")

	// A second user approves it; it launches and finishes.
	lead := browser(leadTok)
	require.NoError(t, chromedp.Run(lead, chromedp.Navigate(base+"/console/ops/"+installID), chromedp.WaitVisible("#detail", chromedp.ByQuery)))
	waitText(lead, "pending_approval", 20*time.Second)
	shot(lead, "install-pending-approval")
	require.NoError(t, chromedp.Run(lead, chromedp.Click(`form[action$="/approve"] button`, chromedp.ByQuery)))
	waitText(lead, "approved: it launches now", 20*time.Second)
	waitText(lead, "token lead", 10*time.Second)
	waitText(lead, "succeeded", 60*time.Second)
	shot(lead, "install-approved")
	assert.Equal(t, 1, lw.Launches("4242", "install"))

	// A read user sees, without a button, and cannot post.
	viewer := browser(roTok)
	require.NoError(t, chromedp.Run(viewer, chromedp.Navigate(base+"/console/ops/"+installID), chromedp.WaitVisible("#detail", chromedp.ByQuery)))
	waitText(viewer, "Timeline", 20*time.Second)
	var buttons int
	require.NoError(t, chromedp.Run(viewer, chromedp.Evaluate(`document.querySelectorAll("main form button").length`, &buttons)))
	assert.Zero(t, buttons, "no buttons for a read token")
	var status int
	require.NoError(t, chromedp.Run(viewer, chromedp.Evaluate(`fetch("/console/ops/`+installID+`/cancel", {method: "POST", credentials: "same-origin",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "csrf=x"}).then(r => r.status)`, &status,
		awaitPromise)))
	assert.Equal(t, 403, status, "a read token cannot post")
	var body string
	require.NoError(t, chromedp.Run(viewer, chromedp.Evaluate(`document.body.innerText`, &body)))
	assert.NotContains(t, body, "C0nsole-S3cret-Pw", "params are redacted")
	shot(viewer, "read-only")
	require.NoError(t, chromedp.Run(viewer, chromedp.Navigate(base+"/console/providers")))
	waitText(viewer, "leaseweb", 20*time.Second)
	shot(viewer, "providers")

	// A form without the session's CSRF token is refused, even from the
	// console's own origin.
	require.NoError(t, chromedp.Run(lead, chromedp.Evaluate(`fetch("/console/providers/ucdn/default/pause", {method: "POST", credentials: "same-origin",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "csrf=forged"}).then(r => r.status)`, &status,
		awaitPromise)))
	assert.Equal(t, 403, status)
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }
