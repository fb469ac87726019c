package leaseweb_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
)

// Each public-cloud endpoint against the simulator: paths, methods,
// bodies and error envelopes as Leaseweb documents them
// (https://developer.leaseweb.com/api-docs/publiccloud_v1.html).
func TestPublicCloudEndpoints(t *testing.T) {
	t.Parallel()
	c := simClient(t)
	pc, ctx := c.PublicCloud, t.Context()
	const inst = "ace712e9-a166-47f1-9065-4af0f7e7fce1"

	m, err := pc.GetMachine(ctx, leaseweb.MachineInstance, inst)
	require.NoError(t, err)
	assert.Equal(t, "RUNNING", m.State)
	assert.Equal(t, "lsw.m3.large", m.Type)

	types, err := pc.ListInstanceTypesUpdate(ctx, inst)
	require.NoError(t, err)
	assert.Equal(t, "lsw.m3.xlarge", types[0].Name)

	require.NoError(t, pc.CreateSnapshot(ctx, leaseweb.MachineInstance, inst, "s1"))
	err = pc.CreateSnapshot(ctx, leaseweb.MachineInstance, inst, "s2")
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 400, pe.StatusCode)
	assert.Equal(t, "Allowed only one snapshot per instance.", pe.Message)
	assert.NotEmpty(t, pe.RequestID, "correlationId kept")
	snaps, err := pc.ListSnapshots(ctx, leaseweb.MachineInstance, inst)
	require.NoError(t, err)
	require.Len(t, snaps, 1)
	assert.Equal(t, "s1", snaps[0].DisplayName)
	assert.False(t, leaseweb.ParseTime(snaps[0].Created).IsZero(), "created parses (+0000 form)")
	got, err := pc.GetSnapshot(ctx, leaseweb.MachineInstance, inst, snaps[0].ID)
	require.NoError(t, err)
	assert.Equal(t, "READY", got.State)
	require.NoError(t, pc.DeleteSnapshot(ctx, leaseweb.MachineInstance, inst, snaps[0].ID))

	_, err = pc.GetMachine(ctx, leaseweb.MachineVPS, inst)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 404, pe.StatusCode, "an instance id is not a VPS")
	err = pc.CreateSnapshot(ctx, leaseweb.MachineInstance, "5d7f8262-d77f-4476-8da8-6a84f8f2ae8d", "x")
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "The instance must be running before the execution.", pe.Message)

	updated, err := pc.UpdateInstanceType(ctx, inst, "lsw.m3.xlarge")
	require.NoError(t, err)
	assert.Equal(t, "STOPPING", updated.State, "the change is asynchronous")
	m, err = pc.GetMachine(ctx, leaseweb.MachineInstance, inst)
	require.NoError(t, err)
	assert.Equal(t, "lsw.m3.xlarge", m.Type)
	assert.Equal(t, "RUNNING", m.State)
	_, err = pc.UpdateInstanceType(ctx, inst, "lsw.zz.huge")
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "Validation Failed (type: The instance type lsw.zz.huge is not available for this instance.)", pe.Message, "errorDetails kept")

	const asg = "fb769dab-3daa-47e4-89ed-06a4b6499176"
	g, err := pc.GetAutoScalingGroup(ctx, asg)
	require.NoError(t, err)
	assert.Equal(t, "MANUAL", g.Type)
	four := 4
	_, err = pc.UpdateAutoScalingGroup(ctx, asg, &leaseweb.UpdateAutoScalingGroupRequest{DesiredAmount: &four})
	require.NoError(t, err)
	inst4, err := pc.ListAutoScalingGroupInstances(ctx, asg)
	require.NoError(t, err)
	assert.Len(t, inst4, 4)
	fifty := 50
	_, err = pc.UpdateAutoScalingGroup(ctx, asg, &leaseweb.UpdateAutoScalingGroupRequest{CPUThreshold: &fifty})
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 400, pe.StatusCode)
	when := time.Now().UTC().Format(time.RFC3339)
	_, err = pc.UpdateAutoScalingGroup(ctx, "7a4c2f10-1d2e-4f3a-8b9c-0e1f2a3b4c5d", &leaseweb.UpdateAutoScalingGroupRequest{StartsAt: &when})
	require.ErrorAs(t, err, &pe)
	assert.True(t, strings.Contains(pe.Message, "Validation Failed"))
}
