package tasks_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/opsworker/opsworker/internal/providers/edgio"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
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
