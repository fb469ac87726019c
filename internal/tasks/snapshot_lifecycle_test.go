package tasks_test

import (
	"fmt"
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

// makeSnapshot gives the machine a READY snapshot and returns its id.
func makeSnapshot(t *testing.T, b *serverBundle, machine, id string) string {
	t.Helper()
	require.NoError(t, b.lwc.PublicCloud.CreateSnapshot(t.Context(), machine, id, "base"))
	b.step(3)
	snaps, err := b.lwc.PublicCloud.ListSnapshots(t.Context(), machine, id)
	require.NoError(t, err)
	require.Len(t, snaps, 1)
	require.Equal(t, "READY", snaps[0].State)
	return snaps[0].ID
}

// A restore waits for the machine to stop and start again; the result
// names the snapshot and the state before.
func TestSnapshotRestore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ kind, machine, id, params string }{
		{ops.KindInstanceSnapshotRestore, leaseweb.MachineInstance, instRunning, `{"instance_id":"` + instRunning + `","snapshot_id":"%s"}`},
		{ops.KindVPSSnapshotRestore, leaseweb.MachineVPS, "999999999", `{"vps_id":"999999999","snapshot_id":"%s"}`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			b := setupCloud(t)
			snap := makeSnapshot(t, b, tc.machine, tc.id)
			op := b.submit(t, tc.kind, sprintf(tc.params, snap))
			require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
			assert.Equal(t, 1, b.lw.CountCalls("PUT", "/publicCloud/v1/"+pathOf(tc.machine)+"/"+tc.id+"/snapshots/"+snap))
			require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
			assert.Equal(t, opstore.StateRunning, b.op(t, op.ID).State, "STOPPING: under way")
			op = b.runPolls(t, op.ID, 5)
			require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
			view := op.View()
			res, err := view.DecodeResult()
			require.NoError(t, err)
			r := res.(*ops.SnapshotRestoreResult)
			assert.Equal(t, ops.SnapshotRestoreResult{MachineID: tc.id, SnapshotID: snap, StateBefore: "RUNNING", State: "RUNNING", ChangeSeen: true}, *r)
		})
	}
}

// Pre-flight: a snapshot that is missing or not READY is refused before
// any change.
func TestSnapshotRestorePreflight(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	missing := b.submit(t, ops.KindInstanceSnapshotRestore, `{"instance_id":"`+instRunning+`","snapshot_id":"95b0ae2e-4a8d-4b4d-9d5e-2f0a1c3b4d5e"}`)
	assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(missing.ID)), asynq.SkipRetry)
	assert.Contains(t, b.op(t, missing.ID).LastError, "has no snapshot 95b0ae2e")

	require.NoError(t, b.lwc.PublicCloud.CreateSnapshot(t.Context(), leaseweb.MachineInstance, instRunning, "new"))
	snaps, err := b.lwc.PublicCloud.ListSnapshots(t.Context(), leaseweb.MachineInstance, instRunning)
	require.NoError(t, err)
	creating := b.submit(t, ops.KindInstanceSnapshotRestore, `{"instance_id":"`+instRunning+`","snapshot_id":"`+snaps[0].ID+`"}`)
	assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(creating.ID)), asynq.SkipRetry)
	assert.Contains(t, b.op(t, creating.ID).LastError, "is CREATING: only a READY snapshot can be restored")
	assert.Equal(t, 0, b.lw.CountCalls("PUT", "/publicCloud/v1/instances/"+instRunning+"/snapshots/"))
}

// A restore whose answer was lost is adopted while the machine changes,
// and never sent twice once it reads RUNNING again.
func TestSnapshotRestoreLostAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		elapse  int
		adopted bool
	}{{"MidChange", 0, true}, {"AlreadyBack", 3, false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupCloud(t)
			snap := makeSnapshot(t, b, leaseweb.MachineInstance, instRunning)
			put := "/publicCloud/v1/instances/" + instRunning + "/snapshots/" + snap
			b.lw.Inject(simkit.Fault{Kind: simkit.FaultAfterEffect, Method: "PUT", PathPrefix: put})
			op := b.submit(t, ops.KindInstanceSnapshotRestore, `{"instance_id":"`+instRunning+`","snapshot_id":"`+snap+`"}`)
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
				assert.Equal(t, opstore.StateFailed, op.State)
				assert.Contains(t, op.LastError, "a second restore was not sent")
			}
			assert.Equal(t, 1, b.lw.CountCalls("PUT", put), "one restore")
		})
	}
}

// A delete ends when the snapshot answers 404; one already gone is
// success, not failure.
func TestSnapshotDelete(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ kind, machine, id, params string }{
		{ops.KindInstanceSnapshotDelete, leaseweb.MachineInstance, instRunning, `{"instance_id":"` + instRunning + `","snapshot_id":"%s"}`},
		{ops.KindVPSSnapshotDelete, leaseweb.MachineVPS, "999999999", `{"vps_id":"999999999","snapshot_id":"%s"}`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			b := setupCloud(t)
			snap := makeSnapshot(t, b, tc.machine, tc.id)
			op := b.submit(t, tc.kind, sprintf(tc.params, snap))
			require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
			require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
			assert.Equal(t, "DESTROYING", b.op(t, op.ID).Status)
			op = b.runPolls(t, op.ID, 3)
			require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
			assert.JSONEq(t, `{"machine_id":"`+tc.id+`","snapshot_id":"`+snap+`","already_gone":false}`, string(op.Result))

			again := b.submit(t, tc.kind, sprintf(tc.params, snap))
			require.NoError(t, b.run(t, tasks.LaunchTaskID(again.ID)))
			require.NoError(t, b.run(t, tasks.PollTaskID(again.ID, 1)))
			again = b.op(t, again.ID)
			require.Equal(t, opstore.StateSucceeded, again.State, again.LastError)
			assert.Contains(t, string(again.Result), `"already_gone":true`)
		})
	}
}

func pathOf(machine string) string {
	if machine == leaseweb.MachineVPS {
		return "vps"
	}
	return "instances"
}

func sprintf(format, arg string) string { return fmt.Sprintf(format, arg) }

// operation_id names the instance:snapshot operation whose snapshot to
// restore.
func TestSnapshotRestoreByOperation(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	snap := b.submit(t, tasks.TypeInstanceSnapshot, `{"instance_id":"`+instRunning+`","name":"before"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(snap.ID)))
	snap = b.runPolls(t, snap.ID, 5)
	require.Equal(t, opstore.StateSucceeded, snap.State, snap.LastError)

	op := b.submit(t, ops.KindInstanceSnapshotRestore, `{"instance_id":"`+instRunning+`","operation_id":"`+snap.ID+`"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	assert.Equal(t, 1, b.lw.CountCalls("PUT", "/publicCloud/v1/instances/"+instRunning+"/snapshots/"+snap.Handle))
	op = b.runPolls(t, op.ID, 5)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	assert.Contains(t, string(op.Result), `"snapshot_id":"`+snap.Handle+`"`)

	wrong := b.submit(t, ops.KindVPSSnapshotRestore, `{"vps_id":"999999999","operation_id":"`+snap.ID+`"}`)
	assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(wrong.ID)), asynq.SkipRetry)
	assert.Contains(t, b.op(t, wrong.ID).LastError, "is a instance:snapshot on leaseweb, not a vps:snapshot")
}
