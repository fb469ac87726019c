package opstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
)

// recordReads counts the commands that read or write an operation's hash,
// including those sent in pipelines: the cost of a listing grows with it.
type recordReads struct{ n atomic.Int64 }

func (h *recordReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *recordReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *recordReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

func (h *recordReads) count(cmd redis.Cmder) {
	if args := cmd.Args(); len(args) > 1 {
		if k, ok := args[1].(string); ok && strings.Contains(k, ":{ops}:op:") {
			h.n.Add(1)
		}
	}
}

// model is what a listing should return: every live record, by creation
// time (then id) newest first.
type model struct {
	order []string // creation order
	ops   map[string]*opstore.Operation
	gone  map[string]bool
}

func (m *model) want(f opstore.Filter) []string {
	out := []string{}
	for _, id := range slices.Backward(m.order) {
		op := m.ops[id]
		if m.gone[id] || (f.State != "" && op.State != f.State) || (f.Kind != "" && op.Kind != f.Kind) || (f.Provider != "" && op.Provider != f.Provider) {
			continue
		}
		out = append(out, id)
	}
	return out
}

// collect follows next cursors to the end, checking each page's size.
func collect(t *testing.T, s *opstore.Store, f opstore.Filter) []string {
	t.Helper()
	out := []string{}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "cursors must end")
		ops, next, err := s.ListPage(t.Context(), f)
		require.NoError(t, err)
		require.LessOrEqual(t, len(ops), f.Limit)
		for _, op := range ops {
			out = append(out, op.ID)
		}
		if next == "" {
			return out
		}
		f.After = next
	}
}

// checkAllFilters lists with every combination of filters and page sizes
// and compares with the model.
func checkAllFilters(t *testing.T, s *opstore.Store, m *model) {
	t.Helper()
	for _, st := range []opstore.State{"", opstore.StateQueued, opstore.StateRunning, opstore.StateFailed, opstore.StateSucceeded} {
		for _, kind := range []string{"", "cdn:purge", "server:install", "no:such"} {
			for _, prov := range []string{"", "ucdn", "leaseweb"} {
				for _, limit := range []int{1, 3, 100} {
					f := opstore.Filter{State: st, Kind: kind, Provider: prov, Limit: limit}
					assert.Equal(t, m.want(f), collect(t, s, f), "%+v", f)
				}
			}
		}
	}
}

// Filtered listing returns exactly the matching records, newest first,
// across pages, for each filter and each combination, after state changes
// and after records expire.
func TestListFilterDimensions(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		ctx := t.Context()
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s := opstore.New(rdb, "t", time.Hour).WithClock(func() time.Time { return clock })
		m := &model{ops: map[string]*opstore.Operation{}, gone: map[string]bool{}}
		kinds := []string{"cdn:purge", "server:install", "instance:snapshot"}
		for i := range 40 {
			if i%4 == 0 { // groups of four records in the same millisecond
				clock = clock.Add(time.Millisecond)
			}
			op := newOp(fmt.Sprintf("op%02d", i), "")
			op.Kind, op.Provider = kinds[i%3], []string{"ucdn", "leaseweb"}[i%2]
			_, _, err := s.Create(ctx, op)
			require.NoError(t, err)
			m.order = append(m.order, op.ID)
			m.ops[op.ID] = op
		}
		checkAllFilters(t, s, m)

		move := func(id string, to ...opstore.State) {
			for _, st := range to {
				_, err := s.Update(ctx, m.ops[id], opstore.Change{To: st})
				require.NoError(t, err)
				m.ops[id].State = st
			}
		}
		for i, id := range m.order {
			switch i % 5 {
			case 0:
				move(id, opstore.StateFailed)
			case 1:
				move(id, opstore.StateLaunching, opstore.StateRunning)
			case 2:
				move(id, opstore.StateLaunching, opstore.StateRunning, opstore.StateSucceeded)
			}
		}
		checkAllFilters(t, s, m)

		// A poll that changes no state keeps the record where it is.
		seq := 3
		_, err := s.Update(ctx, m.ops[m.order[1]], opstore.Change{SetPollSeq: &seq})
		require.NoError(t, err)
		checkAllFilters(t, s, m)

		// Records expire: they leave every listing, and their entries leave
		// every index as listings come across them.
		for _, i := range []int{0, 2, 3, 7, 11, 39} {
			id := m.order[i]
			require.NoError(t, rdb.Del(ctx, "t:{ops}:op:"+id).Err())
			m.gone[id] = true
		}
		checkAllFilters(t, s, m)
		keys, err := rdb.Keys(ctx, "t:{ops}:index*").Result()
		require.NoError(t, err)
		for _, k := range keys {
			if typ := rdb.Type(ctx, k).Val(); typ != "zset" {
				continue
			}
			for id := range m.gone {
				assert.Equal(t, redis.Nil, rdb.ZScore(ctx, k, id).Err(), "%s still holds expired %s", k, id)
			}
		}
	})
}

// A filtered page costs in proportion to the page, not to the store: with
// thousands of records that do not match, a page reads a bounded number of
// records.
func TestListFilteredCostIsBounded(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		ctx := t.Context()
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s := opstore.New(rdb, "t", time.Hour).WithClock(func() time.Time { clock = clock.Add(time.Millisecond); return clock })
		create := func(id, kind string, st opstore.State) {
			op := newOp(id, "")
			op.Kind, op.State = kind, st
			_, _, err := s.Create(ctx, op)
			require.NoError(t, err)
		}
		// The matches are the oldest records: a scan from the newest end
		// has to pass every other record to reach them.
		var wantRare, wantSparse []string
		for i := range 5 {
			create(fmt.Sprintf("rare%d", i), "rare", opstore.StateSucceeded)
			create(fmt.Sprintf("sparse%d", i), "bulk", opstore.StateQueued)
			wantRare = append([]string{fmt.Sprintf("rare%d", i)}, wantRare...)
			wantSparse = append([]string{fmt.Sprintf("sparse%d", i)}, wantSparse...)
		}
		for i := range 1500 {
			create(fmt.Sprintf("bulk%04d", i), "bulk", opstore.StateFailed)
			create(fmt.Sprintf("other%04d", i), "other", opstore.StateQueued)
		}
		reads := &recordReads{}
		rdb.AddHook(reads)

		for _, f := range []opstore.Filter{{Kind: "rare"}, {State: opstore.StateSucceeded}, {Kind: "rare", State: opstore.StateSucceeded, Provider: "ucdn"}} {
			f.Limit = 10
			reads.n.Store(0)
			ops, next, err := s.ListPage(ctx, f)
			require.NoError(t, err)
			ids := []string{}
			for _, op := range ops {
				ids = append(ids, op.ID)
			}
			assert.Equal(t, wantRare, ids, "%+v", f)
			assert.Empty(t, next)
			assert.LessOrEqual(t, reads.n.Load(), int64(2*len(wantRare)), "%+v: records read", f)
		}

		// Two large sets with a small intersection at their far end: each
		// page examines a bounded number of entries, possibly returning
		// fewer than the limit (even none) with a cursor to go on.
		f := opstore.Filter{Kind: "bulk", State: opstore.StateQueued, Limit: 10}
		var got []string
		short := false
		for pages := 0; ; pages++ {
			require.Less(t, pages, 20)
			reads.n.Store(0)
			ops, next, err := s.ListPage(ctx, f)
			require.NoError(t, err)
			assert.LessOrEqual(t, reads.n.Load(), int64(opstore.ListExamineLimit+f.Limit+1), "records read for one page")
			for _, op := range ops {
				got = append(got, op.ID)
			}
			if next == "" {
				break
			}
			short = short || len(ops) < f.Limit
			f.After = next
		}
		assert.Equal(t, wantSparse, got)
		assert.True(t, short, "a page stopped at the bound returns a cursor with a short page")

		// List (the CLI's call) follows those cursors to fill its limit.
		all, err := s.List(ctx, opstore.Filter{Kind: "bulk", State: opstore.StateQueued, Limit: 10})
		require.NoError(t, err)
		assert.Len(t, all, 5)
	})
}

// Records stored before the per-filter indexes existed are listed
// correctly (by scanning the main index, bounded per page) until index
// pruning builds the indexes; then filtered pages read the indexes.
func TestListBeforeIndexesAreBuilt(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		ctx := t.Context()
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s := opstore.New(rdb, "t", time.Hour).WithClock(func() time.Time { clock = clock.Add(time.Millisecond); return clock })
		m := &model{ops: map[string]*opstore.Operation{}, gone: map[string]bool{}}
		add := func(id, kind string, st opstore.State) {
			op := newOp(id, "")
			op.Kind, op.State = kind, st
			_, _, err := s.Create(ctx, op)
			require.NoError(t, err)
			m.order = append(m.order, id)
			m.ops[id] = op
		}
		for i := range 30 {
			add(fmt.Sprintf("old%02d", i), []string{"cdn:purge", "server:install"}[i%2], []opstore.State{opstore.StateQueued, opstore.StateFailed, opstore.StateRunning}[i%3])
		}
		// As the records of an earlier version: only the main index.
		keys, err := rdb.Keys(ctx, "t:{ops}:index:*").Result()
		require.NoError(t, err)
		require.NotEmpty(t, keys)
		require.NoError(t, rdb.Del(ctx, keys...).Err())

		add("new00", "server:install", opstore.StateQueued)
		checkAllFilters(t, s, m)
		// A state change before the indexes are built.
		_, err = s.Update(ctx, m.ops["old05"], opstore.Change{To: opstore.StateSucceeded})
		require.NoError(t, err)
		m.ops["old05"].State = opstore.StateSucceeded
		checkAllFilters(t, s, m)

		_, err = s.PruneIndex(ctx)
		require.NoError(t, err)
		checkAllFilters(t, s, m)

		for i := range 100 {
			add(fmt.Sprintf("late%03d", i), "cdn:purge", opstore.StateQueued)
		}
		reads := &recordReads{}
		rdb.AddHook(reads)
		ops, _, err := s.ListPage(ctx, opstore.Filter{Kind: "server:install", State: opstore.StateSucceeded, Limit: 10})
		require.NoError(t, err)
		require.Len(t, ops, 1)
		assert.Equal(t, "old05", ops[0].ID)
		assert.LessOrEqual(t, reads.n.Load(), int64(40), "the indexes are used once built")
		checkAllFilters(t, s, m)
	})
}

func TestListRejectsBadCursor(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		s := opstore.New(rdb, "t", time.Hour)
		_, _, err := s.Create(t.Context(), newOp("a", ""))
		require.NoError(t, err)
		for _, c := range []string{"-1", "-1:abc", "-5:a", "abc:x", "5:", ":x", "1.5:x", "+5:x", "99999999999999999999:x", "0x10:a"} {
			_, _, err := s.ListPage(t.Context(), opstore.Filter{After: c})
			assert.ErrorIs(t, err, opstore.ErrBadCursor, c)
			_, _, err = s.ListPage(t.Context(), opstore.Filter{After: c, Kind: "cdn:purge"})
			assert.ErrorIs(t, err, opstore.ErrBadCursor, c)
		}
	})
}
