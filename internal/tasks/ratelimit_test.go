package tasks_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/ops"
)

// A launch the account's shared rate limit has no room for is not sent:
// the task snoozes for the limiter's wait without using an attempt, and
// the retry has nothing to reconcile.
func TestThrottledLaunchSnoozes(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBFlow})
	t.Cleanup(func() { rdb.Close() })
	// One call a second, bursts of two, for this account; keys of this test
	// alone.
	lim := flow.NewLimiter(rdb, "owtest-"+uuid.NewString(), "leaseweb", "default", 1, 2)
	b := setupServerWith(t, leasewebsim.Config{TaskDuration: time.Hour}, []leaseweb.Option{leaseweb.WithRateLimiter(lim)})

	first := b.submit(t, ops.KindServerIPMIReset, `{"server_id":"111"}`)
	second := b.submit(t, ops.KindServerIPMIReset, `{"server_id":"222"}`)
	require.NoError(t, b.run(t, tasks.LaunchTaskID(first.ID)), "the pre-flight read and the launch use the burst")

	task := b.task(t, tasks.LaunchTaskID(second.ID))
	err := b.worker.Handler().ProcessTask(t.Context(), task)
	require.Error(t, err)
	assert.False(t, b.worker.IsFailure(err), "a snooze uses no attempt")
	d := b.worker.RetryDelay(0, err, task)
	assert.Greater(t, d, flow.MaxWait, "it comes back when the limit has room")
	assert.LessOrEqual(t, d, 2*time.Second)
	op := b.op(t, second.ID)
	assert.Contains(t, op.LastError, "rate limit of leaseweb:default")
	assert.NotEqual(t, opstore.StateFailed, op.State)
	assert.Equal(t, 0, b.lw.CountCalls("POST", "/servers/222/ipmiReset"), "not sent")
}
