package tasks_test

import (
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

// failedInstall runs an install that fails and returns its job uuid.
func failedInstall(t *testing.T, b *serverBundle) string {
	t.Helper()
	return failedInstallOp(t, b).Handle
}

// failedInstallOp runs an install that fails and returns its record.
func failedInstallOp(t *testing.T, b *serverBundle) *opstore.Operation {
	t.Helper()
	b.lw.FailNextJobs(1)
	op := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	finishAll(b)
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	op = b.op(t, op.ID)
	require.Equal(t, opstore.StateFailed, op.State)
	return op
}

// A failed job runs again under its own uuid and succeeds; a finished job
// is refused before any call, naming params.job_id.
func TestServerJobRetry(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	job := failedInstall(t, b)
	op := b.submit(t, ops.KindServerJobRetry, `{"server_id":"12345","job_id":"`+job+`"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	assert.Equal(t, 1, b.lw.CountCalls("POST", "/servers/12345/jobs/"+job+"/retry"))
	op = b.op(t, op.ID)
	require.Equal(t, opstore.StateRunning, op.State, op.LastError)
	assert.Equal(t, job, op.Handle)
	finishAll(b)
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	op = b.op(t, op.ID)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	view := op.View()
	res, err := view.DecodeResult()
	require.NoError(t, err)
	assert.Equal(t, "FINISHED", res.(*ops.ServerJobResult).Status)

	again := b.submit(t, ops.KindServerJobRetry, `{"server_id":"12345","job_id":"`+job+`"}`)
	assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(again.ID)), asynq.SkipRetry)
	assert.Contains(t, b.op(t, again.ID).LastError, "params.job_id: job "+job+" (install) is FINISHED: only a FAILED, CANCELED or EXPIRED job can be retried")
	assert.Equal(t, 1, b.lw.CountCalls("POST", "/servers/12345/jobs/"+job+"/retry"))
}

// A retry whose answer was lost is adopted (the job is running again),
// never sent twice.
func TestServerJobRetryLostAnswer(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	job := failedInstall(t, b)
	path := "/servers/12345/jobs/" + job + "/retry"
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultAfterEffect, Method: "POST", PathPrefix: path})
	op := b.submit(t, ops.KindServerJobRetry, `{"server_id":"12345","job_id":"`+job+`"}`)
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task))
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateRunning, op.State, op.LastError)
	assert.Equal(t, 1, b.lw.CountCalls("POST", path), "adopted, not retried twice")
}

// operation_id names the operation whose job to retry; one that is not a
// server job on that server, or never launched, is refused naming the
// field.
func TestServerJobRetryByOperation(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	failed := failedInstallOp(t, b)
	op := b.submit(t, ops.KindServerJobRetry, `{"server_id":"12345","operation_id":"`+failed.ID+`"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	op = b.op(t, op.ID)
	require.Equal(t, opstore.StateRunning, op.State, op.LastError)
	assert.Equal(t, failed.Handle, op.Handle)
	assert.Equal(t, 1, b.lw.CountCalls("POST", "/servers/12345/jobs/"+failed.Handle+"/retry"))

	other := b.submit(t, ops.KindServerJobRetry, `{"server_id":"99999","operation_id":"`+failed.ID+`"}`)
	assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(other.ID)), asynq.SkipRetry)
	assert.Contains(t, b.op(t, other.ID).LastError, "params.operation_id: operation "+failed.ID+" ran on server 12345, not 99999")

	unknown := b.submit(t, ops.KindServerJobRetry, `{"server_id":"55555","operation_id":"01938f4e-7a2b-7c3d-9e4f-5a6b7c8d9e0f"}`)
	assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(unknown.ID)), asynq.SkipRetry)
	assert.Contains(t, b.op(t, unknown.ID).LastError, "params.operation_id: no operation 01938f4e-7a2b-7c3d-9e4f-5a6b7c8d9e0f")
}
