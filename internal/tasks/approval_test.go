package tasks_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/ops"
)

func approvalSetup(t *testing.T) *serverBundle {
	return setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) {
		c.Approvals = []tasks.ApprovalRule{{Kind: tasks.TypeServerInstall, Accounts: []string{"default"}, Deadline: time.Hour}}
	})
}

// An install, which needs an approval, waits in pending_approval: nothing
// launches, the event and the timeline say so. Its submitter cannot
// approve it; another can, and it launches.
func TestApprovalHoldsUntilAnotherApproves(t *testing.T) {
	t.Parallel()
	b := approvalSetup(t)
	hooks := newReceiver(t)
	sub := tasks.NewSubmitter(b.store, b.client, tasks.SubmitOptions{Hold: b.worker.HoldForApproval})
	env := tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(installParams), CallbackURL: hooks.srv.URL}
	op, _, err := sub.SubmitAs(t.Context(), "alice", tasks.TypeServerInstall, env)
	require.NoError(t, err)
	assert.Equal(t, opstore.StatePendingApproval, op.State, "held before any launch task exists")
	require.NotNil(t, op.ApprovalDeadline)
	assert.WithinDuration(t, b.clock.Now().Add(time.Hour), *op.ApprovalDeadline, time.Second)
	assert.False(t, b.hasTask(tasks.LaunchTaskID(op.ID)), "no launch task")
	assert.True(t, b.hasTask("op:"+op.ID+":approval_deadline"))
	require.NoError(t, b.run(t, tasks.DeliveryTaskID(op.ID, webhooks.EventPendingApproval, tasks.DestinationCallback)))
	require.Len(t, hooks.hooks(), 1)
	assert.Equal(t, "operation.pending_approval", hooks.hooks()[0].Body["type"])

	_, err = tasks.Approve(t.Context(), b.store, b.client, op.ID, &ops.Actor{Name: "alice", Via: ops.ViaAPI, Authenticated: true})
	require.ErrorIs(t, err, tasks.ErrOwnApproval)
	approved, err := tasks.Approve(t.Context(), b.store, b.client, op.ID, &ops.Actor{Name: "bob", Via: ops.ViaAPI, Authenticated: true})
	require.NoError(t, err)
	assert.Equal(t, opstore.StateQueued, approved.State)
	assert.Equal(t, &ops.Actor{Name: "bob", Via: ops.ViaAPI, Authenticated: true}, approved.ApprovedBy)
	_, err = tasks.Approve(t.Context(), b.store, b.client, op.ID, &ops.Actor{Name: "carol", Via: ops.ViaAPI, Authenticated: true})
	require.ErrorIs(t, err, tasks.ErrNotPending, "approved once")

	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)+":approved"))
	assert.Equal(t, opstore.StateRunning, b.op(t, op.ID).State)
	assert.Equal(t, 1, b.lw.Launches("12345", "install"))
	evs, err := b.store.Timeline(t.Context(), op.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{ops.TimelineSubmitted, ops.TimelinePendingApproval, ops.TimelineWebhook, ops.TimelineApproved, ops.TimelineLaunchAttempt, ops.TimelineLaunched}, steps(evs)[:6])
	// The deadline task finds it approved and does nothing.
	b.clock.Add(2 * time.Hour)
	require.NoError(t, b.run(t, "op:"+op.ID+":approval_deadline"))
	assert.Equal(t, opstore.StateRunning, b.op(t, op.ID).State)
}

// Submitted where no rule is known (the CLI, a raw task), the launch task
// holds it: nothing reaches the provider. A rejection ends it canceled,
// naming who; the deadline ends another.
func TestApprovalEnforcedAtLaunchRejectAndDeadline(t *testing.T) {
	t.Parallel()
	b := approvalSetup(t)
	op := b.submit(t, tasks.TypeServerInstall, installParams)
	require.Equal(t, opstore.StateQueued, op.State)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	assert.Equal(t, opstore.StatePendingApproval, b.op(t, op.ID).State)
	assert.Zero(t, b.lw.Launches("12345", "install"))

	reject, _ := json.Marshal(tasks.CancelPayload{OperationID: op.ID, Reject: true, By: &ops.Actor{Name: "bob", Via: ops.ViaAPI, Authenticated: true}})
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCancel, reject)))
	got := b.op(t, op.ID)
	assert.Equal(t, opstore.StateCanceled, got.State)
	assert.Equal(t, "rejected by token bob", got.LastError)
	assert.Equal(t, &ops.Actor{Name: "bob", Via: ops.ViaAPI, Authenticated: true}, got.CanceledBy)

	late := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(late.ID)))
	require.Equal(t, opstore.StatePendingApproval, b.op(t, late.ID).State)
	deadline := "op:" + late.ID + ":approval_deadline"
	require.Error(t, b.run(t, deadline), "before the deadline it waits")
	b.clock.Add(time.Hour + time.Second)
	require.NoError(t, b.run(t, deadline))
	got = b.op(t, late.ID)
	assert.Equal(t, opstore.StateCanceled, got.State)
	assert.Contains(t, got.LastError, "no approval before the deadline")
	assert.Zero(t, b.lw.Launches("12345", "install"), "nothing ever launched")

	// Another account is not under the rule: it is not held (here it
	// fails, that account having no credentials).
	other := b.submit(t, tasks.TypeServerInstall, installParams, func(e *tasks.Envelope) { e.Account = "eu" })
	_ = b.worker.Handler().ProcessTask(t.Context(), b.task(t, tasks.LaunchTaskID(other.ID)))
	assert.Equal(t, opstore.StateFailed, b.op(t, other.ID).State)
}

// An approval that moved the operation to queued but died before its
// launch task was queued is not lost: ReapOrphans queues the launch (the
// approval stands) instead of ending the operation, and it launches once.
func TestApprovalWithoutItsLaunchTaskIsQueuedAgain(t *testing.T) {
	t.Parallel()
	b := approvalSetup(t)
	sub := tasks.NewSubmitter(b.store, b.client, tasks.SubmitOptions{Hold: b.worker.HoldForApproval})
	op, _, err := sub.SubmitAs(t.Context(), "alice", tasks.TypeServerInstall, tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(installParams)})
	require.NoError(t, err)
	require.Equal(t, opstore.StatePendingApproval, op.State)
	// The approval's first write, alone.
	bob := &ops.Actor{Name: "bob", Via: ops.ViaAPI, Authenticated: true}
	task := tasks.LaunchTaskID(op.ID) + ":approved"
	_, err = b.store.Update(t.Context(), op, opstore.Change{From: []opstore.State{opstore.StatePendingApproval}, To: opstore.StateQueued, ApprovedBy: bob, LaunchTaskID: task})
	require.NoError(t, err)
	require.False(t, b.hasTask(task))

	b.clock.Add(tasks.OrphanAfter + time.Minute)
	n, err := b.worker.ReapOrphans(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "not ended")
	require.True(t, b.hasTask(task), "its launch is queued")
	require.NoError(t, b.run(t, task))
	got := b.op(t, op.ID)
	assert.Equal(t, opstore.StateRunning, got.State, got.LastError)
	assert.Equal(t, bob, got.ApprovedBy)
	n, err = b.worker.ReapOrphans(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, 1, b.lw.Launches("12345", "install"), "launched once")
}
