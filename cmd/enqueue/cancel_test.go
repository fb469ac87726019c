package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
)

// `cancel --wait` exits 0 when the operation ends canceled, as asked,
// and 1 when it ended otherwise (it finished before the cancel took).
func TestCancelWaitExitCode(t *testing.T) {
	for _, tc := range []struct {
		end  opstore.State
		code int
	}{{opstore.StateCanceled, 0}, {opstore.StateSucceeded, 1}} {
		t.Run(string(tc.end), func(t *testing.T) {
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { rdb.Close() })
			store := opstore.New(rdb, "opsworker", time.Hour)
			op, _, err := store.Create(t.Context(), &opstore.Operation{ID: "op1", Kind: "server:install", Provider: "leaseweb", Account: "default",
				Params: []byte(`{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT"}`), State: opstore.StateRunning})
			require.NoError(t, err)
			// The worker's side: the cancel is taken, the operation ends.
			go func() {
				time.Sleep(300 * time.Millisecond)
				_, _ = store.Update(t.Context(), op, opstore.Change{To: tc.end})
			}()
			var out, errOut bytes.Buffer
			code := run(t.Context(), []string{"--redis", "redis://" + mr.Addr() + "/0", "cancel", "op1", "--wait", "--timeout", "10s"}, strings.NewReader(""), &out, &errOut)
			assert.Equal(t, tc.code, code, errOut.String())
			assert.Contains(t, errOut.String(), string(tc.end))
		})
	}
}

// `submit --wait` exits 0 when the operation succeeds and 1 when it ends
// canceled, in Redis mode and in API mode.
func TestSubmitWaitExitCode(t *testing.T) {
	r := startAPI(t)
	for _, mode := range []string{"redis", "api"} {
		for _, tc := range []struct {
			end  opstore.State
			code int
		}{{opstore.StateSucceeded, 0}, {opstore.StateCanceled, 1}} {
			t.Run(mode+"/"+string(tc.end), func(t *testing.T) {
				key := mode + string(tc.end)
				go func() {
					// The worker's side: the operation ends.
					for range 100 {
						time.Sleep(50 * time.Millisecond)
						ops, err := r.store.List(context.Background(), opstore.Filter{Limit: 100})
						for _, op := range ops {
							if err == nil && op.IdempotencyKey == key {
								_, _ = r.store.Update(context.Background(), op, opstore.Change{To: tc.end})
								return
							}
						}
					}
				}()
				args := []string{"submit", "cdn:purge", "--provider", "ucdn", "--params", purgeParams, "--key", key, "--wait", "--timeout", "10s"}
				var code int
				var errOut string
				if mode == "api" {
					code, _, errOut = r.sh(t, writeSecret, args...)
				} else {
					var o, e bytes.Buffer
					code = run(t.Context(), append([]string{"--redis", r.redis}, args...), strings.NewReader(""), &o, &e)
					errOut = e.String()
				}
				assert.Equal(t, tc.code, code, errOut)
				assert.Contains(t, errOut, string(tc.end))
			})
		}
	}
}
