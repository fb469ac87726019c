package e2e

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
)

// The public-cloud kinds and the server jobs that need no OS through the
// worker on real Redis, against the worker's in-process Leaseweb
// simulator; bad input per kind exits 2.
func TestCloudKindsEndToEnd(t *testing.T) {
	redisURL, _, cfg, _ := redisSetup(t, ucdnsim.Config{})
	cfg = withSection(t, cfg, "providers", `  leaseweb:
    simulate: true
    simulator: {task_duration: 100ms, cloud_step: 100ms}
    accounts:
      default: {}
`)
	cfg = withSection(t, cfg, "polling", `  instance:snapshot: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  vps:snapshot: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  asg:scale: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  instance:resize: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  server:hardware_scan: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  server:ipmi_reset: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  server:power_cycle: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  server:power_off: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  server:power_on: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  instance:snapshot_restore: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  vps:snapshot_restore: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  instance:snapshot_delete: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  vps:snapshot_delete: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  asg:create: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  asg:delete: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  instance:reinstall: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  vps:reinstall: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  server:install: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
  server:job_retry: {initial: 100ms, multiplier: 1, max: 200ms, jitter: 0, deadline: 1m}
`)
	startWorker(t, cfg)
	snapshots := map[string]string{}
	for _, tc := range []struct{ kind, params, want string }{
		{"instance:snapshot", `{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","name":"e2e"}`, `"state": "READY"`},
		{"vps:snapshot", `{"vps_id":"999999999","name":"e2e"}`, `"state": "READY"`},
		{"asg:scale", `{"asg_id":"fb769dab-3daa-47e4-89ed-06a4b6499176","desired_amount":3}`, `"instances": 3`},
		{"instance:resize", `{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","type":"lsw.m3.xlarge"}`, `"type": "lsw.m3.xlarge"`},
		{"server:hardware_scan", `{"server_id":"12345"}`, `"type": "hardwareScan"`},
		{"server:ipmi_reset", `{"server_id":"12345","power_cycle":true}`, `"type": "ipmiReset"`},
		{"server:power_off", `{"server_id":"12345"}`, `"ipmi": "off"`},
		{"server:power_on", `{"server_id":"12345"}`, `"ipmi": "on"`},
		{"server:power_cycle", `{"server_id":"12345"}`, `"action": "powerCycle"`},
		{"asg:create", `{"type":"MANUAL","instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","reference":"e2e-pool","desired_amount":2}`, `"reference": "e2e-pool"`},
		{"asg:delete", `{"asg_id":"3b5b5e4a-5c0c-4c8f-9cf6-0d8a9b5ad2c1"}`, `"already_gone": false`},
	} {
		r := cli(t, "--redis", redisURL, "submit", tc.kind, "--provider", "leaseweb", "--params", tc.params, "--wait", "--timeout", "60s", "--output", "json")
		require.Equal(t, 0, r.code, "%s: %s", tc.kind, r.stderr)
		op := decodeOp(t, r.stdout)
		assert.Equal(t, opstore.StateSucceeded, op.State, tc.kind)
		assert.Contains(t, r.stdout, tc.want, tc.kind)
		if strings.HasSuffix(tc.kind, ":snapshot") {
			snapshots[tc.kind] = op.Handle
		}
	}
	// Restore each machine from the snapshot just made, then delete it.
	for _, tc := range []struct{ kind, machine, snapshot string }{
		{"instance:snapshot_restore", `"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1"`, snapshots["instance:snapshot"]},
		{"vps:snapshot_restore", `"vps_id":"999999999"`, snapshots["vps:snapshot"]},
		{"instance:snapshot_delete", `"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1"`, snapshots["instance:snapshot"]},
		{"vps:snapshot_delete", `"vps_id":"999999999"`, snapshots["vps:snapshot"]},
	} {
		require.NotEmpty(t, tc.snapshot)
		params := "{" + tc.machine + `,"snapshot_id":"` + tc.snapshot + `"}`
		r := cli(t, "--redis", redisURL, "submit", tc.kind, "--provider", "leaseweb", "--params", params, "--wait", "--timeout", "60s", "--output", "json")
		require.Equal(t, 0, r.code, "%s: %s", tc.kind, r.stderr)
		assert.Equal(t, opstore.StateSucceeded, decodeOp(t, r.stdout).State, tc.kind)
		assert.Contains(t, r.stdout, tc.snapshot, tc.kind)
	}
	// An install that fails (the simulator fails hostnames starting with
	// fail-), then the retry of its job, named by the operation.
	r := cli(t, "--redis", redisURL, "submit", "server:install", "--provider", "leaseweb", "--wait", "--timeout", "60s", "--output", "json",
		"--params", `{"server_id":"777","operating_system_id":"DEBIAN_11_64BIT","hostname":"fail-web.example.com"}`)
	failed := decodeOp(t, r.stdout)
	require.Equal(t, opstore.StateFailed, failed.State, r.stderr)
	r = cli(t, "--redis", redisURL, "submit", "server:job_retry", "--provider", "leaseweb", "--wait", "--timeout", "60s", "--output", "json",
		"--params", `{"server_id":"777","operation_id":"`+failed.ID+`"}`)
	require.Equal(t, 0, r.code, r.stderr)
	retried := decodeOp(t, r.stdout)
	assert.Equal(t, opstore.StateSucceeded, retried.State)
	assert.Equal(t, failed.Handle, retried.Handle, "the same job, run again")

	// With the snapshots gone, reinstall both machines.
	for _, params := range []string{
		`{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","image_id":"DEBIAN_12_64BIT"}`,
		`{"vps_id":"999999999","image_id":"UBUNTU_24_04_64BIT"}`,
	} {
		kind := map[bool]string{true: "vps:reinstall", false: "instance:reinstall"}[strings.Contains(params, "vps_id")]
		r := cli(t, "--redis", redisURL, "submit", kind, "--provider", "leaseweb", "--params", params, "--wait", "--timeout", "60s", "--output", "json")
		require.Equal(t, 0, r.code, "%s: %s", kind, r.stderr)
		assert.Equal(t, opstore.StateSucceeded, decodeOp(t, r.stdout).State, kind)
		assert.Contains(t, r.stdout, `"image_before": "UBUNTU_22_04_64BIT"`, kind)
	}
	for _, tc := range []struct{ kind, params, field string }{
		{"instance:snapshot", `{"name":"x"}`, "params.instance_id"},
		{"vps:snapshot", `{"vps_id":"999999999"}`, "params.name"},
		{"asg:scale", `{"asg_id":"fb769dab-3daa-47e4-89ed-06a4b6499176","cpu_threshold":0}`, "params.cpu_threshold"},
		{"instance:resize", `{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","type":"big"}`, "params.type"},
		{"server:install", `{"server_id":"1","operating_system_id":"UBUNTU_22_04_64BIT","partitions":[{"filesystem":"ext4","mountpoint":"/","size":"*"},{"filesystem":"swap","size":1}]}`, "params.partitions[0].size"},
		{"server:rescue", `{"server_id":"1","post_install_script":"echo"}`, "params.post_install_script"},
		{"server:hardware_scan", `{"server_id":"web01"}`, "params.server_id"},
		{"server:ipmi_reset", `{"server_id":"1","power_cycle":"yes"}`, "params.power_cycle"},
		{"server:power_cycle", `{"server_id":"1","power_cycle":true}`, "params.power_cycle"},
		{"instance:snapshot_restore", `{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1"}`, "params.snapshot_id"},
		{"vps:snapshot_delete", `{"vps_id":"x","snapshot_id":"95b0ae2e-4a8d-4b4d-9d5e-2f0a1c3b4d5e"}`, "params.vps_id"},
		{"asg:create", `{"type":"CPU_BASED","instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","reference":"x","desired_amount":2}`, "params.minimum_amount"},
	} {
		r := cli(t, "--redis", redisURL, "submit", tc.kind, "--provider", "leaseweb", "--params", tc.params)
		assert.Equal(t, 2, r.code, tc.kind)
		assert.Contains(t, r.stderr, tc.field, tc.kind)
	}
}
