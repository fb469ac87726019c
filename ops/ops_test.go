package ops_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/ops"
)

// Every registered params type says its own kind and provider, decodes
// its zero value's encoding, and NewParams finds it.
func TestParamsTypesAreConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, pt := range ops.ParamsTypes() {
		key := pt.Kind + "/" + pt.Provider
		assert.False(t, seen[key], "registered twice: %s", key)
		seen[key] = true
		p := pt.New()
		assert.Equal(t, pt.Kind, p.Kind(), key)
		assert.Equal(t, pt.Provider, p.Provider(), key)
		assert.Equal(t, reflect.Pointer, reflect.TypeOf(p).Kind(), key)
		got, err := ops.NewParams(pt.Kind, pt.Provider)
		require.NoError(t, err, key)
		assert.Equal(t, reflect.TypeOf(p), reflect.TypeOf(got), key)
		raw, err := json.Marshal(p)
		require.NoError(t, err)
		require.NoError(t, ops.DecodeParams(raw, pt.New()), key)
	}
	assert.Contains(t, ops.Kinds(), ops.KindServerInstall)
	assert.Equal(t, []string{ops.ProviderEdgio, ops.ProviderIONOS, ops.ProviderLeaseweb, ops.ProviderUCDN}, ops.Providers())
}

func TestNewParamsNamesTheField(t *testing.T) {
	_, err := ops.NewParams("cdn:nuke", "ucdn")
	var ve *ops.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "task_type", ve.Field)
	_, err = ops.NewParams(ops.KindCDNPurge, "akamai")
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "provider", ve.Field)
	_, err = ops.NewParams(ops.KindCDNPurge, "")
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "provider", ve.Field)
}

func TestStates(t *testing.T) {
	for _, s := range ops.States {
		assert.True(t, s.Valid())
	}
	assert.False(t, ops.State("paused").Valid())
	assert.True(t, ops.StateTimedOut.Terminal())
	assert.False(t, ops.StateRunning.Terminal())
}

// The README's table of kinds lists every registered (kind, provider),
// and nothing else.
func TestREADMEListsEveryKind(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	rows := regexp.MustCompile("(?m)^\\| `([a-z_]+:[a-z_]+)` \\| `([a-z]+)` \\|").FindAllStringSubmatch(string(b), -1)
	listed := map[string]bool{}
	for _, r := range rows {
		listed[r[1]+" on "+r[2]] = true
	}
	registered := map[string]bool{}
	for _, pt := range ops.ParamsTypes() {
		registered[pt.Kind+" on "+pt.Provider] = true
	}
	assert.Equal(t, registered, listed, "README.md's kinds table")
}
