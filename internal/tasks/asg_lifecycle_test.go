package tasks_test

import (
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/simkit"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

const asgCreateParams = `{"type":"MANUAL","instance_id":"` + instRunning + `","reference":"web-pool","desired_amount":2}`

// A created group goes CREATING → SCALING → ACTIVE; its reference is
// then taken, and a second create with it is refused before any call.
func TestASGCreate(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	op := b.submit(t, ops.KindASGCreate, asgCreateParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	op = b.op(t, op.ID)
	require.Equal(t, opstore.StateRunning, op.State, op.LastError)
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	assert.Equal(t, "CREATING", b.op(t, op.ID).Status)
	op = b.runPolls(t, op.ID, 6)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	view := op.View()
	res, err := view.DecodeResult()
	require.NoError(t, err)
	r := res.(*ops.ASGCreateResult)
	assert.Equal(t, "ACTIVE", r.State)
	assert.Equal(t, "web-pool", r.Reference)
	assert.Equal(t, 2, *r.Amounts.DesiredAmount)
	assert.True(t, b.lw.GroupExists(op.Handle))

	again := b.submit(t, ops.KindASGCreate, asgCreateParams)
	assert.ErrorIs(t, b.run(t, tasks.LaunchTaskID(again.ID)), asynq.SkipRetry)
	assert.Contains(t, b.op(t, again.ID).LastError, `already has reference "web-pool"`)
	assert.Equal(t, 1, b.lw.CountCalls("POST", "/publicCloud/v1/autoScalingGroups"))
}

// A create whose answer was lost is found again by its reference, never
// made twice.
func TestASGCreateLostAnswer(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultAfterEffect, Method: "POST", PathPrefix: "/publicCloud/v1/autoScalingGroups"})
	op := b.submit(t, ops.KindASGCreate, asgCreateParams)
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	require.Error(t, b.worker.Handler().ProcessTask(t.Context(), task))
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateRunning, op.State)
	assert.True(t, b.lw.GroupExists(op.Handle))
	assert.Equal(t, 1, b.lw.CountCalls("POST", "/publicCloud/v1/autoScalingGroups"), "one group")
}

// Type rules are checked before anything is sent, naming the field.
func TestASGCreateValidation(t *testing.T) {
	t.Parallel()
	for params, field := range map[string]string{
		`{"type":"MANUAL","instance_id":"` + instRunning + `","reference":"x"}`:                                                                                                  "params.desired_amount",
		`{"type":"MANUAL","instance_id":"` + instRunning + `","reference":"x","desired_amount":1,"cpu_threshold":50}`:                                                            "params.cpu_threshold",
		`{"type":"SCHEDULED","instance_id":"` + instRunning + `","reference":"x","desired_amount":1}`:                                                                            "params.starts_at",
		`{"type":"CPU_BASED","instance_id":"` + instRunning + `","reference":"x","minimum_amount":1}`:                                                                            "params.maximum_amount",
		`{"type":"ELASTIC","instance_id":"` + instRunning + `","reference":"x"}`:                                                                                                 "params.type",
		`{"type":"MANUAL","instance_id":"nope","reference":"x","desired_amount":1}`:                                                                                              "params.instance_id",
		`{"type":"MANUAL","instance_id":"` + instRunning + `","reference":"","desired_amount":1}`:                                                                                "params.reference",
		`{"type":"CPU_BASED","instance_id":"` + instRunning + `","reference":"x","minimum_amount":5,"maximum_amount":2,"cpu_threshold":50,"warmup_time":60,"cooldown_time":300}`: "params.minimum_amount",
	} {
		p, err := ops.NewParams(ops.KindASGCreate, ops.ProviderLeaseweb)
		require.NoError(t, err)
		require.NoError(t, ops.DecodeParams([]byte(params), p), params)
		var ve *ops.ValidationError
		require.ErrorAs(t, p.Validate(), &ve, params)
		assert.Equal(t, field, ve.Field, params)
	}
}

// A deleted group reads DESTROYING and then answers 404; deleting it
// again is success.
func TestASGDelete(t *testing.T) {
	t.Parallel()
	b := setupCloud(t)
	op := b.submit(t, ops.KindASGDelete, `{"asg_id":"`+asgManual+`"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	assert.Equal(t, "DESTROYING", b.op(t, op.ID).Status)
	op = b.runPolls(t, op.ID, 3)
	require.Equal(t, opstore.StateSucceeded, op.State, op.LastError)
	assert.False(t, b.lw.GroupExists(asgManual))
	assert.JSONEq(t, `{"group_id":"`+asgManual+`","already_gone":false}`, string(op.Result))

	again := b.submit(t, ops.KindASGDelete, `{"asg_id":"`+asgManual+`"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(again.ID)))
	require.NoError(t, b.run(t, tasks.PollTaskID(again.ID, 1)))
	again = b.op(t, again.ID)
	require.Equal(t, opstore.StateSucceeded, again.State)
	assert.Contains(t, string(again.Result), `"already_gone":true`)
}

// Group creations poll in batches: one page of the account's groups
// settles every member it shows ACTIVE; a member it saw CREATING makes
// no call of its own.
func TestASGCreateBatchPolling(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	brdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { brdb.Close() })
	b := setupServer(t, leasewebsim.Config{CloudStep: time.Minute}, func(c *tasks.Config) { c.Batcher = poller.NewBatcher(brdb, "ow") })
	create := func(ref string) *opstore.Operation {
		op := b.submit(t, ops.KindASGCreate, strings.Replace(asgCreateParams, "web-pool", ref, 1))
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		return b.op(t, op.ID)
	}
	list := func() int {
		n := 0
		for _, c := range b.lw.Calls() {
			if c.Method == "GET" && c.Path == "/publicCloud/v1/autoScalingGroups" && c.Query.Get("offset") != "" {
				n++
			}
		}
		return n
	}
	ops := []*opstore.Operation{create("pool-a"), create("pool-b")}
	b.step(10) // both ACTIVE
	ops = append(ops, create("pool-c"))

	b.runBatch(t, "leaseweb-asg-create:default")
	assert.Equal(t, 1, list(), "one page of groups")
	assert.Zero(t, b.lw.CountCalls("GET", "/publicCloud/v1/autoScalingGroups/"), "no per-group GET")
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[0].ID).State)
	assert.Equal(t, opstore.StateSucceeded, b.op(t, ops[1].ID).State, "settled by the batch")
	assert.Equal(t, opstore.StateRunning, b.op(t, ops[2].ID).State)

	require.NoError(t, b.run(t, tasks.PollTaskID(ops[2].ID, 1)))
	assert.Equal(t, 1, list(), "no further call: the batch saw it CREATING")
	assert.Equal(t, "CREATING", b.op(t, ops[2].ID).Status)
}
