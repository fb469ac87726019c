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
)

// An operation's launch and polls go to its provider's queue, where only
// workers that serve the provider listen.
func TestOperationTasksGoToTheirProviderQueue(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	op := b.submit(t, tasks.TypeServerInstall, installParams)
	info, err := b.lookup(tasks.LaunchTaskID(op.ID))
	require.NoError(t, err)
	assert.Equal(t, "ops:leaseweb", info.Queue)
	assert.Equal(t, "ops:leaseweb", b.op(t, op.ID).LaunchQueue)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	info, err = b.lookup(tasks.PollTaskID(op.ID, 1))
	require.NoError(t, err)
	assert.Equal(t, "ops:leaseweb", info.Queue)
}

// A cancel request goes to the general queue, which every worker serves:
// one without the provider ends an operation that has not launched, and
// hands one that has to the provider's queue, calling nobody.
func TestCancelOnAWorkerWithoutTheProvider(t *testing.T) {
	t.Parallel()
	var cfg tasks.Config
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) { cfg = *c })
	cfg.Executors = map[tasks.ExecutorKey]tasks.Executor{}
	other, err := tasks.NewWorker(cfg)
	require.NoError(t, err)
	cancel := func(id string) error {
		p, _ := json.Marshal(tasks.CancelPayload{OperationID: id})
		return other.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCancel, p))
	}

	queued := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, cancel(queued.ID))
	got := b.op(t, queued.ID)
	assert.Equal(t, opstore.StateCanceled, got.State)
	assert.Equal(t, "canceled before launch", got.LastError)

	running := b.submit(t, tasks.TypeServerInstall, "{\"server_id\":\"12346\""+installParams[len(`{"server_id":"12345"`):])
	require.NoError(t, b.run(t, tasks.LaunchTaskID(running.ID)))
	require.Equal(t, opstore.StateRunning, b.op(t, running.ID).State)
	require.NoError(t, cancel(running.ID))
	got = b.op(t, running.ID)
	assert.Equal(t, opstore.StateRunning, got.State, "only a worker of its provider can cancel it there")
	assert.Empty(t, got.CancelRequested)
	info, err := b.insp.GetTaskInfo("ops:leaseweb", tasks.CancelTaskID(running.ID))
	require.NoError(t, err, "handed to the provider's queue")
	assert.Equal(t, tasks.TypeCancel, info.Type)

	// The provider's worker takes it from there.
	require.NoError(t, b.run(t, tasks.CancelTaskID(running.ID)))
	assert.NotEmpty(t, b.op(t, running.ID).CancelRequested)
}
