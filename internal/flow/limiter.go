// Package flow is the flow control every worker replica shares through
// Redis: request-rate limits per provider account.
package flow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// MaxWait is how long a call waits in process for its turn before the
// limiter gives the wait back to the caller (a *ThrottledError): a worker
// goroutine is not held longer.
const MaxWait = 500 * time.Millisecond

// ThrottledError says a call was not sent: the account's rate limit (or a
// provider's Retry-After that holds the whole account) leaves no room for
// Wait. The caller comes back later; no attempt is used.
type ThrottledError struct {
	// Account is "provider:account".
	Account string
	Wait    time.Duration
	// Reason is what holds the call back ("" the rate limit).
	Reason string
}

// What holds a call back, as ThrottledError.Cause names it.
const (
	CauseRateLimit  = "rate_limit"
	CauseRetryAfter = "retry_after"
	CauseBreaker    = "circuit_open"
	CausePaused     = "paused"
)

// Reasons of held calls.
const (
	reasonRetryAfter = "held by the provider's Retry-After"
	reasonBreaker    = "circuit breaker open"
	reasonPaused     = "paused by an operator"
)

// Cause names what holds the call back, for metrics: one of the Cause*
// constants.
func (e *ThrottledError) Cause() string {
	switch e.Reason {
	case reasonRetryAfter:
		return CauseRetryAfter
	case reasonBreaker:
		return CauseBreaker
	case reasonPaused:
		return CausePaused
	}
	return CauseRateLimit
}

// Split returns the provider and account of e.Account.
func (e *ThrottledError) Split() (provider, account string) {
	provider, account, _ = strings.Cut(e.Account, ":")
	return provider, account
}

func (e *ThrottledError) Error() string {
	why := e.Reason
	if why == "" {
		why = "rate limit"
	}
	return fmt.Sprintf("%s of %s: next call in %s", why, e.Account, e.Wait.Round(time.Millisecond))
}

// Limiter is one provider account's rate limit, shared by every replica
// (GCRA in Redis, github.com/go-redis/redis_rate). A provider's 429 with
// Retry-After holds the whole account for that long (Hold). When Redis
// cannot answer, the process falls back to a limiter of its own at the
// same rate, so a Redis outage slows calls rather than stopping them.
type Limiter struct {
	rdb     redis.UniversalClient
	gcra    *redis_rate.Limiter
	limit   redis_rate.Limit
	key     string // the GCRA key (redis_rate adds "rate:")
	holdKey string
	account string
	local   *rate.Limiter
	maxWait time.Duration
	sleep   func(context.Context, time.Duration) error
}

// NewLimiter returns the limiter of provider's account: perSecond calls a
// second (fractions allowed) with bursts of burst, keys under prefix (the
// store's prefix: every key shares the {ops} hash tag, so it works on
// Redis Cluster).
func NewLimiter(rdb redis.UniversalClient, prefix, provider, account string, perSecond float64, burst int) *Limiter {
	burst = max(burst, 1)
	// redis_rate counts whole events per period: a fraction per second is
	// counted per minute or hour instead.
	lim := redis_rate.Limit{Rate: int(math.Round(perSecond)), Burst: burst, Period: time.Second}
	if perSecond < 10 && perSecond != math.Round(perSecond) {
		lim = redis_rate.Limit{Rate: int(math.Round(perSecond * 3600)), Burst: burst, Period: time.Hour}
	}
	lim.Rate = max(lim.Rate, 1)
	name := provider + ":" + account
	return &Limiter{
		rdb: rdb, gcra: redis_rate.NewLimiter(rdb), limit: lim,
		key:     prefix + ":{ops}:ratelimit:" + name,
		holdKey: prefix + ":{ops}:ratehold:" + name,
		account: name,
		local:   rate.NewLimiter(rate.Limit(perSecond), burst),
		maxWait: MaxWait,
		sleep:   sleepCtx,
	}
}

// Wait returns when the account may make a call, after at most MaxWait;
// a longer wait is a *ThrottledError, and then no call was counted.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		hold, err := l.rdb.PTTL(ctx, l.holdKey).Result()
		if err != nil {
			return l.local.Wait(ctx)
		}
		if hold > 0 {
			if err := l.pause(ctx, hold, reasonRetryAfter); err != nil {
				return err
			}
			continue
		}
		res, err := l.gcra.Allow(ctx, l.key, l.limit)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return l.local.Wait(ctx)
		}
		if res.Allowed > 0 {
			return nil
		}
		if err := l.pause(ctx, res.RetryAfter, ""); err != nil {
			return err
		}
	}
}

// pause sleeps d, or gives up with a *ThrottledError when d is over the
// limiter's MaxWait.
func (l *Limiter) pause(ctx context.Context, d time.Duration, reason string) error {
	if d > l.maxWait {
		return &ThrottledError{Account: l.account, Wait: d, Reason: reason}
	}
	return l.sleep(ctx, d)
}

// Hold stops the account's calls on every replica for d (a provider's
// Retry-After), unless a longer hold is already set.
func (l *Limiter) Hold(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	if cur, err := l.rdb.PTTL(ctx, l.holdKey).Result(); err == nil && cur >= d {
		return
	}
	_ = l.rdb.Set(ctx, l.holdKey, "1", d).Err()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// IsThrottled reports whether err is (or wraps) a *ThrottledError, and
// how long to wait.
func IsThrottled(err error) (time.Duration, bool) {
	var te *ThrottledError
	if errors.As(err, &te) {
		return te.Wait, true
	}
	return 0, false
}
