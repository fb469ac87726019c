package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/webhookverify"
)

func submit(t *testing.T, b *bundle, env tasks.Envelope) *opstore.Operation {
	t.Helper()
	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, env)
	require.NoError(t, err)
	return op
}

func TestPurgeLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{WaitingFor: time.Hour})
	hooks := newReceiver(t)
	env := purgeEnv(goodParams)
	env.CallbackURL = hooks.srv.URL + "/done?token=abc"
	op := submit(t, b, env)

	// Launch: one purge call, handle saved, poll 1 scheduled at Initial.
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateRunning, op.State)
	assert.Len(t, op.Handle, 32)
	assert.Equal(t, 1, op.Attempts)
	require.NotNil(t, op.DeadlineAt)
	info, err := b.lookup(tasks.PollTaskID(op.ID, 1))
	require.NoError(t, err)
	assert.Equal(t, asynq.TaskStateScheduled, info.State)
	// asynq keeps scheduled times in whole seconds.
	assert.InDelta(t, float64(time.Second), float64(time.Until(info.NextProcessAt)), float64(time.Second))

	// Not ready: the next poll is scheduled, "not ready" is no error.
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	op = b.op(t, op.ID)
	assert.Equal(t, 1, op.Polls)
	assert.Equal(t, "waiting", op.Status)
	assert.Equal(t, 2, op.PollSeq)
	info, err = b.lookup(tasks.PollTaskID(op.ID, 2))
	require.NoError(t, err)
	assert.InDelta(t, float64(2*time.Second), float64(time.Until(info.NextProcessAt)), float64(time.Second), "backoff doubles")

	// Finished: succeeded with the job as result, webhook enqueued.
	require.True(t, b.sim.Advance(op.Handle))
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 2)))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateSucceeded, op.State)
	assert.Equal(t, 2, op.Polls)
	assert.False(t, b.hasTask(tasks.PollTaskID(op.ID, 3)))
	var result map[string]any
	require.NoError(t, json.Unmarshal(op.Result, &result))
	assert.Equal(t, "finished", result["status"])
	assert.Equal(t, op.Handle, result["job_id"])
	// The final poll run again (asynq runs a task again after a crash
	// before its ack) queues no second delivery: the deliveries' TaskIDs
	// are deterministic.
	pending := func() int {
		tasks, err := b.insp.ListPendingTasks("default")
		require.NoError(t, err)
		return len(tasks)
	}
	queued := pending()
	payload, _ := json.Marshal(tasks.PollPayload{OperationID: op.ID, Seq: 2})
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypePoll, payload)))
	assert.Equal(t, queued, pending())

	require.NoError(t, b.run(t, tasks.DeliveryTaskID(op.ID, webhooks.EventRunning, tasks.DestinationCallback)))
	require.NoError(t, b.run(t, tasks.DeliveryTaskID(op.ID, webhooks.EventSucceeded, tasks.DestinationCallback)))
	got := hooks.hooks()
	require.Len(t, got, 2)
	assert.Equal(t, "evt_"+op.ID+"_running", got[0].ID)
	assert.Equal(t, webhooks.EventRunning, got[0].Body["type"])
	assert.Equal(t, op.Handle, got[0].Body["data"].(map[string]any)["handle"], "the running event carries the handle")
	assert.Equal(t, "evt_"+op.ID+"_succeeded", got[1].ID)
	assert.Equal(t, webhooks.EventSucceeded, got[1].Body["type"])
	data := got[1].Body["data"].(map[string]any)
	assert.Equal(t, op.ID, data["id"])
	assert.Equal(t, "succeeded", data["state"])
	assert.NotNil(t, data["result"])
	assert.Equal(t, "http://"+hooks.srv.Listener.Addr().String(), data["callback_url"], "the callback's path and token are not echoed")
	assert.NoError(t, webhookverify.Verify(got[1].Header, got[1].Raw, time.Minute, time.Now(), testSecret))
}

func TestLaunchRerunNeverPurgesTwice(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{WaitingFor: time.Hour})
	op := submit(t, b, purgeEnv(goodParams))
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	h := b.worker.Handler()
	for i := 0; i < 3; i++ {
		require.NoError(t, h.ProcessTask(t.Context(), task))
	}
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"))
	assert.Equal(t, 1, b.op(t, op.ID).Attempts)

	// A re-run after the poll chain moved on does not restart it either.
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	require.NoError(t, h.ProcessTask(t.Context(), task))
	assert.False(t, b.hasTask(tasks.PollTaskID(op.ID, 1)), "no poll 1 re-created")
	assert.True(t, b.hasTask(tasks.PollTaskID(op.ID, 2)))
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"))
}

func TestPollFence(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{WaitingFor: time.Hour})
	op := submit(t, b, purgeEnv(goodParams))
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	poll1 := b.task(t, tasks.PollTaskID(op.ID, 1))
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	gets := b.sim.CountCalls("GET", "/purge/job/")

	// A duplicate of poll 1 (stale) is dropped: no provider call, no fork.
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), poll1))
	assert.Equal(t, gets, b.sim.CountCalls("GET", "/purge/job/"))
	assert.Equal(t, 2, b.op(t, op.ID).PollSeq)
	assert.False(t, b.hasTask(tasks.PollTaskID(op.ID, 3)))

	// A poll from too far ahead is dropped as well.
	far, _ := json.Marshal(tasks.PollPayload{OperationID: op.ID, Seq: 9})
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypePoll, far)))
	assert.Equal(t, gets, b.sim.CountCalls("GET", "/purge/job/"))

	// Poll 3 arriving before poll 2 recorded its move (a crash between
	// enqueue and record) adopts the chain instead of dropping it.
	next, _ := json.Marshal(tasks.PollPayload{OperationID: op.ID, Seq: 3})
	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypePoll, next)))
	assert.Equal(t, gets+1, b.sim.CountCalls("GET", "/purge/job/"))
	assert.Equal(t, 4, b.op(t, op.ID).PollSeq)
	assert.True(t, b.hasTask(tasks.PollTaskID(op.ID, 4)))
}

func TestPermanentLaunchErrorFailsOperation(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{Zones: []string{"other"}})
	hooks := newReceiver(t)
	env := purgeEnv(goodParams)
	env.CallbackURL = hooks.srv.URL
	op := submit(t, b, env)
	err := b.run(t, tasks.LaunchTaskID(op.ID))
	require.Error(t, err)
	assert.ErrorIs(t, err, asynq.SkipRetry)
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, ucdnsim.StatusFail, pe.StatusCode)
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateFailed, op.State)
	assert.Contains(t, op.LastError, "Zone demo does not exist")
	assert.NotContains(t, op.LastError, "tok")
	require.NoError(t, b.run(t, tasks.DeliveryTaskID(op.ID, webhooks.EventFailed, tasks.DestinationCallback)))
	require.Len(t, hooks.hooks(), 1)
	assert.Equal(t, webhooks.EventFailed, hooks.hooks()[0].Body["type"])
}

func TestRetryableLaunchErrorKeepsOperation(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{WaitingFor: time.Hour})
	b.sim.Inject(ucdnsim.Fault{Kind: ucdnsim.FaultStatus, Status: http.StatusTooManyRequests, RetryAfter: "7", PathPrefix: "/purge/zone"})
	op := submit(t, b, purgeEnv(goodParams))
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	err := b.worker.Handler().ProcessTask(t.Context(), task)
	require.Error(t, err)
	assert.NotErrorIs(t, err, asynq.SkipRetry)
	assert.Equal(t, 8*time.Second, b.worker.RetryDelay(0, err, task), "Retry-After wins (+1 s for asynq's whole-second schedule)")
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateLaunching, op.State)
	assert.Contains(t, op.LastError, "429")

	require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), task))
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateRunning, op.State)
	assert.Equal(t, 2, op.Attempts)
	assert.Empty(t, op.LastError)
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"))
}

func TestUnknownAccountFailsPermanently(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{})
	env := purgeEnv(goodParams)
	env.Account = "eu-team"
	op := submit(t, b, env)
	err := b.run(t, tasks.LaunchTaskID(op.ID))
	assert.ErrorIs(t, err, asynq.SkipRetry)
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateFailed, op.State)
	assert.Contains(t, op.LastError, `account "eu-team" is not configured`)
}

func TestPollOutcomes(t *testing.T) {
	t.Parallel()
	launched := func(t *testing.T, cfg ucdnsim.Config, env tasks.Envelope) (*bundle, *opstore.Operation) {
		b := setup(t, cfg)
		op := submit(t, b, env)
		require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
		return b, b.op(t, op.ID)
	}
	t.Run("JobFailed", func(t *testing.T) {
		t.Parallel()
		b, op := launched(t, ucdnsim.Config{}, purgeEnv(`{"zone_name":"z","zone_type":"objects","files":["/`+ucdnsim.FailMarker+`"]}`))
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
		op = b.op(t, op.ID)
		assert.Equal(t, opstore.StateFailed, op.State)
		assert.Equal(t, "failed", op.Status)
		assert.Contains(t, op.LastError, "ucdn purge job "+op.Handle+" failed")
	})
	t.Run("Deadline", func(t *testing.T) {
		t.Parallel()
		b, op := launched(t, ucdnsim.Config{WaitingFor: time.Hour}, purgeEnv(goodParams))
		b.clock.Add(b.policy.Deadline)
		gets := b.sim.CountCalls("GET", "/purge/job/")
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
		op = b.op(t, op.ID)
		assert.Equal(t, opstore.StateTimedOut, op.State)
		assert.Contains(t, op.LastError, "deadline")
		assert.Equal(t, gets, b.sim.CountCalls("GET", "/purge/job/"), "no provider call past the deadline")
	})
	t.Run("NextPollClampedToDeadline", func(t *testing.T) {
		t.Parallel()
		b, op := launched(t, ucdnsim.Config{WaitingFor: time.Hour}, purgeEnv(goodParams))
		b.clock.Add(b.policy.Deadline - 300*time.Millisecond)
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
		info, err := b.lookup(tasks.PollTaskID(op.ID, 2))
		require.NoError(t, err)
		assert.Less(t, time.Until(info.NextProcessAt), time.Second, "polls at the deadline, not a full backoff later")
	})
	t.Run("ProviderErrorKeepsPolling", func(t *testing.T) {
		t.Parallel()
		b, op := launched(t, ucdnsim.Config{WaitingFor: time.Hour}, purgeEnv(goodParams))
		b.sim.Inject(ucdnsim.Fault{Kind: ucdnsim.FaultStatus, Status: 503, RetryAfter: "20", PathPrefix: "/purge/job/"})
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
		op = b.op(t, op.ID)
		assert.Equal(t, opstore.StateRunning, op.State)
		assert.Contains(t, op.LastError, "503")
		info, err := b.lookup(tasks.PollTaskID(op.ID, 2))
		require.NoError(t, err)
		assert.InDelta(t, float64(21*time.Second), float64(time.Until(info.NextProcessAt)), float64(1500*time.Millisecond), "Retry-After stretches the wait")
	})
	t.Run("JobVanishedFails", func(t *testing.T) {
		t.Parallel()
		b, op := launched(t, ucdnsim.Config{WaitingFor: time.Hour}, purgeEnv(goodParams))
		b.sim.Inject(ucdnsim.Fault{Kind: ucdnsim.FaultStatus, Status: 532, Body: `{"message":"Purge job not found"}`, PathPrefix: "/purge/job/"})
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
		op = b.op(t, op.ID)
		assert.Equal(t, opstore.StateFailed, op.State)
		assert.Contains(t, op.LastError, "Purge job not found")
	})
	t.Run("UnknownStatusIsNotSuccess", func(t *testing.T) {
		t.Parallel()
		b, op := launched(t, ucdnsim.Config{WaitingFor: time.Hour}, purgeEnv(goodParams))
		b.sim.Inject(ucdnsim.Fault{Kind: ucdnsim.FaultStatus, Status: 200, Body: `{"job_id":"` + op.Handle + `","files":[],"status":"paused","created_at":1}`, PathPrefix: "/purge/job/"})
		require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
		op = b.op(t, op.ID)
		assert.Equal(t, opstore.StateRunning, op.State)
		assert.Equal(t, "paused", op.Status)
		assert.True(t, b.hasTask(tasks.PollTaskID(op.ID, 2)))
	})
}

func TestMalformedPayloads(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{})
	h := b.worker.Handler()
	tests := []struct {
		name, typ, payload, want string
	}{
		{"NotJSON", tasks.TypeCDNPurge, `{{{`, "decode cdn:purge"},
		{"UnknownEnvelopeField", tasks.TypeCDNPurge, `{"provider":"ucdn","params":{},"callbackUrl":"x"}`, `unknown field "callbackUrl"`},
		{"PollNotJSON", tasks.TypePoll, `nope`, "decode op:poll"},
		{"PollNoSeq", tasks.TypePoll, `{"operation_id":"x"}`, "decode op:poll"},
		{"WebhookEmpty", tasks.TypeWebhookDeliver, `{}`, "decode webhook:deliver"},
		{"UnknownType", "cdn:nuke", `{}`, `unknown task type "cdn:nuke"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := h.ProcessTask(t.Context(), asynq.NewTask(tc.typ, []byte(tc.payload)))
			require.Error(t, err)
			assert.ErrorIs(t, err, asynq.SkipRetry, "never retried")
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.Zero(t, b.sim.CountCalls("POST", "/purge/zone"))
}

func TestTaskThatContradictsItsRecordIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{})
	op := submit(t, b, purgeEnv(goodParams))
	// Another system re-sends the task with other params for that id.
	bad, _ := json.Marshal(map[string]any{"operation_id": op.ID, "provider": "ucdn", "params": map[string]any{"zone_name": "other", "zone_type": "objects", "files": []string{"/a"}}})
	err := b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCDNPurge, bad))
	assert.ErrorIs(t, err, asynq.SkipRetry)
	assert.Contains(t, err.Error(), "does not match operation")
	assert.Equal(t, opstore.StateQueued, b.op(t, op.ID).State, "the record is untouched")
	assert.Zero(t, b.sim.CountCalls("POST", "/purge/zone"))
}

func TestInvalidParamsInRawTaskFailRecord(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{})
	raw, _ := json.Marshal(map[string]any{"provider": "ucdn", "idempotency_key": "ext-bad", "params": map[string]any{"zone_type": "objects", "files": []string{"/a"}}})
	err := b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCDNPurge, raw))
	assert.ErrorIs(t, err, asynq.SkipRetry)
	assert.Contains(t, err.Error(), "params.zone_name")
	ops, err := b.store.List(t.Context(), opstore.Filter{})
	require.NoError(t, err)
	require.Len(t, ops, 1, "the record shows what happened")
	assert.Equal(t, opstore.StateFailed, ops[0].State)
	assert.Contains(t, ops[0].LastError, "params.zone_name: required")
	assert.Zero(t, b.sim.CountCalls("POST", "/purge/zone"))
}

func TestLaunchTaskCarriesNoParams(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{})
	op := submit(t, b, purgeEnv(goodParams))
	task := b.task(t, tasks.LaunchTaskID(op.ID))
	assert.NotContains(t, string(task.Payload()), "zone_name", "params stay in the record")
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"))
}

func TestRawTaskWithoutOperationID(t *testing.T) {
	t.Parallel()
	b := setup(t, ucdnsim.Config{WaitingFor: time.Hour})
	task, err := tasks.NewCDNPurgeTask(tasks.Envelope{Provider: "ucdn", Params: json.RawMessage(goodParams), IdempotencyKey: "ext-7"})
	require.NoError(t, err)
	h := b.worker.Handler()
	require.NoError(t, h.ProcessTask(t.Context(), task))
	require.NoError(t, h.ProcessTask(t.Context(), task), "a re-delivery")
	ops, err := b.store.List(t.Context(), opstore.Filter{})
	require.NoError(t, err)
	require.Len(t, ops, 1, "one record for one idempotency key")
	assert.Equal(t, opstore.StateRunning, ops[0].State)
	assert.Equal(t, "ext-7", ops[0].IdempotencyKey)
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"))

	_, err = tasks.NewCDNPurgeTask(tasks.Envelope{Provider: "ucdn", Params: json.RawMessage(`{}`)})
	var ve *tasks.ValidationError
	assert.ErrorAs(t, err, &ve)
}

func TestWebhookDeliveryClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		wantErr    bool
		skipRetry  bool
		retryAfter time.Duration
	}{
		{"OK", 200, false, false, 0},
		{"Accepted", 202, false, false, 0},
		{"NoContent", 204, false, false, 0},
		{"Redirect", 302, true, true, 0},
		{"BadRequest", 400, true, true, 0},
		{"Unauthorized", 401, true, true, 0},
		{"Gone", 410, true, true, 0},
		{"RequestTimeout", 408, true, false, 0},
		{"TooManyRequests", 429, true, false, 3 * time.Second},
		{"ServerError", 500, true, false, 0},
		{"Unavailable", 503, true, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, ucdnsim.Config{})
			srv := newReceiver(t)
			srv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 429 {
					w.Header().Set("Retry-After", "3")
				}
				if tc.status == 302 {
					w.Header().Set("Location", "http://169.254.169.254/")
				}
				w.WriteHeader(tc.status)
			})
			task := asynq.NewTask(tasks.TypeWebhookDeliver, deliveryPayload(t, b, srv.srv.URL+"/hook?token=s3cret"))
			err := b.worker.Handler().ProcessTask(t.Context(), task)
			if !tc.wantErr {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.skipRetry, errors.Is(err, asynq.SkipRetry))
			assert.NotContains(t, err.Error(), "s3cret", "callback tokens stay out of errors")
			if tc.retryAfter > 0 {
				assert.Equal(t, tc.retryAfter+time.Second, b.worker.RetryDelay(0, err, task))
			} else if !tc.skipRetry {
				// setup's worker: the default schedule, no jitter.
				assert.Equal(t, tasks.DefaultWebhookSchedule[0], b.worker.RetryDelay(0, err, task))
			}
		})
	}
	t.Run("ConnectionRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t, ucdnsim.Config{})
		err := b.worker.Handler().ProcessTask(context.Background(), asynq.NewTask(tasks.TypeWebhookDeliver, deliveryPayload(t, b, "http://127.0.0.1:1/hook")))
		require.Error(t, err)
		assert.NotErrorIs(t, err, asynq.SkipRetry)
	})
	t.Run("CarriesItsOwnURLAndBody", func(t *testing.T) {
		// A delivery that names its URL and body (queued by an earlier
		// version, or forged by anyone who can enqueue) is refused: the
		// worker signs only bodies it built, for URLs it knows.
		t.Parallel()
		b := setup(t, ucdnsim.Config{})
		srv := newReceiver(t)
		op := deliveryOp(t, b, srv.srv.URL+"/hook")
		for _, payload := range []string{
			`{"operation_id":"x","account":"default","event_id":"evt_forged","destination":"callback","url":"` + srv.srv.URL + `/hook","body":{"id":"evt_forged"}}`,
			`{"operation_id":"` + op + `","account":"default","event_id":"evt_forged","event_type":"operation.succeeded","destination":"callback","url":"` + srv.srv.URL + `/x","body":{"id":"evt_forged"}}`,
		} {
			err := b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeWebhookDeliver, []byte(payload)))
			require.ErrorIs(t, err, asynq.SkipRetry, payload)
		}
		assert.Empty(t, srv.hooks(), "nothing sent, nothing signed")
	})
	t.Run("RecordExpired", func(t *testing.T) {
		t.Parallel()
		b := setup(t, ucdnsim.Config{})
		payload, _ := json.Marshal(tasks.WebhookPayload{OperationID: "gone", EventID: "evt_gone", EventType: webhooks.EventSucceeded, Destination: tasks.DestinationCallback})
		err := b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeWebhookDeliver, payload))
		require.ErrorIs(t, err, asynq.SkipRetry)
		assert.Contains(t, err.Error(), "expired")
	})
}

// deliveryPayload stores a finished operation with callback URL cb and its
// succeeded event, and returns the payload of that event's delivery.
func deliveryPayload(t *testing.T, b *bundle, cb string) []byte {
	t.Helper()
	id := deliveryOp(t, b, cb)
	payload, err := json.Marshal(tasks.WebhookPayload{OperationID: id, Account: "default", EventID: tasks.EventID(id, webhooks.EventSucceeded),
		EventType: webhooks.EventSucceeded, Destination: tasks.DestinationCallback, Host: opstore.CallbackOrigin(cb)})
	require.NoError(t, err)
	return payload
}

// deliveryOp stores an operation with callback URL cb and its succeeded
// event, and returns its id.
func deliveryOp(t *testing.T, b *bundle, cb string) string {
	t.Helper()
	op, _, err := b.store.Create(t.Context(), &opstore.Operation{ID: uuid.NewString(), Kind: tasks.TypeCDNPurge, Provider: "ucdn", Account: "default", CallbackURL: cb, Params: json.RawMessage(goodParams)})
	require.NoError(t, err)
	err = b.store.SaveEvent(t.Context(), op.ID, webhooks.EventSucceeded, []byte(`{}`))
	require.NoError(t, err)
	return op.ID
}
