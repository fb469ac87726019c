package opstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Listing indexes. Next to the main time index (index), the store keeps one
// sorted set per value of each filter dimension, with the same members (ids)
// and scores (created_at in ms):
//
//	index:kind:<kind>  index:provider:<provider>  index:state:<state>
//
// Create adds a record to its three sets in the same script that adds it to
// the main index; a state change moves it between state sets in the same
// script that changes the state. index:sets names the kind and provider
// sets, so that the entries of an expired record can be removed from all of
// them. index:built is set once the per-dimension sets cover every record
// of the main index: by Create on an empty store, or by PruneIndex, which
// builds them for records stored by an earlier version. Until then a
// filtered listing reads the main index and checks each record.

// ListExamineLimit bounds the index entries one ListPage call examines
// (limit+1 when the page's limit is larger). A filter on one dimension reads
// that dimension's index, where every entry matches, so the bound is only
// reached by filters that combine dimensions with few records in common:
// the page then comes back short (possibly empty) with a cursor to go on.
const ListExamineLimit = 1000

// listFollowPages bounds the pages ListUpTo reads to fill its limit.
const listFollowPages = 100

func (s *Store) kindIndexKey(kind string) string  { return s.indexKey() + ":kind:" + kind }
func (s *Store) providerIndexKey(p string) string { return s.indexKey() + ":provider:" + p }
func (s *Store) stateIndexKey(st State) string    { return s.indexKey() + ":state:" + string(st) }
func (s *Store) indexSetsKey() string             { return s.indexKey() + ":sets" }
func (s *Store) labelIndexKey(k, v string) string { return s.indexKey() + ":label:" + k + "=" + v }
func (s *Store) resourceIndexKey(r string) string { return s.indexKey() + ":resource:" + r }
func (s *Store) actorIndexKey(name string) string { return s.indexKey() + ":actor:" + name }

// searchOfKey names the set of a record's search indexes (labels,
// resource, submitter): there can be one per label value, too many to
// list in index:sets, so each record lists its own.
func (s *Store) searchOfKey(id string) string { return s.indexKey() + ":of:" + id }

// searchKeysOf are op's indexes of the dimensions that records of
// earlier versions do not have: labels, resource and submitter.
func (s *Store) searchKeysOf(op *Operation) []string {
	var out []string
	for k, v := range op.Labels {
		out = append(out, s.labelIndexKey(k, v))
	}
	if op.Resource != "" {
		out = append(out, s.resourceIndexKey(op.Resource))
	}
	if op.SubmittedBy != nil && op.SubmittedBy.Name != "" {
		out = append(out, s.actorIndexKey(op.SubmittedBy.Name))
	}
	return out
}

// searchDims are the indexes f's label, resource and actor filters read.
func (s *Store) searchDims(f Filter) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(f.Labels)) {
		out = append(out, s.labelIndexKey(k, f.Labels[k]))
	}
	if f.Resource != "" {
		out = append(out, s.resourceIndexKey(f.Resource))
	}
	if f.Actor != "" {
		out = append(out, s.actorIndexKey(f.Actor))
	}
	return out
}
func (s *Store) indexBuiltKey() string { return s.indexKey() + ":built" }

// stateIndexKeys lists the state indexes, in the order of States.
func (s *Store) stateIndexKeys() []string {
	out := make([]string, len(States))
	for i, st := range States {
		out[i] = s.stateIndexKey(st)
	}
	return out
}

// createKeys are the KEYS of createScript.
func (s *Store) createKeys(op *Operation) []string {
	return append([]string{s.opKey(op.ID), s.idemKey(op.IdempotencyScope, op.IdempotencyKey), s.indexKey(),
		s.kindIndexKey(op.Kind), s.providerIndexKey(op.Provider), s.stateIndexKey(op.State),
		s.indexSetsKey(), s.indexBuiltKey(), s.searchOfKey(op.ID), s.timelineKey(op.ID)}, s.searchKeysOf(op)...)
}

// updateKeys are the KEYS of updateScript: the record, its idempotency
// key, the main index, its timeline, the set of its search indexes and
// every state index.
func (s *Store) updateKeys(id, idemScope, idemKey string) []string {
	return append([]string{s.opKey(id), s.idemKey(idemScope, idemKey), s.indexKey(), s.timelineKey(id), s.searchOfKey(id)}, s.stateIndexKeys()...)
}

// indexKeysOf lists the listing indexes that can hold op's entry.
func (s *Store) indexKeysOf(op *Operation) []string {
	return append(append([]string{s.indexKey(), s.kindIndexKey(op.Kind), s.providerIndexKey(op.Provider)}, s.stateIndexKeys()...), s.searchKeysOf(op)...)
}

// dropEntries removes ids from every listing index in one transaction;
// extra names indexes that may not be registered in index:sets.
func (s *Store) dropEntries(ctx context.Context, ids []string, extra ...string) error {
	sets, err := s.rdb.SMembers(ctx, s.indexSetsKey()).Result()
	if err != nil {
		return err
	}
	keys := append(append(append([]string{s.indexKey()}, s.stateIndexKeys()...), sets...), extra...)
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	// Each record's search indexes, from the set it keeps of them.
	rp := s.rdb.Pipeline()
	of := make([]*redis.StringSliceCmd, len(ids))
	for i, id := range ids {
		of[i] = rp.SMembers(ctx, s.searchOfKey(id))
	}
	if _, err := rp.Exec(ctx); err != nil {
		return err
	}
	seen := map[string]bool{}
	pipe := s.rdb.TxPipeline()
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			pipe.ZRem(ctx, k, members...)
		}
	}
	for i, id := range ids {
		for _, k := range of[i].Val() {
			pipe.ZRem(ctx, k, id)
		}
		pipe.Del(ctx, s.searchOfKey(id))
	}
	_, err = pipe.Exec(ctx)
	return err
}

// position is a place in a listing: the entry (score, id), in the order
// score then id, both descending. The zero position is before the newest.
type position struct {
	score int64
	id    string
}

func (p position) cursor() string { return strconv.FormatInt(p.score, 10) + ":" + p.id }

// parseCursor reads a cursor made by position.cursor: a non-negative
// decimal score, a colon and an id.
func parseCursor(c string) (position, error) {
	if c == "" {
		return position{}, nil
	}
	sc, id, ok := strings.Cut(c, ":")
	if !ok || id == "" || sc == "" || strings.Trim(sc, "0123456789") != "" {
		return position{}, fmt.Errorf("%w: bad cursor", ErrBadCursor)
	}
	n, err := strconv.ParseInt(sc, 10, 64)
	if err != nil {
		return position{}, fmt.Errorf("%w: bad cursor", ErrBadCursor)
	}
	return position{score: n, id: id}, nil
}

// entriesAfter returns up to n entries of the sorted set key after pos,
// newest first. Fewer than n means the set ends there. Entries with pos's
// score (created in the same millisecond) are all read to find those after
// pos.id; they are few.
func (s *Store) entriesAfter(ctx context.Context, key string, pos position, n int) ([]position, error) {
	if n <= 0 {
		return nil, nil
	}
	if pos.id == "" {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: "+inf", Min: "-inf", Count: int64(n)}).Result()
		if err != nil {
			return nil, err
		}
		return toPositions(zs), nil
	}
	sc := strconv.FormatInt(pos.score, 10)
	pipe := s.rdb.Pipeline()
	ties := pipe.ZRevRangeByScore(ctx, key, &redis.ZRangeBy{Max: sc, Min: sc})
	rest := pipe.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: "(" + sc, Min: "-inf", Count: int64(n)})
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	var out []position
	for _, id := range ties.Val() {
		if id < pos.id {
			out = append(out, position{score: pos.score, id: id})
		}
	}
	out = append(out, toPositions(rest.Val())...)
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

func toPositions(zs []redis.Z) []position {
	out := make([]position, len(zs))
	for i, z := range zs {
		out[i] = position{score: int64(z.Score), id: z.Member.(string)}
	}
	return out
}

// source is where a listing reads: the sorted set it walks, and how it
// tells which of its entries match the filter.
type source struct {
	key string
	// others are the indexes of the filter's other dimensions: an entry
	// matches when it is in each of them.
	others []string
	// fields says the indexes are not built: each record's filter fields
	// are read.
	fields bool
}

// exact reports whether every entry of the source matches the filter.
func (src source) exact() bool { return !src.fields && len(src.others) == 0 }

// listSource picks the sorted set a listing of f reads from pos: the index
// of f's only dimension, or the smallest of its dimensions' indexes.
// Labels, resource and submitter are indexed from their first version
// on, so their indexes serve even before index:built (older records have
// none of them, and match no such filter).
func (s *Store) listSource(ctx context.Context, f Filter, pos position) (source, error) {
	var dims []string
	if f.State != "" {
		dims = append(dims, s.stateIndexKey(f.State))
	}
	if f.Kind != "" {
		dims = append(dims, s.kindIndexKey(f.Kind))
	}
	if f.Provider != "" {
		dims = append(dims, s.providerIndexKey(f.Provider))
	}
	search := s.searchDims(f)
	if len(dims)+len(search) == 0 {
		return source{key: s.indexKey()}, nil
	}
	max := "+inf"
	if pos.id != "" {
		max = strconv.FormatInt(pos.score, 10)
	}
	pipe := s.rdb.Pipeline()
	built := pipe.Exists(ctx, s.indexBuiltKey())
	all := append(slices.Clone(dims), search...)
	var counts []*redis.IntCmd
	if len(all) > 1 {
		for _, k := range all {
			counts = append(counts, pipe.ZCount(ctx, k, "-inf", max))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return source{}, err
	}
	if built.Val() == 0 {
		if len(search) == 0 {
			return source{key: s.indexKey(), fields: true}, nil
		}
		// The state, kind and provider sets may miss old records: read a
		// search index and check those fields on each record.
		all, counts = search, counts[len(dims):]
		if len(all) == 1 {
			counts = nil
		}
		src := pickSmallest(all, counts)
		src.fields = len(dims) > 0
		return src, nil
	}
	return pickSmallest(all, counts), nil
}

// pickSmallest is the source that reads the smallest of keys (counts
// gives their sizes; nil for a single key) and checks the others.
func pickSmallest(keys []string, counts []*redis.IntCmd) source {
	if len(keys) == 1 {
		return source{key: keys[0]}
	}
	best := 0
	for i, c := range counts {
		if c.Val() < counts[best].Val() {
			best = i
		}
	}
	return source{key: keys[best], others: append(keys[:best:best], keys[best+1:]...)}
}

func (f Filter) matches(state, kind, provider string) bool {
	return (f.State == "" || string(f.State) == state) && (f.Kind == "" || f.Kind == kind) && (f.Provider == "" || f.Provider == provider)
}

// matchesOp checks a loaded record against every dimension of f.
func (f Filter) matchesOp(op *Operation) bool {
	if !f.matches(string(op.State), op.Kind, op.Provider) {
		return false
	}
	for k, v := range f.Labels {
		if got, ok := op.Labels[k]; !ok || got != v {
			return false
		}
	}
	if f.Resource != "" && f.Resource != op.Resource {
		return false
	}
	if f.Actor != "" && (op.SubmittedBy == nil || op.SubmittedBy.Name != f.Actor) {
		return false
	}
	return (f.Since.IsZero() || !op.CreatedAt.Before(f.Since)) && (f.Until.IsZero() || !op.CreatedAt.After(f.Until))
}

// hasSearch reports whether f filters on anything but state, kind and
// provider.
func (f Filter) hasSearch() bool {
	return len(f.Labels) > 0 || f.Resource != "" || f.Actor != "" || !f.Since.IsZero() || !f.Until.IsZero()
}

// entry outcomes of loadEntries.
const (
	entrySkip    = iota // does not match the filter
	entryGone           // record expired
	entryMatch          // matches; op is loaded
	entryNotRead        // may match; not loaded (the page was already full)
)

// loadEntries classifies entries of src against f, loading the records of
// at most want matches. Every record loaded is checked against f again: it
// may have changed since it was indexed.
func (s *Store) loadEntries(ctx context.Context, src source, entries []position, f Filter, want int) ([]int, []*Operation, error) {
	outcomes := make([]int, len(entries))
	ops := make([]*Operation, len(entries))
	load := make([]int, 0, len(entries))
	if len(entries) == 0 {
		return outcomes, ops, nil
	}
	candidate := func(i int) {
		if len(load) < want {
			load = append(load, i)
		} else {
			outcomes[i] = entryNotRead
		}
	}
	// Entries the other indexes rule out (one ZMSCORE per index: an
	// entry is in it with the same score, its creation time, or not at
	// all).
	skip := make([]bool, len(entries))
	if len(src.others) > 0 {
		ids := make([]string, len(entries))
		for i, e := range entries {
			ids[i] = e.id
		}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.FloatSliceCmd, len(src.others))
		for j, k := range src.others {
			cmds[j] = pipe.ZMScore(ctx, k, ids...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, nil, err
		}
		for i, e := range entries {
			for _, c := range cmds {
				if c.Val()[i] != float64(e.score) {
					skip[i] = true
					outcomes[i] = entrySkip
					break
				}
			}
		}
	}
	if src.fields {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(entries))
		for i, e := range entries {
			if !skip[i] {
				cmds[i] = pipe.HMGet(ctx, s.opKey(e.id), fState, fKind, fProvider)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, nil, err
		}
		for i, c := range cmds {
			if c == nil {
				continue
			}
			v := c.Val()
			st, ok := v[0].(string)
			switch {
			case !ok:
				outcomes[i] = entryGone
			case !f.matches(st, fmt.Sprint(v[1]), fmt.Sprint(v[2])):
				outcomes[i] = entrySkip
			default:
				candidate(i)
			}
		}
	} else {
		for i := range entries {
			if !skip[i] {
				candidate(i)
			}
		}
	}
	if len(load) == 0 {
		return outcomes, ops, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(load))
	for j, i := range load {
		cmds[j] = pipe.HGetAll(ctx, s.opKey(entries[i].id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, err
	}
	for j, i := range load {
		m := cmds[j].Val()
		if len(m) == 0 {
			outcomes[i] = entryGone
			continue
		}
		op, err := fromHash(m)
		if err != nil {
			return nil, nil, err
		}
		if f.matchesOp(op) {
			outcomes[i], ops[i] = entryMatch, op
		} else {
			outcomes[i] = entrySkip
		}
	}
	return outcomes, ops, nil
}

// ListPage returns one page of the records matching f, newest first, and
// the cursor of the next page ("" after the last). Cursors are stable while
// new operations arrive and records change state.
//
// A page costs in proportion to its limit, not to the store: it examines at
// most ListExamineLimit index entries (or limit+1). A filter on one
// dimension fills its page from that dimension's index. A filter combining
// dimensions reads the smallest of their indexes and checks the others;
// when it reaches the bound first, the page comes back short, possibly
// empty, with a next cursor. Index entries of expired records are removed
// on the way.
func (s *Store) ListPage(ctx context.Context, f Filter) ([]*Operation, string, error) {
	if f.Limit <= 0 {
		f.Limit = 20
	}
	pos, err := parseCursor(f.After)
	if err != nil {
		return nil, "", err
	}
	if !f.Until.IsZero() {
		// Start at the last entry of Until's millisecond ('~' sorts after
		// every id, so the ties of that millisecond are all read).
		if u := f.Until.UnixMilli(); pos.id == "" || pos.score > u {
			pos = position{score: u, id: "~"}
		}
	}
	since := int64(-1)
	if !f.Since.IsZero() {
		since = f.Since.UnixMilli()
	}
	src, err := s.listSource(ctx, f, pos)
	if err != nil {
		return nil, "", fmt.Errorf("list operations: %w", err)
	}
	budget := max(ListExamineLimit, f.Limit+1)
	var out []*Operation
	var gone []string
	examined, chunk, next := 0, 100, ""
page:
	for {
		want := f.Limit + 1 - len(out) // the page's rest, and one to know there is more
		n := min(budget-examined, chunk)
		if src.exact() {
			n = min(budget-examined, want)
		}
		chunk = min(chunk*4, ListExamineLimit)
		entries, err := s.entriesAfter(ctx, src.key, pos, n)
		if err != nil {
			return nil, "", fmt.Errorf("list operations: %w", err)
		}
		ended := false
		if since >= 0 {
			// Newest first: past Since, nothing older can match.
			for i, e := range entries {
				if e.score < since {
					entries, ended = entries[:i], true
					break
				}
			}
		}
		outcomes, ops, err := s.loadEntries(ctx, src, entries, f, want)
		if err != nil {
			return nil, "", fmt.Errorf("list operations: %w", err)
		}
		for i, e := range entries {
			switch outcomes[i] {
			case entryGone:
				gone = append(gone, e.id)
			case entryNotRead:
				next = pos.cursor()
				break page
			case entryMatch:
				if len(out) == f.Limit {
					next = pos.cursor()
					break page
				}
				out = append(out, ops[i])
			}
			pos = e
			examined++
		}
		if len(entries) < n || ended {
			break // the index (or the time range) ends here
		}
		if examined >= budget {
			next = pos.cursor()
			break
		}
	}
	if len(gone) > 0 {
		_ = s.dropEntries(ctx, gone, src.key) // best effort: PruneIndex removes what is left
	}
	return out, next, nil
}

// List returns the newest f.Limit records matching f, newest first (see
// ListUpTo).
func (s *Store) List(ctx context.Context, f Filter) ([]*Operation, error) {
	ops, _, err := s.ListUpTo(ctx, f)
	return ops, err
}

// ListUpTo follows ListPage's cursors until it has f.Limit records (default
// 20) or the list ends, reading at most 100 pages. It returns the cursor
// of the records after those returned, "" when the list ended: fewer than
// f.Limit records with a cursor means it stopped at the 100 pages.
func (s *Store) ListUpTo(ctx context.Context, f Filter) ([]*Operation, string, error) {
	if f.Limit <= 0 {
		f.Limit = 20
	}
	var out []*Operation
	for range listFollowPages {
		page := f
		page.Limit = f.Limit - len(out)
		ops, next, err := s.ListPage(ctx, page)
		if err != nil {
			return nil, "", err
		}
		out = append(out, ops...)
		if next == "" || len(out) == f.Limit {
			return out, next, nil
		}
		f.After = next
	}
	return out, f.After, nil
}

// PruneIndex removes the listing indexes' entries whose records have
// expired, and returns how many records' entries it removed. Only entries
// created more than the retention ago are looked at: a record expires no
// sooner than retention after it finished, so younger entries are all
// live. Entries of records still running (an install of many hours) are
// kept. It first builds the per-dimension indexes if they are not built
// yet (records stored by an earlier version). Safe to run from every
// replica at once.
func (s *Store) PruneIndex(ctx context.Context) (int, error) {
	if err := s.buildIndexes(ctx); err != nil {
		return 0, fmt.Errorf("build listing indexes: %w", err)
	}
	sets, err := s.rdb.SMembers(ctx, s.indexSetsKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("prune index: %w", err)
	}
	max := strconv.FormatInt(s.now().Add(-s.retention).UnixMilli(), 10)
	seen := map[string]bool{}
	// The main index first: its pass removes a record's entries from every
	// index, so the others are left with strays only (removed by hand, or
	// by an earlier version).
	for _, key := range append(append([]string{s.indexKey()}, s.stateIndexKeys()...), sets...) {
		if err := s.pruneKey(ctx, key, max, seen); err != nil {
			return len(seen), fmt.Errorf("prune index: %w", err)
		}
	}
	return len(seen), nil
}

// pruneKey removes the entries of key with scores up to max whose records
// are gone, from every index; it adds their ids to removed.
func (s *Store) pruneKey(ctx context.Context, key, max string, removed map[string]bool) error {
	const page = 500
	for offset := int64(0); ; {
		ids, err := s.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: "-inf", Max: max, Offset: offset, Count: page}).Result()
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		pipe := s.rdb.Pipeline()
		exists := make([]*redis.IntCmd, len(ids))
		for i, id := range ids {
			exists[i] = pipe.Exists(ctx, s.opKey(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		var gone []string
		for i, id := range ids {
			if exists[i].Val() == 0 {
				gone = append(gone, id)
			}
		}
		if len(gone) > 0 {
			if err := s.dropEntries(ctx, gone, key); err != nil {
				return err
			}
			for _, id := range gone {
				removed[id] = true
			}
		}
		// Live entries stay in the range; step over them.
		offset += int64(len(ids) - len(gone))
		if len(ids) < page {
			return nil
		}
	}
}

// indexRecordScript puts one record in its per-dimension indexes, with its
// main index score, and takes it out of the other state indexes.
// KEYS: op, index, kind index, provider index, index:sets, state indexes...
// Returns 1 when indexed, 0 when the record or its main entry is gone.
var indexRecordScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'id', 'kind', 'provider', 'state')
if not cur[1] then return 0 end
if KEYS[3] ~= KEYS[2] .. ':kind:' .. cur[2] or KEYS[4] ~= KEYS[2] .. ':provider:' .. cur[3] then return 0 end
local score = redis.call('ZSCORE', KEYS[2], cur[1])
if not score then return 0 end
redis.call('ZADD', KEYS[3], score, cur[1])
redis.call('ZADD', KEYS[4], score, cur[1])
redis.call('SADD', KEYS[5], KEYS[3], KEYS[4])
for k = 6, #KEYS do
  if KEYS[k] == KEYS[2] .. ':state:' .. tostring(cur[4]) then
    redis.call('ZADD', KEYS[k], score, cur[1])
  else
    redis.call('ZREM', KEYS[k], cur[1])
  end
end
return 1
`)

// buildIndexes puts every record of the main index in its per-dimension
// indexes, once: records stored before those indexes existed have no
// entries there. One replica builds at a time; the others skip the round.
// It sets index:built when done, so listings use the per-dimension indexes
// from then on.
func (s *Store) buildIndexes(ctx context.Context) error {
	n, err := s.rdb.Exists(ctx, s.indexBuiltKey()).Result()
	if err != nil || n > 0 {
		return err
	}
	owner := rand.Text()
	ok, _, err := s.AcquireLock(ctx, "index-build", owner, 10*time.Minute)
	if err != nil || !ok {
		return err
	}
	defer func() { _ = s.ReleaseLock(context.WithoutCancel(ctx), "index-build", owner) }()
	if err := indexRecordScript.Load(ctx, s.rdb).Err(); err != nil {
		return err
	}
	const page = 500
	for pos := (position{}); ; {
		entries, err := s.entriesAfter(ctx, s.indexKey(), pos, page)
		if err != nil {
			return err
		}
		pipe := s.rdb.Pipeline()
		dims := make([]*redis.SliceCmd, len(entries))
		for i, e := range entries {
			dims[i] = pipe.HMGet(ctx, s.opKey(e.id), fKind, fProvider)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		pipe = s.rdb.Pipeline()
		for i, e := range entries {
			v := dims[i].Val()
			kind, ok1 := v[0].(string)
			prov, ok2 := v[1].(string)
			if !ok1 || !ok2 {
				continue // expired: pruning removes it
			}
			keys := append([]string{s.opKey(e.id), s.indexKey(), s.kindIndexKey(kind), s.providerIndexKey(prov), s.indexSetsKey()}, s.stateIndexKeys()...)
			indexRecordScript.EvalSha(ctx, pipe, keys)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		if len(entries) < page {
			break
		}
		pos = entries[len(entries)-1]
	}
	return s.rdb.Set(ctx, s.indexBuiltKey(), "1", 0).Err()
}
