package tasks

import (
	"errors"
	"math"
	"time"

	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/webhooks"
)

// retryAfter returns the wait a provider or receiver asked for, if any.
func retryAfter(err error) (time.Duration, bool) {
	var perr *providers.Error
	if errors.As(err, &perr) && perr.RetryAfter > 0 {
		return honour(perr.RetryAfter), true
	}
	var derr *webhooks.DeliveryError
	if errors.As(err, &derr) && derr.RetryAfter > 0 {
		return honour(derr.RetryAfter), true
	}
	return 0, false
}

// launchBackoff is 1 s × 2^n, capped at max, ±20%; rnd returns a value
// in [0, 1).
func launchBackoff(n int, rnd func() float64, max time.Duration) time.Duration {
	d := math.Min(float64(time.Second)*math.Pow(2, float64(n)), float64(max))
	return time.Duration(d * (0.8 + 0.4*rnd()))
}

// honour turns a Retry-After into an asynq delay that is never shorter:
// asynq stores scheduled and retry times in whole Unix seconds (truncated),
// so a task delayed by d may run up to 1 s early. One extra second makes
// the real wait at least d.
func honour(retryAfter time.Duration) time.Duration {
	return retryAfter + time.Second
}
