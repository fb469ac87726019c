package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/ops"
)

func generate(t *testing.T) []byte {
	t.Helper()
	c, err := newComments(".")
	require.NoError(t, err)
	doc, err := build(c)
	require.NoError(t, err)
	return doc
}

// The committed document is the one the generator writes from the
// types as they are.
func TestCommittedDocumentIsGenerated(t *testing.T) {
	t.Parallel()
	want := generate(t)
	if bytes.Equal(want, api.OpenAPI) {
		return
	}
	got, wantLines := strings.Split(string(api.OpenAPI), "\n"), strings.Split(string(want), "\n")
	line := 0
	for line < len(got) && line < len(wantLines) && got[line] == wantLines[line] {
		line++
	}
	at := func(lines []string) string {
		if line < len(lines) {
			return strings.TrimSpace(lines[line])
		}
		return "(end of file)"
	}
	t.Fatalf("internal/api/openapi.json is not what the Go types generate: run `go generate ./internal/api` (or `make openapi`) and commit it.\n"+
		"first difference at line %d:\n  committed: %s\n  generated: %s", line+1, at(got), at(wantLines))
}

// Generating twice gives the same bytes (map order does not leak in).
func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	first := generate(t)
	for range 3 {
		require.Equal(t, string(first), string(generate(t)))
	}
}

// compiler loads the document so its component schemas can be compiled.
func compiler(t *testing.T, doc []byte) *jsonschema.Compiler {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	require.NoError(t, c.AddResource("openapi.json", v))
	return c
}

// compileMu serialises Compile: a jsonschema.Compiler is not safe for
// concurrent use, and parallel subtests share one.
var compileMu sync.Mutex

func schemaOf(t *testing.T, c *jsonschema.Compiler, name string) *jsonschema.Schema {
	t.Helper()
	compileMu.Lock()
	defer compileMu.Unlock()
	s, err := c.Compile("openapi.json#/components/schemas/" + name)
	require.NoError(t, err, name)
	return s
}

func decode(t *testing.T, s string) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
	require.NoError(t, err, s)
	return v
}

// validateParams runs the worker's own checks: strict decoding, then
// the type's Validate.
func validateParams(kind, provider string, params []byte) error {
	p, err := ops.NewParams(kind, provider)
	if err != nil {
		return err
	}
	if err := ops.DecodeParams(params, p); err != nil {
		return err
	}
	return p.Validate()
}

// mutation is an example with one change.
type mutation struct {
	what string
	json []byte
}

// mutations removes each key of an example, at every depth, and sets each
// value the schema limits to an enum to a value outside it.
func mutations(t *testing.T, doc map[string]any, schema map[string]any, example any) []mutation {
	var out []mutation
	var walk func(path []any, s map[string]any, v any)
	walk = func(path []any, s map[string]any, v any) {
		s = resolve(t, doc, s)
		switch v := v.(type) {
		case map[string]any:
			props, _ := s["properties"].(map[string]any)
			for _, k := range sortedKeys(v) {
				p := append(slices.Clone(path), k)
				out = append(out, mutation{"without " + pathString(p), edit(t, example, p, nil, true)})
				ps, _ := props[k].(map[string]any)
				if ps == nil {
					continue
				}
				if enum, ok := resolve(t, doc, ps)["enum"].([]any); ok {
					bad := any("not-a-documented-value")
					if _, isNum := enum[0].(float64); isNum {
						bad = 7
					}
					out = append(out, mutation{pathString(p) + " outside its enum", edit(t, example, p, bad, false)})
				}
				walk(p, ps, v[k])
			}
		case []any:
			items, _ := s["items"].(map[string]any)
			for i, e := range v {
				if items != nil {
					walk(append(slices.Clone(path), i), items, e)
				}
			}
		}
	}
	walk(nil, schema, example)
	return out
}

// resolve follows a $ref into the document's components.
func resolve(t *testing.T, doc map[string]any, s map[string]any) map[string]any {
	for {
		r, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		name, ok := strings.CutPrefix(r, componentRef)
		require.True(t, ok, r)
		s = doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
	}
}

func sortedKeys(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func pathString(p []any) string {
	var b strings.Builder
	for _, e := range p {
		if i, ok := e.(int); ok {
			fmt.Fprintf(&b, "[%d]", i)
			continue
		}
		if b.Len() > 0 {
			b.WriteString(".")
		}
		fmt.Fprint(&b, e)
	}
	return b.String()
}

// edit returns example with the value at path removed or replaced.
func edit(t *testing.T, example any, path []any, value any, remove bool) []byte {
	b, err := json.Marshal(example)
	require.NoError(t, err)
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	cur := v
	for _, e := range path[:len(path)-1] {
		if i, ok := e.(int); ok {
			cur = cur.([]any)[i]
		} else {
			cur = cur.(map[string]any)[e.(string)]
		}
	}
	last := path[len(path)-1].(string)
	if remove {
		delete(cur.(map[string]any), last)
	} else {
		cur.(map[string]any)[last] = value
	}
	b, err = json.Marshal(v)
	require.NoError(t, err)
	return b
}

// Each params schema says what the type's Validate says: its examples
// pass both; with any one key removed, or an enum value changed, the
// schema accepts the params exactly when Validate does. So a required
// field in the document is one the worker requires, and an optional one
// is one it lets go.
func TestParamsSchemasAgreeWithValidate(t *testing.T) {
	t.Parallel()
	raw := generate(t)
	c := compiler(t, raw)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, pt := range ops.ParamsTypes() {
		name := reflect.TypeOf(pt.New()).Elem().Name()
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := schemaOf(t, c, name)
			component := schemas[name].(map[string]any)
			exs, _ := component["examples"].([]any)
			require.NotEmpty(t, exs, "%s has no examples", name)
			checked := 0
			for i, ex := range exs {
				b, err := json.Marshal(ex)
				require.NoError(t, err)
				require.NoError(t, validateParams(pt.Kind, pt.Provider, b), "example %d", i)
				require.NoError(t, s.Validate(decode(t, string(b))), "example %d", i)
				for _, m := range mutations(t, doc, component, ex) {
					vErr := validateParams(pt.Kind, pt.Provider, m.json)
					sErr := s.Validate(decode(t, string(m.json)))
					assert.Equal(t, vErr == nil, sErr == nil, "example %d %s: Validate says %v, the schema says %v", i, m.what, vErr, sErr)
					checked++
				}
			}
			t.Logf("%s: %d variations agree", name, checked)
		})
	}
}

// SubmitRequest accepts well-formed submits of any kind and refuses
// missing or mistyped params, mismatched pairs and oversized envelope
// fields.
func TestSubmitRequestSchema(t *testing.T) {
	t.Parallel()
	c := compiler(t, generate(t))
	submit := schemaOf(t, c, "SubmitRequest")
	valid := []string{
		`{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}}`,
		`{"task_type":"cdn:purge","provider":"edgio","params":{"media_path":"/a.png"},"account":"eu-1","callback_url":"https://hooks.example.com/x","idempotency_key":"deploy-42"}`,
		`{"task_type":"server:install","provider":"leaseweb","params":{"server_id":"1","operating_system_id":"UBUNTU_22_04_64BIT","partitions":[{"filesystem":"ext4","mountpoint":"/","size":"*"}]}}`,
	}
	for _, body := range valid {
		assert.NoError(t, submit.Validate(decode(t, body)), body)
	}
	invalid := map[string]string{
		"zone_name missing":         `{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_type":"objects","files":["/a.png"]}}`,
		"zone_type video":           `{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_name":"demo","zone_type":"video","files":["/a.png"]}}`,
		"files empty":               `{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":[]}}`,
		"ucdn params on edgio":      `{"task_type":"cdn:purge","provider":"edgio","params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}}`,
		"unsupported pair":          `{"task_type":"cdn:purge","provider":"ionos","params":{"files":["/a.png"]}}`,
		"callback_url too long":     `{"task_type":"cdn:invalidate","provider":"leaseweb","params":{"files":["/a"]},"callback_url":"https://h.example/` + strings.Repeat("a", 2048) + `"}`,
		"idempotency_key too long":  `{"task_type":"cdn:invalidate","provider":"leaseweb","params":{"files":["/a"]},"idempotency_key":"` + strings.Repeat("k", 201) + `"}`,
		"unknown envelope key":      `{"task_type":"cdn:invalidate","provider":"leaseweb","params":{"files":["/a"]},"Provider":"leaseweb"}`,
		"partition size zero":       `{"task_type":"server:install","provider":"leaseweb","params":{"server_id":"1","operating_system_id":"UBUNTU_22_04_64BIT","partitions":[{"filesystem":"ext4","mountpoint":"/","size":0}]}}`,
		"params missing":            `{"task_type":"vps:snapshot","provider":"leaseweb"}`,
		"asg without a change":      `{"task_type":"asg:scale","provider":"leaseweb","params":{"asg_id":"90b9f2cc-c655-40ea-b01a-58c00e175c96"}}`,
		"asg starts_at alone":       `{"task_type":"asg:scale","provider":"leaseweb","params":{"asg_id":"90b9f2cc-c655-40ea-b01a-58c00e175c96","starts_at":"2026-12-01T08:00:00Z"}}`,
		"task_type of another kind": `{"task_type":"cdn:explode","provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}}`,
	}
	for what, body := range invalid {
		assert.Error(t, submit.Validate(decode(t, body)), what)
	}
}

// Every (kind, provider) has a submit branch, a params schema and a
// result schema, and nothing else does.
func TestEveryKindIsDocumented(t *testing.T) {
	t.Parallel()
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(generate(t), &doc))
	var submit struct {
		OneOf []struct {
			Ref string `json:"$ref"`
		} `json:"oneOf"`
	}
	require.NoError(t, json.Unmarshal(doc.Components.Schemas["SubmitRequest"], &submit))
	require.Len(t, submit.OneOf, len(ops.ParamsTypes()))
	for i, pt := range ops.ParamsTypes() {
		var branch struct {
			Properties struct {
				TaskType struct{ Enum []string } `json:"task_type"`
				Provider struct{ Enum []string } `json:"provider"`
				Params   struct {
					Ref string `json:"$ref"`
				} `json:"params"`
			} `json:"properties"`
		}
		name := strings.TrimPrefix(submit.OneOf[i].Ref, componentRef)
		require.NoError(t, json.Unmarshal(doc.Components.Schemas[name], &branch), name)
		assert.Equal(t, []string{pt.Kind}, branch.Properties.TaskType.Enum)
		assert.Equal(t, []string{pt.Provider}, branch.Properties.Provider.Enum)
		assert.Equal(t, componentRef+reflect.TypeOf(pt.New()).Elem().Name(), branch.Properties.Params.Ref)
		assert.Contains(t, doc.Components.Schemas, resultType(pt).Name())
	}
}
