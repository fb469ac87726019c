package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
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
