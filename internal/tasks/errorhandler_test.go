package tasks_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/tasks"
)

// A failed task is one line naming its operation; when the operation
// already logged its end (with the error), the task's line drops to
// debug, so a failure reads once at the default level.
func TestTaskFailureIsOneLineWithTheOperation(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{}, func(c *tasks.Config) { c.OnBusy = tasks.OnBusyFail })
	blocker := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(blocker.ID)))
	op := b.submit(t, tasks.TypeServerInstall, installParams)
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	err := b.worker.Handler().ProcessTask(t.Context(), task)
	require.ErrorIs(t, err, asynq.SkipRetry, "the server is busy and on_busy is fail")
	require.True(t, tasks.Ended(err))

	core, logs := observer.New(zapcore.DebugLevel)
	handler := b.worker.ErrorHandler(zap.New(core))
	handler.HandleError(t.Context(), task, err)
	other, _ := json.Marshal(map[string]string{"operation_id": "op-x"})
	handler.HandleError(t.Context(), asynq.NewTask(tasks.TypePoll, other), errors.New("redis: connection refused"))

	entries := logs.All()
	require.Len(t, entries, 2)
	assert.Equal(t, zapcore.DebugLevel, entries[0].Level, "the operation's own line said it")
	assert.Equal(t, op.ID, entries[0].ContextMap()["operation_id"])
	assert.Equal(t, "task failed", entries[1].Message)
	assert.Equal(t, zapcore.ErrorLevel, entries[1].Level, "final: outside asynq's context max_retry reads 0")
	assert.Equal(t, "op-x", entries[1].ContextMap()["operation_id"])
	failed := 0
	for _, e := range b.logs.All() {
		if e.Level >= zapcore.InfoLevel && e.ContextMap()["operation_id"] == op.ID && e.Message == "operation failed" {
			failed++
		}
	}
	assert.Equal(t, 1, failed, "one line says the operation failed, with why")
}
