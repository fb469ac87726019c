package client_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/opsworker/opsworker/internal/testutil/apitest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/client"
	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/ops"
)

// apiOnly serves the API with a runbook coordinator and no worker: what
// is submitted stays queued, a gate waits for its decision.
func apiOnly(t *testing.T) string {
	t.Helper()
	return apitest.Start(t, apitest.Options{Prefix: "ow", Tokens: []api.Token{{Name: "ci", Secret: writeTok, Scope: api.ScopeWrite},
		{Name: "ops", Secret: "client-other-token-0123456789", Scope: api.ScopeWrite}, {Name: "ro", Secret: readTok, Scope: api.ScopeRead}}}).URL
}

// SubmitJSON sends params as given, with labels; the API names a bad
// field. Events, searches by label, and pausing accounts follow.
func TestSubmitJSONEventsSearchAndPause(t *testing.T) {
	base := apiOnly(t)
	ctx := t.Context()
	c, err := client.New(base, writeTok)
	require.NoError(t, err)
	op, _, err := c.SubmitJSON(ctx, ops.KindCDNPurge, ops.ProviderUCDN, []byte(`{"zone_name":"shop","zone_type":"objects","files":["/a"]}`),
		client.Labels(map[string]string{"change": "CHG-1"}), client.IdempotencyKey("k1"))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"change": "CHG-1"}, op.Labels)
	_, _, err = c.SubmitJSON(ctx, ops.KindCDNPurge, ops.ProviderUCDN, []byte(`{"zone_type":"objects","files":["/a"]}`))
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	assert.Equal(t, "params.zone_name", p.Field)
	_, _, err = c.DryRunJSON(ctx, ops.KindCDNPurge, ops.ProviderUCDN, []byte(`{"zone_name":"shop","zone_type":"objects","files":["/a"]}`))
	require.ErrorAs(t, err, &p)
	assert.Equal(t, "dry_run", p.Field, "this server runs no dry runs")

	evs, _, err := c.Events(ctx, op.ID)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	assert.Equal(t, ops.TimelineSubmitted, evs[0].Type)

	other, _, err := c.SubmitJSON(ctx, ops.KindCDNPurge, ops.ProviderUCDN, []byte(`{"zone_name":"blog","zone_type":"objects","files":["/a"]}`))
	require.NoError(t, err)
	page, _, err := c.List(ctx, client.ListOptions{Labels: map[string]string{"change": "CHG-1"}})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, op.ID, page[0].ID)
	page, _, err = c.List(ctx, client.ListOptions{Resource: "ucdn:zone:blog", Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, other.ID, page[0].ID)

	ap, _, err := c.PauseAccount(ctx, "leaseweb", "default")
	require.NoError(t, err)
	assert.Equal(t, client.AccountPause{Provider: "leaseweb", Account: "default", Paused: true}, *ap)
	ap, _, err = c.ResumeAccount(ctx, "leaseweb", "default")
	require.NoError(t, err)
	assert.True(t, ap.WasPaused)
	assert.False(t, ap.Paused)

	// Approve and reject answer for operations waiting for an approval
	// only.
	_, _, err = c.Approve(ctx, op.ID)
	require.ErrorAs(t, err, &p)
	assert.Equal(t, http.StatusConflict, p.Status)
	_, _, err = c.Reject(ctx, "nosuch")
	require.ErrorAs(t, err, &p)
	assert.Equal(t, http.StatusNotFound, p.Status)
}

// Runs start by name or inline, wait at their gate, are listed, decided
// and canceled.
func TestRuns(t *testing.T) {
	base := apiOnly(t)
	ctx := t.Context()
	c, err := client.New(base, writeTok)
	require.NoError(t, err)
	run, resp, err := c.StartRun(ctx, "check", client.RunOptions{Labels: map[string]string{"change": "CHG-2"}})
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, "check", run.Runbook)
	assert.Contains(t, string(run.Raw), `"id":"`+run.ID+`"`)

	var got *client.Run
	require.Eventually(t, func() bool {
		got, _, err = c.GetRun(ctx, run.ID)
		return err == nil && len(got.Steps) == 1 && got.Steps[0].State == "waiting"
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "waiting", got.Steps[0].State)
	assert.Equal(t, "looks right?", got.Steps[0].Gate)

	inline, _, err := c.StartInlineRun(ctx, []byte(`{"name":"adhoc","steps":[{"id":"g","gate":{"message":"go?","timeout":"30m"}}]}`), client.RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, "adhoc", inline.Runbook)
	_, _, err = c.StartInlineRun(ctx, []byte(`{"name":"bad","steps":[{"id":"g","kind":"cdn:nuke"}]}`), client.RunOptions{})
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	assert.Contains(t, p.Field, "runbook.steps[g]")

	runs, _, err := c.ListRuns(ctx, 10)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	assert.Equal(t, inline.ID, runs[0].ID, "newest first")

	require.Eventually(t, func() bool {
		r, _, err := c.GetRun(ctx, inline.ID)
		return err == nil && r.Steps[0].State == "waiting"
	}, 10*time.Second, 20*time.Millisecond)
	done, _, err := c.DecideGate(ctx, run.ID, "ok", true)
	require.NoError(t, err)
	assert.Equal(t, "succeeded", done.State)
	_, _, err = c.DecideGate(ctx, run.ID, "ok", true)
	require.ErrorAs(t, err, &p)
	assert.Equal(t, http.StatusConflict, p.Status)

	canceled, _, err := c.CancelRun(ctx, inline.ID, false)
	require.NoError(t, err)
	assert.True(t, canceled.CancelRequested)

	evs, _, err := c.RunEvents(ctx, run.ID)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	assert.Equal(t, "started", evs[0].Type)
	assert.Equal(t, "finished", evs[len(evs)-1].Type)
}
