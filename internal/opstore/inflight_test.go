package opstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/testutil"
)

// inFlightBackends runs fn on miniredis, which has no ZINTERCARD (the
// script's Redis 6.2 path), and on real Redis when available (Redis 7.0
// and later: ZINTERCARD).
func inFlightBackends(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient, prefix string)) {
	t.Run("Miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		fn(t, rdb, "t")
	})
	t.Run("Redis", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: testutil.RedisAddr(t), DB: testutil.DBInFlight})
		prefix := "inflight-test-" + rand.Text()
		t.Cleanup(func() {
			ctx := context.Background()
			iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
			for iter.Next(ctx) {
				rdb.Del(ctx, iter.Val())
			}
			rdb.Close()
		})
		fn(t, rdb, prefix)
	})
}

func TestInFlightCountsAndOldestRunning(t *testing.T) {
	inFlightBackends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := t.Context()
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		clock := t0
		s := opstore.New(rdb, prefix, time.Hour).WithClock(func() time.Time { return clock })
		n := 0
		// add creates an operation of kind at t0+at and takes it through
		// the states given (the first is its state at creation).
		add := func(kind string, at time.Duration, states ...opstore.State) {
			n++
			clock = t0.Add(at)
			op := newOp(fmt.Sprintf("op%04d", n), "")
			op.Kind, op.State = kind, states[0]
			_, created, err := s.Create(ctx, op)
			require.NoError(t, err)
			require.True(t, created)
			for _, st := range states[1:] {
				op, err = s.Update(ctx, op, opstore.Change{To: st})
				require.NoError(t, err)
			}
		}
		q, pa, l, r := opstore.StateQueued, opstore.StatePendingApproval, opstore.StateLaunching, opstore.StateRunning
		// More than two chunks of the script's walks: older running
		// operations of another kind, and older ended purges.
		for i := range 600 {
			add("bulk:kind", time.Duration(i)*time.Millisecond, q, l, r)
			add("cdn:purge", time.Duration(i)*time.Millisecond, q, l, r, opstore.StateSucceeded)
		}
		add("server:install", 1*time.Minute, q, l, r)
		add("cdn:purge", 2*time.Minute, q, l, r) // the oldest purge running
		add("cdn:purge", 3*time.Minute, r)
		add("cdn:purge", 4*time.Minute, q)
		add("cdn:purge", 5*time.Minute, pa)
		add("cdn:purge", 6*time.Minute, q, l)
		add("cdn:purge", 7*time.Minute, q, l, r, opstore.StateFailed)
		add("server:install", 8*time.Minute, pa, q)
		add("server:install", 9*time.Minute, q, opstore.StateCanceled)

		got, err := s.InFlight(ctx, []string{"cdn:purge", "server:install", "snapshot:none", "bulk:kind"})
		require.NoError(t, err)
		require.Len(t, got, 4)

		assert.Equal(t, "cdn:purge", got[0].Kind)
		assert.Equal(t, map[opstore.State]int{r: 2, q: 1, pa: 1, l: 1}, got[0].ByState)
		assert.Equal(t, 5, got[0].Total())
		assert.Equal(t, t0.Add(2*time.Minute), got[0].OldestRunning)

		assert.Equal(t, map[opstore.State]int{r: 1, q: 1, pa: 0, l: 0}, got[1].ByState)
		assert.Equal(t, t0.Add(time.Minute), got[1].OldestRunning)

		assert.Equal(t, "snapshot:none", got[2].Kind)
		assert.Equal(t, 0, got[2].Total())
		assert.True(t, got[2].OldestRunning.IsZero(), "none running")

		assert.Equal(t, 600, got[3].ByState[r])
		assert.Equal(t, t0, got[3].OldestRunning)

		// The oldest purge ends: the next one is the oldest.
		clock = t0.Add(time.Hour)
		_, err = s.Update(ctx, &opstore.Operation{ID: "op1202"}, opstore.Change{To: opstore.StateSucceeded})
		require.NoError(t, err)
		got, err = s.InFlight(ctx, []string{"cdn:purge"})
		require.NoError(t, err)
		assert.Equal(t, 1, got[0].ByState[r])
		assert.Equal(t, t0.Add(3*time.Minute), got[0].OldestRunning)
	})
}

// Counts are refused while the indexes may miss records of an earlier
// version; an empty store has nothing to miss.
func TestInFlightNeedsBuiltIndexes(t *testing.T) {
	inFlightBackends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := t.Context()
		s := opstore.New(rdb, prefix, time.Hour)
		got, err := s.InFlight(ctx, []string{"cdn:purge"})
		require.NoError(t, err)
		assert.Equal(t, 0, got[0].Total())

		op := newOp("a", "")
		op.State = opstore.StateRunning
		_, _, err = s.Create(ctx, op)
		require.NoError(t, err)
		require.NoError(t, rdb.Del(ctx, prefix+":{ops}:index:built").Err())
		_, err = s.InFlight(ctx, []string{"cdn:purge"})
		require.ErrorIs(t, err, opstore.ErrIndexNotBuilt)

		_, err = s.PruneIndex(ctx)
		require.NoError(t, err)
		got, err = s.InFlight(ctx, []string{"cdn:purge"})
		require.NoError(t, err)
		assert.Equal(t, 1, got[0].ByState[opstore.StateRunning])
	})
}

// The script is loaded again after Redis forgot it, and a Redis that
// does not answer is an error.
func TestInFlightScriptFlushAndRedisDown(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	s := opstore.New(rdb, "t", time.Hour)
	ctx := t.Context()
	_, _, err := s.Create(ctx, newOp("a", ""))
	require.NoError(t, err)
	for range 2 {
		got, err := s.InFlight(ctx, []string{"cdn:purge"})
		require.NoError(t, err)
		assert.Equal(t, 1, got[0].ByState[opstore.StateQueued])
		require.NoError(t, rdb.ScriptFlush(ctx).Err())
	}
	mr.Close()
	_, err = s.InFlight(ctx, []string{"cdn:purge"})
	require.Error(t, err)
}
