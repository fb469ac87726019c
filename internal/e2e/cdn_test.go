package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
)

// Every CDN kind through the worker on real Redis against its in-process
// simulator: succeeded, failed and timed out; bad input exits 2.
func TestCDNKindsEndToEnd(t *testing.T) {
	redisURL, _, cfg, _ := redisSetup(t, ucdnsim.Config{})
	cfg = withSection(t, cfg, "providers", `  leaseweb:
    simulate: true
    simulator: {task_duration: 100ms, cloud_step: 200ms}
    accounts:
      default: {}
  edgio:
    simulate: true
    simulator_duration: 300ms
    accounts:
      default: {account_number: "0001"}
  ionos:
    simulate: true
    simulator_duration: 300ms
    accounts:
      default: {}
`)
	cfg = withSection(t, cfg, "polling", `  cdn:invalidate: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  cdn:distribution_delete: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  cdn:distribution_ensure: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
`)
	startWorker(t, cfg)
	dist := func(domain string) string {
		return fmt.Sprintf(`{"distribution_id":"9ba15778-16c4-543c-8775-e52acf4853f5","domain":%q,"routing_rules":[{"scheme":"https","prefix":"/","upstream":{"host":"origin.example.com","caching":true,"waf":false}}]}`, domain)
	}
	for _, tc := range []struct {
		name, kind, provider, params string
		want                         opstore.State
		contains                     string
	}{
		{"LeasewebOK", "cdn:invalidate", "leaseweb", `{"files":["https://cdn.example.com/a.png"]}`, opstore.StateSucceeded, `"status": "SUCCESS"`},
		{"LeasewebPurge", "cdn:purge", "leaseweb", `{"files":["https://cdn.example.com/b.png"]}`, opstore.StateSucceeded, `"status": "SUCCESS"`},
		{"LeasewebFailedURL", "cdn:invalidate", "leaseweb", `{"files":["https://cdn.example.com/ok.png","https://cdn.example.com/__fail__.png"]}`, opstore.StateFailed, "__fail__.png (FAILED"},
		{"EdgioOK", "cdn:purge", "edgio", `{"media_path":["/a.png","/b/*"],"media_type":"adn"}`, opstore.StateSucceeded, `"CompleteDate"`},
		{"IONOSOK", "cdn:distribution_ensure", "ionos", dist("cdn.example.com"), opstore.StateSucceeded, `"state": "AVAILABLE"`},
		{"IONOSFailed", "cdn:distribution_ensure", "ionos", dist("fail-cdn.example.com"), opstore.StateFailed, "is FAILED"},
		{"IONOSDelete", "cdn:distribution_delete", "ionos", `{"distribution_id":"9ba15778-16c4-543c-8775-e52acf4853f5"}`, opstore.StateSucceeded, `"already_gone": false`},
		{"IONOSDeleteAgain", "cdn:distribution_delete", "ionos", `{"distribution_id":"9ba15778-16c4-543c-8775-e52acf4853f5"}`, opstore.StateSucceeded, `"already_gone": true`},
	} {
		r := cli(t, "--redis", redisURL, "submit", tc.kind, "--provider", tc.provider, "--params", tc.params, "--wait", "--timeout", "60s", "--output", "json")
		op := decodeOp(t, r.stdout)
		assert.Equal(t, tc.want, op.State, "%s: %s", tc.name, r.stderr)
		if tc.want == opstore.StateSucceeded {
			assert.Equal(t, 0, r.code, tc.name)
			assert.Contains(t, r.stdout, tc.contains, tc.name)
		} else {
			assert.Equal(t, 1, r.code, tc.name)
			assert.Contains(t, op.LastError, tc.contains, tc.name)
		}
	}
	for _, tc := range []struct{ kind, provider, params, field string }{
		{"cdn:invalidate", "leaseweb", `{"files":[]}`, "params.files"},
		{"cdn:purge", "edgio", `{"media_path":"/a","media_type":"http_huge"}`, "params.media_type"},
		{"cdn:purge", "edgio", `{"media_path":["ftp://x/a"]}`, "params.media_path[0]"},
		{"cdn:distribution_ensure", "ionos", `{"distribution_id":"9ba15778-16c4-543c-8775-e52acf4853f5","domain":"-bad-","routing_rules":[]}`, "params.domain"},
		{"cdn:distribution_ensure", "ionos", strings.Replace(dist("cdn.example.com"), `"https"`, `"gopher"`, 1), "params.routing_rules[0].scheme"},
		{"cdn:distribution_ensure", "leaseweb", dist("cdn.example.com"), "provider"},
		{"cdn:distribution_delete", "ionos", `{"distribution_id":"nope"}`, "params.distribution_id"},
	} {
		r := cli(t, "--redis", redisURL, "submit", tc.kind, "--provider", tc.provider, "--params", tc.params)
		assert.Equal(t, 2, r.code, "%s %s", tc.kind, tc.params)
		assert.Contains(t, r.stderr, tc.field, tc.kind)
	}
}

// An operation whose provider never finishes ends timed_out at its
// deadline.
func TestCDNTimedOut(t *testing.T) {
	redisURL, _, cfg, _ := redisSetup(t, ucdnsim.Config{})
	cfg = withSection(t, cfg, "providers", `  ionos:
    simulate: true
    simulator_duration: 1h
    accounts:
      default: {}
`)
	cfg = withSection(t, cfg, "polling", "  cdn:distribution_ensure: {initial: 200ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 2s}\n")
	startWorker(t, cfg)
	r := cli(t, "--redis", redisURL, "submit", "cdn:distribution_ensure", "--provider", "ionos", "--params",
		`{"distribution_id":"9ba15778-16c4-543c-8775-e52acf4853f5","domain":"cdn.example.com","routing_rules":[{"scheme":"https","prefix":"/","upstream":{"host":"o.example.com"}}]}`,
		"--wait", "--timeout", "60s", "--output", "json")
	require.Equal(t, 1, r.code, r.stderr)
	op := decodeOp(t, r.stdout)
	assert.Equal(t, opstore.StateTimedOut, op.State)
	assert.Contains(t, op.LastError, "within the deadline")
	assert.Equal(t, "BUSY", op.Status)
}
