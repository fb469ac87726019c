package opstore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opsworker/opsworker/ops"
)

// MaxResourceLen bounds a resource in a search.
const MaxResourceLen = 300

// SetSearch sets f's search dimensions from their text form, as the HTTP
// API's query and the CLI's flags give them: labels as key=value (all must
// match), a resource, an actor's name, and since/until as RFC 3339 times.
// On error it names the bad parameter: label, resource, actor, since or
// until.
func (f *Filter) SetSearch(labels []string, resource, actor, since, until string) (string, error) {
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return "label", fmt.Errorf("want key=value, got %q", l)
		}
		if f.Labels == nil {
			f.Labels = map[string]string{}
		}
		f.Labels[k] = v
	}
	var ve *ops.ValidationError
	if err := ops.ValidateLabels(f.Labels); errors.As(err, &ve) {
		return "label", errors.New(ve.Message)
	}
	if len(resource) > MaxResourceLen {
		return "resource", fmt.Errorf("at most %d characters", MaxResourceLen)
	}
	if len(actor) > ops.MaxSubmittedBy {
		return "actor", fmt.Errorf("at most %d characters", ops.MaxSubmittedBy)
	}
	f.Resource, f.Actor = resource, actor
	for _, p := range []struct {
		name, v string
		to      *time.Time
	}{{"since", since, &f.Since}, {"until", until, &f.Until}} {
		if p.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, p.v)
		if err != nil {
			return p.name, fmt.Errorf("want an RFC 3339 time such as 2026-12-01T09:00:00Z, got %q", p.v)
		}
		*p.to = t
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return "until", errors.New("before since")
	}
	return "", nil
}
