package opstore_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/ops"
)

// searchModel is what a search should return: the live records that match
// every given dimension, newest first.
func searchWant(all []*opstore.Operation, gone map[string]bool, f opstore.Filter) []string {
	out := []string{}
	for _, op := range slices.Backward(all) {
		if gone[op.ID] || (f.State != "" && op.State != f.State) || (f.Kind != "" && op.Kind != f.Kind) {
			continue
		}
		if f.Resource != "" && op.Resource != f.Resource {
			continue
		}
		if f.Actor != "" && (op.SubmittedBy == nil || op.SubmittedBy.Name != f.Actor) {
			continue
		}
		match := true
		for k, v := range f.Labels {
			if op.Labels[k] != v {
				match = false
			}
		}
		if !match || (!f.Since.IsZero() && op.CreatedAt.Before(f.Since)) || (!f.Until.IsZero() && op.CreatedAt.After(f.Until)) {
			continue
		}
		out = append(out, op.ID)
	}
	return out
}

// Search by label, resource, submitter and time, alone and combined with
// state and kind, returns exactly the matching records across pages;
// once records expire, their entries leave the search indexes too.
func TestSearchByLabelResourceActorAndTime(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, _ func(string) time.Duration) {
		ctx := t.Context()
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := start
		s := opstore.New(rdb, "srch", time.Hour).WithClock(func() time.Time { clock = clock.Add(time.Second); return clock })
		var all []*opstore.Operation
		for i := range 60 {
			op := newOp(fmt.Sprintf("op%02d", i), "")
			op.Kind = []string{"cdn:purge", "server:install"}[i%2]
			op.Resource = fmt.Sprintf("leaseweb:server:%d", i%5)
			op.SubmittedBy = &ops.Actor{Name: []string{"ci", "alice", "nightly"}[i%3], Via: ops.ViaAPI}
			op.Labels = map[string]string{"change": fmt.Sprintf("CHG-%d", i%4)}
			if i%6 == 0 {
				op.Labels["release"] = "2026.12.1"
			}
			if i%7 == 0 {
				op.State = opstore.StateFailed
			}
			_, _, err := s.Create(ctx, op)
			require.NoError(t, err)
			all = append(all, op)
		}
		gone := map[string]bool{}
		filters := []opstore.Filter{
			{Labels: map[string]string{"change": "CHG-1"}},
			{Labels: map[string]string{"change": "CHG-0", "release": "2026.12.1"}},
			{Labels: map[string]string{"change": "CHG-9"}},
			{Resource: "leaseweb:server:3"},
			{Actor: "alice"},
			{Actor: "alice", Kind: "server:install"},
			{Resource: "leaseweb:server:0", State: opstore.StateFailed},
			{Since: start.Add(20 * time.Second), Until: start.Add(40 * time.Second)},
			{Labels: map[string]string{"change": "CHG-2"}, Since: start.Add(30 * time.Second)},
			{Actor: "ci", Until: start.Add(10 * time.Second)},
		}
		check := func() {
			for _, f := range filters {
				for _, limit := range []int{1, 4, 100} {
					f.Limit = limit
					assert.Equal(t, searchWant(all, gone, f), collect(t, s, f), "%+v", f)
				}
			}
		}
		check()
		// A page costs its size: a label's index holds only matches.
		reads := &recordReads{}
		rdb.AddHook(reads)
		page, _, err := s.ListPage(ctx, opstore.Filter{Labels: map[string]string{"change": "CHG-1"}, Limit: 3})
		require.NoError(t, err)
		require.Len(t, page, 3)
		assert.LessOrEqual(t, reads.n.Load(), int64(4), "records read for a page of 3")

		// Records expire: their entries leave the search indexes when the
		// index is pruned (or a listing meets them).
		for _, op := range all[:20] {
			require.NoError(t, rdb.Del(ctx, "srch:{ops}:op:"+op.ID).Err())
			gone[op.ID] = true
		}
		check()
		clock = clock.Add(2 * time.Hour)
		_, err = s.PruneIndex(ctx)
		require.NoError(t, err)
		check()
		n, err := rdb.ZCard(ctx, "srch:{ops}:index:label:change=CHG-1").Result()
		require.NoError(t, err)
		assert.Equal(t, int64(10), n, "15 records had CHG-1; the 5 gone are pruned")
	})
}
