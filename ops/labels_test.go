package ops_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/ops"
)

// Labels are bounded in count, key shape and value size, and a bad one is
// named.
func TestValidateLabels(t *testing.T) {
	require.NoError(t, ops.ValidateLabels(nil))
	require.NoError(t, ops.ValidateLabels(map[string]string{"change": "CHG-1234", "release": "2026.12.1", "team/owner": "sre", "empty": ""}))
	many := map[string]string{}
	for i := range ops.MaxLabels + 1 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	for name, c := range map[string]struct {
		labels      map[string]string
		field, text string
	}{
		"TooMany":      {many, "labels", "at most 16 labels, got 17"},
		"UpperKey":     {map[string]string{"Change": "x"}, "labels", `key "Change"`},
		"EmptyKey":     {map[string]string{"": "x"}, "labels", `key ""`},
		"LongKey":      {map[string]string{strings.Repeat("k", 64): "x"}, "labels", "1-63"},
		"LongValue":    {map[string]string{"change": strings.Repeat("v", 201)}, "labels.change", "up to 200 printable characters"},
		"ControlValue": {map[string]string{"change": "a\nb"}, "labels.change", "printable"},
	} {
		t.Run(name, func(t *testing.T) {
			err := ops.ValidateLabels(c.labels)
			var ve *ops.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, c.field, ve.Field)
			assert.Contains(t, err.Error(), c.text)
		})
	}
}

// An envelope's labels and declared submitter are checked with the rest.
func TestEnvelopeChecksLabelsAndSubmitter(t *testing.T) {
	env := ops.Envelope{Provider: "ucdn", Account: "default", Params: json.RawMessage(`{"zone_name":"shop","zone_type":"objects","files":["/a"]}`),
		Labels: map[string]string{"change": "CHG-1"}, SubmittedBy: "alice"}
	require.NoError(t, env.Validate(ops.KindCDNPurge))
	env.SubmittedBy = strings.Repeat("a", 101)
	var ve *ops.ValidationError
	require.ErrorAs(t, env.Validate(ops.KindCDNPurge), &ve)
	assert.Equal(t, "submitted_by", ve.Field)
	env.SubmittedBy, env.Labels = "alice\x00", nil
	require.ErrorAs(t, env.Validate(ops.KindCDNPurge), &ve)
	assert.Equal(t, "submitted_by", ve.Field)
}

// The resource is the params' own id, typed, or the account for kinds
// that act on all of it.
func TestResourceOf(t *testing.T) {
	for params, want := range map[string]string{
		`{"server_id":"12345","operating_system_id":"DEBIAN_11_64BIT"}`: "leaseweb:server:12345",
		`{"zone_name":"shop","zone_type":"objects","files":["/a"]}`:     "leaseweb:zone:shop",
		`{"files":["/a"]}`: "leaseweb:account:eu",
		`{"instance_id":"0b4f2c9e-0000-4000-8000-000000000001","snapshot_id":"x"}`: "leaseweb:instance:0b4f2c9e-0000-4000-8000-000000000001",
		`not json`: "leaseweb:account:eu",
	} {
		assert.Equal(t, want, ops.ResourceOf("leaseweb", "eu", json.RawMessage(params)), params)
	}
	assert.Equal(t, "edgio:account:default", ops.ResourceOf("edgio", "", json.RawMessage(`{"media_path":"/a"}`)))
}

func TestActorString(t *testing.T) {
	assert.Equal(t, "token ci", (&ops.Actor{Name: "ci", Via: ops.ViaAPI, Authenticated: true}).String())
	assert.Equal(t, "cli alice (unauthenticated)", (&ops.Actor{Name: "alice", Via: ops.ViaCLI}).String())
	assert.Equal(t, "schedule nightly", (&ops.Actor{Name: "nightly", Via: ops.ViaSchedule, Authenticated: true}).String())
	var none *ops.Actor
	assert.Empty(t, none.String())
}
