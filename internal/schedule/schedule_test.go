package schedule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/opsworker/opsworker/internal/config"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/schedule"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/testutil"
)

func purgeDef(name, spec string) config.Schedule {
	return config.Schedule{Name: name, Spec: spec, TaskType: "cdn:purge", Provider: "ucdn",
		Params: map[string]any{"zone_name": "z", "zone_type": "objects", "files": []any{"/a"}}}
}

type bundle struct {
	rdb   redis.UniversalClient
	ops   *opstore.Store
	state *schedule.Store
	sub   *tasks.Submitter
}

func newBundle(t *testing.T, rdb redis.UniversalClient) *bundle {
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	ops := opstore.New(rdb, "ow", time.Hour)
	return &bundle{rdb: rdb, ops: ops, state: schedule.NewStore(rdb, "ow"), sub: tasks.NewSubmitter(ops, client, tasks.SubmitOptions{})}
}

func miniBundle(t *testing.T) *bundle {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return newBundle(t, rdb)
}

func parse(t *testing.T, defs ...config.Schedule) []*schedule.Spec {
	t.Helper()
	specs, err := schedule.Parse(defs)
	require.NoError(t, err)
	return specs
}

// keysByTick groups the operations by their schedule idempotency key.
func (b *bundle) keys(t *testing.T) []string {
	t.Helper()
	ops, err := b.ops.List(context.Background(), opstore.Filter{Limit: 1000})
	require.NoError(t, err)
	var keys []string
	for _, op := range ops {
		keys = append(keys, op.IdempotencyKey)
	}
	sort.Strings(keys)
	return keys
}

func TestParseErrorsNameTheSchedule(t *testing.T) {
	t.Parallel()
	bad := purgeDef("nightly", "0 3 * * *")
	bad.Params = map[string]any{"zone_type": "objects", "files": []any{"/a"}}
	fan := purgeDef("fan", "@hourly")
	fan.Params = nil
	fan.FanOut = []map[string]any{{"zone_name": "a", "zone_type": "objects", "files": []any{"/a"}}, {"zone_name": "b", "zone_type": "video", "files": []any{"/a"}}}
	kind := purgeDef("kind", "@hourly")
	kind.TaskType = "cdn:nuke"
	spec := purgeDef("spec", "61 * * * *")
	_, err := schedule.Parse([]config.Schedule{bad, fan, kind, spec})
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "schedules[0] (nightly): params.zone_name: required")
	assert.Contains(t, msg, "schedules[1] (fan).fan_out[1]: params.zone_type")
	assert.Contains(t, msg, "schedules[2] (kind): task_type: unknown task type")
	assert.Contains(t, msg, "schedules[3] (spec).spec:")
}

func TestConfigRejectsBadSchedules(t *testing.T) {
	t.Parallel()
	base := "redis:\n  embedded: true\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default: {}\nschedules:\n"
	tests := map[string]string{
		"  - {name: a, spec: '* * *', task_type: cdn:purge, params: {}}\n":                                                                   "schedules[0] (a).spec:",
		"  - {name: a, spec: '@daily', timezone: Mars/Olympus, task_type: cdn:purge, params: {}}\n":                                          "timezone \"Mars/Olympus\"",
		"  - {name: a, spec: '@daily', task_type: cdn:purge}\n":                                                                              "give params or fan_out",
		"  - {name: a, spec: '@daily', task_type: cdn:purge, params: {}, misfire: later}\n":                                                  "schedules[0] (a).misfire: must be skip or run_once",
		"  - {name: a, spec: '@daily', task_type: cdn:purge, params: {}, overlap: never}\n":                                                  "schedules[0] (a).overlap",
		"  - {name: a, spec: '@daily', task_type: cdn:purge, params: {}}\n  - {name: a, spec: '@daily', task_type: cdn:purge, params: {}}\n": "schedules[1] (a).name: used twice",
		"  - {name: a, spec: 'CRON_TZ=UTC @daily', task_type: cdn:purge, params: {}}\n":                                                      "use the timezone key",
		"  - {name: a, spec: '@every 500ms', task_type: cdn:purge, params: {}}\n":                                                            "schedules[0] (a).spec: @every 500ms: interval must be at least 1s",
		"  - {name: a, spec: '@every 0s', task_type: cdn:purge, params: {}}\n":                                                               "schedules[0] (a).spec: @every 0s: interval must be at least 1s",
		"  - {name: a, spec: '@daily', task_type: cdn:purge, params: {}, when: now}\n":                                                       "schedules[0].when: unknown key",
	}
	for y, want := range tests {
		_, err := config.Parse([]byte(base+y), func(string) (string, bool) { return "", false })
		if assert.Error(t, err, y) {
			assert.Contains(t, err.Error(), want, y)
		}
	}
	// The worker's own parse refuses sub-second intervals too.
	for _, spec := range []string{"@every 0s", "@every -1s", "@every 999ms"} {
		_, err := schedule.Parse([]config.Schedule{purgeDef("tight", spec)})
		require.Error(t, err, spec)
		assert.Equal(t, "schedules[0] (tight).spec: "+spec+": interval must be at least 1s", err.Error())
	}
}

// Europe/Amsterdam across both DST changes of 2026, with an injected clock.
func TestTimeZoneAcrossDST(t *testing.T) {
	t.Parallel()
	night := purgeDef("night", "0 3 * * *")
	night.Timezone = "Europe/Amsterdam"
	early := purgeDef("early", "30 2 * * *")
	early.Timezone = "Europe/Amsterdam"
	specs := parse(t, night, early)
	utc := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }

	// 03:00 local: 02:00Z in winter time, 01:00Z in summer time.
	assert.Equal(t, []time.Time{utc("2026-03-28T02:00:00Z"), utc("2026-03-29T01:00:00Z"), utc("2026-03-30T01:00:00Z")},
		utcAll(specs[0].NextN(utc("2026-03-27T12:00:00Z"), 3)))
	assert.Equal(t, []time.Time{utc("2026-10-24T01:00:00Z"), utc("2026-10-25T02:00:00Z"), utc("2026-10-26T02:00:00Z")},
		utcAll(specs[0].NextN(utc("2026-10-23T12:00:00Z"), 3)))
	// 02:30 local does not exist on 29 March (skipped) and happens twice on
	// 25 October (fires once, at the first).
	assert.Equal(t, []time.Time{utc("2026-03-28T01:30:00Z"), utc("2026-03-30T00:30:00Z")}, utcAll(specs[1].NextN(utc("2026-03-27T12:00:00Z"), 2)))
	assert.Equal(t, []time.Time{utc("2026-10-24T00:30:00Z"), utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")},
		utcAll(specs[1].NextN(utc("2026-10-23T12:00:00Z"), 3)))

	// The scheduler itself, on a fake clock that jumps to each tick.
	b := miniBundle(t)
	clock := testutil.NewClock(utc("2026-10-23T12:00:00Z"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sleeps := 0
	sleep := func(_ context.Context, d time.Duration) bool {
		if sleeps++; sleeps > 6 {
			cancel()
			return false
		}
		clock.Add(d)
		return true
	}
	s := schedule.New(specs[:1], b.sub, b.ops, b.state, zaptest.NewLogger(t), schedule.WithClock(clock.Now, sleep))
	require.NoError(t, s.Run(ctx))
	want := []string{}
	for _, d := range []string{"2026-10-24T01:00:00Z", "2026-10-25T02:00:00Z", "2026-10-26T02:00:00Z", "2026-10-27T02:00:00Z", "2026-10-28T02:00:00Z", "2026-10-29T02:00:00Z"} {
		want = append(want, fmt.Sprintf("sched:night:%d", utc(d).Unix()))
	}
	assert.Equal(t, want, b.keys(t))
}

func utcAll(ts []time.Time) []time.Time {
	for i := range ts {
		ts[i] = ts[i].UTC()
	}
	return ts
}

func TestEveryIsAlignedToTheEpoch(t *testing.T) {
	t.Parallel()
	specs := parse(t, purgeDef("e", "@every 90s"))
	from := time.Unix(1_800_000_000+7, 0)
	for _, tick := range specs[0].NextN(from, 5) {
		assert.Zero(t, tick.Unix()%90, tick)
	}
}

// Three schedulers on the same real Redis, @every 1s: one operation per
// tick, however many fire it.
func TestThreeReplicasOneOperationPerTick(t *testing.T) {
	rdb := testutil.Redis(t, testutil.DBSched)
	b := newBundle(t, rdb)
	def := purgeDef("every-second", "@every 1s")
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 3; i++ {
		s := schedule.New(parse(t, def), b.sub, b.ops, b.state, zaptest.NewLogger(t).Named(fmt.Sprint("replica", i)))
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Run(ctx) }()
	}
	time.Sleep(4500 * time.Millisecond)
	cancel()
	wg.Wait()
	elapsed := time.Since(start)
	keys := b.keys(t)
	ticks := map[string]int{}
	for _, k := range keys {
		require.True(t, strings.HasPrefix(k, "sched:every-second:"), k)
		ticks[k]++
	}
	for k, n := range ticks {
		assert.Equal(t, 1, n, "tick %s", k)
	}
	assert.Len(t, keys, len(ticks), "one operation per tick")
	assert.GreaterOrEqual(t, len(ticks), int(elapsed.Seconds())-1)
	assert.LessOrEqual(t, len(ticks), int(elapsed.Seconds())+1)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	qi, err := insp.GetQueueInfo(tasks.ProviderQueue("ucdn"))
	require.NoError(t, err)
	assert.Equal(t, len(ticks), qi.Pending, "one launch task per operation")
}

// The worker died after creating 1 of 3 fan-out operations of a tick; the
// next start-up completes that tick without duplicating the first.
func TestRestartMidTickCompletesIt(t *testing.T) {
	rdb := testutil.Redis(t, testutil.DBSched)
	b := newBundle(t, rdb)
	def := purgeDef("fan", "@hourly")
	def.Params = nil
	def.FanOut = []map[string]any{
		{"zone_name": "a", "zone_type": "objects", "files": []any{"/x"}},
		{"zone_name": "b", "zone_type": "objects", "files": []any{"/x"}},
		{"zone_name": "c", "zone_type": "objects", "files": []any{"/x"}},
	}
	specs := parse(t, def)
	tick := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	// What the dead worker left: the tick started, item 0 created.
	require.NoError(t, rdb.HSet(t.Context(), "ow:{ops}:sched:fan", "started", tick.Unix(), "completed", tick.Add(-time.Hour).Unix()).Err())
	env := specs[0].Base
	env.Params = specs[0].Items[0]
	env.IdempotencyKey = specs[0].IdempotencyKey(tick, 0)
	first, _, err := b.sub.SubmitScheduled(t.Context(), "cdn:purge", env)
	require.NoError(t, err)

	now := tick.Add(25 * time.Minute)
	s := schedule.New(specs, b.sub, b.ops, b.state, zaptest.NewLogger(t), schedule.WithClock(func() time.Time { return now }, nil))
	s.CatchUp(t.Context())
	keys := b.keys(t)
	assert.Equal(t, []string{
		fmt.Sprintf("sched:fan:%d:0", tick.Unix()), fmt.Sprintf("sched:fan:%d:1", tick.Unix()), fmt.Sprintf("sched:fan:%d:2", tick.Unix()),
	}, keys)
	st, err := b.state.Load(t.Context(), "fan")
	require.NoError(t, err)
	assert.Equal(t, tick, st.Completed)
	require.Len(t, st.Operations, 3)
	assert.Equal(t, first.ID, st.Operations[0])
}

func TestMisfirePolicies(t *testing.T) {
	t.Parallel()
	lastRun := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	now := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC) // three nightly ticks missed
	for _, tc := range []struct {
		policy string
		want   []string
	}{
		{"skip", nil},
		{"run_once", []string{fmt.Sprintf("sched:nightly:%d", time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC).Unix())}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			b := miniBundle(t)
			def := purgeDef("nightly", "0 3 * * *")
			def.Misfire = tc.policy
			specs := parse(t, def)
			require.NoError(t, b.rdb.HSet(t.Context(), "ow:{ops}:sched:nightly", "started", lastRun.Unix(), "completed", lastRun.Unix()).Err())
			for replica := 0; replica < 2; replica++ { // two workers start: still one catch-up run
				schedule.New(specs, b.sub, b.ops, b.state, zaptest.NewLogger(t), schedule.WithClock(func() time.Time { return now }, nil)).CatchUp(t.Context())
			}
			assert.Equal(t, tc.want, b.keys(t))
		})
	}
	t.Run("NeverRanDoesNotCatchUp", func(t *testing.T) {
		t.Parallel()
		b := miniBundle(t)
		def := purgeDef("fresh", "0 3 * * *")
		def.Misfire = "run_once"
		schedule.New(parse(t, def), b.sub, b.ops, b.state, zaptest.NewLogger(t), schedule.WithClock(func() time.Time { return now }, nil)).CatchUp(t.Context())
		assert.Empty(t, b.keys(t))
	})
}

func TestOverlapSkipIfRunning(t *testing.T) {
	t.Parallel()
	b := miniBundle(t)
	def := purgeDef("busy", "@hourly")
	def.Overlap = "skip_if_running"
	sp := parse(t, def)[0]
	s := schedule.New([]*schedule.Spec{sp}, b.sub, b.ops, b.state, zaptest.NewLogger(t))
	t1 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ids, err := s.Fire(t.Context(), sp, t1, false)
	require.NoError(t, err)
	require.Len(t, ids, 1)

	// The 10:00 operation is still queued: 11:00 is skipped.
	ids, err = s.Fire(t.Context(), sp, t1.Add(time.Hour), false)
	require.NoError(t, err)
	assert.Nil(t, ids)
	assert.Len(t, b.keys(t), 1)

	// Finished: 12:00 runs.
	op, err := b.ops.Get(t.Context(), parseIDs(t, b, "busy")[0])
	require.NoError(t, err)
	_, err = b.ops.Update(t.Context(), op, opstore.Change{To: opstore.StateSucceeded})
	require.NoError(t, err)
	ids, err = s.Fire(t.Context(), sp, t1.Add(2*time.Hour), false)
	require.NoError(t, err)
	assert.Len(t, ids, 1)
	assert.Len(t, b.keys(t), 2)

	// With allow, a running previous run does not matter.
	def2 := purgeDef("free", "@hourly")
	sp2 := parse(t, def2)[0]
	s2 := schedule.New([]*schedule.Spec{sp2}, b.sub, b.ops, b.state, zaptest.NewLogger(t))
	for h := 0; h < 2; h++ {
		ids, err := s2.Fire(t.Context(), sp2, t1.Add(time.Duration(h)*time.Hour), false)
		require.NoError(t, err)
		assert.Len(t, ids, 1)
	}
}

func parseIDs(t *testing.T, b *bundle, name string) []string {
	st, err := b.state.Load(context.Background(), name)
	require.NoError(t, err)
	return st.Operations
}

// a schedule's idempotency keys are predictable ("sched:<name>:<unix>",
// visible on earlier runs' records to any read token). A write-token holder
// who submits an operation under the next tick's key (other params) makes
// the scheduler adopt that operation as the tick's run: the scheduled
// operation is never created.
func TestScheduleKeyCannotBeSquatted(t *testing.T) {
	t.Parallel()
	b := miniBundle(t)
	specs := parse(t, purgeDef("nightly", "0 3 * * *"))
	tick := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	// Someone with a write token submits under the next tick's key.
	_, _, err := b.sub.Submit(t.Context(), "cdn:purge", tasks.Envelope{Provider: "ucdn",
		Params:         json.RawMessage(`{"zone_name":"other","zone_type":"objects","files":["/x"]}`),
		IdempotencyKey: "sched:nightly:" + strconv.FormatInt(tick.Unix(), 10)})
	var ve *tasks.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "idempotency_key", ve.Field)
	s := schedule.New(specs, b.sub, b.ops, b.state, zaptest.NewLogger(t))
	ids, err := s.Fire(t.Context(), specs[0], tick, false)
	require.NoError(t, err)
	require.Len(t, ids, 1)
	op, err := b.ops.Get(t.Context(), ids[0])
	require.NoError(t, err)
	assert.NotContains(t, string(op.Params), `"other"`, "the tick runs the schedule's own params")
}
