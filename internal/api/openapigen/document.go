package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/invopop/jsonschema"

	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/ops"
)

const componentRef = "#/components/schemas/"

func ref(name string) *jsonschema.Schema { return &jsonschema.Schema{Ref: componentRef + name} }

// generator reflects Go types into the document's component schemas.
// Every named type a schema refers to is a component of its own.
type generator struct {
	reflector *jsonschema.Reflector
	// names is the component name of each Go type.
	names   map[reflect.Type]string
	schemas map[string]*jsonschema.Schema
}

// component is a Go type and the component schema it becomes.
type component struct {
	name string
	typ  reflect.Type
	// open: a result or progress object, which may gain fields.
	open bool
}

// components lists every Go type the document describes.
func components() []component {
	list := []component{
		{"State", reflect.TypeFor[ops.State](), false},
		{"StringList", reflect.TypeFor[ops.StringList](), false},
		{"PartitionParam", reflect.TypeFor[ops.PartitionParam](), false},
		{"RAIDParam", reflect.TypeFor[ops.RAIDParam](), false},
		{"RoutingRuleParm", reflect.TypeFor[ops.RoutingRuleParm](), false},
		{"Operation", reflect.TypeFor[ops.Operation](), false},
		{"Event", reflect.TypeFor[ops.Event](), false},
		{"Actor", reflect.TypeFor[ops.Actor](), false},
		{"Run", reflect.TypeFor[runbook.Run](), false},
		{"RunStep", reflect.TypeFor[runbook.RunStep](), false},
		{"StartRunRequest", reflect.TypeFor[api.StartRunRequest](), false},
		{"StartInlineRunRequest", reflect.TypeFor[api.StartInlineRunRequest](), false},
		{"RunbookDefinition", reflect.TypeFor[runbook.Definition](), false},
		{"RunbookInput", reflect.TypeFor[runbook.Input](), false},
		{"RunbookStep", reflect.TypeFor[runbook.Step](), false},
		{"CancelRunRequest", reflect.TypeFor[api.CancelRunRequest](), false},
		{"RunsResponse", reflect.TypeFor[api.RunsResponse](), false},
		{"RunEvent", reflect.TypeFor[runbook.RunEvent](), false},
		{"RunEventsResponse", reflect.TypeFor[api.RunEventsResponse](), false},
		{"RunPlan", reflect.TypeFor[runbook.RunPlan](), false},
		{"StepPlan", reflect.TypeFor[runbook.StepPlan](), false},
		{"Gate", reflect.TypeFor[runbook.Gate](), false},
		{"Plan", reflect.TypeFor[ops.Plan](), false},
		{"PlanCheck", reflect.TypeFor[ops.PlanCheck](), false},
		{"PlanCall", reflect.TypeFor[ops.PlanCall](), false},
		{"TimelineEvent", reflect.TypeFor[ops.TimelineEvent](), false},
		{"EventsResponse", reflect.TypeFor[api.EventsResponse](), false},
		{"ProviderHealth", reflect.TypeFor[ops.ProviderHealth](), true},
		{"Problem", reflect.TypeFor[api.Problem](), false},
		{"CancelRequest", reflect.TypeFor[api.CancelRequest](), false},
		{"ListResponse", reflect.TypeFor[api.ListResponse](), false},
		{"AccountPause", reflect.TypeFor[api.AccountPause](), false},
		{"Progress", reflect.TypeFor[ops.Progress](), true},
		// Types a result holds (the results themselves come from the
		// registry below).
		{"ServerJobTasks", reflect.TypeFor[ops.ServerJobTasks](), true},
		{"ASGAmounts", reflect.TypeFor[ops.ASGAmounts](), true},
		{"EdgioPurge", reflect.TypeFor[ops.EdgioPurge](), true},
		{"InvalidationURLStatus", reflect.TypeFor[ops.InvalidationURLStatus](), true},
	}
	for _, t := range resultTypes() {
		list = append(list, component{t.Name(), t, true})
	}
	for _, pt := range ops.ParamsTypes() {
		t := reflect.TypeOf(pt.New()).Elem()
		list = append(list, component{t.Name(), t, false})
	}
	return list
}

// resultTypes are the result types of every (kind, provider), once each,
// sorted by name.
func resultTypes() []reflect.Type {
	var out []reflect.Type
	for _, pt := range ops.ParamsTypes() {
		if t := resultType(pt); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b reflect.Type) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// resultType is the result type a (kind, provider) reports.
func resultType(pt ops.ParamsType) reflect.Type { return reflect.TypeOf(pt.NewResult()).Elem() }

func newGenerator(c *comments) *generator {
	g := &generator{names: map[reflect.Type]string{}, schemas: map[string]*jsonschema.Schema{}}
	for _, c := range components() {
		g.names[c.typ] = c.name
	}
	// An *opstore.Operation is encoded as its ops.Operation view.
	g.names[reflect.TypeFor[opstore.Operation]()] = "Operation"
	g.reflector = &jsonschema.Reflector{
		Anonymous:      true,
		ExpandedStruct: true,
		Lookup: func(t reflect.Type) jsonschema.ID {
			if name, ok := g.names[t]; ok {
				return jsonschema.ID(componentRef + name)
			}
			return jsonschema.EmptyID
		},
		Mapper:        g.mapType,
		LookupComment: c.lookup,
	}
	return g
}

// mapType gives the schemas of the types whose JSON is not their Go
// shape.
func (g *generator) mapType(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeFor[ops.State]():
		s := &jsonschema.Schema{Type: "string", Description: "An operation's lifecycle state: queued → launching → running → one final state (succeeded, failed, canceled, timed_out)."}
		for _, st := range ops.States {
			s.Enum = append(s.Enum, string(st))
		}
		return s
	case reflect.TypeFor[ops.StringList]():
		return &jsonschema.Schema{
			Description: "A list of strings, or one string with an item per line.",
			OneOf: []*jsonschema.Schema{
				{Type: "string"},
				{Type: "array", Items: &jsonschema.Schema{Type: "string"}},
			},
		}
	}
	return nil
}

// reflect adds the component schema of c.
func (g *generator) reflect(c component) error {
	s := g.reflector.ReflectFromType(c.typ)
	if len(s.Definitions) > 0 {
		var names []string
		for n := range s.Definitions {
			names = append(names, n)
		}
		return fmt.Errorf("%s refers to types that are no component: %s", c.name, strings.Join(names, ", "))
	}
	s.Definitions, s.Version, s.ID = nil, "", ""
	g.schemas[c.name] = s
	return nil
}

// property returns the schema of a component's property (a path through
// nested objects: "upstream", "caching").
func (g *generator) property(component string, path ...string) (*jsonschema.Schema, *jsonschema.Schema, error) {
	parent, ok := g.schemas[component]
	if !ok {
		return nil, nil, fmt.Errorf("no component %s", component)
	}
	var prop *jsonschema.Schema
	for i, name := range path {
		if i > 0 {
			parent = prop
		}
		if parent.Properties == nil {
			return nil, nil, fmt.Errorf("%s.%s: not an object", component, strings.Join(path[:i], "."))
		}
		if prop, ok = parent.Properties.Get(name); !ok {
			return nil, nil, fmt.Errorf("%s has no property %s", component, strings.Join(path[:i+1], "."))
		}
	}
	return parent, prop, nil
}

// setProperty replaces a property's schema, keeping its description
// unless the new one has its own.
func (g *generator) setProperty(s *jsonschema.Schema, component string, path ...string) error {
	parent, old, err := g.property(component, path...)
	if err != nil {
		return err
	}
	if s.Description == "" {
		s.Description = old.Description
	}
	parent.Properties.Set(path[len(path)-1], s)
	return nil
}

// optional drops a property from its object's required list: the field
// has no omitempty, but Validate accepts it left out.
func (g *generator) optional(component string, path ...string) error {
	parent, _, err := g.property(component, path...)
	if err != nil {
		return err
	}
	name := path[len(path)-1]
	if !slices.Contains(parent.Required, name) {
		return fmt.Errorf("%s.%s is not required", component, strings.Join(path, "."))
	}
	parent.Required = slices.DeleteFunc(parent.Required, func(r string) bool { return r == name })
	return nil
}

func nullable(s *jsonschema.Schema) *jsonschema.Schema {
	return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{s, {Type: "null"}}}
}

func strEnum(values ...string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}

// refine states what the Go types cannot: values a field's Validate
// requires or allows beyond its Go type, and the typed views of JSON
// values held raw.
func (g *generator) refine() error {
	nonEmptyURLs := &jsonschema.Schema{Type: "string", MinLength: new(uint64(1)), MaxLength: new(uint64(2048))}
	steps := []func() error{
		// A partition's size: MB as a positive whole number (or its
		// decimal string), or "*" for the rest of the disk.
		func() error {
			return g.setProperty(&jsonschema.Schema{
				Description: `MB as a positive whole number (or a decimal string of one), or "*" for the rest of the disk (the last partition only).`,
				OneOf: []*jsonschema.Schema{
					{Type: "integer", Minimum: "1"},
					{Type: "string", Pattern: `^(\*|[0-9]*[1-9][0-9]*)$`},
				},
			}, "PartitionParam", "size")
		},
		// A swap partition has no mountpoint ("none" at most); any other
		// needs one.
		func() error {
			s := g.schemas["PartitionParam"]
			s.If = &jsonschema.Schema{Required: []string{"filesystem"}, Properties: jsonschema.NewProperties()}
			s.If.Properties.Set("filesystem", &jsonschema.Schema{Const: "swap"})
			s.Then = &jsonschema.Schema{Properties: jsonschema.NewProperties()}
			s.Then.Properties.Set("mountpoint", &jsonschema.Schema{Enum: strEnum("", "none")})
			s.Else = &jsonschema.Schema{Required: []string{"mountpoint"}}
			return nil
		},
		// Level 0 is RAID 0, so it may be left out.
		func() error { return g.optional("RAIDParam", "level") },
		func() error { return g.optional("RoutingRuleParm", "upstream", "caching") },
		func() error { return g.optional("RoutingRuleParm", "upstream", "waf") },
		func() error {
			return g.setProperty(&jsonschema.Schema{Type: "string", Pattern: "^R[0-9]{1,4}$"}, "RoutingRuleParm", "upstream", "rate_limit_class")
		},
		func() error {
			return g.setProperty(&jsonschema.Schema{Type: "string", Enum: strEnum("distribution", "origin")}, "RoutingRuleParm", "upstream", "sni_mode")
		},
		func() error {
			country := &jsonschema.Schema{Type: "array", Items: &jsonschema.Schema{Type: "string", Pattern: "^[A-Z]{2}$"}}
			if err := g.setProperty(country, "RoutingRuleParm", "upstream", "geo_restrictions", "block_list"); err != nil {
				return err
			}
			return g.setProperty(country, "RoutingRuleParm", "upstream", "geo_restrictions", "allow_list")
		},
		func() error {
			return g.setProperty(&jsonschema.Schema{
				Description: fmt.Sprintf("One path or URL, or a list of them (one string may hold one per line): 1 to %d, each its own purge request (a trailing * purges a folder).", ops.EdgioMaxOutstanding),
				OneOf: []*jsonschema.Schema{
					{Type: "string", MinLength: new(uint64(1))},
					{Type: "array", Items: nonEmptyURLs, MinItems: new(uint64(1)), MaxItems: new(uint64(ops.EdgioMaxOutstanding))},
				},
			}, "EdgioPurgeParams", "media_path")
		},
		// An id, or the operation_id of the operation that made it: one
		// of the two.
		func() error {
			for name, id := range map[string]string{"ServerJobRetryParams": "job_id", "InstanceSnapshotRestoreParams": "snapshot_id", "VPSSnapshotRestoreParams": "snapshot_id"} {
				g.schemas[name].OneOf = []*jsonschema.Schema{{Required: []string{id}}, {Required: []string{"operation_id"}}}
			}
			return nil
		},
		// asg:create: each type takes its own amounts, all of them, and
		// none of another type's.
		func() error {
			cpu := []string{"minimum_amount", "maximum_amount", "cpu_threshold", "warmup_time", "cooldown_time"}
			rule := func(typ string, required, refused []string) *jsonschema.Schema {
				cond := &jsonschema.Schema{Required: []string{"type"}, Properties: jsonschema.NewProperties()}
				cond.Properties.Set("type", &jsonschema.Schema{Const: typ})
				then := &jsonschema.Schema{Required: required}
				for _, f := range refused {
					then.AllOf = append(then.AllOf, &jsonschema.Schema{Not: &jsonschema.Schema{Required: []string{f}}})
				}
				return &jsonschema.Schema{If: cond, Then: then}
			}
			s := g.schemas["ASGCreateParams"]
			s.AllOf = append(s.AllOf,
				rule("MANUAL", []string{"desired_amount"}, append([]string{"starts_at", "ends_at"}, cpu...)),
				rule("SCHEDULED", []string{"desired_amount", "starts_at", "ends_at"}, cpu),
				rule("CPU_BASED", cpu, []string{"desired_amount", "starts_at", "ends_at"}),
			)
			return nil
		},
		// asg:scale: at least one change, and starts_at with ends_at.
		func() error {
			s := g.schemas["ASGScaleParams"]
			s.MinProperties = new(uint64(2))
			s.DependentRequired = map[string][]string{"starts_at": {"ends_at"}, "ends_at": {"starts_at"}}
			return nil
		},
		func() error {
			return g.setProperty(&jsonschema.Schema{AnyOf: []*jsonschema.Schema{{Type: "string"}, {Type: "null"}}}, "EdgioPurge", "CompleteDate")
		},
		// The operation view.
		func() error { return g.setProperty(ref("Kind"), "Operation", "kind") },
		func() error { return g.setProperty(ref("Provider"), "Operation", "provider") },
		func() error {
			s := &jsonschema.Schema{}
			for _, pt := range ops.ParamsTypes() {
				s.AnyOf = append(s.AnyOf, ref(reflect.TypeOf(pt.New()).Elem().Name()))
			}
			s.AnyOf = append(s.AnyOf, &jsonschema.Schema{Type: "string", Enum: strEnum(opstore.Redacted)})
			return g.setProperty(s, "Operation", "params")
		},
		func() error {
			s := &jsonschema.Schema{}
			for _, t := range resultTypes() {
				s.AnyOf = append(s.AnyOf, ref(t.Name()))
			}
			return g.setProperty(s, "Operation", "result")
		},
		func() error { return g.setProperty(ref("Progress"), "Operation", "progress") },
		func() error {
			return g.setProperty(&jsonschema.Schema{Type: "string", Enum: strEnum("cancel", "expire")}, "Operation", "cancel_requested")
		},
		func() error {
			return g.setProperty(&jsonschema.Schema{Type: "string", Enum: strEnum(eventTypes...), Description: "The event type."}, "Event", "type")
		},
		func() error { return g.setProperty(ref("Operation"), "Event", "data") },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	// Result and progress objects may gain fields: they are open.
	for _, c := range components() {
		if c.open {
			g.schemas[c.name].AdditionalProperties = nil
		}
	}
	return nil
}

// eventTypes are the webhook events, in the order an operation sends them.
var eventTypes = []string{ops.EventPendingApproval, ops.EventRunning, ops.EventSucceeded, ops.EventFailed, ops.EventTimedOut, ops.EventCanceled}

// submitBranch is the submit request of one (kind, provider).
func (g *generator) submitBranch(pt ops.ParamsType) (string, *jsonschema.Schema, error) {
	env := g.schemas["Envelope"]
	params := reflect.TypeOf(pt.New()).Elem().Name()
	name := "Submit" + strings.TrimSuffix(params, "Params")
	s := &jsonschema.Schema{
		Type:                 "object",
		Description:          fmt.Sprintf("Submits %s on %s.", pt.Kind, pt.Provider),
		Properties:           jsonschema.NewProperties(),
		AdditionalProperties: jsonschema.FalseSchema,
		Required:             []string{"task_type", "provider", "params"},
	}
	s.Properties.Set("task_type", &jsonschema.Schema{Type: "string", Enum: strEnum(pt.Kind), Description: "The operation kind."})
	s.Properties.Set("provider", &jsonschema.Schema{Type: "string", Enum: strEnum(pt.Provider), Description: "The provider API."})
	s.Properties.Set("dry_run", &jsonschema.Schema{Type: "boolean", Description: "Answer 200 with what the submit would do (a Plan); store, enqueue and launch nothing."})
	for _, p := range []string{"account", "params", "callback_url", "idempotency_key", "labels"} {
		prop, ok := env.Properties.Get(p)
		if !ok {
			return "", nil, fmt.Errorf("the envelope has no %s", p)
		}
		if p == "params" {
			prop = &jsonschema.Schema{Ref: componentRef + params, Description: prop.Description}
		}
		s.Properties.Set(p, prop)
	}
	return name, s, nil
}

// build returns the OpenAPI document.
func build(c *comments) ([]byte, error) {
	g := newGenerator(c)
	for _, c := range components() {
		if err := g.reflect(c); err != nil {
			return nil, err
		}
	}
	for _, pt := range ops.ParamsTypes() {
		s := g.schemas[reflect.TypeOf(pt.New()).Elem().Name()]
		for _, e := range pt.Examples {
			s.Examples = append(s.Examples, e)
		}
		if len(s.Examples) == 0 {
			return nil, fmt.Errorf("no example of %s on %s", pt.Kind, pt.Provider)
		}
	}
	// The envelope's properties make the submit request's.
	if err := g.reflect(component{"Envelope", reflect.TypeFor[ops.Envelope](), false}); err != nil {
		return nil, err
	}
	if err := g.setProperty(&jsonschema.Schema{Type: "string", Format: "uri", MaxLength: new(uint64(ops.MaxCallbackURLLen)),
		Description: fmt.Sprintf("Receives the completion webhook: an absolute http or https URL of at most %d bytes. Optional.", ops.MaxCallbackURLLen)},
		"Envelope", "callback_url"); err != nil {
		return nil, err
	}
	if err := g.refine(); err != nil {
		return nil, err
	}
	submit := &jsonschema.Schema{Description: "The body of a submit: the payload envelope plus task_type. Each (task_type, provider) has its own params; the pair selects the branch (an unsupported pair is a 400 naming provider)."}
	for _, pt := range ops.ParamsTypes() {
		name, s, err := g.submitBranch(pt)
		if err != nil {
			return nil, err
		}
		g.schemas[name] = s
		submit.OneOf = append(submit.OneOf, ref(name))
	}
	delete(g.schemas, "Envelope")
	g.schemas["SubmitRequest"] = submit
	g.schemas["Kind"] = &jsonschema.Schema{Type: "string", Enum: strEnum(ops.Kinds()...), Description: "An operation kind (task_type)."}
	g.schemas["Provider"] = &jsonschema.Schema{Type: "string", Enum: strEnum(ops.Providers()...), Description: "A provider API."}

	doc := document(g.schemas)
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	v := jsontext.Value(b)
	if err := v.Format(jsontext.Multiline(true), jsontext.WithIndent("  "), jsontext.EscapeForHTML(false)); err != nil {
		return nil, err
	}
	return append(v, '\n'), nil
}
