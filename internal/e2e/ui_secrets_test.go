package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/testutil"
)

// What a read token sees in the queue UI's API carries no callback URL
// token, no secret param and no webhook body: not for opsworker's own
// tasks (launch, deliveries kept after completion) and not for raw tasks
// other systems put on the queue.
func TestQueueUIShowsNoSecrets(t *testing.T) {
	var mu sync.Mutex
	got := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got++
		mu.Unlock()
		w.WriteHeader(204)
	}))
	t.Cleanup(recv.Close)
	callback := strings.Replace(recv.URL, "http://", "http://user:cb-Pa55word@", 1) + "/hook/path-T0ken-123?sig=query-T0ken-456"

	base, w, _ := startHTTPWorkerProc(t, `webhooks:
  ssrf:
    allow_cidrs: [127.0.0.0/8]
`)

	body := `{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]},"callback_url":"` + callback + `"}`
	req, _ := http.NewRequest("POST", base+"/v1/operations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+rwTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 202, resp.StatusCode)
	testutil.WaitFor(t, 30*time.Second, "running and succeeded events delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got == 2
	})

	// Raw tasks from another system: held in the future, and on a queue
	// no worker serves.
	client := asynq.NewClientFromRedisClient(redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBCLI}))
	defer client.Close()
	install := `{"provider":"leaseweb","callback_url":"` + callback + `","params":{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT","password":"Raw-Pa55word-789","ssh_keys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5RawKey user@h"],"post_install_script":"#!/bin/sh\necho raw-script-marker"}}`
	_, err = client.EnqueueContext(context.Background(), asynq.NewTask("server:install", []byte(install)), asynq.ProcessIn(time.Hour))
	require.NoError(t, err)
	misspelled := `{"provider":"ucdn","params":{"zone_name":"z","zone_type":"objects","files":["/a"],"PASSWORD":"Raw-Pa55word-789"}}`
	_, err = client.EnqueueContext(context.Background(), asynq.NewTask("cdn:purge", []byte(misspelled)), asynq.Queue("held"))
	require.NoError(t, err)

	secrets := []string{"cb-Pa55word", "path-T0ken-123", "query-T0ken-456", "Raw-Pa55word-789", "AAAAC3NzaC1lZDI1NTE5RawKey", "raw-script-marker"}
	var seen []string
	for _, path := range []string{
		"/ui/api/queues/default/scheduled_tasks",
		"/ui/api/queues/default/completed_tasks",
		"/ui/api/queues/default/pending_tasks",
		"/ui/api/queues/default/archived_tasks",
		"/ui/api/queues/held/pending_tasks",
	} {
		code, page := get(t, base+path, "Bearer "+roTok)
		require.Equal(t, 200, code, path)
		for _, s := range secrets {
			assert.NotContains(t, page, s, path)
		}
		seen = append(seen, page)
	}
	all := strings.Join(seen, "\n")
	assert.Contains(t, all, `webhook:deliver`, "the completed deliveries are listed")
	assert.Contains(t, all, `\"password\":\"REDACTED\"`, "the raw install is shown, redacted")
	assert.Contains(t, all, `\"params\":\"REDACTED\"`, "params that do not decode are not shown")
	assert.NotContains(t, w.out.String(), "cb-Pa55word", "nor in the worker's log")
	assert.NotContains(t, w.out.String(), "query-T0ken-456")
}
