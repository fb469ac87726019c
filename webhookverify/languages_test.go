package webhookverify_test

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/webhookverify"
)

// The verification examples of docs/webhooks.md for other languages
// accept what the worker signs and refuse a tampered body: Node.js with
// the Standard Webhooks library (examples/webhook-node, installed by make
// test-deps), Python with its standard library (examples/webhook-python).
func TestOtherLanguagesVerify(t *testing.T) {
	secret := webhookverify.NewSecret()
	other := webhookverify.NewSecret()
	now := time.Now()
	body := []byte(`{"type":"operation.succeeded","timestamp":"2026-12-02T00:00:00Z","data":{"id":"01a2"}}`)
	sig := webhookverify.Sign("evt_01a2_succeeded", now, body, other, secret) // two: a rotation
	for _, tc := range []struct {
		name, dir string
		cmd       []string
		ready     string
	}{
		{"node", "../examples/webhook-node", []string{"node", "verify.mjs"}, "../examples/webhook-node/node_modules/standardwebhooks"},
		{"python", "../examples/webhook-python", []string{"python3", "verify.py"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := exec.LookPath(tc.cmd[0])
			if err == nil && tc.ready != "" {
				_, err = os.Stat(tc.ready)
			}
			if err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s example cannot run (make test-deps installs it): %v", tc.name, err)
				}
				t.Skipf("%s example cannot run (make test-deps installs it): %v", tc.name, err)
			}
			run := func(body []byte, ts time.Time) (int, string) {
				sig := sig
				if !ts.Equal(now) {
					sig = webhookverify.Sign("evt_01a2_succeeded", ts, body, secret)
				}
				cmd := exec.Command(tc.cmd[0], tc.cmd[1:]...)
				cmd.Dir = tc.dir
				cmd.Env = append(os.Environ(), "OPSWORKER_WEBHOOK_SECRET="+secret.String(), "WEBHOOK_ID=evt_01a2_succeeded",
					"WEBHOOK_TIMESTAMP="+strconv.FormatInt(ts.Unix(), 10), "WEBHOOK_SIGNATURE="+sig)
				cmd.Stdin = bytes.NewReader(body)
				out, err := cmd.CombinedOutput()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else {
					require.NoError(t, err)
				}
				return code, string(out)
			}
			code, out := run(body, now)
			assert.Equal(t, 0, code, out)
			assert.Contains(t, out, "valid: evt_01a2_succeeded operation.succeeded")
			code, out = run(append(body[:len(body)-1:len(body)-1], ' ', '}'), now)
			assert.Equal(t, 1, code, "a tampered body: %s", out)
			code, out = run(body, now.Add(-10*time.Minute))
			assert.Equal(t, 1, code, "signed, but 10 minutes old: %s", out)
		})
	}
}
