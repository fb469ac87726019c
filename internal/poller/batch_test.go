package poller_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/poller"
)

func TestBatcherMembership(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	b := poller.NewBatcher(rdb, "ow")
	ctx := t.Context()

	require.NoError(t, b.Add(ctx, "k", "op1", "h1"))
	require.NoError(t, b.Add(ctx, "k", "op2", "h2"))
	m, in, last, err := b.Look(ctx, "k", "op1")
	require.NoError(t, err)
	assert.True(t, in)
	assert.Equal(t, poller.Member{Handle: "h1"}, m)
	assert.False(t, m.Seen(), "a new member is not covered")
	assert.True(t, last.At.IsZero(), "no list ran yet")
	assert.False(t, last.Fresh(time.Now(), time.Minute))

	at := time.UnixMilli(1_790_000_000_123)
	require.NoError(t, b.Remove(ctx, "k", "op2"))
	require.NoError(t, b.Saw(ctx, "k", map[string]poller.Member{
		"op1": {Handle: "h1", Status: "running", Progress: `{"done":1}`},
		"op2": {Handle: "h2", Status: "running"},
	}, poller.Run{At: at, Took: 20 * time.Second}))
	m, in, last, err = b.Look(ctx, "k", "op1")
	require.NoError(t, err)
	assert.True(t, in)
	assert.Equal(t, poller.Member{Handle: "h1", Status: "running", Progress: `{"done":1}`}, m)
	assert.True(t, m.Seen())
	assert.True(t, last.At.Equal(at))
	assert.Equal(t, 20*time.Second, last.Took)
	assert.True(t, last.Fresh(at.Add(59*time.Second), 10*time.Second), "two intervals plus twice the run")
	assert.False(t, last.Fresh(at.Add(60*time.Second), 10*time.Second))
	_, in, _, err = b.Look(ctx, "k", "op2")
	require.NoError(t, err)
	assert.False(t, in, "a member that left while the list ran stays gone")

	require.NoError(t, b.Unsee(ctx, "k", "op1"))
	require.NoError(t, b.Unsee(ctx, "k", "op2"), "unseeing a non-member is a no-op")
	members, err := b.Members(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, map[string]poller.Member{"op1": {Handle: "h1"}}, members, "the run time is not a member")

	lead, err := b.Lead(ctx, "k", "run1", time.Minute)
	require.NoError(t, err)
	assert.True(t, lead)
	lead, err = b.Lead(ctx, "k", "run2", time.Minute)
	require.NoError(t, err)
	assert.False(t, lead, "one run at a time")
	lead, err = b.Lead(ctx, "k", "run1", time.Minute)
	require.NoError(t, err)
	assert.True(t, lead, "the same run, retried, leads again")
	require.NoError(t, b.Unlead(ctx, "k", "run2"))
	lead, err = b.Lead(ctx, "k", "run2", time.Minute)
	require.NoError(t, err)
	assert.False(t, lead, "only the leader ends its lead")
	require.NoError(t, b.Unlead(ctx, "k", "run1"))
	lead, err = b.Lead(ctx, "k", "run2", time.Minute)
	require.NoError(t, err)
	assert.True(t, lead)
}

// Members reads a batch far larger than one scan page.
func TestBatcherManyMembers(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	b := poller.NewBatcher(rdb, "ow")
	ctx := t.Context()
	for i := 0; i < 12000; i++ {
		require.NoError(t, b.Add(ctx, "k", fmt.Sprintf("op%d", i), fmt.Sprintf("h%d", i)))
	}
	members, err := b.Members(ctx, "k")
	require.NoError(t, err)
	assert.Len(t, members, 12000)
	assert.Equal(t, "h11999", members["op11999"].Handle)
}

// Saw writes a large list's findings in chunks, all of them.
func TestBatcherSawLarge(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	b := poller.NewBatcher(rdb, "ow")
	ctx := t.Context()
	seen := map[string]poller.Member{}
	for i := 0; i < 2500; i++ {
		id := fmt.Sprintf("op%d", i)
		require.NoError(t, b.Add(ctx, "k", id, "h"))
		seen[id] = poller.Member{Handle: "h", Status: "PENDING"}
	}
	at := time.UnixMilli(1_790_000_000_000)
	require.NoError(t, b.Saw(ctx, "k", seen, poller.Run{At: at}))
	members, err := b.Members(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, seen, members)
	_, _, last, err := b.Look(ctx, "k", "op0")
	require.NoError(t, err)
	assert.True(t, last.At.Equal(at))
}
