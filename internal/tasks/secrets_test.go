package tasks_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/simkit"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/webhookverify"
)

const (
	installSecret = "Sup3r-S3cret-Pw"
	installScript = "#!/bin/sh\necho installed"
	installKey    = "AAAAC3NzaC1lZDI1NTE5AAAAIKey"
)

// installWith returns installParams with key renamed to as.
func installWith(t *testing.T, key, as string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(installParams), &m))
	v, ok := m[key]
	require.True(t, ok, key)
	delete(m, key)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	// Keep the spelling exactly (json.Marshal of a map would not change it,
	// but build the member by hand to be sure of the bytes).
	return strings.TrimSuffix(string(b), "}") + `,"` + as + `":` + string(v) + "}"
}

// requireNoSecretInRecord checks every field of the stored hash.
func requireNoSecretInRecord(t *testing.T, b *serverBundle, id string, secrets ...string) {
	t.Helper()
	h, err := b.rdb.HGetAll(context.Background(), "ow:{ops}:op:"+id).Result()
	require.NoError(t, err)
	require.NotEmpty(t, h)
	for f, v := range h {
		for _, s := range secrets {
			assert.NotContains(t, v, s, "record field %s", f)
		}
	}
}

func TestParamKeysMatchExactly(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	for _, tc := range []struct{ key, as string }{
		{"password", "PASSWORD"},
		{"password", "Password"},
		{"password", "paſſword"},
		{"ssh_keys", "SSH_KEYS"},
		{"post_install_script", "Post_Install_Script"},
		{"server_id", "Server_ID"},
		{"raid", "RAID"},
	} {
		t.Run(tc.as, func(t *testing.T) {
			_, _, err := b.sub.Submit(t.Context(), tasks.TypeServerInstall, tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(installWith(t, tc.key, tc.as))})
			var ve *tasks.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "params."+tc.as, ve.Field)
			assert.Equal(t, "unknown field", ve.Message)
		})
	}
	t.Run("Nested", func(t *testing.T) {
		p := strings.Replace(installParams, `"numberOfDisks"`, `"NumberOfDisks"`, 1)
		_, _, err := b.sub.Submit(t.Context(), tasks.TypeServerInstall, tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(p)})
		var ve *tasks.ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, "params.raid.NumberOfDisks", ve.Field)
	})
	t.Run("DuplicateKey", func(t *testing.T) {
		p := strings.Replace(installParams, `"password":"Sup3r-S3cret-Pw"`, `"password":"Sup3r-S3cret-Pw","password":"0ther-S3cret-Pw"`, 1)
		_, _, err := b.sub.Submit(t.Context(), tasks.TypeServerInstall, tasks.Envelope{Provider: "leaseweb", Params: json.RawMessage(p)})
		var ve *tasks.ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, "params.password", ve.Field)
		assert.NotContains(t, err.Error(), "S3cret")
	})
	t.Run("Purge", func(t *testing.T) {
		_, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, purgeEnv(`{"Zone_Name":"demo","zone_type":"objects","files":["/a"]}`))
		var ve *tasks.ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, "params.Zone_Name", ve.Field)
	})
	assert.Zero(t, b.lw.Launches("12345", "install"))
}

func TestStoredParamsAreReencoded(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	// ssh_keys as a newline-separated string, keys in another order,
	// extra whitespace: the record keeps the typed value's encoding.
	params := `{ "ssh_keys" : "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey user@host\n",
	  "operating_system_id":"UBUNTU_22_04_64BIT", "server_id":"12345", "password":"Sup3r-S3cret-Pw" }`
	op := b.submit(t, tasks.TypeServerInstall, params)
	raw, err := b.rdb.HGet(t.Context(), "ow:{ops}:op:"+op.ID, "params").Result()
	require.NoError(t, err)
	assert.Equal(t, `{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT","ssh_keys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey user@host"],"password":"Sup3r-S3cret-Pw"}`, raw)

	shown, err := json.Marshal(op)
	require.NoError(t, err)
	assert.NotContains(t, string(shown), installSecret)
	assert.NotContains(t, string(shown), installKey)
	assert.Contains(t, string(shown), `"password":"REDACTED"`)
}

func TestRawTaskWithMisspelledSecretLeavesNoSecret(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	for _, as := range []string{"PASSWORD", "paſſword"} {
		payload := fmt.Sprintf(`{"provider":"leaseweb","params":%s}`, installWith(t, "password", as))
		err := b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeServerInstall, []byte(payload)))
		require.ErrorIs(t, err, asynq.SkipRetry)
		assert.Contains(t, err.Error(), "params."+as+": unknown field")
		assert.NotContains(t, err.Error(), installSecret)
	}
	ops, err := b.store.List(t.Context(), opstore.Filter{})
	require.NoError(t, err)
	require.Len(t, ops, 2, "the records show what happened")
	for _, op := range ops {
		assert.Equal(t, opstore.StateFailed, op.State)
		assert.Contains(t, op.LastError, "unknown field")
		requireNoSecretInRecord(t, b, op.ID, installSecret, installKey, "echo installed")
	}
	assert.Zero(t, b.lw.Launches("12345", "install"))
}

func TestSecretsScrubbedWhenNeverLaunched(t *testing.T) {
	t.Parallel()
	t.Run("UnknownAccount", func(t *testing.T) {
		b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
		op := b.submit(t, tasks.TypeServerInstall, installParams, func(e *tasks.Envelope) { e.Account = "nosuch" })
		require.ErrorIs(t, b.run(t, tasks.LaunchTaskID(op.ID)), asynq.SkipRetry)
		assert.Equal(t, opstore.StateFailed, b.op(t, op.ID).State)
		requireNoSecretInRecord(t, b, op.ID, installSecret, installKey, "echo installed")
	})
	t.Run("ProviderNotServedHere", func(t *testing.T) {
		// A worker without the provider does not fail the operation: it
		// waits (no attempt used) for a worker that serves it, and says
		// why on the record, without a secret in that reason.
		b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) {
			delete(c.Executors, tasks.ExecutorKey{Kind: tasks.TypeServerInstall, Provider: "leaseweb"})
		})
		op := b.submit(t, tasks.TypeServerInstall, installParams)
		task := b.task(t, tasks.LaunchTaskID(op.ID))
		err := b.worker.Handler().ProcessTask(t.Context(), task)
		require.Error(t, err)
		assert.False(t, b.worker.IsFailure(err), "waiting uses no attempt")
		assert.Equal(t, 10*time.Second, b.worker.RetryDelay(0, err, task))
		op = b.op(t, op.ID)
		assert.Equal(t, opstore.StateQueued, op.State)
		assert.Equal(t, "waiting: no worker here serves server:install on leaseweb", op.LastError)
		assert.Zero(t, b.lw.Launches("12345", "install"))
	})
	t.Run("CanceledBeforeLaunch", func(t *testing.T) {
		b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
		op := b.submit(t, tasks.TypeServerInstall, installParams)
		cancel, _ := json.Marshal(tasks.CancelPayload{OperationID: op.ID})
		require.NoError(t, b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeCancel, cancel)))
		assert.Equal(t, opstore.StateCanceled, b.op(t, op.ID).State)
		requireNoSecretInRecord(t, b, op.ID, installSecret, installKey, "echo installed")
	})
	t.Run("BusyServerFails", func(t *testing.T) {
		b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) { c.OnBusy = tasks.OnBusyFail })
		first := b.submit(t, tasks.TypeServerInstall, installParams)
		require.NoError(t, b.run(t, tasks.LaunchTaskID(first.ID)))
		second := b.submit(t, tasks.TypeServerInstall, strings.Replace(installParams, "web01", "web02", 1))
		require.ErrorIs(t, b.run(t, tasks.LaunchTaskID(second.ID)), asynq.SkipRetry)
		assert.Equal(t, opstore.StateFailed, b.op(t, second.ID).State)
		requireNoSecretInRecord(t, b, second.ID, installSecret, installKey, "echo installed")
	})
}

func TestProviderErrorEchoingSecretsIsScrubbed(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) {
		c.Credentials = func(provider, account string) []string {
			if provider == "leaseweb" && account == "default" {
				return []string{"lsw-key"}
			}
			return nil
		}
	})
	hooks := newReceiver(t)
	encScript := base64.StdEncoding.EncodeToString([]byte(installScript))
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultStatus, Method: "POST", PathPrefix: "/servers/12345/install", Status: 400,
		Body: `{"errorCode":"400","errorMessage":"Validation Failed: password Sup3r-S3cret-Pw rejected for key lsw-key; script ` + encScript + `; key ssh-ed25519 ` + installKey + `"}`})
	op := b.submit(t, tasks.TypeServerInstall, installParams, func(e *tasks.Envelope) { e.CallbackURL = hooks.srv.URL })
	err := b.run(t, tasks.LaunchTaskID(op.ID))
	require.ErrorIs(t, err, asynq.SkipRetry)
	secrets := []string{installSecret, "lsw-key", encScript, installKey}
	for _, s := range secrets {
		assert.NotContains(t, err.Error(), s, "the task error asynq stores and shows")
	}
	op = b.op(t, op.ID)
	assert.Equal(t, opstore.StateFailed, op.State)
	assert.Contains(t, op.LastError, "Validation Failed: password [REDACTED] rejected for key [REDACTED]")
	requireNoSecretInRecord(t, b, op.ID, secrets...)
	require.NoError(t, b.run(t, tasks.DeliveryTaskID(op.ID, webhooks.EventFailed, tasks.DestinationCallback)))
	require.Len(t, hooks.hooks(), 1)
	for _, s := range secrets {
		assert.NotContains(t, string(hooks.hooks()[0].Raw), s)
	}
	for _, e := range b.logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		for _, s := range secrets {
			assert.NotContains(t, e.Message+string(line), s)
		}
	}
}

func TestMalformedTaskNamingRunningOperationChangesNothing(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	op := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	require.Equal(t, opstore.StateRunning, b.op(t, op.ID).State)
	for _, typ := range []string{tasks.TypeServerInstall, tasks.TypeServerRescue, tasks.TypeCDNPurge} {
		for _, payload := range []string{
			`{"operation_id":"` + op.ID + `","bogus":1}`,
			`{"operation_id":"` + op.ID + `","params":`,
			`{"operation_id":"` + op.ID + `","provider":7}`,
		} {
			err := b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(typ, []byte(payload)))
			require.ErrorIs(t, err, asynq.SkipRetry, "%s %s", typ, payload)
		}
	}
	got := b.op(t, op.ID)
	assert.Equal(t, opstore.StateRunning, got.State, got.LastError)
	assert.Empty(t, got.LastError)
	holder, err := b.store.LockHolder(t.Context(), "leaseweb:server:12345")
	require.NoError(t, err)
	assert.Equal(t, op.ID, holder, "the server lock is kept")
}

func TestAsynqPayloadsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) {
		c.Webhooks.Subscriptions = []tasks.Subscription{{Name: "audit", URL: "http://127.0.0.1:1/hooks?token=sub-T0ken"}}
	})
	hooks := newReceiver(t)
	callback := strings.Replace(hooks.srv.URL, "http://", "http://user:cb-Pa55@", 1) + "/hook/cb-path-T0ken?sig=cb-query-T0ken"
	op := b.submit(t, tasks.TypeServerInstall, installParams, func(e *tasks.Envelope) { e.CallbackURL = callback })
	secrets := []string{installSecret, installKey, "echo installed", "cb-Pa55", "cb-path-T0ken", "cb-query-T0ken", "sub-T0ken"}
	check := func(what string, payload []byte) {
		t.Helper()
		for _, s := range secrets {
			assert.NotContains(t, string(payload), s, what)
		}
	}
	check("launch task", b.task(t, tasks.LaunchTaskID(op.ID)).Payload())
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	finishAll(b)
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	require.Equal(t, opstore.StateSucceeded, b.op(t, op.ID).State)

	var deliveries []string
	for _, ev := range []string{webhooks.EventRunning, webhooks.EventSucceeded} {
		for _, dest := range []string{tasks.DestinationCallback, tasks.SubscriptionDestination("audit")} {
			id := tasks.DeliveryTaskID(op.ID, ev, dest)
			check("delivery task "+id, b.task(t, id).Payload())
			deliveries = append(deliveries, id)
		}
	}
	// The deliveries still reach the full callback URL, with the same body
	// on every attempt.
	require.NoError(t, b.run(t, deliveries[2]))
	require.Len(t, hooks.hooks(), 1)
	got := hooks.hooks()[0]
	assert.Equal(t, tasks.EventID(op.ID, webhooks.EventSucceeded), got.ID)
	check("webhook body", got.Raw)
	require.NoError(t, b.run(t, deliveries[0]))
	require.Len(t, hooks.hooks(), 2)

	// The queue UI's payload formatter hides what raw tasks from other
	// systems may carry.
	raw := []byte(`{"provider":"leaseweb","callback_url":"` + callback + `","params":` + installParams + `}`)
	shown := tasks.FormatPayload(tasks.TypeServerInstall, raw)
	check("formatted raw task", []byte(shown))
	assert.Contains(t, shown, `"password":"REDACTED"`)
	assert.Contains(t, shown, `"server_id":"12345"`)
	for _, p := range []string{
		`{"provider":"leaseweb","params":` + installWith(t, "password", "PASSWORD") + `}`,
		`{"provider":"nosuch","callback_url":"` + callback + `","params":` + installParams + `}`,
		`not json ` + installSecret,
	} {
		check("formatted "+p, []byte(tasks.FormatPayload(tasks.TypeServerInstall, []byte(p))))
	}
	old := []byte(`{"operation_id":"x","account":"default","event_id":"e","event_type":"operation.succeeded","destination":"callback","url":"` + callback + `","body":{"data":{"params":{"password":"` + installSecret + `"}}}}`)
	check("formatted old delivery task", []byte(tasks.FormatPayload(tasks.TypeWebhookDeliver, old)))
}

// On real Redis with a real asynq server: a malformed raw task naming a
// running operation is archived with its reason and the operation goes on;
// a raw task with a misspelled secret key leaves a failed record without
// the secret.
func TestLiveRawTasksThatMustNotTouchOperations(t *testing.T) {
	b := startLive(t, ucdnsim.Config{WaitingFor: time.Hour})
	op, _, err := b.sub.Submit(t.Context(), tasks.TypeCDNPurge, purgeEnv(goodParams))
	require.NoError(t, err)
	testutil.WaitFor(t, 10*time.Second, "running", func() bool {
		got, err := b.store.Get(context.Background(), op.ID)
		return err == nil && got.State == opstore.StateRunning
	})
	_, err = b.client.Enqueue(asynq.NewTask(tasks.TypeCDNPurge, []byte(`{"operation_id":"`+op.ID+`","bogus":1}`)), asynq.TaskID("bogus"))
	require.NoError(t, err)
	_, err = b.client.Enqueue(asynq.NewTask(tasks.TypeCDNPurge, []byte(`{"provider":"ucdn","params":{"zone_name":"z","zone_type":"objects","files":["/a"],"Token":"raw-S3cret-T0ken"}}`)), asynq.TaskID("misspelled"))
	require.NoError(t, err)

	testutil.WaitFor(t, 10*time.Second, "both archived", func() bool {
		archived, _ := b.insp.ListArchivedTasks("default")
		return len(archived) == 2
	})
	reasons := archivedReasons(t, b.insp)
	assert.Contains(t, reasons["bogus"], `unknown field "bogus"`)
	assert.Contains(t, reasons["misspelled"], "params.Token: unknown field")
	assert.NotContains(t, reasons["misspelled"], "raw-S3cret-T0ken")

	got, err := b.store.Get(t.Context(), op.ID)
	require.NoError(t, err)
	assert.Equal(t, opstore.StateRunning, got.State, "the running operation is untouched")
	assert.Empty(t, got.LastError)

	ops, err := b.store.List(t.Context(), opstore.Filter{State: opstore.StateFailed})
	require.NoError(t, err)
	require.Len(t, ops, 1)
	shown, _ := json.Marshal(ops[0])
	assert.NotContains(t, string(shown), "raw-S3cret-T0ken")
	assert.Contains(t, ops[0].LastError, "params.Token: unknown field")
	assert.Equal(t, 1, b.sim.CountCalls("POST", "/purge/zone"))
}

// after launch the stored params read "REMOVED", so secretsOf finds no
// secret values: a provider error during polling that echoes the password
// or script reaches last_error, logs and the webhook unredacted.
func TestPollErrorEchoingSecretIsScrubbed(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	op := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	require.Equal(t, opstore.StateRunning, b.op(t, op.ID).State)
	encScript := base64.StdEncoding.EncodeToString([]byte(installScript))
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultStatus, Method: "GET", PathPrefix: "/servers/12345/jobs/", Status: 400,
		Body: `{"errorCode":"400","errorMessage":"job payload invalid: password Sup3r-S3cret-Pw, postInstallScript ` + encScript + `"}`})
	err := b.run(t, tasks.PollTaskID(op.ID, 1))
	_ = err
	got := b.op(t, op.ID)
	t.Logf("state=%s last_error=%q", got.State, got.LastError)
	assert.NotContains(t, got.LastError, installSecret)
	assert.NotContains(t, got.LastError, encScript)
	if err != nil {
		assert.NotContains(t, err.Error(), installSecret, "asynq LastErr (queue UI)")
	}
	for _, e := range b.logs.All() {
		for _, f := range e.Context {
			assert.NotContains(t, f.String+e.Message, installSecret, "log %s", e.Message)
		}
	}
}

// echo forms that redactText misses at launch (secrets still present).
func TestLaunchErrorEchoForms(t *testing.T) {
	t.Parallel()
	const pw = `Pa"ss&word/1`      // quote + '&' + '/'
	const pwU = `pässwörd-Geheim9` // non-ASCII
	longScript := "#!/bin/sh\n" + strings.Repeat("export DB_PASSWORD=db-S3cret-Value-123456789\n", 6)
	params := func(pass, script string) string {
		return `{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT","password":` + jsonStr(pass) + `,"post_install_script":` + jsonStr(script) + `}`
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(longScript))
	for name, tc := range map[string]struct{ pass, script, body, leak string }{
		// JSON as JS/Python/PHP encode it: '&' is not escaped, '"' is.
		"JSONEscapedNoHTMLEscape": {pw, "", `{"errorDetails":{"password":["` + `Pa\"ss&word/1` + ` is not allowed"]}}`, `Pa\"ss&word`},
		// PHP escapes '/' as '\/'.
		"PHPSlash": {`abc/def-ghij-123`, "", `{"errorDetails":{"password":["abc\/def-ghij-123 rejected"]}}`, `abc\/def-ghij-123`},
		// Python ensure_ascii: non-ASCII as \uXXXX.
		"UnicodeEscape": {pwU, "", `{"errorDetails":{"password":["p\u00e4ssw\u00f6rd-Geheim9 rejected"]}}`, `p\u00e4ssw\u00f6rd-Geheim9`},
		// URL-encoded echo.
		"URLEncoded": {`p@ss/w0rd+Geheim`, "", `{"errorMessage":"bad request body password=p%40ss%2Fw0rd%2BGeheim"}`, `p%40ss%2Fw0rd%2BGeheim`},
		// No errorMessage: the client keeps the first 200 bytes of the body;
		// the echoed base64 script is cut and no longer matches whole.
		"TruncatedBase64": {"", longScript, `{"errorDetails":{"postInstallScript":["not valid: ` + b64 + `"]}}`, b64[:60]},
	} {
		t.Run(name, func(t *testing.T) {
			b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
			b.lw.Inject(simkit.Fault{Kind: simkit.FaultStatus, Method: "POST", PathPrefix: "/servers/12345/install", Status: 400, Body: tc.body})
			op := b.submit(t, tasks.TypeServerInstall, params(tc.pass, tc.script))
			err := b.run(t, tasks.LaunchTaskID(op.ID))
			require.ErrorIs(t, err, asynq.SkipRetry)
			got := b.op(t, op.ID)
			t.Logf("last_error=%q", got.LastError)
			assert.NotContains(t, got.LastError, tc.leak)
			assert.NotContains(t, err.Error(), tc.leak)
		})
	}
}

func jsonStr(s string) string {
	if s == "" {
		return `""`
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// the idempotency fingerprint covers secret params, so a write-token
// holder who can read an operation's idempotency_key and non-secret params
// (a read token shows both) learns whether a guessed password is the one
// the operation was submitted with: 202 Idempotent-Replayed vs 409. The
// fingerprint outlives the secret (it is kept after params read REMOVED).
func TestIdempotencyIsNoSecretOracle(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	victim := b.submit(t, tasks.TypeServerInstall, installParams, func(e *tasks.Envelope) { e.IdempotencyKey = "deploy-42" })
	require.NoError(t, b.run(t, tasks.LaunchTaskID(victim.ID)))
	guess := func(pw string) error {
		p := strings.Replace(installParams, installSecret, pw, 1)
		_, _, err := b.sub.Submit(t.Context(), tasks.TypeServerInstall, tasks.Envelope{Provider: "leaseweb", Params: []byte(p), IdempotencyKey: "deploy-42"})
		return err
	}
	wrong, right := guess("Wr0ng-Guess-Pw"), guess(installSecret)
	assert.Equal(t, wrong == nil, right == nil, "a wrong and a right password guess must not be told apart (wrong=%v right=%v)", wrong, right)
}

// a record written by an earlier opsworker (no secret_params field)
// that ends without a launch (canceled, account/provider not configured,
// invalid) keeps its secrets in Redis until retention: Store.Update only
// removes op.SecretParams, which is empty for such a record.
func TestLegacyRecordLosesSecretsInFinalState(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	op := b.submit(t, tasks.TypeServerInstall, installParams, func(e *tasks.Envelope) { e.Account = "nosuch" })
	require.NoError(t, b.rdb.HDel(t.Context(), "ow:{ops}:op:"+op.ID, "secret_params").Err())
	require.ErrorIs(t, b.run(t, tasks.LaunchTaskID(op.ID)), asynq.SkipRetry)
	require.Equal(t, opstore.StateFailed, b.op(t, op.ID).State)
	requireNoSecretInRecord(t, b, op.ID, installSecret, installKey, "echo installed")
}

// progress, result and provider_status of a poll are stored and
// rendered without any redaction (not even of the account's API token).
func TestPollProgressIsScrubbed(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) {
		c.Credentials = func(string, string) []string { return []string{"lsw-key-0123456789"} }
	})
	op := b.submit(t, tasks.TypeServerInstall, installParams)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(op.ID)))
	h := b.op(t, op.ID).Handle
	body := `{"uuid":"` + h + `","type":"install","status":"ACTIVE","serverId":"12345","createdAt":"2030-01-01T00:00:00+00:00","updatedAt":"2030-01-01T00:00:00+00:00",` +
		`"progress":{"percentage":10,"finished":1,"total":5},"tasks":[{"description":"running script with X-LSW-Auth lsw-key-0123456789 password Sup3r-S3cret-Pw","status":"PENDING"}]}`
	b.lw.Inject(simkit.Fault{Kind: simkit.FaultStatus, Method: "GET", PathPrefix: "/servers/12345/jobs/", Status: 200, Body: body})
	require.NoError(t, b.run(t, tasks.PollTaskID(op.ID, 1)))
	shown, _ := json.Marshal(b.op(t, op.ID))
	assert.NotContains(t, string(shown), "lsw-key-0123456789")
	assert.NotContains(t, string(shown), installSecret)
}

// a raw task whose input is refused but whose idempotency key and
// fingerprint match an existing running operation fails THAT operation
// (ensureRecord returns the existing record with inputErr, and
// ProcessLaunch finishes it). Reachable when the existing operation came
// from a raw task whose asynq TaskID is not a valid idempotency_key (a
// space, > 189 characters): its key "asynq-task:<TaskID>" is then refused
// by Validate but still matches in Create.
func TestLiveRefusedRawTaskLeavesExistingOperation(t *testing.T) {
	b := startLive(t, ucdnsim.Config{WaitingFor: time.Hour})
	raw := []byte(`{"provider":"ucdn","params":` + goodParams + `}`)
	_, err := b.client.Enqueue(asynq.NewTask(tasks.TypeCDNPurge, raw), asynq.TaskID("nightly purge"))
	require.NoError(t, err)
	var victim *opstore.Operation
	testutil.WaitFor(t, 10*time.Second, "running", func() bool {
		ops, _ := b.store.List(context.Background(), opstore.Filter{State: opstore.StateRunning})
		if len(ops) == 1 {
			victim = ops[0]
		}
		return victim != nil
	})
	require.Equal(t, "asynq-task:nightly purge", victim.IdempotencyKey)
	attack := []byte(`{"provider":"ucdn","idempotency_key":"asynq-task:nightly purge","params":` + goodParams + `}`)
	_, err = b.client.Enqueue(asynq.NewTask(tasks.TypeCDNPurge, attack), asynq.TaskID("attack"))
	require.NoError(t, err)
	testutil.WaitFor(t, 10*time.Second, "attack archived", func() bool {
		archived, _ := b.insp.ListArchivedTasks("default")
		return len(archived) == 1
	})
	got, err := b.store.Get(t.Context(), victim.ID)
	require.NoError(t, err)
	assert.Equal(t, opstore.StateRunning, got.State, "last_error=%q", got.LastError)
}

// An operation whose launch task is gone (deleted or archived from the
// queue UI) would stay queued with its secrets forever: ReapOrphans ends
// it failed, without its secrets, and sends its webhook. Operations whose
// launch task still waits, and young ones, are left alone.
func TestOrphanedOperationsAreEnded(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	hooks := newReceiver(t)
	deleted := b.submit(t, tasks.TypeServerInstall, installParams, func(e *tasks.Envelope) { e.CallbackURL = hooks.srv.URL })
	archived := b.submit(t, tasks.TypeServerInstall, strings.Replace(installParams, "12345", "12346", 1))
	waiting := b.submit(t, tasks.TypeServerInstall, strings.Replace(installParams, "12345", "12347", 1))
	require.NoError(t, b.insp.DeleteTask(tasks.ProviderQueue("leaseweb"), tasks.LaunchTaskID(deleted.ID)))
	require.NoError(t, b.insp.ArchiveTask(tasks.ProviderQueue("leaseweb"), tasks.LaunchTaskID(archived.ID)))

	n, err := b.worker.ReapOrphans(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "too young: a submit may still be enqueueing")

	b.clock.Add(tasks.OrphanAfter + time.Minute)
	n, err = b.worker.ReapOrphans(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for _, id := range []string{deleted.ID, archived.ID} {
		op := b.op(t, id)
		assert.Equal(t, opstore.StateFailed, op.State)
		assert.Contains(t, op.LastError, "launch task is gone")
		requireNoSecretInRecord(t, b, id, installSecret, installKey, "echo installed")
	}
	assert.Equal(t, opstore.StateQueued, b.op(t, waiting.ID).State, "its launch task still waits")
	assert.True(t, b.hasTask(tasks.DeliveryTaskID(deleted.ID, webhooks.EventFailed, tasks.DestinationCallback)), "the failure is announced")

	n, err = b.worker.ReapOrphans(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "once")
}

// Refused params are kept nowhere, not even hashed in the record's
// fingerprint: a second refused task under the same idempotency key is
// answered the same whatever password it carries (a fingerprint over the
// refused params would answer "a different request" and leave a hash of
// the password to test guesses against).
func TestRefusedParamsLeaveNoFingerprint(t *testing.T) {
	t.Parallel()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour})
	for _, pw := range []string{"Guess-One-Pw1", "Guess-Two-Pw2"} {
		params := strings.Replace(installWith(t, "password", "PASSWORD"), installSecret, pw, 1)
		payload := `{"provider":"leaseweb","idempotency_key":"ext-refused","params":` + params + `}`
		err := b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeServerInstall, []byte(payload)))
		require.ErrorIs(t, err, asynq.SkipRetry)
		assert.Contains(t, err.Error(), "params.PASSWORD: unknown field")
		assert.NotContains(t, err.Error(), "different request")
	}
	ops, err := b.store.List(t.Context(), opstore.Filter{})
	require.NoError(t, err)
	assert.Len(t, ops, 1, "one record for the key")
}

// A delivery task picks neither the signing secret nor the audience: the
// record's account decides the secret, and a subscription whose filters
// do not take the operation gets nothing, whatever the task says.
func TestDeliveryTaskCannotChooseSecretOrAudience(t *testing.T) {
	t.Parallel()
	hooks := newReceiver(t)
	other := webhookverify.NewSecret()
	b := setupServer(t, leasewebsim.Config{TaskDuration: time.Hour}, func(c *tasks.Config) {
		c.Webhooks.AccountSecrets = map[string][]webhookverify.Secret{"other": {other}}
		c.Webhooks.Subscriptions = []tasks.Subscription{{Name: "cdn-only", URL: hooks.srv.URL + "/sub", Kinds: []string{tasks.TypeCDNPurge}}}
	})
	op, _, err := b.store.Create(t.Context(), &opstore.Operation{ID: "0190c0de-0000-7000-8000-000000000001", Kind: tasks.TypeServerInstall, Provider: "leaseweb",
		Account: "default", CallbackURL: hooks.srv.URL + "/cb"})
	require.NoError(t, err)
	require.NoError(t, b.store.SaveEvent(t.Context(), op.ID, webhooks.EventSucceeded, []byte(`{"id":"x"}`)))
	deliver := func(dest, account string) error {
		payload, _ := json.Marshal(tasks.WebhookPayload{OperationID: op.ID, Account: account, EventID: tasks.EventID(op.ID, webhooks.EventSucceeded),
			EventType: webhooks.EventSucceeded, Destination: dest})
		return b.worker.Handler().ProcessTask(t.Context(), asynq.NewTask(tasks.TypeWebhookDeliver, payload))
	}
	require.ErrorIs(t, deliver(tasks.SubscriptionDestination("cdn-only"), "default"), asynq.SkipRetry)
	assert.Empty(t, hooks.hooks(), "a server:install event never reaches a cdn:purge subscription")

	require.NoError(t, deliver(tasks.DestinationCallback, "other"))
	require.Len(t, hooks.hooks(), 1)
	h := hooks.hooks()[0]
	assert.NoError(t, webhookverify.Verify(h.Header, h.Raw, time.Minute, time.Now(), testSecret), "signed as the record's account")
	assert.Error(t, webhookverify.Verify(h.Header, h.Raw, time.Minute, time.Now(), other), "not as the task's")
}
