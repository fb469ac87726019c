package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/testutil"
)

func TestSchedulesRunAndShow(t *testing.T) {
	redisURL, sim, cfg, _ := redisSetup(t, ucdnsim.Config{})
	cfg += `schedules:
  - name: every-2s
    spec: "@every 2s"
    task_type: cdn:purge
    provider: ucdn
    fan_out:
      - {zone_name: a, zone_type: objects, files: ["/x"]}
      - {zone_name: b, zone_type: objects, files: ["/x"]}
  - name: nightly
    spec: "0 3 * * *"
    timezone: Europe/Amsterdam
    task_type: cdn:purge
    provider: ucdn
    params: {zone_name: c, zone_type: objects, files: ["/y"]}
`
	startWorker(t, cfg)
	type row struct {
		Name    string      `json:"name"`
		Next    []time.Time `json:"next"`
		LastRun []struct {
			ID, State string
		} `json:"last_run"`
	}
	var rows []row
	testutil.WaitFor(t, 15*time.Second, "a fan-out run", func() bool {
		r := cli(t, "--redis", redisURL, "schedules", "--output", "json")
		require.Equal(t, 0, r.code, r.stderr)
		rows = nil
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
		return len(rows) == 2 && len(rows[0].LastRun) == 2
	})
	assert.Equal(t, "nightly", rows[1].Name)
	require.Len(t, rows[1].Next, 3)
	loc, _ := time.LoadLocation("Europe/Amsterdam")
	for _, n := range rows[1].Next {
		assert.Equal(t, 3, n.In(loc).Hour(), "03:00 Amsterdam time")
	}
	assert.Empty(t, rows[1].LastRun)
	assert.Equal(t, "every-2s", rows[0].Name)
	require.Len(t, rows[0].Next, 3)
	for _, n := range rows[0].Next {
		assert.Zero(t, n.Unix()%2)
	}
	testutil.WaitFor(t, 15*time.Second, "scheduled operations succeed", func() bool {
		r := cli(t, "--redis", redisURL, "list", "--state", "succeeded", "--kind", "cdn:purge", "--output", "json")
		var ops []json.RawMessage
		_ = json.Unmarshal([]byte(r.stdout), &ops)
		return len(ops) >= 2
	})
	assert.GreaterOrEqual(t, sim.CountCalls("POST", "/purge/zone"), 2)

	text := cli(t, "--redis", redisURL, "schedules")
	assert.Contains(t, text.stdout, "every-2s")
	assert.Contains(t, text.stdout, "last run")
}
