package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/config"
)

// --help and --version are answers, not errors (exit 0); an unknown flag
// is an error (exit 1).
func TestFlags(t *testing.T) {
	assert.NoError(t, run(t.Context(), []string{"--help"}))
	assert.NoError(t, run(t.Context(), []string{"-h"}))
	assert.NoError(t, run(t.Context(), []string{"--version"}))
	assert.ErrorContains(t, run(t.Context(), []string{"--nosuch"}), "nosuch")
}

// --check-config (and start-up) report every problem at once, each key
// once, the config's own checks and start-up's alike.
func TestPrepareReportsEveryProblem(t *testing.T) {
	cfg, err := config.Decode([]byte(`
log: {format: json, level: verbose}
redis:
  url: redis://127.0.0.1:notaport/0
schedules:
  - {name: nightly, spec: '0 3 * * *', task_type: cdn:nuke, provider: ucdn, params: {}}
webhooks:
  secrets: [nope]
providers:
  ucdn:
    simulate: true
    accounts:
      default: {}
polling:
  cdn:purge: {initial: 0s}
`), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	_, err = prepare(cfg, false)
	require.Error(t, err)
	for _, key := range []string{"log.level: ", "redis.url: ", "polling.cdn:purge.initial: ", "webhooks.secrets[0]: ", "providers.ucdn.simulate: ", "schedules[0] (nightly): "} {
		assert.Equal(t, 1, strings.Count(err.Error(), "\n"+key)+strings.Count(strings.SplitN(err.Error(), "\n", 2)[0], key), "%s once in:\n%s", key, err)
	}
	_, err = prepare(cfg, true)
	assert.NotContains(t, err.Error(), "providers.ucdn.simulate", "--dev allows simulators on a real Redis")
}
