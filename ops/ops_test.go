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

func TestEveryKindDeclaresItsResultType(t *testing.T) {
	for _, pt := range ops.ParamsTypes() {
		require.NotNil(t, pt.NewResult, "%s on %s", pt.Kind, pt.Provider)
		a, b := pt.NewResult(), pt.NewResult()
		typ := reflect.TypeOf(a)
		require.Equal(t, reflect.Pointer, typ.Kind(), "%s on %s", pt.Kind, pt.Provider)
		assert.Equal(t, reflect.Struct, typ.Elem().Kind(), "%s on %s", pt.Kind, pt.Provider)
		assert.NotSame(t, a, b, "NewResult returns a new value each time")
	}
}

func TestDecodeResult(t *testing.T) {
	op := ops.Operation{Kind: ops.KindCDNPurge, Provider: ops.ProviderEdgio,
		Result: json.RawMessage(`{"purges":[{"Id":"p1","CompleteDate":null},{"Id":"p2","CompleteDate":"2026-12-01T10:00:00Z","Later":1}]}`)}
	res, err := op.DecodeResult()
	require.NoError(t, err)
	purges := res.(*ops.EdgioPurgeResult).Purges
	require.Len(t, purges, 2)
	assert.Nil(t, purges[0].CompleteDate)
	assert.Equal(t, "2026-12-01T10:00:00Z", *purges[1].CompleteDate)

	for _, empty := range []string{``, `null`} {
		op.Result = json.RawMessage(empty)
		res, err = op.DecodeResult()
		assert.NoError(t, err)
		assert.Nil(t, res)
	}

	op.Result = json.RawMessage(`{"purges":"no"}`)
	_, err = op.DecodeResult()
	assert.ErrorContains(t, err, "result of cdn:purge on edgio")

	op = ops.Operation{Kind: "cdn:nosuch", Provider: ops.ProviderEdgio, Result: json.RawMessage(`{}`)}
	_, err = op.DecodeResult()
	assert.ErrorContains(t, err, "cdn:nosuch on edgio is not a known kind")
}

func TestDecodeProgress(t *testing.T) {
	op := ops.Operation{Progress: json.RawMessage(`{"percentage":40,"task":"Install operating system","finished":2,"total":5}`)}
	p, err := op.DecodeProgress()
	require.NoError(t, err)
	assert.Equal(t, 40, p.Percentage)
	assert.Equal(t, "Install operating system", p.Task)
	assert.Equal(t, 2, *p.Finished)
	assert.Equal(t, 5, *p.Total)

	op.Progress = json.RawMessage(`{"percentage":50,"task":"1/2 complete"}`)
	p, err = op.DecodeProgress()
	require.NoError(t, err)
	assert.Nil(t, p.Finished, "edgio progress counts no tasks")

	op.Progress = nil
	p, err = op.DecodeProgress()
	assert.NoError(t, err)
	assert.Nil(t, p)
}

// Every registered kind carries examples, and each is valid params of its
// type (decoded as strictly as the worker decodes).
func TestExamplesAreValidParams(t *testing.T) {
	for _, pt := range ops.ParamsTypes() {
		require.NotEmpty(t, pt.Examples, "%s on %s", pt.Kind, pt.Provider)
		for _, e := range pt.Examples {
			p := pt.New()
			require.NoError(t, ops.DecodeParams(e, p), "%s on %s: %s", pt.Kind, pt.Provider, e)
			assert.NoError(t, p.Validate(), "%s on %s: %s", pt.Kind, pt.Provider, e)
		}
	}
}
