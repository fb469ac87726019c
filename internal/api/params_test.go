package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
)

// A params key spelled in any other way than documented is refused by the
// API (encoding/json would have matched "PASSWORD" or "paſſword" to
// "password"), and the secret goes nowhere.
func TestSubmitRefusesMisspelledParamKeys(t *testing.T) {
	t.Parallel()
	srv, store := setup(t)
	base := `{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT",%q:"Hunter2-Secret-Pw"}`
	for _, key := range []string{"PASSWORD", "Password", "paſſword", "passworD"} {
		body := `{"task_type":"server:install","provider":"leaseweb","params":` + strings.Replace(base, "%q", `"`+key+`"`, 1) + `}`
		status, _, problem := call(t, srv, "POST", "/v1/operations", writeTok, body, "Content-Type", "application/json")
		require.Equal(t, 400, status, key)
		assert.Equal(t, "params."+key, problem["field"], key)
		assert.Contains(t, problem["detail"], "unknown field", key)
		assert.NotContains(t, problem["detail"], "Hunter2", key)
	}
	ops, err := store.List(context.Background(), opstore.Filter{})
	require.NoError(t, err)
	assert.Empty(t, ops, "nothing stored")

	// The exact key is accepted, stored re-encoded, and shown redacted.
	body := `{"task_type":"server:install","provider":"leaseweb","params":` + strings.Replace(base, "%q", `"password"`, 1) + `}`
	status, _, op := call(t, srv, "POST", "/v1/operations", writeTok, body, "Content-Type", "application/json")
	require.Equal(t, 202, status, op)
	assert.Equal(t, map[string]any{"server_id": "12345", "operating_system_id": "UBUNTU_22_04_64BIT", "password": "REDACTED"}, op["params"])
	status, _, got := call(t, srv, "GET", "/v1/operations/"+op["id"].(string), readTok, "")
	require.Equal(t, 200, status)
	assert.Equal(t, "REDACTED", got["params"].(map[string]any)["password"])
}

// The envelope's own keys are matched as strictly as params: another
// case or a duplicate is refused, naming the key, whatever the value.
func TestSubmitEnvelopeKeysMatchExactly(t *testing.T) {
	t.Parallel()
	srv, store := setup(t)
	const p = `"params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}`
	for _, tc := range []struct{ body, field, detail string }{
		{`{"task_type":"cdn:purge","Provider":"ucdn",` + p + `}`, "Provider", "unknown field"},
		{`{"TASK_TYPE":"cdn:purge","provider":"ucdn",` + p + `}`, "TASK_TYPE", "unknown field"},
		{`{"task_type":"cdn:purge","provider":"ucdn",` + p + `,"Callback_URL":"https://a.example/x"}`, "Callback_URL", "unknown field"},
		{`{"task_type":"cdn:purge","provider":"ucdn","provider":"edgio",` + p + `}`, "provider", "given more than once"},
		{`{"task_type":"cdn:purge","provider":"ucdn",` + p + `,"callback_url":"https://a.example/t0k","callback_url":"https://b.example/t0k"}`, "callback_url", "given more than once"},
	} {
		status, _, problem := call(t, srv, "POST", "/v1/operations", writeTok, tc.body, "Content-Type", "application/json")
		require.Equal(t, 400, status, tc.body)
		assert.Equal(t, tc.field, problem["field"], tc.body)
		assert.Contains(t, problem["detail"], tc.detail, tc.body)
		assert.NotContains(t, problem["detail"], "t0k", tc.body)
	}
	ops, err := store.List(context.Background(), opstore.Filter{})
	require.NoError(t, err)
	assert.Empty(t, ops, "nothing stored")
}

// Idempotency keys belong to the token that used them: another write
// token reusing a key it saw in a listing gets an operation of its own,
// and cannot make a later submit of the key's owner answer with its
// operation (an install with its own SSH key and script).
func TestIdempotencyKeysArePerToken(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	const otherTok = "other-team-write-token-0123"
	a := api.New(api.Config{Store: store, Submitter: tasks.NewSubmitter(store, client, tasks.SubmitOptions{}), Enqueuer: client,
		Tokens: []api.Token{{Name: "ci", Secret: writeTok, Scope: api.ScopeWrite}, {Name: "other-team", Secret: otherTok, Scope: api.ScopeWrite}}})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	body := func(who string) string {
		return `{"task_type":"server:install","provider":"leaseweb","idempotency_key":"install-12345-2026-11-23","params":{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT","ssh_keys":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI` + who + ` k","post_install_script":"#!/bin/sh\necho ` + who + `"}}`
	}
	json := []string{"Content-Type", "application/json"}
	st, _, squat := call(t, srv, "POST", "/v1/operations", otherTok, body("squatter"), json...)
	require.Equal(t, 202, st)
	st, hdr, mine := call(t, srv, "POST", "/v1/operations", writeTok, body("owner"), json...)
	require.Equal(t, 202, st)
	assert.Empty(t, hdr.Get("Idempotent-Replayed"), "a new operation, not the other token's")
	assert.NotEqual(t, squat["id"], mine["id"])
	op, err := store.Get(context.Background(), mine["id"].(string))
	require.NoError(t, err)
	assert.Contains(t, string(op.Params), "echo owner")

	// The owner's own retry is a replay, and only the owner's.
	st, hdr, again := call(t, srv, "POST", "/v1/operations", writeTok, body("owner"), json...)
	require.Equal(t, 202, st)
	assert.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	assert.Equal(t, mine["id"], again["id"])
}
