package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/webhookverify"
)

// `webhooks verify -o json` answers in JSON, valid or not (exit 0 or 1).
func TestWebhooksVerifyJSON(t *testing.T) {
	secret := webhookverify.NewSecret()
	body := []byte(`{"type":"operation.succeeded"}`)
	now := time.Now()
	file := filepath.Join(t.TempDir(), "body.json")
	require.NoError(t, os.WriteFile(file, body, 0o600))
	verify := func(body []byte) (int, string) {
		require.NoError(t, os.WriteFile(file, body, 0o600))
		var out, errOut bytes.Buffer
		code := run(t.Context(), []string{"webhooks", "verify", "-o", "json", "--secret", secret.String(), "--body-file", file,
			"--header", "webhook-id: evt_1", "--header", "webhook-timestamp: " + strconv.FormatInt(now.Unix(), 10),
			"--header", "webhook-signature: " + webhookverify.Sign("evt_1", now, []byte(`{"type":"operation.succeeded"}`), secret)},
			strings.NewReader(""), &out, &errOut)
		return code, out.String()
	}
	var got struct {
		Valid     bool   `json:"valid"`
		WebhookID string `json:"webhook_id"`
		Error     string `json:"error"`
	}
	code, out := verify(body)
	require.Equal(t, 0, code)
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.True(t, got.Valid)
	assert.Equal(t, "evt_1", got.WebhookID)

	code, out = verify(append(body, ' '))
	require.Equal(t, 1, code)
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.False(t, got.Valid)
	assert.Contains(t, got.Error, "no signature matches")
}

// `webhooks enable` of a name that is not disabled says which are.
func TestWebhooksEnableUnknown(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	require.NoError(t, opstore.New(rdb, "opsworker", time.Hour).DisableSubscription(t.Context(), "billing", "410 Gone"))
	enable := func(name string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(t.Context(), []string{"--redis", "redis://" + mr.Addr() + "/0", "webhooks", "enable", name}, strings.NewReader(""), &out, &errOut)
		return code, errOut.String()
	}
	code, msg := enable("nosuch")
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, `no disabled subscription is named "nosuch" (disabled: billing;`)
	code, msg = enable("billing")
	assert.Equal(t, 0, code, msg)
	code, msg = enable("billing")
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, "(disabled: none;")
}
