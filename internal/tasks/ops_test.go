package tasks_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/edgio"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// The public params types state provider limits and values of their own;
// they agree with the provider clients.
func TestOpsAgreesWithTheProviderClients(t *testing.T) {
	assert.Equal(t, edgio.MaxOutstanding, ops.EdgioMaxOutstanding)
	assert.Equal(t, slices.Sorted(maps.Keys(edgio.MediaTypes)), ops.EdgioMediaTypes)
	assert.Equal(t, ucdn.ZoneTypeObjects, ops.ZoneTypeObjects)
	assert.Equal(t, ucdn.ZoneTypeLivestream, ops.ZoneTypeLivestream)
}

// Every (kind, provider) with a params type is registered with its
// defaults, and the defaults are the documented ones.
func TestEveryKindIsRegistered(t *testing.T) {
	specs := tasks.Specs()
	assert.Len(t, specs, len(ops.ParamsTypes()))
	pol := func(initial, max, deadline time.Duration) poller.Policy {
		return poller.Policy{Initial: initial, Multiplier: 1.5, Max: max, Jitter: 0.1, Deadline: deadline}
	}
	assert.Equal(t, map[string]poller.Policy{
		"cdn:purge":                 pol(2*time.Second, 30*time.Second, 30*time.Minute),
		"server:install":            pol(30*time.Second, 2*time.Minute, 4*time.Hour),
		"server:rescue":             pol(15*time.Second, time.Minute, time.Hour),
		"server:hardware_scan":      pol(15*time.Second, time.Minute, 2*time.Hour),
		"server:ipmi_reset":         pol(15*time.Second, time.Minute, time.Hour),
		"server:power_cycle":        pol(5*time.Second, 30*time.Second, 15*time.Minute),
		"server:power_on":           pol(5*time.Second, 30*time.Second, 15*time.Minute),
		"server:power_off":          pol(5*time.Second, 30*time.Second, 15*time.Minute),
		"server:job_retry":          pol(30*time.Second, 2*time.Minute, 4*time.Hour),
		"instance:reinstall":        pol(10*time.Second, time.Minute, time.Hour),
		"vps:reinstall":             pol(10*time.Second, time.Minute, time.Hour),
		"instance:snapshot_restore": pol(10*time.Second, time.Minute, 2*time.Hour),
		"vps:snapshot_restore":      pol(10*time.Second, time.Minute, 2*time.Hour),
		"instance:snapshot_delete":  pol(5*time.Second, 30*time.Second, 30*time.Minute),
		"vps:snapshot_delete":       pol(5*time.Second, 30*time.Second, 30*time.Minute),
		"instance:snapshot":         pol(10*time.Second, time.Minute, 2*time.Hour),
		"vps:snapshot":              pol(10*time.Second, time.Minute, 2*time.Hour),
		"asg:scale":                 pol(5*time.Second, 30*time.Second, time.Hour),
		"instance:resize":           pol(5*time.Second, 30*time.Second, time.Hour),
		"cdn:invalidate":            pol(5*time.Second, 30*time.Second, 30*time.Minute),
		"cdn:distribution_ensure":   pol(5*time.Second, 30*time.Second, time.Hour),
		"cdn:distribution_delete":   pol(5*time.Second, 30*time.Second, time.Hour),
		"asg:create":                pol(5*time.Second, 30*time.Second, time.Hour),
		"asg:delete":                pol(5*time.Second, 30*time.Second, time.Hour),
	}, tasks.DefaultPolicies())
	for _, s := range specs {
		// A server job can be canceled at Leaseweb, and a UCDN purge that
		// is still waiting; nothing else.
		cancelable := strings.HasPrefix(s.Kind, "server:") && !strings.HasPrefix(s.Kind, "server:power_") ||
			s.Kind == ops.KindCDNPurge && s.Provider == ops.ProviderUCDN
		assert.Equal(t, cancelable, s.Cancelable, "%s on %s", s.Kind, s.Provider)
	}
}
