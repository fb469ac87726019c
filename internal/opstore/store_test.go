package opstore_test

import (
	"context"
	"encoding/json"
	"errors"
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

// backends runs fn on miniredis and, when available, on real Redis: the Lua
// scripts must behave the same on both.
func backends(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient, ttl func(key string) time.Duration)) {
	t.Run("Miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		fn(t, rdb, func(k string) time.Duration { return mr.TTL(k) })
	})
	t.Run("Redis", func(t *testing.T) {
		rdb := testutil.Redis(t, testutil.DBStore)
		fn(t, rdb, func(k string) time.Duration {
			d := rdb.PTTL(context.Background(), k).Val()
			if d < 0 { // -1: no TTL, -2: no key
				return 0
			}
			return d
		})
	})
}

func newOp(id, key string) *opstore.Operation {
	return &opstore.Operation{ID: id, Kind: "cdn:purge", Provider: "ucdn", Account: "default",
		Params: []byte(`{"zone_name":"z"}`), IdempotencyKey: key, Fingerprint: "fp-" + key}
}

func TestCreateAndIdempotency(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		ctx := t.Context()
		s := opstore.New(rdb, "t", time.Hour)
		op, created, err := s.Create(ctx, newOp("a", "k1"))
		require.NoError(t, err)
		assert.True(t, created)
		assert.Equal(t, opstore.StateQueued, op.State)

		// Same key, same request: the first operation, not created.
		again, created, err := s.Create(ctx, newOp("b", "k1"))
		require.NoError(t, err)
		assert.False(t, created)
		assert.Equal(t, "a", again.ID)
		_, err = s.Get(ctx, "b")
		assert.ErrorIs(t, err, opstore.ErrNotFound)

		// Same key, another request: conflict, naming the first.
		other := newOp("c", "k1")
		other.Fingerprint = "different"
		got, _, err := s.Create(ctx, other)
		assert.ErrorIs(t, err, opstore.ErrIdempotencyConflict)
		assert.Equal(t, "a", got.ID)

		// No key: always a new record; the same id twice is not.
		_, created, err = s.Create(ctx, newOp("d", ""))
		require.NoError(t, err)
		assert.True(t, created)
		_, created, err = s.Create(ctx, newOp("d", ""))
		require.NoError(t, err)
		assert.False(t, created)

		loaded, err := s.Get(ctx, "a")
		require.NoError(t, err)
		assert.JSONEq(t, `{"zone_name":"z"}`, string(loaded.Params))
		assert.Equal(t, "k1", loaded.IdempotencyKey)
	})
}

func TestUpdateCompareAndSet(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, ttl func(string) time.Duration) {
		ctx := t.Context()
		s := opstore.New(rdb, "t", time.Hour)
		op, _, err := s.Create(ctx, newOp("a", "k"))
		require.NoError(t, err)

		op, err = s.Update(ctx, op, opstore.Change{From: []opstore.State{opstore.StateQueued}, To: opstore.StateLaunching, IncrAttempts: 1})
		require.NoError(t, err)
		assert.Equal(t, opstore.StateLaunching, op.State)
		assert.Equal(t, 1, op.Attempts)

		// Wrong from-state: conflict, nothing changes.
		_, err = s.Update(ctx, op, opstore.Change{From: []opstore.State{opstore.StateQueued}, To: opstore.StateRunning})
		var ce *opstore.ConflictError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, opstore.StateLaunching, ce.State)

		h, seq, now := "job-1", 1, time.Now()
		op, err = s.Update(ctx, op, opstore.Change{From: []opstore.State{opstore.StateLaunching}, To: opstore.StateRunning, Handle: &h, SetPollSeq: &seq, LaunchedAt: &now, DeadlineAt: &now})
		require.NoError(t, err)
		assert.Equal(t, "job-1", op.Handle)
		assert.Equal(t, 1, op.PollSeq)
		require.NotNil(t, op.LaunchedAt)

		// Poll fence: only poll_seq 1 may advance it.
		two := 2
		_, err = s.Update(ctx, op, opstore.Change{PollSeq: 5, SetPollSeq: &two})
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, 1, ce.PollSeq)
		op, err = s.Update(ctx, op, opstore.Change{PollSeq: 1, SetPollSeq: &two, IncrPolls: 1})
		require.NoError(t, err)
		assert.Equal(t, 2, op.PollSeq)
		assert.Equal(t, 1, op.Polls)

		assert.Zero(t, ttl("t:{ops}:op:a"), "a live record never expires")
		op, err = s.Update(ctx, op, opstore.Change{To: opstore.StateSucceeded, Result: []byte(`{"ok":true}`)})
		require.NoError(t, err)
		assert.Equal(t, opstore.StateSucceeded, op.State)
		require.NotNil(t, op.FinishedAt)
		assert.JSONEq(t, `{"ok":true}`, string(op.Result))
		assert.InDelta(t, float64(time.Hour), float64(ttl("t:{ops}:op:a")), float64(time.Minute), "finished records expire after retention")
		assert.InDelta(t, float64(time.Hour), float64(ttl("t:{ops}:idem:k")), float64(time.Minute), "and so does their idempotency key")

		// Terminal is final: an empty From (any non-terminal state) refuses.
		_, err = s.Update(ctx, op, opstore.Change{To: opstore.StateFailed})
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, opstore.StateSucceeded, ce.State)

		_, err = s.Update(ctx, &opstore.Operation{ID: "nope"}, opstore.Change{To: opstore.StateFailed})
		assert.ErrorIs(t, err, opstore.ErrNotFound)
	})
}

func TestListFiltersAndPrunesExpired(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		ctx := t.Context()
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s := opstore.New(rdb, "t", time.Hour).WithClock(func() time.Time { clock = clock.Add(time.Millisecond); return clock })
		for i := 0; i < 5; i++ {
			op := newOp(fmt.Sprint("op", i), "")
			if i%2 == 1 {
				op.Kind = "cdn:other"
			}
			_, _, err := s.Create(ctx, op)
			require.NoError(t, err)
		}
		all, err := s.List(ctx, opstore.Filter{Limit: 10})
		require.NoError(t, err)
		require.Len(t, all, 5)
		assert.Equal(t, "op4", all[0].ID, "newest first")

		purges, err := s.List(ctx, opstore.Filter{Kind: "cdn:purge", Limit: 10})
		require.NoError(t, err)
		assert.Len(t, purges, 3)

		two, err := s.List(ctx, opstore.Filter{Limit: 2})
		require.NoError(t, err)
		assert.Len(t, two, 2)

		op0, _ := s.Get(ctx, "op0")
		_, err = s.Update(ctx, op0, opstore.Change{To: opstore.StateFailed})
		require.NoError(t, err)
		failed, err := s.List(ctx, opstore.Filter{State: opstore.StateFailed})
		require.NoError(t, err)
		require.Len(t, failed, 1)
		assert.Equal(t, "op0", failed[0].ID)

		require.NoError(t, rdb.Del(ctx, "t:{ops}:op:op2").Err()) // as if expired
		all, err = s.List(ctx, opstore.Filter{Limit: 10})
		require.NoError(t, err)
		assert.Len(t, all, 4)
		assert.Equal(t, int64(4), rdb.ZCard(ctx, "t:{ops}:index").Val(), "expired entry pruned from the index")
	})
}

func TestDeleteRemovesRecordAndKey(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		ctx := t.Context()
		s := opstore.New(rdb, "t", time.Hour)
		op, _, err := s.Create(ctx, newOp("a", "k"))
		require.NoError(t, err)
		require.NoError(t, s.Delete(ctx, op))
		_, err = s.Get(ctx, "a")
		assert.True(t, errors.Is(err, opstore.ErrNotFound))
		for _, k := range []string{"t:{ops}:index", "t:{ops}:index:kind:cdn:purge", "t:{ops}:index:provider:ucdn", "t:{ops}:index:state:queued"} {
			assert.Equal(t, redis.Nil, rdb.ZScore(ctx, k, "a").Err(), "%s holds no entry for the deleted record", k)
		}
		_, created, err := s.Create(ctx, newOp("b", "k"))
		require.NoError(t, err)
		assert.True(t, created, "the key is free again")
	})
}

func TestListPagesWithCursor(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		ctx := t.Context()
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s := opstore.New(rdb, "t", time.Hour).WithClock(func() time.Time { return clock }) // all in one millisecond
		for i := 0; i < 7; i++ {
			op := newOp(fmt.Sprintf("op%d", i), "")
			if i%2 == 0 {
				op.Provider = "edgio"
			}
			_, _, err := s.Create(ctx, op)
			require.NoError(t, err)
		}
		var seen []string
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			ops, next, err := s.ListPage(ctx, opstore.Filter{Limit: 3, After: cursor})
			require.NoError(t, err)
			for _, op := range ops {
				seen = append(seen, op.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		assert.Equal(t, []string{"op6", "op5", "op4", "op3", "op2", "op1", "op0"}, seen, "every record once, newest first")
		edgio, _, err := s.ListPage(ctx, opstore.Filter{Provider: "edgio", Limit: 10})
		require.NoError(t, err)
		assert.Len(t, edgio, 4)
		_, _, err = s.ListPage(ctx, opstore.Filter{After: "garbage"})
		assert.ErrorIs(t, err, opstore.ErrBadCursor)
	})
}

func TestCallbackOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"":                                    "",
		"https://hooks.example.com/x?token=s": "https://hooks.example.com",
		"http://u:p@10.0.0.1:8080/cb#frag":    "http://10.0.0.1:8080",
		"https://hooks.example.com":           "https://hooks.example.com",
		"::not a url":                         "REDACTED",
		"hooks.example.com/path-with-token-in-it": "REDACTED",
	} {
		assert.Equal(t, want, opstore.CallbackOrigin(in), in)
	}
}

// A record shown as JSON never carries secret params or the callback's
// path, query or user info; the stored record keeps them.
func TestOperationMarshalJSONRedacts(t *testing.T) {
	op := opstore.Operation{ID: "x", CallbackURL: "https://u:pw@hooks.example.com/t0k?token=abc",
		Params:       json.RawMessage(`{"server_id":"1","password":"pw1","ssh_keys":["k"]}`),
		SecretParams: []string{"password", "ssh_keys", "post_install_script"}}
	b, err := json.Marshal(op)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, "https://hooks.example.com", got["callback_url"])
	assert.Equal(t, map[string]any{"server_id": "1", "password": "REDACTED", "ssh_keys": "REDACTED"}, got["params"])
	assert.Equal(t, "https://u:pw@hooks.example.com/t0k?token=abc", op.CallbackURL, "the record itself is untouched")
}

// The secret keys are stored with the record; every final state removes
// their values, whatever path leads there. A record written before the
// keys were stored shows no params at all.
func TestSecretParamsStoredAndRemovedAtTheEnd(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		ctx := t.Context()
		s := opstore.New(rdb, "t", time.Hour)
		op, _, err := s.Create(ctx, &opstore.Operation{ID: "sec", Kind: "server:install", Provider: "leaseweb",
			Params: json.RawMessage(`{"server_id":"1","password":"pw-Secret1"}`), SecretParams: []string{"password"}})
		require.NoError(t, err)
		got, err := s.Get(ctx, op.ID)
		require.NoError(t, err)
		assert.Equal(t, []string{"password"}, got.SecretParams)
		b, _ := json.Marshal(got)
		assert.NotContains(t, string(b), "pw-Secret1")

		_, err = s.Update(ctx, got, opstore.Change{To: opstore.StateFailed})
		require.NoError(t, err)
		raw, err := rdb.HGet(ctx, "t:{ops}:op:sec", "params").Result()
		require.NoError(t, err)
		assert.JSONEq(t, `{"server_id":"1","password":"REMOVED"}`, raw)

		require.NoError(t, rdb.HSet(ctx, "t:{ops}:op:legacy", "id", "legacy", "kind", "server:install", "state", "queued",
			"created_at", time.Now().UTC().Format(time.RFC3339Nano), "params", `{"password":"pw-Secret2"}`).Err())
		legacy, err := s.Get(ctx, "legacy")
		require.NoError(t, err)
		b, _ = json.Marshal(legacy)
		assert.NotContains(t, string(b), "pw-Secret2")
		assert.Contains(t, string(b), `"params":"REDACTED"`)
	})
}

func TestPruneIndexRemovesOnlyExpiredEntries(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		ctx := t.Context()
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s := opstore.New(rdb, "t", time.Hour).WithClock(func() time.Time { return clock })
		// 1,200 old operations (more than one page): every third still
		// running, the others expired.
		for i := 0; i < 1200; i++ {
			_, _, err := s.Create(ctx, newOp(fmt.Sprintf("old%04d", i), ""))
			require.NoError(t, err)
			if i%3 != 0 {
				require.NoError(t, rdb.Del(ctx, fmt.Sprintf("t:{ops}:op:old%04d", i)).Err())
			}
		}
		// An entry left in a per-filter index only (removed from the main
		// index by an earlier version) is pruned too.
		require.NoError(t, rdb.ZRem(ctx, "t:{ops}:index", "old0002").Err())
		clock = clock.Add(2 * time.Hour)
		// A young entry whose record is gone (deleted by hand) is not
		// looked at: records cannot expire that young.
		_, _, err := s.Create(ctx, newOp("young", ""))
		require.NoError(t, err)
		require.NoError(t, rdb.Del(ctx, "t:{ops}:op:young").Err())

		n, err := s.PruneIndex(ctx)
		require.NoError(t, err)
		assert.Equal(t, 800, n)
		assert.Equal(t, int64(401), rdb.ZCard(ctx, "t:{ops}:index").Val(), "400 running + the young entry")
		assert.Equal(t, float64(0), rdb.ZScore(ctx, "t:{ops}:index", "old0001").Val())
		assert.NotZero(t, rdb.ZScore(ctx, "t:{ops}:index", "old0000").Val(), "a running operation keeps its entry")
		for _, k := range []string{"t:{ops}:index:kind:cdn:purge", "t:{ops}:index:provider:ucdn", "t:{ops}:index:state:queued"} {
			assert.Equal(t, int64(401), rdb.ZCard(ctx, k).Val(), "%s pruned too", k)
			assert.Equal(t, redis.Nil, rdb.ZScore(ctx, k, "old0002").Err(), k)
		}

		n, err = s.PruneIndex(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "nothing left to prune")
	})
}

// An idempotency key names one operation per scope: the same key in
// another scope (another API token, or the unscoped CLI) is another
// operation, and each expires with its record.
func TestIdempotencyKeysAreScoped(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, ttl func(string) time.Duration) {
		ctx := t.Context()
		s := opstore.New(rdb, "t", time.Hour)
		mk := func(id, scope string) (*opstore.Operation, bool) {
			op, created, err := s.Create(ctx, &opstore.Operation{ID: id, Kind: "cdn:purge", Provider: "ucdn", IdempotencyKey: "k1", IdempotencyScope: scope, Fingerprint: id})
			if !created {
				require.ErrorIs(t, err, opstore.ErrIdempotencyConflict)
			} else {
				require.NoError(t, err)
			}
			return op, created
		}
		_, c1 := mk("a", "")
		_, c2 := mk("b", "token:ci")
		_, c3 := mk("c", "token:other")
		op4, c4 := mk("d", "token:ci")
		assert.True(t, c1 && c2 && c3, "three scopes, three operations")
		assert.False(t, c4)
		assert.Equal(t, "b", op4.ID, "the same scope finds its own")
		got, err := s.Get(ctx, "b")
		require.NoError(t, err)
		assert.Equal(t, "token:ci", got.IdempotencyScope)
		_, err = s.Update(ctx, got, opstore.Change{To: opstore.StateSucceeded})
		require.NoError(t, err)
		assert.Positive(t, ttl("t:{ops}:idem@token:ci/k1"), "the scoped key expires with its record")
	})
}
