package tasks_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
)

// A UCDN purge job that is still waiting is removed at UCDN and the
// operation ends canceled; a running one cannot be removed, and the
// cancel says why.
func TestUCDNPurgeCancel(t *testing.T) {
	t.Parallel()
	cancel := func(b *bundle, id string) error {
		p, _ := json.Marshal(tasks.CancelPayload{OperationID: id})
		return b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCancel, p))
	}
	t.Run("Waiting", func(t *testing.T) {
		t.Parallel()
		b := setup(t, ucdnsim.Config{WaitingFor: time.Hour})
		op := submit(t, b, purgeEnv(goodParams))
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		require.NoError(t, cancel(b, op.ID))
		assert.Equal(t, 1, b.sim.CountCalls("DELETE", "/purge/job/"))
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
		op = b.op(t, op.ID)
		assert.Equal(t, opstore.StateCanceled, op.State)
		assert.Contains(t, op.LastError, "was removed before it ran")
	})
	t.Run("Running", func(t *testing.T) {
		t.Parallel()
		b := setup(t, ucdnsim.Config{RunningFor: time.Hour})
		op := submit(t, b, purgeEnv(goodParams))
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		err := cancel(b, op.ID)
		assert.ErrorIs(t, err, asynq.SkipRetry)
		op = b.op(t, op.ID)
		assert.Equal(t, opstore.StateRunning, op.State)
		assert.Contains(t, op.LastError, "is running: UCDN removes only waiting jobs")
		assert.Equal(t, 0, b.sim.CountCalls("DELETE", "/purge/job/"))
	})
}
