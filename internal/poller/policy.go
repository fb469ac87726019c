// Package poller holds polling policies: how long to wait before each
// status check of a provider's asynchronous job and when to give up.
//
// A Policy is plain data loaded from config, and Next is a pure function
// of the attempt number and an injected random source, so schedules are
// testable without a clock.
package poller

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Policy is the backoff schedule of one operation kind.
type Policy struct {
	// Initial is the wait before the first poll after launch. Required (> 0).
	Initial time.Duration `yaml:"initial"`
	// Multiplier grows the wait after each poll; 1 keeps it constant.
	// Must be >= 1.
	Multiplier float64 `yaml:"multiplier"`
	// Max caps a single wait. Must be >= Initial.
	Max time.Duration `yaml:"max"`
	// Jitter spreads each wait by ±Jitter×wait, in [0, 1). 0 disables it.
	Jitter float64 `yaml:"jitter"`
	// Deadline bounds the whole operation, from its launch at the provider.
	// Past it the operation ends timed_out. Required (> 0).
	Deadline time.Duration `yaml:"deadline"`
}

// Validate reports the first invalid field, named as in config.
func (p Policy) Validate() error {
	switch {
	case p.Initial <= 0:
		return errors.New("initial: must be > 0")
	case p.Multiplier < 1:
		return errors.New("multiplier: must be >= 1")
	case p.Max < p.Initial:
		return errors.New("max: must be >= initial")
	case p.Jitter < 0 || p.Jitter >= 1:
		return errors.New("jitter: must be in [0, 1)")
	case p.Deadline <= 0:
		return errors.New("deadline: must be > 0")
	}
	return nil
}

// Next returns the wait before poll number attempt (1 = the first poll after
// launch). rnd returns a value in [0, 1); nil means no jitter.
func (p Policy) Next(attempt int, rnd func() float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := float64(p.Initial) * math.Pow(p.Multiplier, float64(attempt-1))
	if d > float64(p.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(p.Max)
	}
	if p.Jitter > 0 && rnd != nil {
		d += d * p.Jitter * (2*rnd() - 1)
	}
	if d < float64(time.Millisecond) {
		d = float64(time.Millisecond)
	}
	return time.Duration(d)
}

// Delay returns the wait before poll number attempt, raised to retryAfter
// when the provider asked for a longer pause.
func (p Policy) Delay(attempt int, retryAfter time.Duration, rnd func() float64) time.Duration {
	d := p.Next(attempt, rnd)
	if retryAfter > d {
		return retryAfter
	}
	return d
}

func (p Policy) String() string {
	return fmt.Sprintf("initial=%s multiplier=%g max=%s jitter=%g deadline=%s", p.Initial, p.Multiplier, p.Max, p.Jitter, p.Deadline)
}
