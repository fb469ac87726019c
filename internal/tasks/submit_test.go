package tasks_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
)

func TestSubmitValidation(t *testing.T) {
	t.Parallel()
	many := make([]string, tasks.MaxPurgeFiles+1)
	for i := range many {
		many[i] = fmt.Sprintf("/f%d", i)
	}
	manyJSON, _ := json.Marshal(map[string]any{"zone_name": "z", "zone_type": "objects", "files": many})
	tests := []struct {
		name  string
		kind  string
		env   tasks.Envelope
		field string
	}{
		{"UnknownTaskType", "cdn:nuke", purgeEnv(goodParams), "task_type"},
		{"MissingProvider", tasks.TypeCDNPurge, tasks.Envelope{Params: json.RawMessage(goodParams)}, "provider"},
		{"UnsupportedProvider", tasks.TypeCDNPurge, tasks.Envelope{Provider: "akamai", Params: json.RawMessage(goodParams)}, "provider"},
		{"BadAccount", tasks.TypeCDNPurge, tasks.Envelope{Provider: "ucdn", Account: "a b", Params: json.RawMessage(goodParams)}, "account"},
		{"RelativeCallback", tasks.TypeCDNPurge, tasks.Envelope{Provider: "ucdn", CallbackURL: "/hook", Params: json.RawMessage(goodParams)}, "callback_url"},
		{"FTPCallback", tasks.TypeCDNPurge, tasks.Envelope{Provider: "ucdn", CallbackURL: "ftp://x/y", Params: json.RawMessage(goodParams)}, "callback_url"},
		{"IdempotencyKeyWithSpace", tasks.TypeCDNPurge, tasks.Envelope{Provider: "ucdn", IdempotencyKey: "a b", Params: json.RawMessage(goodParams)}, "idempotency_key"},
		{"IdempotencyKeyTooLong", tasks.TypeCDNPurge, tasks.Envelope{Provider: "ucdn", IdempotencyKey: strings.Repeat("k", 201), Params: json.RawMessage(goodParams)}, "idempotency_key"},
		{"NoParams", tasks.TypeCDNPurge, tasks.Envelope{Provider: "ucdn"}, "params"},
		{"NullParams", tasks.TypeCDNPurge, purgeEnv(`null`), "params"},
		{"ParamsNotObject", tasks.TypeCDNPurge, purgeEnv(`[1]`), "params"},
		{"UnknownParam", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":["/a"],"zone":"x"}`), "params.zone"},
		{"MissingZoneName", tasks.TypeCDNPurge, purgeEnv(`{"zone_type":"objects","files":["/a"]}`), "params.zone_name"},
		{"ZoneNameTooLong", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"` + strings.Repeat("z", 31) + `","zone_type":"objects","files":["/a"]}`), "params.zone_name"},
		{"ZoneNameBadChars", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"my.zone","zone_type":"objects","files":["/a"]}`), "params.zone_name"},
		{"ZoneNameNotString", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":5,"zone_type":"objects","files":["/a"]}`), "params.zone_name"},
		{"MissingZoneType", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","files":["/a"]}`), "params.zone_type"},
		{"BadZoneType", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"video","files":["/a"]}`), "params.zone_type"},
		{"MissingFiles", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects"}`), "params.files"},
		{"EmptyFiles", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":[]}`), "params.files"},
		{"TooManyFiles", tasks.TypeCDNPurge, purgeEnv(string(manyJSON)), "params.files"},
		{"FilesNotList", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":"/a"}`), "params.files"},
		{"RelativeFile", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":["/ok","a.png"]}`), "params.files[1]"},
		{"FTPFile", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":["ftp://h/a"]}`), "params.files[0]"},
		{"NewlineInFile", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":["/a\n/b"]}`), "params.files[0]"},
		{"NextLineInFile", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":["/a\u0085/b"]}`), "params.files[0]"},
		{"LineSeparatorInFile", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":["/ok","/a\u2028/b"]}`), "params.files[1]"},
		{"ParagraphSeparatorInFile", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":["/a\u2029"]}`), "params.files[0]"},
		{"CallbackTooLong", tasks.TypeCDNPurge, tasks.Envelope{Provider: "ucdn", CallbackURL: "https://h.example.com/" + strings.Repeat("a", 2048), Params: json.RawMessage(goodParams)}, "callback_url"},
		{"CallbackNotUTF8", tasks.TypeCDNPurge, tasks.Envelope{Provider: "ucdn", CallbackURL: "https://h.example.com/\xff", Params: json.RawMessage(goodParams)}, "callback_url"},
		{"ParamsNotUTF8", tasks.TypeCDNPurge, purgeEnv("{\"zone_name\":\"z\xff\",\"zone_type\":\"objects\",\"files\":[\"/a\"]}"), "params.zone_name"},
		{"HugeFile", tasks.TypeCDNPurge, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":["/` + strings.Repeat("a", 2048) + `"]}`), "params.files[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, ucdnsim.Config{})
			_, _, err := b.sub.Submit(t.Context(), tc.kind, tc.env)
			var ve *tasks.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.field, ve.Field, ve.Error())
			ops, err := b.store.List(t.Context(), opstore.Filter{})
			require.NoError(t, err)
			assert.Empty(t, ops, "nothing stored")
			queues, _ := b.insp.Queues()
			assert.Empty(t, queues, "nothing enqueued")
		})
	}
}

func TestSubmitAcceptsPathsAndURLs(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{})
	op, created, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, tasks.Envelope{
		Provider: "ucdn", Params: json.RawMessage(goodParams), CallbackURL: "https://hooks.example.com/x",
	})
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "default", op.Account)
	assert.Equal(t, opstore.StateQueued, op.State)
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	assert.Equal(t, tasks.TypeCDNPurge, task.Type())
	env, err := tasks.DecodeEnvelope(task.Payload())
	require.NoError(t, err)
	assert.Equal(t, op.ID, env.OperationID)
	assert.Empty(t, env.Params)
	assert.JSONEq(t, `{"operation_id":"`+op.ID+`"}`, string(task.Payload()), "the task names the operation only: no params, no callback URL")
}

func TestSubmitIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{})
	env := purgeEnv(goodParams)
	env.IdempotencyKey = "deploy-42"
	first, created, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, env)
	require.NoError(t, err)
	require.True(t, created)

	// Same key, same request (keys reordered): the same operation.
	env.Params = json.RawMessage(`{"files":["/a.png","https://cdn.example.com/b.css"],"zone_type":"objects","zone_name":"demo"}`)
	second, created, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, env)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first.ID, second.ID)

	// Launch it; a third submit launches nothing.
	require.NoError(t, b.run(t, tasks.LaunchTaskID(first.ID)))
	third, created, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, env)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first.ID, third.ID)
	assert.False(t, b.hasTask(tasks.LaunchTaskID(first.ID)), "no second launch task")
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"))

	// Same key, different request: refused.
	env.Params = json.RawMessage(`{"zone_name":"demo","zone_type":"objects","files":["/other.png"]}`)
	_, _, err = b.sub.Submit(t.Context(), tasks.TypeCDNPurge, env)
	assert.ErrorIs(t, err, opstore.ErrIdempotencyConflict)
}
