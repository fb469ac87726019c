package opstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/opsworker/opsworker/internal/testutil"
	"github.com/opsworker/opsworker/ops"
)

// seedStore creates n records under prefix, one millisecond apart, spread
// over eight kinds (half of them purges, 0.5% rescues), three providers
// and the states of a store where most operations have finished.
func seedStore(b testing.TB, rdb redis.UniversalClient, prefix string, n int) *Store {
	b.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var next atomic.Int64
	// Kinds by share of the records, in parts per thousand.
	kindShares := []struct {
		kind  string
		share int
	}{{"cdn:purge", 500}, {"cdn:invalidate", 250}, {"instance:snapshot", 100}, {"vps:snapshot", 50},
		{"server:install", 40}, {"asg:scale", 30}, {"instance:resize", 25}, {"server:rescue", 5}}
	kinds := func(r *rand.Rand) string {
		p := r.IntN(1000)
		for _, k := range kindShares {
			if p < k.share {
				return k.kind
			}
			p -= k.share
		}
		panic("shares do not add up to 1000")
	}
	providers := []string{"ucdn", "ucdn", "ucdn", "ucdn", "ucdn", "leaseweb", "leaseweb", "leaseweb", "leaseweb", "edgio"}
	states := func(r *rand.Rand) State {
		switch p := r.IntN(100); {
		case p < 80:
			return StateSucceeded
		case p < 90:
			return StateFailed
		case p < 95:
			return StateRunning
		case p < 98:
			return StateQueued
		default:
			return StateCanceled
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				at := start.Add(time.Duration(i) * time.Millisecond)
				s := New(rdb, prefix, time.Hour).WithClock(func() time.Time { return at })
				op := &Operation{ID: fmt.Sprintf("op%07d", i), Kind: kinds(r), Provider: providers[r.IntN(len(providers))],
					Account: "default", Params: []byte(`{"zone_name":"zone-1","files":["/a/b/c.png"]}`), State: states(r),
					// A change label shared by 100 records, a resource by 20,
					// one of five submitters.
					Labels:      map[string]string{"change": fmt.Sprintf("CHG-%d", i%1000), "team": "sre"},
					Resource:    fmt.Sprintf("leaseweb:server:%d", i%5000),
					SubmittedBy: &ops.Actor{Name: fmt.Sprintf("token-%d", i%5), Via: ops.ViaAPI, Authenticated: true}}
				if _, _, err := s.Create(context.Background(), op); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return New(rdb, prefix, time.Hour)
}

var benchFilters = []struct {
	name string
	f    Filter
}{
	{"kind=rare", Filter{Kind: "server:rescue"}},
	{"kind=common", Filter{Kind: "cdn:purge"}},
	{"state", Filter{State: StateFailed}},
	{"provider", Filter{Provider: "edgio"}},
	{"state+kind", Filter{State: StateSucceeded, Kind: "cdn:purge"}},
	// 0.08% of the records: a page reaches the examine bound before it
	// is full.
	{"state+kind+provider", Filter{State: StateRunning, Kind: "server:install", Provider: "leaseweb"}},
	{"kind=none", Filter{Kind: "no:such"}},
	// Search: each has its own index.
	{"label=rare", Filter{Labels: map[string]string{"change": "CHG-7"}}},
	{"label=common", Filter{Labels: map[string]string{"team": "sre"}}},
	{"resource", Filter{Resource: "leaseweb:server:42"}},
	{"actor", Filter{Actor: "token-3"}},
	{"label+state", Filter{Labels: map[string]string{"change": "CHG-7"}, State: StateFailed}},
	{"since+until", Filter{Since: time.Date(2026, 1, 1, 0, 0, 50, 0, time.UTC), Until: time.Date(2026, 1, 1, 0, 0, 51, 0, time.UTC)}},
	{"actor+since+until", Filter{Actor: "token-3", Since: time.Date(2026, 1, 1, 0, 0, 50, 0, time.UTC), Until: time.Date(2026, 1, 1, 0, 0, 51, 0, time.UTC)}},
}

// redisUsec is the time Redis has spent running commands since its
// statistics were reset, from INFO commandstats (scripts' commands
// included).
func redisUsec(b *testing.B, rdb redis.UniversalClient) float64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for line := range strings.Lines(info) {
		if _, rest, ok := strings.Cut(line, ",usec="); ok {
			v, _, _ := strings.Cut(rest, ",")
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("commandstats: %q", line)
			}
			total += n
		}
	}
	return total
}

// measure runs b.N calls of list from workers goroutines and reports
// their latency percentiles, the rows per page and the time Redis spent
// per page. The Redis server must serve nothing else meanwhile.
func measure(b *testing.B, rdb redis.UniversalClient, workers int, list func() (int, error)) {
	b.Helper()
	durations := make([]time.Duration, b.N)
	var rows, next atomic.Int64
	if err := rdb.ConfigResetStat(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				n, err := list()
				durations[i] = time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
				rows.Add(int64(n))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(redisUsec(b, rdb)/float64(b.N), "redis-µs/page")
	slices.Sort(durations)
	pct := func(p float64) float64 {
		return float64(durations[min(len(durations)-1, int(p*float64(len(durations))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(rows.Load())/float64(b.N), "rows/page")
}

// BenchmarkListFiltered100k lists the first page of 50 for several filters
// over 100,000 records on real Redis, one caller and ten at once. Run with
// -benchtime 1000x for percentiles over 1,000 pages.
func BenchmarkListFiltered100k(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds 100,000 records")
	}
	rdb := testutil.Redis(b, testutil.DBStoreBench)
	s := seedStore(b, rdb, "bench", 100_000)
	var main, all int64
	keys, err := rdb.Keys(context.Background(), "bench:{ops}:index*").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range keys {
		n := rdb.MemoryUsage(context.Background(), k, 0).Val()
		all += n
		if k == s.indexKey() {
			main = n
		}
	}
	b.Logf("listing indexes: %d keys, %d B per record (the time index alone: %d B)", len(keys), all/100_000, main/100_000)
	for _, bf := range benchFilters {
		for _, workers := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/callers=%d", bf.name, workers), func(b *testing.B) {
				f := bf.f
				f.Limit = 50
				measure(b, rdb, workers, func() (int, error) {
					ops, _, err := s.ListPage(context.Background(), f)
					return len(ops), err
				})
			})
		}
	}
}

// BenchmarkListFilteredVsScan20k compares ListPage with the full scan it
// replaces (scanListPage) on 20,000 records, one caller and ten at once.
// Run with -benchtime 20x: a scan can take most of a second.
func BenchmarkListFilteredVsScan20k(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds 20,000 records")
	}
	rdb := testutil.Redis(b, testutil.DBStoreBench)
	s := seedStore(b, rdb, "bench", 20_000)
	for _, bf := range []int{0, 1, 5, 6} {
		bf := benchFilters[bf]
		f := bf.f
		f.Limit = 50
		for _, workers := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/indexed/callers=%d", bf.name, workers), func(b *testing.B) {
				measure(b, rdb, workers, func() (int, error) {
					ops, _, err := s.ListPage(context.Background(), f)
					return len(ops), err
				})
			})
			b.Run(fmt.Sprintf("%s/scan/callers=%d", bf.name, workers), func(b *testing.B) {
				measure(b, rdb, workers, func() (int, error) {
					ops, err := s.scanListPage(context.Background(), f)
					return len(ops), err
				})
			})
		}
	}
}

// scanListPage is the listing these indexes replace, kept as the
// benchmark's baseline: it reads the main index from the newest entry and
// loads every record, until it has found one match more than the page
// holds or the index ends.
func (s *Store) scanListPage(ctx context.Context, f Filter) ([]*Operation, error) {
	var out []*Operation
	const page = 200
	for offset := int64(0); ; offset += page {
		ids, err := s.rdb.ZRevRangeByScore(ctx, s.indexKey(), &redis.ZRangeBy{Max: "+inf", Min: "-inf", Offset: offset, Count: page}).Result()
		if err != nil {
			return nil, err
		}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HGetAll(ctx, s.opKey(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		for _, c := range cmds {
			op, err := fromHash(c.Val())
			if err != nil {
				return nil, err
			}
			if (f.State == "" || op.State == f.State) && (f.Kind == "" || op.Kind == f.Kind) && (f.Provider == "" || op.Provider == f.Provider) {
				if len(out) == f.Limit {
					return out, nil
				}
				out = append(out, op)
			}
		}
		if len(ids) < page {
			return out, nil
		}
	}
}
