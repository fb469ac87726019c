package tasks_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// A dry run says what a submit would do, stores and launches nothing,
// sends only reads, and shows the write it would send with the secrets
// redacted; a busy server, a held account and bad input are said so.
func TestDryRun(t *testing.T) {
	t.Parallel()
	held := ""
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) {
		c.AccountHeld = func(context.Context, string, string) string { return held }
	})
	env := tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(installParams)}
	plan, err := b.worker.DryRun(t.Context(), tasks.TypeServerInstall, env)
	require.NoError(t, err)
	assert.Equal(t, ops.PlanLaunch, plan.Outcome, "%+v", plan)
	assert.Equal(t, "leaseweb:server:12345", plan.Resource)
	require.NotEmpty(t, plan.Calls)
	last := plan.Calls[len(plan.Calls)-1]
	assert.Equal(t, "POST", last.Method)
	assert.False(t, last.Sent)
	assert.Contains(t, last.URL, "/servers/12345/install")
	for _, c := range plan.Calls[:len(plan.Calls)-1] {
		assert.Equal(t, "GET", c.Method, "only reads were sent")
		assert.True(t, c.Sent)
	}
	raw, _ := json.Marshal(plan)
	for _, secret := range []string{"Sup3r-S3cret-Pw", "echo installed", "AAAAC3NzaC1lZDI1NTE5AAAAIKey", "lsw-key",
		base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho installed"))} {
		assert.NotContains(t, string(raw), secret)
	}
	assert.Contains(t, string(last.Body), "REDACTED")
	assert.Zero(t, b.lw.Launches("12345", "install"), "nothing launched")
	all, err := b.store.List(t.Context(), opstore.Filter{})
	require.NoError(t, err)
	assert.Empty(t, all, "nothing stored")
	queues, _ := b.insp.Queues()
	assert.Empty(t, queues, "nothing enqueued")

	// The server is busy with another operation: it would wait.
	blocker := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(blocker.ID)))
	plan, err = b.worker.DryRun(t.Context(), tasks.TypeServerInstall, env)
	require.NoError(t, err)
	assert.Equal(t, ops.PlanWait, plan.Outcome)
	assert.Contains(t, plan.Reason, "leaseweb:server:12345 busy with operation "+blocker.ID)

	// The account is held back.
	held = "circuit breaker open"
	other := tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(strings.Replace(installParams, "12345", "12346", 1))}
	plan, err = b.worker.DryRun(t.Context(), tasks.TypeServerInstall, other)
	require.NoError(t, err)
	assert.Equal(t, ops.PlanWait, plan.Outcome)
	assert.Equal(t, "circuit breaker open", plan.Reason)
	assert.Empty(t, plan.Calls, "no call while the account is held")

	// Bad input names the field.
	_, err = b.worker.DryRun(t.Context(), tasks.TypeServerInstall, tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(`{"server_id":"x"}`)})
	var ve *ops.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "params.server_id", ve.Field)
}
