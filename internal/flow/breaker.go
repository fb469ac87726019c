package flow

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Breaker states.
const (
	Closed   = "closed"
	Open     = "open"
	HalfOpen = "half_open"
)

// BreakerConfig says when a provider account's breaker opens: after
// Failures retryable failures (5xx, timeouts, connection errors) within
// Window; it stays open for CoolDown, then one probe call decides.
type BreakerConfig struct {
	Failures int
	Window   time.Duration
	CoolDown time.Duration
	// Disabled counts no failures: the breaker never opens by itself (an
	// operator's pause still holds the account).
	Disabled bool
}

// DefaultBreaker opens after 5 failures within 30 s and probes after 30 s.
var DefaultBreaker = BreakerConfig{Failures: 5, Window: 30 * time.Second, CoolDown: 30 * time.Second}

// Breaker is one provider account's circuit breaker, shared by every
// replica through Redis: closed, the account's calls go out; open, they
// are held back (a *ThrottledError: the task snoozes without using an
// attempt) until the cool-down ends; then one call probes (half-open)
// and its outcome closes the breaker or opens it again. OnChange hears
// each state change once, from the replica that made it.
type Breaker struct {
	rdb               redis.UniversalClient
	key               string
	pauseKey          string
	provider, accName string
	account           string
	cfg               BreakerConfig
	OnChange          func(Change)
}

// Change is one state change of a breaker.
type Change struct {
	Provider, Account string
	From, To          string
	// OpenedAt is when the breaker last opened from closed: the start of
	// the outage that this change belongs to.
	OpenedAt time.Time
}

// Degraded reports whether the change opens a closed breaker (an outage
// begins); a failed probe's return to open is not one.
func (c Change) Degraded() bool { return c.From == Closed && c.To == Open }

// Recovered reports whether the change closes the breaker (the outage
// ends).
func (c Change) Recovered() bool { return c.To == Closed && c.From != Closed }

// NewBreaker returns provider's account's breaker, its key under prefix
// (with the {ops} hash tag).
func NewBreaker(rdb redis.UniversalClient, prefix, provider, account string, cfg BreakerConfig) *Breaker {
	if cfg.Failures <= 0 {
		cfg.Failures = DefaultBreaker.Failures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultBreaker.Window
	}
	if cfg.CoolDown <= 0 {
		cfg.CoolDown = DefaultBreaker.CoolDown
	}
	name := provider + ":" + account
	return &Breaker{rdb: rdb, key: prefix + ":{ops}:breaker:" + name, pauseKey: pauseKey(prefix, provider, account), provider: provider, accName: account, account: name, cfg: cfg}
}

// probeFor is how long a half-open breaker lets its one probe run before
// another caller may probe.
const probeFor = 30 * time.Second

// allowScript: KEYS[1] the breaker; ARGV cool-down is not needed here;
// ARGV[1] probe window ms. Returns {allowed, wait_ms, changed_to}.
var allowScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, tonumber(ARGV[2]), 'paused'} end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local st = redis.call('HGET', KEYS[1], 'state')
if not st or st == 'closed' then return {1, 0, ''} end
if st == 'open' then
  local u = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
  if now < u then return {0, u - now, ''} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', now + tonumber(ARGV[1]))
  return {1, 0, 'half_open'}
end
local pu = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < pu then return {0, pu - now, ''} end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[1]))
return {1, 0, ''}
`)

// recordScript: KEYS[1] the breaker; ARGV ok (1/0), window ms,
// threshold, cool-down ms. Returns {state, changed (1/0), from, opened
// ms}.
var recordScript = redis.NewScript(`
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local st = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ARGV[1] == '1' then
  if st == 'half_open' then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'first', now)
    return {'closed', 1, st, redis.call('HGET', KEYS[1], 'opened') or '0'}
  end
  if st == 'closed' then redis.call('HSET', KEYS[1], 'failures', 0) end
  return {st, 0, st, '0'}
end
if st == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + tonumber(ARGV[4]), 'failures', 0)
  return {'open', 1, st, redis.call('HGET', KEYS[1], 'opened') or '0'}
end
if st == 'open' then return {'open', 0, st, '0'} end
local first = tonumber(redis.call('HGET', KEYS[1], 'first') or '0')
local n = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if now - first > tonumber(ARGV[2]) then first = now; n = 0 end
n = n + 1
if n >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + tonumber(ARGV[4]), 'failures', 0, 'first', now, 'opened', now)
  return {'open', 1, st, tostring(now)}
end
redis.call('HSET', KEYS[1], 'failures', n, 'first', first)
return {'closed', 0, st, '0'}
`)

// Allow returns nil when a call may go out, or a *ThrottledError with the
// rest of the cool-down (or of a running probe). When Redis cannot
// answer, calls go out: the breaker protects the provider, not Redis.
func (b *Breaker) Allow(ctx context.Context) error {
	v, err := allowScript.Run(ctx, b.rdb, []string{b.key, b.pauseKey}, probeFor.Milliseconds(), pausedRecheck.Milliseconds()).Slice()
	if err != nil || len(v) != 3 {
		return nil
	}
	to, _ := v[2].(string)
	wait, _ := v[1].(int64)
	if to == "paused" {
		return &ThrottledError{Account: b.account, Wait: time.Duration(wait) * time.Millisecond, Reason: reasonPaused}
	}
	if to != "" {
		b.changed(Open, to)
	}
	if n, _ := v[0].(int64); n == 1 {
		return nil
	}
	return &ThrottledError{Account: b.account, Wait: time.Duration(wait) * time.Millisecond, Reason: reasonBreaker}
}

// Record counts a call's outcome: ok false for a retryable failure of
// the provider (5xx, timeout, connection), true for any answer that
// shows it up (2xx, 4xx).
func (b *Breaker) Record(ctx context.Context, ok bool) {
	if b.cfg.Disabled {
		return
	}
	flag := "0"
	if ok {
		flag = "1"
	}
	v, err := recordScript.Run(ctx, b.rdb, []string{b.key}, flag, b.cfg.Window.Milliseconds(), b.cfg.Failures, b.cfg.CoolDown.Milliseconds()).Slice()
	if err != nil || len(v) != 4 {
		return
	}
	if changed, _ := v[1].(int64); changed == 1 {
		to, _ := v[0].(string)
		from, _ := v[2].(string)
		ms, _ := v[3].(string)
		opened, _ := strconv.ParseInt(ms, 10, 64)
		b.changedAt(from, to, time.UnixMilli(opened))
	}
}

// State is the breaker's state now.
func (b *Breaker) State(ctx context.Context) (string, error) {
	st, err := b.rdb.HGet(ctx, b.key, "state").Result()
	if err == redis.Nil {
		return Closed, nil
	}
	return st, err
}

func (b *Breaker) changed(from, to string) { b.changedAt(from, to, time.Time{}) }

func (b *Breaker) changedAt(from, to string, opened time.Time) {
	if b.OnChange != nil && from != to {
		b.OnChange(Change{Provider: b.provider, Account: b.accName, From: from, To: to, OpenedAt: opened})
	}
}

// String names the breaker.
func (b *Breaker) String() string { return fmt.Sprintf("breaker of %s", b.account) }

// pausedRecheck is how long a task of a paused account waits before it
// looks again.
const pausedRecheck = 30 * time.Second

func pauseKey(prefix, provider, account string) string {
	return prefix + ":{ops}:paused:" + provider + ":" + account
}

// Pauses pauses and resumes provider accounts by hand, for every replica:
// a paused account's calls are held back (its tasks wait without using
// attempts) until it is resumed.
type Pauses struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewPauses returns the pauses of the accounts under prefix.
func NewPauses(rdb redis.UniversalClient, prefix string) *Pauses {
	return &Pauses{rdb: rdb, prefix: prefix}
}

// Pause pauses provider's account; by says who (kept with the pause).
func (p *Pauses) Pause(ctx context.Context, provider, account, by string) error {
	return p.rdb.Set(ctx, pauseKey(p.prefix, provider, account), by, 0).Err()
}

// Resume resumes provider's account; it reports whether it was paused.
func (p *Pauses) Resume(ctx context.Context, provider, account string) (bool, error) {
	n, err := p.rdb.Del(ctx, pauseKey(p.prefix, provider, account)).Result()
	return n > 0, err
}

// PausedBy says who paused provider's account ("" and false: it is not
// paused).
func (p *Pauses) PausedBy(ctx context.Context, provider, account string) (string, bool, error) {
	by, err := p.rdb.Get(ctx, pauseKey(p.prefix, provider, account)).Result()
	if err == redis.Nil {
		return "", false, nil
	}
	return by, err == nil, err
}
