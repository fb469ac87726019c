package runbook_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/ops"
)

// safeResize is the shipped example's shape: snapshot → resize (on
// failure restore); finally delete the snapshot.
func safeResize() runbook.Definition {
	return runbook.Definition{
		Name: "safe-resize",
		Inputs: []runbook.Input{
			{Name: "instance", Type: runbook.TypeString, Required: true},
			{Name: "type", Type: runbook.TypeString, Default: "lsw.m5a.large"},
		},
		Steps: []runbook.Step{
			{ID: "snap", Kind: "instance:snapshot", Provider: "leaseweb", Params: map[string]any{"instance_id": "{{ .inputs.instance }}", "name": "before-resize"}},
			{ID: "resize", Kind: "instance:resize", Provider: "leaseweb", Params: map[string]any{"instance_id": "{{ .inputs.instance }}", "type": "{{ .inputs.type }}"},
				OnFailure: []runbook.Step{{ID: "restore", Kind: "instance:snapshot_restore", Provider: "leaseweb",
					Params: map[string]any{"instance_id": "{{ .inputs.instance }}", "snapshot_id": "{{ .steps.snap.result.snapshot_id }}"}}}},
		},
		Finally: []runbook.Step{{ID: "cleanup", Kind: "instance:snapshot_delete", Provider: "leaseweb",
			Params: map[string]any{"instance_id": "{{ .inputs.instance }}", "snapshot_id": "{{ .steps.snap.result.snapshot_id }}"}}},
	}
}

func TestCompileAndRender(t *testing.T) {
	rb, err := runbook.Compile(safeResize())
	require.NoError(t, err)
	assert.Equal(t, []string{"snap"}, rb.Needs("resize"), "steps run in order")
	in, err := rb.Inputs(map[string]any{"instance": "0b4f2c9e-0000-4000-8000-000000000001"})
	require.NoError(t, err)
	assert.Equal(t, "lsw.m5a.large", in["type"], "the default")
	params, err := rb.Render("restore", in, map[string]runbook.StepState{
		"snap": {Result: json.RawMessage(`{"snapshot_id":"5e1f","instance_id":"x"}`), State: "succeeded"}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"instance_id":"0b4f2c9e-0000-4000-8000-000000000001","snapshot_id":"5e1f"}`, string(params))

	_, err = rb.Render("restore", in, map[string]runbook.StepState{})
	require.Error(t, err, "a step it refers to has not run")
	assert.Contains(t, err.Error(), `runbook "safe-resize" step "restore" params.snapshot_id`)

	_, err = rb.Inputs(map[string]any{})
	assert.EqualError(t, err, `runbook "safe-resize" inputs.instance: required`)
	_, err = rb.Inputs(map[string]any{"instance": 3})
	assert.EqualError(t, err, `runbook "safe-resize" inputs.instance: want a string, got 3`)
	_, err = rb.Inputs(map[string]any{"instance": "x", "colour": "red"})
	assert.EqualError(t, err, `runbook "safe-resize" inputs.colour: not an input of this runbook`)
}

// A value that is one template alone keeps a number's type.
func TestRenderKeepsNumbers(t *testing.T) {
	rb, err := runbook.Compile(runbook.Definition{Name: "scale",
		Inputs: []runbook.Input{{Name: "asg", Type: runbook.TypeString, Required: true}, {Name: "n", Type: runbook.TypeInt, Default: 3}},
		Steps: []runbook.Step{{ID: "up", Kind: "asg:scale", Provider: "leaseweb",
			Params: map[string]any{"asg_id": "{{ .inputs.asg }}", "desired_amount": "{{ .inputs.n }}", "note": "to {{ .inputs.n }}"}}}})
	require.NoError(t, err)
	in, err := rb.Inputs(map[string]any{"asg": "a-1"})
	require.NoError(t, err)
	params, err := rb.Render("up", in, nil)
	require.NoError(t, err)
	assert.JSONEq(t, `{"asg_id":"a-1","desired_amount":3,"note":"to 3"}`, string(params))
	in, err = rb.Inputs(map[string]any{"asg": "12345"})
	require.NoError(t, err)
	params, err = rb.Render("up", in, nil)
	require.NoError(t, err)
	assert.JSONEq(t, `{"asg_id":"12345","desired_amount":3,"note":"to 3"}`, string(params), "a string that looks like a number stays a string")
}

// Bad definitions are refused at compile time, naming the runbook, the
// step and the field.
func TestCompileRefusesBadDefinitions(t *testing.T) {
	for name, c := range map[string]struct {
		mod  func(*runbook.Definition)
		want string
	}{
		"UnknownKind": {func(d *runbook.Definition) { d.Steps[0].Kind = "instance:teleport" },
			`runbook "safe-resize" step "snap" kind: `},
		"UnknownInput": {func(d *runbook.Definition) { d.Steps[0].Params["name"] = "{{ .inputs.nope }}" },
			`runbook "safe-resize" step "snap" params.name: unknown input "nope"`},
		"UnknownStep": {func(d *runbook.Definition) { d.Steps[1].Params["type"] = "{{ .steps.ghost.handle }}" },
			`runbook "safe-resize" step "resize" params.type: step "ghost" is not one this step runs after`},
		"LaterStep": {func(d *runbook.Definition) { d.Steps[0].Params["name"] = "{{ .steps.resize.handle }}" },
			`runbook "safe-resize" step "snap" params.name: step "resize" is not one this step runs after`},
		"UnknownResultField": {func(d *runbook.Definition) {
			d.Finally[0].Params["snapshot_id"] = "{{ .steps.snap.result.snapshot_uuid }}"
		},
			`runbook "safe-resize" step "cleanup" params.snapshot_id: the result of step "snap" (instance:snapshot on leaseweb) has no field "snapshot_uuid"`},
		"BadTemplate": {func(d *runbook.Definition) { d.Steps[0].Params["name"] = "{{ .inputs.instance " },
			`runbook "safe-resize" step "snap" params.name: template:`},
		"Cycle": {func(d *runbook.Definition) { d.Steps[0].Needs = []string{"resize"} },
			`runbook "safe-resize" step "snap" needs: a cycle: snap → resize → snap`},
		"UnknownNeed": {func(d *runbook.Definition) { d.Steps[1].Needs = []string{"cleanup"} },
			`runbook "safe-resize" step "resize" needs: unknown step "cleanup"`},
		"DuplicateID": {func(d *runbook.Definition) { d.Finally[0].ID = "snap" },
			`runbook "safe-resize" step "snap" id: step ids must be unique`},
		"BadDefault": {func(d *runbook.Definition) { d.Inputs[1].Default = 7 },
			`runbook "safe-resize" inputs[1].default: want a string, got 7`},
		"NeedsInFinally": {func(d *runbook.Definition) { d.Finally[0].Needs = []string{"snap"} },
			`runbook "safe-resize" step "cleanup" needs: on_failure and finally steps run in order`},
		"NoSteps": {func(d *runbook.Definition) { d.Steps = nil; d.Finally = nil },
			`runbook "safe-resize" steps: at least one step is required`},
	} {
		t.Run(name, func(t *testing.T) {
			d := safeResize()
			c.mod(&d)
			_, err := runbook.Compile(d)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// Steps that declare needs run as a DAG: independent ones in parallel.
func TestNeedsMakeADAG(t *testing.T) {
	rb, err := runbook.Compile(runbook.Definition{Name: "cdn-rollout",
		Steps: []runbook.Step{
			{ID: "dist", Kind: "cdn:distribution_ensure", Provider: "ionos", Params: map[string]any{"domain": "cdn.example.com"}},
			{ID: "purge", Kind: "cdn:purge", Provider: "ucdn", Needs: []string{"dist"}, Params: map[string]any{"zone_name": "shop", "zone_type": "objects", "files": []any{"/a"}}},
			{ID: "inval", Kind: "cdn:invalidate", Provider: "leaseweb", Needs: []string{"dist"}, Params: map[string]any{"files": []any{"/a"}}},
		}})
	require.NoError(t, err)
	assert.Equal(t, []string{"dist"}, rb.Needs("purge"))
	assert.Equal(t, []string{"dist"}, rb.Needs("inval"))
	assert.Empty(t, rb.Needs("dist"))
}

// The console's graph: steps in columns by what they need (parallel
// steps share a column), compensation under its step, finally last.
func TestGraphLayout(t *testing.T) {
	t.Parallel()
	def := runbook.Definition{Name: "g",
		Steps: []runbook.Step{
			{ID: "a", Kind: "cdn:purge", Provider: "ucdn", Params: map[string]any{"zone_name": "z", "zone_type": "objects", "files": []any{"/a"}}},
			{ID: "b", Kind: "cdn:purge", Provider: "ucdn", Needs: []string{"a"}, Params: map[string]any{"zone_name": "z", "zone_type": "objects", "files": []any{"/b"}},
				OnFailure: []runbook.Step{{ID: "undo", Kind: "cdn:purge", Provider: "ucdn", Params: map[string]any{"zone_name": "z", "zone_type": "objects", "files": []any{"/u"}}}}},
			{ID: "c", Gate: &runbook.Gate{Message: "ok?"}, Needs: []string{"a"}},
		},
		Finally: []runbook.Step{{ID: "f", Kind: "cdn:purge", Provider: "ucdn", Params: map[string]any{"zone_name": "z", "zone_type": "objects", "files": []any{"/f"}}}},
	}
	rb, err := runbook.Compile(def)
	require.NoError(t, err)
	run := &runbook.Run{Steps: []runbook.RunStep{{ID: "a", State: "succeeded", OperationID: "op-a"}, {ID: "b", State: "running", OperationID: "op-b"},
		{ID: "c", State: "waiting"}, {ID: "f", State: "pending"}}}
	g := rb.Graph(run)
	at := map[string]runbook.GraphNode{}
	for _, n := range g.Nodes {
		at[n.ID] = n
	}
	require.Len(t, at, 5)
	assert.Less(t, at["a"].X, at["b"].X, "b needs a: right of it")
	assert.Equal(t, at["b"].X, at["c"].X, "b and c both need only a: one column")
	assert.NotEqual(t, at["b"].Y, at["c"].Y)
	assert.Equal(t, at["b"].X, at["undo"].X, "compensation under its step")
	assert.Greater(t, at["undo"].Y, at["c"].Y, "below the main steps")
	assert.Greater(t, at["f"].X, at["b"].X, "finally last")
	assert.Equal(t, "", at["undo"].State, "not needed (yet)")
	assert.Equal(t, "op-b", at["b"].OperationID)
	assert.True(t, at["c"].Gate)
	var edges []string
	for _, e := range g.Edges {
		edges = append(edges, e.From+">"+e.To+":"+e.Style)
	}
	assert.ElementsMatch(t, []string{"a>b:needs", "a>c:needs", "b>undo:on_failure", "b>f:finally", "c>f:finally"}, edges)
	for _, n := range g.Nodes {
		assert.LessOrEqual(t, n.X+n.W, g.Width)
		assert.LessOrEqual(t, n.Y+n.H, g.Height)
	}
}

// In JSON a gate's timeout is a duration string; a bad one, or an
// unknown key, is an error naming the field under the gate.
func TestGateJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		Runbook runbook.Definition `json:"runbook"`
	}
	body := func(gate string) []byte {
		return []byte(`{"runbook":{"name":"x","steps":[{"id":"a","gate":` + gate + `}]}}`)
	}
	require.NoError(t, ops.DecodeObject(body(`{"message":"m","timeout":"30m"}`), &v))
	assert.Equal(t, 30*time.Minute, v.Runbook.Steps[0].Gate.Timeout)
	b, err := json.Marshal(v.Runbook.Steps[0].Gate)
	require.NoError(t, err)
	assert.JSONEq(t, `{"message":"m","timeout":"30m0s"}`, string(b))
	for gate, want := range map[string]string{
		`{"message":"m","timeout":"soon"}`: `runbook.steps[0].gate.timeout: want a duration such as "30m" or "2h"`,
		`{"message":"m","timout":"1m"}`:    `runbook.steps[0].gate.timout: unknown field`,
		`[]`:                               `runbook.steps[0].gate: want {"message": "…", "timeout": "30m"}`,
	} {
		err := ops.DecodeObject(body(gate), &v)
		require.Error(t, err, gate)
		assert.Equal(t, want, err.Error(), gate)
	}
}
