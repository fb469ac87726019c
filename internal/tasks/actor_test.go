package tasks_test

import (
	"encoding/json"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// Every way in records who asked: the CLI and raw tasks their declared
// name, unauthenticated ("unknown" when none); a schedule its name; a
// cancel whoever asked for it.
func TestOperationsRecordWhoAsked(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{})
	env := func(by string) tasks.Envelope {
		return tasks.Envelope{Provider: "ucdn", Params: json.RawMessage(goodParams), SubmittedBy: by, Labels: map[string]string{"change": "CHG-7"}}
	}
	cli, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, env("alice"))
	require.NoError(t, err)
	assert.Equal(t, &ops.Actor{Name: "alice", Via: ops.ViaCLI}, b.op(t, cli.ID).SubmittedBy)
	assert.Equal(t, map[string]string{"change": "CHG-7"}, b.op(t, cli.ID).Labels)
	assert.Equal(t, "ucdn:zone:demo", b.op(t, cli.ID).Resource)

	nobody, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, env(""))
	require.NoError(t, err)
	assert.Equal(t, &ops.Actor{Name: "unknown", Via: ops.ViaCLI}, b.op(t, nobody.ID).SubmittedBy)

	sched := env("")
	sched.IdempotencyKey = "sched:nightly-purge:1796150000"
	s, _, err := b.sub.SubmitScheduled(t.Context(), tasks.TypeCDNPurge, sched)
	require.NoError(t, err)
	assert.Equal(t, &ops.Actor{Name: "nightly-purge", Via: ops.ViaSchedule, Authenticated: true}, b.op(t, s.ID).SubmittedBy)

	_, _, err = b.sub.SubmitAs(t.Context(), "ci", tasks.TypeCDNPurge, env("mallory"))
	var ve *ops.ValidationError
	require.ErrorAs(t, err, &ve, "a token cannot declare someone else")
	assert.Equal(t, "submitted_by", ve.Field)

	raw, _ := json.Marshal(env("deploy-bot"))
	_, err = b.client.Enqueue(asynq.NewTask(tasks.TypeCDNPurge, raw), asynq.TaskID("raw-1"))
	require.NoError(t, err)
	require.NoError(t, b.run(t, "raw-1"))
	all, err := b.store.List(t.Context(), opstore.Filter{})
	require.NoError(t, err)
	var fromTask *opstore.Operation
	for _, op := range all {
		if op.SubmittedBy != nil && op.SubmittedBy.Via == ops.ViaTask {
			fromTask = op
		}
	}
	require.NotNil(t, fromTask, "the raw task's record")
	assert.Equal(t, &ops.Actor{Name: "deploy-bot", Via: ops.ViaTask}, fromTask.SubmittedBy)
	assert.Equal(t, "ucdn:zone:demo", fromTask.Resource)

	cancel, _ := json.Marshal(tasks.CancelPayload{OperationID: cli.ID, By: &ops.Actor{Name: "bob", Via: ops.ViaCLI}})
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCancel, cancel)))
	got := b.op(t, cli.ID)
	assert.Equal(t, opstore.StateCanceled, got.State)
	assert.Equal(t, &ops.Actor{Name: "bob", Via: ops.ViaCLI}, got.CanceledBy)
}
