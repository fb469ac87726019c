package flow_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/flow"
)

type changes struct {
	mu  sync.Mutex
	all []string
	raw []flow.Change
}

func (c *changes) add(ch flow.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, ch.Provider+":"+ch.Account+" "+ch.From+"->"+ch.To)
	c.raw = append(c.raw, ch)
}

func (c *changes) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.all...)
}

// Five failures open the breaker on every replica; after the cool-down
// one replica probes while the other waits; a good probe closes it. Each
// change is heard once.
func TestBreakerOpensProbesAndCloses(t *testing.T) {
	rdb, prefix := flowRedis(t)
	cfg := flow.BreakerConfig{Failures: 5, Window: 10 * time.Second, CoolDown: 300 * time.Millisecond}
	var seen changes
	a := flow.NewBreaker(rdb, prefix, "leaseweb", "default", cfg)
	b := flow.NewBreaker(rdb, prefix, "leaseweb", "default", cfg)
	a.OnChange, b.OnChange = seen.add, seen.add
	ctx := t.Context()
	for i := 0; i < 4; i++ {
		require.NoError(t, a.Allow(ctx))
		a.Record(ctx, false)
	}
	require.NoError(t, b.Allow(ctx), "4 failures: still closed")
	b.Record(ctx, false)
	for _, r := range []*flow.Breaker{a, b} {
		d, ok := flow.IsThrottled(r.Allow(ctx))
		require.True(t, ok, "open on every replica")
		assert.LessOrEqual(t, d, cfg.CoolDown)
	}
	time.Sleep(cfg.CoolDown + 50*time.Millisecond)
	require.NoError(t, a.Allow(ctx), "the cool-down is over: a probes")
	_, ok := flow.IsThrottled(b.Allow(ctx))
	assert.True(t, ok, "one probe at a time")
	a.Record(ctx, true)
	require.NoError(t, b.Allow(ctx), "closed again")
	st, err := b.State(ctx)
	require.NoError(t, err)
	assert.Equal(t, flow.Closed, st)
	assert.Equal(t, []string{"leaseweb:default closed->open", "leaseweb:default open->half_open", "leaseweb:default half_open->closed"}, seen.list())
	// One outage: it degraded once and recovered once, and both changes
	// name the moment it opened.
	open, closed := seen.raw[0], seen.raw[2]
	assert.True(t, open.Degraded())
	assert.False(t, seen.raw[1].Degraded() || seen.raw[1].Recovered(), "probing is neither")
	assert.True(t, closed.Recovered())
	assert.WithinDuration(t, time.Now(), open.OpenedAt, 5*time.Second)
	assert.Equal(t, open.OpenedAt, closed.OpenedAt)
}

// A probe that fails opens the breaker again for another cool-down.
func TestBreakerFailedProbeReopens(t *testing.T) {
	rdb, prefix := flowRedis(t)
	cfg := flow.BreakerConfig{Failures: 1, Window: time.Second, CoolDown: 200 * time.Millisecond}
	br := flow.NewBreaker(rdb, prefix, "ucdn", "default", cfg)
	ctx := t.Context()
	br.Record(ctx, false)
	time.Sleep(cfg.CoolDown + 50*time.Millisecond)
	require.NoError(t, br.Allow(ctx))
	br.Record(ctx, false)
	d, ok := flow.IsThrottled(br.Allow(ctx))
	require.True(t, ok)
	assert.Greater(t, d, cfg.CoolDown/2, "a new cool-down")
	assert.Contains(t, br.Allow(ctx).Error(), "circuit breaker open of ucdn:default")
}

// Failures further apart than the window do not add up, and a success
// resets the count.
func TestBreakerCountsWithinTheWindow(t *testing.T) {
	rdb, prefix := flowRedis(t)
	cfg := flow.BreakerConfig{Failures: 3, Window: 200 * time.Millisecond, CoolDown: time.Minute}
	br := flow.NewBreaker(rdb, prefix, "ionos", "default", cfg)
	ctx := t.Context()
	br.Record(ctx, false)
	br.Record(ctx, false)
	time.Sleep(300 * time.Millisecond)
	br.Record(ctx, false)
	br.Record(ctx, true)
	br.Record(ctx, false)
	br.Record(ctx, false)
	require.NoError(t, br.Allow(ctx), "never 3 failures in a row within the window")
	br.Record(ctx, false)
	_, ok := flow.IsThrottled(br.Allow(ctx))
	assert.True(t, ok, "3 within the window")
}

// An operator's pause holds the account on every replica, whatever the
// breaker says, until resumed; a disabled breaker never opens by itself
// but honours the pause.
func TestPauseAndResume(t *testing.T) {
	rdb, prefix := flowRedis(t)
	ctx := t.Context()
	br := flow.NewBreaker(rdb, prefix, "leaseweb", "default", flow.BreakerConfig{Disabled: true, Failures: 1})
	for i := 0; i < 5; i++ {
		br.Record(ctx, false)
	}
	require.NoError(t, br.Allow(ctx), "a disabled breaker does not open")
	p := flow.NewPauses(rdb, prefix)
	require.NoError(t, p.Pause(ctx, "leaseweb", "default", "token ops-team"))
	by, paused, err := p.PausedBy(ctx, "leaseweb", "default")
	require.NoError(t, err)
	assert.True(t, paused)
	assert.Equal(t, "token ops-team", by)
	err = br.Allow(ctx)
	d, ok := flow.IsThrottled(err)
	require.True(t, ok)
	assert.Equal(t, 30*time.Second, d)
	assert.Contains(t, err.Error(), "paused by an operator of leaseweb:default")
	other := flow.NewBreaker(rdb, prefix, "leaseweb", "eu", flow.DefaultBreaker)
	assert.NoError(t, other.Allow(ctx), "only that account")
	was, err := p.Resume(ctx, "leaseweb", "default")
	require.NoError(t, err)
	assert.True(t, was)
	assert.NoError(t, br.Allow(ctx))
	was, err = p.Resume(ctx, "leaseweb", "default")
	require.NoError(t, err)
	assert.False(t, was, "not paused any more")
}

// Workers announce the accounts they serve; an announcement lapses when
// it is not renewed, and goes at once when its worker withdraws it.
func TestServedRegister(t *testing.T) {
	rdb, prefix := flowRedis(t)
	ctx := t.Context()
	s := flow.NewServed(rdb, prefix)
	require.NoError(t, s.Announce(ctx, "w1", [][2]string{{"leaseweb", "default"}, {"ucdn", "default"}}, 300*time.Millisecond))
	require.NoError(t, s.Announce(ctx, "w2", [][2]string{{"ucdn", "eu"}}, time.Minute))
	ok, pairs, err := s.Serves(ctx, "leaseweb", "default")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, []string{"leaseweb/default", "ucdn/default", "ucdn/eu"}, pairs)
	ok, _, err = s.Serves(ctx, "leaseweb", "eu")
	require.NoError(t, err)
	assert.False(t, ok)
	time.Sleep(400 * time.Millisecond)
	ok, pairs, err = s.Serves(ctx, "leaseweb", "default")
	require.NoError(t, err)
	assert.False(t, ok, "lapsed")
	assert.Equal(t, []string{"ucdn/eu"}, pairs)
}

// Two workers serve one account: when one stops and withdraws, the
// account is still served by the other; when both have, it is not.
func TestServedWithdrawKeepsOtherWorkers(t *testing.T) {
	rdb, prefix := flowRedis(t)
	ctx := t.Context()
	s := flow.NewServed(rdb, prefix)
	pairs := [][2]string{{"leaseweb", "default"}}
	stop1 := s.Keep(ctx, "w1", pairs, time.Minute, nil)
	stop2 := s.Keep(ctx, "w2", pairs, time.Minute, nil)
	stop1()
	ok, _, err := s.Serves(ctx, "leaseweb", "default")
	require.NoError(t, err)
	assert.True(t, ok, "w2 still serves it")
	stop2()
	ok, served, err := s.Serves(ctx, "leaseweb", "default")
	require.NoError(t, err)
	assert.False(t, ok, "withdrawn by both, long before the announcement would lapse")
	assert.Empty(t, served)
}
