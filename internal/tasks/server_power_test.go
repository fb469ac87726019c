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

// powerResult decodes a power operation's result.
func powerResult(t *testing.T, op *opstore.Operation) *ops.PowerResult {
	t.Helper()
	view := op.View()
	res, err := view.DecodeResult()
	require.NoError(t, err)
	return res.(*ops.PowerResult)
}

// power_on and power_off end when IPMI reads the target state, not when
// the call answers.
func TestPowerOnAndOff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind, path, want string
		startOn          bool
	}{
		{ops.KindServerPowerOff, "/servers/12345/powerOff", "off", true},
		{ops.KindServerPowerOn, "/servers/12345/powerOn", "on", false},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			b := setupServer(t, leasewebsim.Config{TaskDuration: time.Minute})
			b.lw.SetPower("12345", tc.startOn)
			op := b.submit(t, tc.kind, `{"server_id":"12345"}`)
			require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
			assert.Equal(t, 1, b.lw.CountCalls("POST", tc.path))

			require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
			op = b.op(t, op.ID)
			assert.Equal(t, opstore.StateRunning, op.State, "the change has not shown yet")

			b.lwClock.Add(time.Minute)
			require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 2)))
			op = b.op(t, op.ID)
			require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
			res := powerResult(t, op)
			assert.Equal(t, tc.want, res.IPMI)
			assert.Equal(t, "on", res.PDU, "the PDU reads on whatever the server does")
			assert.Nil(t, res.OffSeen)
		})
	}
}

// A power cycle ends when the server has read off and then on; a reboot
// quicker than the polls ends it after a few polls that read on.
func TestPowerCycle(t *testing.T) {
	t.Parallel()
	t.Run("SeenOff", func(t *testing.T) {
		t.Parallel()
		b := setupServer(t, leasewebsim.Config{TaskDuration: time.Minute})
		op := b.submit(t, ops.KindServerPowerCycle, `{"server_id":"12345"}`)
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
		op = b.op(t, op.ID)
		assert.Equal(t, opstore.StateRunning, op.State)
		assert.JSONEq(t, `{"percentage":50,"task":"powered off; waiting for power on"}`, string(op.Progress))
		b.lwClock.Add(time.Minute)
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 2)))
		op = b.op(t, op.ID)
		require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
		assert.True(t, *powerResult(t, op).OffSeen)
	})
	t.Run("QuickerThanThePolls", func(t *testing.T) {
		t.Parallel()
		b := setupServer(t, leasewebsim.Config{})
		op := b.submit(t, ops.KindServerPowerCycle, `{"server_id":"12345"}`)
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		for seq := 1; seq <= 2; seq++ {
			require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, seq)))
			assert.Equal(t, opstore.StateRunning, b.op(t, op.ID).State, "poll %d reads on: too early to tell", seq)
		}
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 3)))
		op = b.op(t, op.ID)
		require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
		assert.False(t, *powerResult(t, op).OffSeen)
		assert.Equal(t, 1, b.lw.CountCalls("POST", "/servers/12345/powerCycle"))
	})
}

// A power cycle whose answer was lost is adopted while the server reads
// off; when it reads on, a second cycle is never sent and the operation
// says why. A cycle refused unread (503) is simply sent again.
func TestPowerCycleLostAnswer(t *testing.T) {
	t.Parallel()
	t.Run("ReadsOff", func(t *testing.T) {
		t.Parallel()
		b := setupServer(t, leasewebsim.Config{TaskDuration: time.Minute})
		b.lw.Inject(simkit.Fault{Kind: simkit.FaultAfterEffect, Method: "POST", PathPrefix: "/servers/12345/powerCycle"})
		op := b.submit(t, ops.KindServerPowerCycle, `{"server_id":"12345"}`)
		task := b.task(t, tasks.LaunchTaskID(op.ID))
		require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task))
		require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
		assert.Equal(t, opstore.StateRunning, b.op(t, op.ID).State)
		assert.Equal(t, 1, b.lw.CountCalls("POST", "/servers/12345/powerCycle"), "adopted, not sent again")
	})
	t.Run("ReadsOn", func(t *testing.T) {
		t.Parallel()
		b := setupServer(t, leasewebsim.Config{})
		b.lw.Inject(simkit.Fault{Kind: simkit.FaultAfterEffect, Method: "POST", PathPrefix: "/servers/12345/powerCycle"})
		op := b.submit(t, ops.KindServerPowerCycle, `{"server_id":"12345"}`)
		task := b.task(t, tasks.LaunchTaskID(op.ID))
		require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task))
		err := b.worker.Handler().ProcessTask(t.Context(), task)
		assert.ErrorIs(t, err, asynq.SkipRetry)
		op = b.op(t, op.ID)
		assert.Equal(t, opstore.StateFailed, op.State)
		assert.Contains(t, op.LastError, "a second power cycle was not sent")
		assert.Equal(t, 1, b.lw.CountCalls("POST", "/servers/12345/powerCycle"))
	})
	t.Run("RefusedUnread", func(t *testing.T) {
		t.Parallel()
		b := setupServer(t, leasewebsim.Config{})
		b.lw.Inject(simkit.Fault{Kind: simkit.FaultStatus, Status: 503, Method: "POST", PathPrefix: "/servers/12345/powerCycle"})
		op := b.submit(t, ops.KindServerPowerCycle, `{"server_id":"12345"}`)
		task := b.task(t, tasks.LaunchTaskID(op.ID))
		require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task))
		require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
		assert.Equal(t, opstore.StateRunning, b.op(t, op.ID).State)
		assert.Equal(t, 1, b.lw.CountCalls("POST", "/servers/12345/powerCycle"), "one accepted call")
	})
}

// A power action waits for the server's lock (an install running) and
// refuses a server running a job started elsewhere.
func TestPowerWaitsForTheServer(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	install := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(install.ID)))
	op := b.submit(t, ops.KindServerPowerCycle, `{"server_id":"12345"}`)
	err := b.worker.Handler().ProcessTask(t.Context(), b.task(t, tasks.LaunchTaskID(op.ID)))
	require.Error(t, err)
	assert.False(t, b.worker.IsFailure(err), "waiting uses no retry")
	assert.Contains(t, b.op(t, op.ID).LastError, "waiting: leaseweb:server:12345 busy with operation "+install.ID)
	assert.Equal(t, 0, b.lw.CountCalls("POST", "/servers/12345/powerCycle"))

	// A job started outside opsworker holds no lock: pre-flight sees it.
	b2 := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) { c.OnBusy = tasks.OnBusyFail })
	_, err = b2.lwc.BareMetal.LaunchRescueMode(t.Context(), "12345", nil)
	require.NoError(t, err)
	op = b2.submit(t, ops.KindServerPowerOff, `{"server_id":"12345"}`)
	require.ErrorIs(t, b2.run(t, tasks.LaunchTaskID(op.ID)), asynq.SkipRetry)
	assert.Contains(t, b2.op(t, op.ID).LastError, "a rescueMode job (")
	assert.Equal(t, 0, b2.lw.CountCalls("POST", "/servers/12345/powerOff"))
}
