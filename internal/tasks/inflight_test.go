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
	"github.com/opsworker/opsworker/ops"
)

// max_in_flight 1: a second operation of the account waits in queued,
// saying why and using no attempt, until the first ends; then it runs.
func TestAccountCapHoldsWorkInQueued(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) {
		c.MaxInFlight = func(provider, account string) int {
			if provider == ops.ProviderLeaseweb && account == "default" {
				return 1
			}
			return 0
		}
	})
	first := b.submit(t, ops.KindServerIPMIReset, `{"server_id":"111"}`)
	second := b.submit(t, ops.KindServerIPMIReset, `{"server_id":"222"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(first.ID)))
	task := b.task(t, tasks.LaunchTaskID(second.ID))
	err := b.worker.Handler().ProcessTask(t.Context(), task)
	require.Error(t, err)
	assert.False(t, b.worker.IsFailure(err))
	op := b.op(t, second.ID)
	assert.Equal(t, opstore.StateQueued, op.State)
	assert.Equal(t, "waiting: default on leaseweb has 1 of 1 operations in flight (max_in_flight)", op.LastError)
	assert.Zero(t, b.lw.Launches("222", "ipmiReset"))

	finishAll(b)
	require.NoError(t, b.run(t, tasks.PollTaskID(first.ID, 1)))
	require.Equal(t, opstore.StateSucceeded, b.op(t, first.ID).State)
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	assert.Equal(t, opstore.StateRunning, b.op(t, second.ID).State)
	assert.Equal(t, 1, b.lw.Launches("222", "ipmiReset"))
}

// An operation canceled while it waits in queued gives back what its
// launch took before it had to wait (here the server's lock, taken before
// the account's cap turned it away).
func TestCancelWhileWaitingReleasesTheLock(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) {
		c.MaxInFlight = func(string, string) int { return 1 }
	})
	first := b.submit(t, ops.KindServerIPMIReset, `{"server_id":"111"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(first.ID)))
	waiting := b.submit(t, ops.KindServerIPMIReset, `{"server_id":"222"}`)
	require.Error(t, b.worker.Handler().ProcessTask(t.Context(), b.task(t, tasks.LaunchTaskID(waiting.ID))))
	holder, err := b.store.LockHolder(t.Context(), "leaseweb:server:222")
	require.NoError(t, err)
	require.Equal(t, waiting.ID, holder, "the lock comes before the cap")

	p, _ := json.Marshal(tasks.CancelPayload{OperationID: waiting.ID})
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCancel, p)))
	assert.Equal(t, opstore.StateCanceled, b.op(t, waiting.ID).State)
	holder, err = b.store.LockHolder(t.Context(), "leaseweb:server:222")
	require.NoError(t, err)
	assert.Empty(t, holder, "released at once, not at its TTL")
}
