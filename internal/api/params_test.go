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
