// Package testutil has helpers shared by tests: real-Redis access for
// integration tests and a condition wait.
package testutil

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis DB numbers reserved for each package's integration tests, so
// packages tested in parallel (-p) never share one. Each test flushes its
// DB before and after.
const (
	DBTasks  = 10
	DBWorker = 11
	DBStore  = 12
	DBCLI    = 13
	DBSched  = 14
	DBFlow   = 8
	// DBStoreBench holds the operation store benchmarks' large data sets.
	DBStoreBench = 9
	// DBInFlight holds the in-flight gauge tests' keys, under a prefix
	// of their own that they delete (not flushed: they run in parallel).
	DBInFlight = 7
)

// RedisAddr returns REDIS_ADDR. When it is unset or Redis does not answer
// the test is skipped — except under CI=true, where it fails: CI must not
// pass by skipping integration tests.
func RedisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		missing(t, "REDIS_ADDR is not set")
		return ""
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		missing(t, "Redis at "+addr+" does not answer: "+err.Error())
	}
	return addr
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("integration test needs Redis: %s (CI must provide it)", why)
	}
	t.Skipf("integration test skipped: %s", why)
}

// Redis returns a client on the real Redis at REDIS_ADDR, database db,
// flushed now and again when the test ends.
func Redis(t testing.TB, db int) *redis.Client {
	t.Helper()
	addr := RedisAddr(t)
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	ctx := context.Background()
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("flush db %d: %v", db, err)
	}
	t.Cleanup(func() {
		_ = c.FlushDB(context.Background()).Err()
		_ = c.Close()
	})
	return c
}

// WaitFor polls cond every 20 ms until it returns true or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Clock is a manual clock for code that takes a `func() time.Time`.
// It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
