package tasks_test

import (
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/simkit"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

func reinstallResult(t *testing.T, op *opstore.Operation) *ops.ReinstallResult {
	t.Helper()
	view := op.View()
	res, err := view.DecodeResult()
	require.NoError(t, err)
	return res.(*ops.ReinstallResult)
}

// A reinstall puts the new image on; a machine with a snapshot is refused
// (naming the snapshot) unless delete_snapshot_first, which deletes it
// and waits first.
func TestReinstall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ kind, machine, id, field string }{
		{ops.KindInstanceReinstall, leaseweb.MachineInstance, instRunning, "instance_id"},
		{ops.KindVPSReinstall, leaseweb.MachineVPS, "999999999", "vps_id"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			b := setupCloud(t)
			snap := makeSnapshot(t, b, tc.machine, tc.id)
			refused := b.submit(t, tc.kind, `{"`+tc.field+`":"`+tc.id+`","image_id":"DEBIAN_12_64BIT"}`)
			assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(refused.ID)), asynq.SkipRetry)
			assert.Contains(t, b.op(t, refused.ID).LastError, "has snapshot "+snap)
			put := "/publicCloud/v1/" + pathOf(tc.machine) + "/" + tc.id + "/reinstall"
			assert.Equal(t, 0, b.lw.CountCalls("PUT", put))

			op := b.submit(t, tc.kind, `{"`+tc.field+`":"`+tc.id+`","image_id":"DEBIAN_12_64BIT","delete_snapshot_first":true}`)
			task := b.task(t, tasks.LaunchTaskID(op.ID))
			err := b.worker.Handler().ProcessTask(t.Context(), task)
			require.Error(t, err)
			assert.False(t, b.worker.IsFailure(err), "waiting for the deletion uses no retry")
			b.step(1)
			require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
			assert.Equal(t, 1, b.lw.CountCalls("PUT", put))
			op = b.runPolls(t, op.ID, 5)
			require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
			r := reinstallResult(t, op)
			assert.Equal(t, "UBUNTU_22_04_64BIT", r.ImageBefore)
			assert.Equal(t, "DEBIAN_12_64BIT", r.ImageID)
			assert.Equal(t, "RUNNING", r.State)
		})
	}
}

// A reinstall whose answer was lost is adopted mid-change; one that reads
// settled on the same image it was asked for (old = new) is never sent
// twice.
func TestReinstallLostAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, image string
		elapse      int
		adopted     bool
	}{{"MidChange", "DEBIAN_12_64BIT", 0, true}, {"NewImageOn", "DEBIAN_12_64BIT", 3, true}, {"SameImageSettled", "UBUNTU_22_04_64BIT", 3, false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupCloud(t)
			put := "/publicCloud/v1/instances/" + instRunning + "/reinstall"
			b.lw.Inject(simkit.Fault{Kind: simkit.FaultAfterEffect, Method: "PUT", PathPrefix: put})
			op := b.submit(t, ops.KindInstanceReinstall, `{"instance_id":"`+instRunning+`","image_id":"`+tc.image+`"}`)
			task := b.task(t, tasks.LaunchTaskID(op.ID))
			require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task))
			b.step(tc.elapse)
			err := b.worker.Handler().ProcessTask(t.Context(), task)
			op = b.op(t, op.ID)
			if tc.adopted {
				require.NoError(t, err)
				assert.Equal(t, opstore.StateRunning, op.State)
			} else {
				assert.ErrorIs(t, err, asynq.SkipRetry)
				assert.Contains(t, op.LastError, "a second reinstall was not sent")
			}
			assert.Equal(t, 1, b.lw.CountCalls("PUT", put), "one reinstall")
		})
	}
}

// A launch that waits before its call (the snapshot being deleted first)
// leaves nothing to reconcile: a reinstall onto the same image is not
// mistaken for a lost answer when it runs again.
func TestReinstallAfterWaitIsNotALostAnswer(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	makeSnapshot(t, b, leaseweb.MachineInstance, instRunning)
	op := b.submit(t, ops.KindInstanceReinstall, `{"instance_id":"`+instRunning+`","image_id":"UBUNTU_22_04_64BIT","delete_snapshot_first":true}`)
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task))
	assert.Nil(t, b.op(t, op.ID).LaunchStartedAt, "the wait came before any call")
	b.step(1)
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	assert.Equal(t, opstore.StateRunning, b.op(t, op.ID).State)
	assert.Equal(t, 1, b.lw.CountCalls("PUT", "/publicCloud/v1/instances/"+instRunning+"/reinstall"))
}
