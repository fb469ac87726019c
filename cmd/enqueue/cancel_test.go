package main

import (
	"bytes"
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
