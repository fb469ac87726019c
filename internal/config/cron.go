package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a schedule spec (robfig/cron/v3 syntax: 5 fields, 6
// with seconds first, or a descriptor) read in time zone tz ("" = UTC).
// "@every D" is aligned to the Unix epoch: it fires at every multiple of
// D since 1970-01-01T00:00:00Z, so independent processes agree on ticks.
// D is a whole number of seconds, at least 1s.
//
// Daylight saving time: a wall-clock time that occurs twice when clocks go
// back fires once (at its first occurrence); one that does not exist when
// clocks go forward is skipped that day (robfig/cron's rule).
func ParseCron(spec, tz string) (cron.Schedule, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("required")
	}
	if strings.Contains(spec, "TZ=") {
		return nil, errors.New("use the timezone key, not CRON_TZ= or TZ= in the spec")
	}
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("timezone %q: %v", tz, err)
		}
		loc = l
	}
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		// robfig/cron rounds an interval under a second up to one second
		// and drops fractions of a second: refuse both rather than fire
		// at another rate than written.
		if every, err := time.ParseDuration(d); err == nil {
			switch {
			case every < time.Second:
				return nil, fmt.Errorf("%s: interval must be at least 1s", spec)
			case every%time.Second != 0:
				return nil, fmt.Errorf("%s: interval must be a whole number of seconds", spec)
			}
		}
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, err
	}
	switch v := s.(type) {
	case *cron.SpecSchedule:
		v.Location = loc
		return onceOnRepeat{v, loc}, nil
	case cron.ConstantDelaySchedule:
		return epochAligned{v.Delay}, nil
	}
	return s, nil
}

// epochAligned fires at every multiple of d since the Unix epoch.
type epochAligned struct{ d time.Duration }

func (e epochAligned) Next(t time.Time) time.Time {
	n := t.UnixNano()/int64(e.d) + 1
	return time.Unix(0, n*int64(e.d)).In(t.Location())
}

// onceOnRepeat drops the second occurrence of a wall-clock time repeated
// when clocks go back (robfig/cron would fire 02:30 twice on that night).
type onceOnRepeat struct {
	inner cron.Schedule
	loc   *time.Location
}

func (o onceOnRepeat) Next(t time.Time) time.Time {
	n := o.inner.Next(t)
	for i := 0; i < 4 && !n.IsZero() && o.repeated(n); i++ {
		n = o.inner.Next(n)
	}
	return n
}

// repeated reports whether the wall-clock time of n already occurred
// shortly before n (the fall-back hour).
func (o onceOnRepeat) repeated(n time.Time) bool {
	wall := n.In(o.loc).Format("2006-01-02 15:04:05")
	for _, back := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		if n.Add(-back).In(o.loc).Format("2006-01-02 15:04:05") == wall {
			return true
		}
	}
	return false
}
