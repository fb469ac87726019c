package poller_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/opsworker/opsworker/internal/poller"
)

func TestNext(t *testing.T) {
	t.Parallel()
	p := poller.Policy{Initial: time.Second, Multiplier: 2, Max: 10 * time.Second, Deadline: time.Hour}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		assert.Equal(t, w, p.Next(i+1, nil), "attempt %d", i+1)
	}
	assert.Equal(t, time.Second, p.Next(0, nil), "attempt < 1 is the first")
	assert.Equal(t, 10*time.Second, p.Next(10_000, nil), "huge attempt numbers stay at max")
}

func TestJitterBounds(t *testing.T) {
	t.Parallel()
	p := poller.Policy{Initial: 10 * time.Second, Multiplier: 1, Max: 10 * time.Second, Jitter: 0.2, Deadline: time.Hour}
	assert.Equal(t, 8*time.Second, p.Next(1, func() float64 { return 0 }))
	assert.Equal(t, 10*time.Second, p.Next(1, func() float64 { return 0.5 }))
	assert.InDelta(t, float64(12*time.Second), float64(p.Next(1, func() float64 { return 0.999999 })), float64(time.Millisecond))
}

func TestDelayHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	p := poller.Policy{Initial: time.Second, Multiplier: 2, Max: time.Minute, Deadline: time.Hour}
	assert.Equal(t, 30*time.Second, p.Delay(1, 30*time.Second, nil))
	assert.Equal(t, 4*time.Second, p.Delay(3, time.Second, nil))
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := poller.Policy{Initial: time.Second, Multiplier: 1.5, Max: time.Minute, Jitter: 0.1, Deadline: time.Hour}
	assert.NoError(t, ok.Validate())
	tests := []struct {
		name  string
		mod   func(*poller.Policy)
		field string
	}{
		{"ZeroInitial", func(p *poller.Policy) { p.Initial = 0 }, "initial"},
		{"ShrinkingMultiplier", func(p *poller.Policy) { p.Multiplier = 0.5 }, "multiplier"},
		{"MaxBelowInitial", func(p *poller.Policy) { p.Max = time.Millisecond }, "max"},
		{"JitterOne", func(p *poller.Policy) { p.Jitter = 1 }, "jitter"},
		{"NegativeJitter", func(p *poller.Policy) { p.Jitter = -0.1 }, "jitter"},
		{"NoDeadline", func(p *poller.Policy) { p.Deadline = 0 }, "deadline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := ok
			tc.mod(&p)
			err := p.Validate()
			if assert.Error(t, err) {
				assert.Contains(t, err.Error(), tc.field+":")
			}
		})
	}
}

func ExamplePolicy_Next() {
	p := poller.Policy{Initial: 2 * time.Second, Multiplier: 1.5, Max: 30 * time.Second, Deadline: 30 * time.Minute}
	for attempt := 1; attempt <= 8; attempt++ {
		fmt.Print(p.Next(attempt, nil), " ")
	}
	fmt.Println()
	// Output: 2s 3s 4.5s 6.75s 10.125s 15.1875s 22.78125s 30s
}
