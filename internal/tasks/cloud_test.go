package tasks_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/simkit"
	"github.com/opsworker/opsworker/internal/tasks"
)

const (
	instRunning = "ace712e9-a166-47f1-9065-4af0f7e7fce1"
	instStopped = "5d7f8262-d77f-4476-8da8-6a84f8f2ae8d"
	asgManual   = "fb769dab-3daa-47e4-89ed-06a4b6499176"
	asgCPU      = "3b5b5e4a-5c0c-4c8f-9cf6-0d8a9b5ad2c1"
	asgSched    = "7a4c2f10-1d2e-4f3a-8b9c-0e1f2a3b4c5d"
)

func setupCloud(t *testing.T) *serverBundle {
	t.Helper()
	return setupServer(t, leasewebsim.Config{CloudStep: time.Minute})
}

// step moves the simulator one cloud step on.
func (b *serverBundle) step(n int) { b.lwClock.Add(time.Duration(n) * time.Minute) }

// runPolls runs the operation's current poll until it ends (or n polls).
func (b *serverBundle) runPolls(t *testing.T, id string, n int) *opstore.Operation {
	t.Helper()
	for i := 0; i < n; i++ {
		op := b.op(t, id)
		if op.State.Terminal() {
			return op
		}
		b.step(1)
		require.NoError(t, b.run(t, tasks.PollTaskID(id, op.PollSeq)))
	}
	return b.op(t, id)
}

func TestCloudValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsimConfig())
	tests := []struct{ kind, params, field string }{
		{tasks.TypeInstanceSnapshot, `{"name":"n"}`, "params.instance_id"},
		{tasks.TypeInstanceSnapshot, `{"instance_id":"123","name":"n"}`, "params.instance_id"},
		{tasks.TypeInstanceSnapshot, `{"instance_id":"` + instRunning + `"}`, "params.name"},
		{tasks.TypeInstanceSnapshot, `{"vps_id":"1","name":"n"}`, "params.vps_id"},
		{tasks.TypeVPSSnapshot, `{"vps_id":"abc","name":"n"}`, "params.vps_id"},
		{tasks.TypeVPSSnapshot, `{"vps_id":"1","name":"a\nb"}`, "params.name"},
		{tasks.TypeASGScale, `{"asg_id":"` + asgManual + `"}`, "params"},
		{tasks.TypeASGScale, `{"asg_id":"x","desired_amount":2}`, "params.asg_id"},
		{tasks.TypeASGScale, `{"asg_id":"` + asgCPU + `","cpu_threshold":101}`, "params.cpu_threshold"},
		{tasks.TypeASGScale, `{"asg_id":"` + asgCPU + `","warmup_time":30}`, "params.warmup_time"},
		{tasks.TypeASGScale, `{"asg_id":"` + asgCPU + `","cooldown_time":901}`, "params.cooldown_time"},
		{tasks.TypeASGScale, `{"asg_id":"` + asgCPU + `","minimum_amount":5,"maximum_amount":2}`, "params.minimum_amount"},
		{tasks.TypeASGScale, `{"asg_id":"` + asgSched + `","starts_at":"2026-12-01T08:00:00Z"}`, "params.ends_at"},
		{tasks.TypeASGScale, `{"asg_id":"` + asgSched + `","starts_at":"tomorrow","ends_at":"2026-12-01T08:00:00Z"}`, "params.starts_at"},
		{tasks.TypeASGScale, `{"asg_id":"` + asgSched + `","starts_at":"2026-12-01T08:00:00Z","ends_at":"2026-12-01T07:00:00Z"}`, "params.ends_at"},
		{tasks.TypeASGScale, `{"asg_id":"` + asgManual + `","desired_amount":0}`, "params.desired_amount"},
		{tasks.TypeInstanceResize, `{"instance_id":"` + instRunning + `"}`, "params.type"},
		{tasks.TypeInstanceResize, `{"instance_id":"` + instRunning + `","type":"huge"}`, "params.type"},
	}
	for _, tc := range tests {
		_, _, err := b.sub.Submit(t.Context(), tc.kind, tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(tc.params)})
		var ve *tasks.ValidationError
		if assert.ErrorAs(t, err, &ve, tc.params) {
			assert.Equal(t, tc.field, ve.Field, "%s %s: %s", tc.kind, tc.params, ve.Error())
		}
	}
}

func TestSnapshotPreflightAndReplace(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	first := b.submit(t, tasks.TypeInstanceSnapshot, `{"instance_id":"`+instRunning+`","name":"nightly"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(first.ID)))
	op := b.runPolls(t, first.ID, 5)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	assert.Contains(t, string(op.Result), `"state":"READY"`)
	assert.Equal(t, op.Handle, mustSnapshot(t, b, instRunning).ID, "handle found by name")

	// A second one without replace_existing: refused, naming the existing.
	second := b.submit(t, tasks.TypeInstanceSnapshot, `{"instance_id":"`+instRunning+`","name":"again"}`)
	err := b.run(t, tasks.LaunchTaskID(second.ID))
	assert.ErrorIs(t, err, asynq.SkipRetry)
	op = b.op(t, second.ID)
	assert.Equal(t, opstore.StateFailed, op.State)
	assert.Contains(t, op.LastError, "already has snapshot "+b.op(t, first.ID).Handle+` ("nightly", READY)`)

	// With replace_existing: the old one is deleted, the deletion awaited,
	// then the new one made.
	third := b.submit(t, tasks.TypeInstanceSnapshot, `{"instance_id":"`+instRunning+`","name":"fresh","replace_existing":true}`)
	task := b.task(t, tasks.LaunchTaskID(third.ID))
	err = b.worker.Handler().ProcessTask(t.Context(), task)
	require.Error(t, err)
	assert.False(t, b.worker.IsFailure(err), "waiting for the deletion uses no retry")
	assert.Contains(t, b.op(t, third.ID).LastError, "deleting old snapshot")
	err = b.worker.Handler().ProcessTask(t.Context(), task)
	require.Error(t, err, "still DESTROYING")
	assert.False(t, b.worker.IsFailure(err))
	b.step(1)
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	op = b.runPolls(t, third.ID, 5)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	assert.Equal(t, "fresh", mustSnapshot(t, b, instRunning).DisplayName)
	assert.Equal(t, 1, b.lw.CountCalls("DELETE", "/publicCloud/v1/instances/"+instRunning+"/snapshots/"), "deleted once")

	// A stopped instance: refused before any change.
	stopped := b.submit(t, tasks.TypeInstanceSnapshot, `{"instance_id":"`+instStopped+`","name":"n"}`)
	assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(stopped.ID)), asynq.SkipRetry)
	assert.Contains(t, b.op(t, stopped.ID).LastError, "is STOPPED: a snapshot needs it RUNNING")
}

func mustSnapshot(t *testing.T, b *serverBundle, id string) leaseweb.Snapshot {
	t.Helper()
	snaps, err := b.lwc.PublicCloud.ListSnapshots(t.Context(), leaseweb.MachineInstance, id)
	require.NoError(t, err)
	require.Len(t, snaps, 1)
	return snaps[0]
}

func TestVPSSnapshotAndFailure(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	b.lw.FailNextSnapshots(1)
	op := b.submit(t, tasks.TypeVPSSnapshot, `{"vps_id":"999999999","name":"pre-upgrade"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	op = b.runPolls(t, op.ID, 5)
	assert.Equal(t, opstore.StateFailed, op.State)
	assert.Contains(t, op.LastError, "snapshot "+op.Handle+" of VPS 999999999 is FAILED")
}

func TestASGScalePassesThroughScaling(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	op := b.submit(t, tasks.TypeASGScale, `{"asg_id":"`+asgManual+`","desired_amount":4}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	seen := map[string]bool{}
	for i := 0; i < 6 && !b.op(t, op.ID).State.Terminal(); i++ {
		cur := b.op(t, op.ID)
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, cur.PollSeq)))
		seen[b.op(t, op.ID).Status] = true
		b.step(1)
	}
	op = b.op(t, op.ID)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	assert.True(t, seen["SCALING"], "passed through SCALING: %v", seen)
	var res struct {
		Before, After map[string]any
		Instances     int
	}
	require.NoError(t, json.Unmarshal(op.Result, &res))
	assert.Equal(t, float64(2), res.Before["desired_amount"])
	assert.Equal(t, float64(4), res.After["desired_amount"])
	assert.Equal(t, 4, res.Instances)
}

func TestASGRulesPerType(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	tests := []struct{ params, field string }{
		{`{"asg_id":"` + asgManual + `","cpu_threshold":50}`, "params.cpu_threshold"},
		{`{"asg_id":"` + asgManual + `","minimum_amount":2}`, "params.desired_amount"},
		{`{"asg_id":"` + asgManual + `","desired_amount":2,"starts_at":"2026-12-01T08:00:00Z","ends_at":"2026-12-01T09:00:00Z"}`, "params.starts_at"},
		{`{"asg_id":"` + asgCPU + `","desired_amount":3}`, "params.desired_amount"},
		{`{"asg_id":"` + asgSched + `","warmup_time":120}`, "params.warmup_time"},
	}
	for _, tc := range tests {
		op := b.submit(t, tasks.TypeASGScale, tc.params)
		err := b.run(t, tasks.LaunchTaskID(op.ID))
		assert.ErrorIs(t, err, asynq.SkipRetry, tc.params)
		got := b.op(t, op.ID)
		assert.Equal(t, opstore.StateFailed, got.State)
		assert.Contains(t, got.LastError, tc.field, tc.params)
	}
	assert.Zero(t, b.lw.CountCalls("PUT", "/publicCloud/v1/autoScalingGroups/"), "nothing changed at the provider")

	op := b.submit(t, tasks.TypeASGScale, `{"asg_id":"`+asgCPU+`","minimum_amount":2,"maximum_amount":6,"cpu_threshold":60}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	assert.Equal(t, opstore.StateSucceeded, b.runPolls(t, op.ID, 6).State)
}

func TestResize(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	op := b.submit(t, tasks.TypeInstanceResize, `{"instance_id":"`+instRunning+`","type":"lsw.m3.xlarge"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	op = b.runPolls(t, op.ID, 6)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	assert.Contains(t, string(op.Result), `"type":"lsw.m3.xlarge"`)

	refused := b.submit(t, tasks.TypeInstanceResize, `{"instance_id":"`+instRunning+`","type":"lsw.r6a.24xlarge"}`)
	assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(refused.ID)), asynq.SkipRetry)
	got := b.op(t, refused.ID)
	assert.Equal(t, opstore.StateFailed, got.State)
	assert.Contains(t, got.LastError, "lsw.r6a.24xlarge is not offered")
	assert.Contains(t, got.LastError, "allowed: lsw.m3.xlarge, lsw.m3.2xlarge, lsw.m4.large")

	b.lw.FailNextResizes(1)
	failing := b.submit(t, tasks.TypeInstanceResize, `{"instance_id":"`+instRunning+`","type":"lsw.m4.large"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(failing.ID)))
	assert.Equal(t, opstore.StateFailed, b.runPolls(t, failing.ID, 6).State)
}

// A lost answer to the group update: the retry sees the group already
// holds the asked values and adopts the change, never sending it again.
func TestInterruptedASGScaleIsAdopted(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	put := "/publicCloud/v1/autoScalingGroups/" + asgManual
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultAfterEffect, Method: "PUT", PathPrefix: put})
	op := b.submit(t, tasks.TypeASGScale, `{"asg_id":"`+asgManual+`","desired_amount":5}`)
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	err := b.worker.Handler().ProcessTask(t.Context(), task)
	require.Error(t, err, "the answer was lost")
	assert.False(t, errors.Is(err, asynq.SkipRetry))
	require.Equal(t, opstore.StateLaunching, b.op(t, op.ID).State)

	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	assert.Equal(t, 1, b.lw.CountCalls("PUT", put), "adopted, not sent again")
	op = b.runPolls(t, op.ID, 8)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	var res struct {
		Before, After map[string]any
		Instances     int
	}
	require.NoError(t, json.Unmarshal(op.Result, &res))
	assert.Equal(t, float64(2), res.Before["desired_amount"], "the amounts read before the lost attempt")
	assert.Equal(t, float64(5), res.After["desired_amount"])
	assert.Equal(t, 5, res.Instances)
}

// A retry whose earlier attempt never reached the provider sends the change.
func TestASGScaleRetryWithoutEffectUpdates(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	put := "/publicCloud/v1/autoScalingGroups/" + asgManual
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultStatus, Status: 503, Method: "PUT", PathPrefix: put})
	op := b.submit(t, tasks.TypeASGScale, `{"asg_id":"`+asgManual+`","desired_amount":3}`)
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task))
	require.Zero(t, b.lw.CountCalls("PUT", put), "the 503 changed nothing")
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	assert.Equal(t, 1, b.lw.CountCalls("PUT", put), "the retry sent the change")
	op = b.runPolls(t, op.ID, 8)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	assert.Contains(t, string(op.Result), `"instances":3`)
}

// A lost answer to the type change: the instance is mid-change, and the
// retry adopts it instead of restarting the change.
func TestInterruptedResizeIsAdopted(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	put := "/publicCloud/v1/instances/" + instRunning
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultAfterEffect, Method: "PUT", PathPrefix: put})
	op := b.submit(t, tasks.TypeInstanceResize, `{"instance_id":"`+instRunning+`","type":"lsw.m3.xlarge"}`)
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task), "the answer was lost")
	require.Equal(t, opstore.StateLaunching, b.op(t, op.ID).State)

	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	assert.Equal(t, 1, b.lw.CountCalls("PUT", put), "adopted, not sent again")
	op = b.runPolls(t, op.ID, 6)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	assert.Contains(t, string(op.Result), `"type":"lsw.m3.xlarge"`)
}

// The snapshot is asked for and then listing it fails with a 503: the
// create happened, so the retry reconciles (finds it by name) instead of
// taking the 503 as "nothing happened" and asking again.
func TestSnapshotListFailureAfterCreateIsReconciled(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	path := "/publicCloud/v1/instances/" + instRunning + "/snapshots"
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultStatus, Status: 503, Method: "GET", PathPrefix: path, Skip: 1})
	op := b.submit(t, tasks.TypeInstanceSnapshot, `{"instance_id":"`+instRunning+`","name":"nightly"}`)
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task))
	require.NotNil(t, b.op(t, op.ID).LaunchStartedAt, "kept for reconcile")
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateRunning, op.State, op.LastError)
	assert.Equal(t, mustSnapshot(t, b, instRunning).ID, op.Handle)
	assert.Equal(t, 1, b.lw.CountCalls("POST", path), "asked for once")
}
