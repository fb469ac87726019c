package tasks_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/simkit"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// steps lists a timeline's step types.
func steps(evs []ops.TimelineEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

// An install's timeline tells its story in order: who submitted it, the
// wait for the busy server (once, however often it waited), the launch
// attempt that failed (its class) and the one that went through, the
// polls that changed something, the cancel request, the final state and
// each webhook attempt. No secret appears in it.
func TestTimelineTellsTheStory(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) { c.BusyRetry = time.Millisecond })
	hooks := newReceiver(t, 500)
	blocker := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(blocker.ID)))
	op := b.submit(t, tasks.TypeServerInstall, installParams, func(e *tasks.Envelope) {
		e.CallbackURL = hooks.srv.URL + "/hook?token=cb-T0ken"
		e.SubmittedBy = "alice"
	})
	for range 3 {
		require.Error(t, b.run(t, tasks.LaunchTaskID(op.ID)), "waits for the server")
	}
	// The blocker ends; the next launch meets a 503, then goes through.
	finishAll(b)
	require.NoError(t, b.run(t, tasks.PollTaskID(blocker.ID, 1)))
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultStatus, Status: 503, Method: "POST", PathPrefix: "/servers/12345/install", Times: 1})
	require.Error(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	require.Equal(t, opstore.StateRunning, b.op(t, op.ID).State)
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	cancel, _ := json.Marshal(tasks.CancelPayload{OperationID: op.ID, By: &ops.Actor{Name: "bob", Via: ops.ViaCLI}})
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCancel, cancel)))
	finishAll(b)
	cur := b.op(t, op.ID)
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, cur.PollSeq)))
	require.True(t, b.op(t, op.ID).State.Terminal())
	final := tasks.EventType(b.op(t, op.ID).State)
	require.Error(t, b.run(t, tasks.DeliveryTaskID(op.ID, final, tasks.DestinationCallback)), "the receiver answers 500")

	evs, err := b.store.Timeline(t.Context(), op.ID)
	require.NoError(t, err)
	got := steps(evs)
	assert.Equal(t, ops.TimelineSubmitted, got[0])
	assert.Equal(t, &ops.Actor{Name: "alice", Via: ops.ViaCLI}, evs[0].Actor)
	assert.Equal(t, 1, strings.Count(strings.Join(got, " "), ops.TimelineWaiting), "one wait step for three waits: %v", got)
	for _, want := range []string{ops.TimelineWaiting, ops.TimelineLaunchAttempt, ops.TimelineLaunchFailed, ops.TimelineLaunched,
		ops.TimelinePolled, ops.TimelineCancelRequested, ops.TimelineFinished, ops.TimelineWebhook} {
		assert.Contains(t, got, want)
	}
	byType := map[string]ops.TimelineEvent{}
	for _, ev := range evs {
		if _, seen := byType[ev.Type]; !seen {
			byType[ev.Type] = ev
		}
	}
	assert.Contains(t, byType[ops.TimelineWaiting].Message, "leaseweb:server:12345")
	assert.Equal(t, "retryable", byType[ops.TimelineLaunchFailed].ErrorClass)
	assert.NotEmpty(t, byType[ops.TimelineLaunched].Handle)
	assert.Equal(t, &ops.Actor{Name: "bob", Via: ops.ViaCLI}, byType[ops.TimelineCancelRequested].Actor)
	wh := byType[ops.TimelineWebhook]
	assert.Equal(t, tasks.DestinationCallback, wh.Destination)
	assert.Equal(t, final, wh.Event)
	assert.Equal(t, 500, wh.StatusCode)
	assert.Equal(t, []string{ops.TimelineSubmitted, ops.TimelineWaiting, ops.TimelineLaunchAttempt, ops.TimelineLaunchFailed,
		ops.TimelineLaunchAttempt, ops.TimelineLaunched, ops.TimelinePolled, ops.TimelineCancelRequested, ops.TimelineFinished, ops.TimelineWebhook}, got,
		"in the order they happened")
	raw, _ := json.Marshal(evs)
	for _, secret := range []string{"Sup3r-S3cret-Pw", "echo installed", "AAAAC3NzaC1lZDI1NTE5AAAAIKey", "cb-T0ken"} {
		assert.NotContains(t, string(raw), secret)
	}
}
