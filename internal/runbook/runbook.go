// Package runbook holds runbook definitions: named sequences (or DAGs)
// of operations over the existing kinds, whose params may refer to the
// run's inputs and to earlier steps' results through Go templates
// ({{ .inputs.instance }}, {{ .steps.snap.result.snapshot_id }}). Compile
// checks a definition once, at config load, so that a reference to an
// unknown input, step or result field, a cycle, or an unknown kind is an
// error naming the runbook, the step and the field before anything runs.
package runbook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/opsworker/opsworker/ops"
)

// Input types.
const (
	TypeString = "string"
	TypeInt    = "int"
	TypeBool   = "bool"
)

// Input is a runbook's input.
type Input struct {
	Name     string `yaml:"name" json:"name"`
	Type     string `yaml:"type" json:"type"`
	Required bool   `yaml:"required" json:"required,omitempty"`
	Default  any    `yaml:"default" json:"default,omitempty"`
	// Secret hides the value wherever the run is shown (API, CLI,
	// console, runbook.* webhooks) and removes it from the run's record
	// when the run ends. Steps get it as usual; an operation treats its
	// secret params as it always does.
	Secret bool `yaml:"secret" json:"secret,omitempty"`
}

// Step is one operation of a runbook.
type Step struct {
	ID string `yaml:"id" json:"id"`
	// Gate makes the step wait for a decision instead of running an
	// operation: continue, abort, or its timeout (which aborts).
	Gate     *Gate          `yaml:"gate" json:"gate,omitempty"`
	Kind     string         `yaml:"kind" json:"kind,omitempty"`
	Provider string         `yaml:"provider" json:"provider,omitempty"`
	Account  string         `yaml:"account" json:"account,omitempty"`
	Params   map[string]any `yaml:"params" json:"params,omitempty"`
	// Needs lists the steps that must succeed first. Absent: the step
	// before it (steps run in order); given: only those (a DAG).
	Needs []string `yaml:"needs" json:"needs,omitempty"`
	// OnFailure steps run, in order, when this step fails.
	OnFailure []Step `yaml:"on_failure" json:"on_failure,omitempty"`
}

// Gate is a step that waits for a write token to continue or abort the
// run (the console, the API, `enqueue gate`), or for its timeout.
type Gate struct {
	// Message says what to check before continuing.
	Message string `yaml:"message" json:"message"`
	// Timeout aborts the run when nobody decides. Default 24h. In JSON, a
	// Go duration string such as "30m".
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty" jsonschema:"type=string,example=30m"`
}

// gateJSON is a gate in JSON: its timeout a duration string.
type gateJSON struct {
	Message string `json:"message"`
	Timeout string `json:"timeout,omitempty"`
}

// MarshalJSON writes the timeout as a duration string ("30m0s").
func (g Gate) MarshalJSON() ([]byte, error) {
	j := gateJSON{Message: g.Message}
	if g.Timeout != 0 {
		j.Timeout = g.Timeout.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the timeout as a duration string ("30m").
func (g *Gate) UnmarshalJSON(b []byte) error {
	var j gateJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		// Relative to the gate; never quoting a value.
		if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
			return &ops.ValidationError{Field: strings.TrimSuffix(name, `"`), Message: "unknown field"}
		}
		return &ops.ValidationError{Message: `want {"message": "…", "timeout": "30m"}`}
	}
	g.Message, g.Timeout = j.Message, 0
	if j.Timeout != "" {
		d, err := time.ParseDuration(j.Timeout)
		if err != nil {
			return &ops.ValidationError{Field: "timeout", Message: `want a duration such as "30m" or "2h"`}
		}
		g.Timeout = d
	}
	return nil
}

// DefaultGateTimeout is a gate's timeout when it names none.
const DefaultGateTimeout = 24 * time.Hour

// Definition is a runbook as config or the API gives it.
type Definition struct {
	Name   string  `yaml:"name" json:"name"`
	Inputs []Input `yaml:"inputs" json:"inputs,omitempty"`
	Steps  []Step  `yaml:"steps" json:"steps"`
	// Finally steps run, in order, after the steps, whatever happened.
	Finally []Step `yaml:"finally" json:"finally,omitempty"`
}

// Error is a definition's error, naming where it is.
type Error struct {
	Runbook, Step, Field, Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "runbook %q", e.Runbook)
	if e.Step != "" {
		fmt.Fprintf(&b, " step %q", e.Step)
	}
	if e.Field != "" {
		b.WriteString(" " + e.Field)
	}
	return b.String() + ": " + e.Message
}

// Runbook is a compiled definition: every template parsed, every
// reference checked.
type Runbook struct {
	Definition
	// needs is each main step's resolved needs.
	needs map[string][]string
	steps map[string]*compiledStep
}

type compiledStep struct {
	Step
	// tmpls maps a params path (a.b.0.c) to its template.
	tmpls map[string]*template.Template
}

var (
	nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	// resultRefs are what a step exposes besides its result.
	stepFields = []string{"result", "handle", "operation_id", "state"}
)

// Compile checks d and returns the runbook.
func Compile(d Definition) (*Runbook, error) {
	bad := func(step, field, format string, a ...any) error {
		return &Error{Runbook: d.Name, Step: step, Field: field, Message: fmt.Sprintf(format, a...)}
	}
	if !nameRe.MatchString(d.Name) {
		return nil, bad("", "name", "1-63 of a-z, 0-9, '_', '-', starting with a letter or digit")
	}
	inputs := map[string]Input{}
	for i, in := range d.Inputs {
		field := fmt.Sprintf("inputs[%d]", i)
		if !nameRe.MatchString(in.Name) {
			return nil, bad("", field+".name", "1-63 of a-z, 0-9, '_', '-'")
		}
		if _, dup := inputs[in.Name]; dup {
			return nil, bad("", field+".name", "%q is declared twice", in.Name)
		}
		if !slices.Contains([]string{TypeString, TypeInt, TypeBool}, in.Type) {
			return nil, bad("", field+".type", "must be string, int or bool")
		}
		if in.Secret && in.Default != nil {
			return nil, bad("", field+".default", "a secret input takes no default (it would sit in the config)")
		}
		if in.Default != nil {
			if _, err := coerce(in.Type, in.Default); err != nil {
				return nil, bad("", field+".default", "%v", err)
			}
		}
		inputs[in.Name] = in
	}
	if len(d.Steps) == 0 {
		return nil, bad("", "steps", "at least one step is required")
	}
	rb := &Runbook{Definition: d, needs: map[string][]string{}, steps: map[string]*compiledStep{}}
	var order []string
	all := append(slices.Clone(d.Steps), d.Finally...)
	for _, s := range d.Steps {
		all = append(all, s.OnFailure...)
	}
	for _, s := range all[len(d.Steps):] {
		if s.Needs != nil || s.OnFailure != nil {
			return nil, bad(s.ID, "needs", "on_failure and finally steps run in order and take neither needs nor on_failure")
		}
	}
	for _, s := range all {
		if !nameRe.MatchString(s.ID) {
			return nil, bad(s.ID, "id", "1-63 of a-z, 0-9, '_', '-', starting with a letter or digit")
		}
		if _, dup := rb.steps[s.ID]; dup {
			return nil, bad(s.ID, "id", "step ids must be unique in a runbook (on_failure and finally steps included)")
		}
		switch {
		case s.Gate != nil && (s.Kind != "" || s.Provider != "" || s.Params != nil):
			return nil, bad(s.ID, "gate", "a gate runs no operation: give gate or kind, provider and params, not both")
		case s.Gate != nil && strings.TrimSpace(s.Gate.Message) == "":
			return nil, bad(s.ID, "gate.message", "required: say what to check before continuing")
		case s.Gate != nil && s.Gate.Timeout < 0:
			return nil, bad(s.ID, "gate.timeout", "must be positive (default 24h)")
		case s.Gate == nil:
			if _, err := ops.NewParams(s.Kind, s.Provider); err != nil {
				return nil, bad(s.ID, "kind", "%v", err)
			}
		}
		rb.steps[s.ID] = &compiledStep{Step: s}
	}
	for i, s := range d.Steps {
		order = append(order, s.ID)
		if s.Needs == nil {
			if i > 0 {
				rb.needs[s.ID] = []string{d.Steps[i-1].ID}
			}
			continue
		}
		for _, n := range s.Needs {
			if !slices.ContainsFunc(d.Steps, func(o Step) bool { return o.ID == n }) {
				return nil, bad(s.ID, "needs", "unknown step %q (a step may need only the runbook's steps, not on_failure or finally ones)", n)
			}
		}
		rb.needs[s.ID] = slices.Clone(s.Needs)
	}
	if cycle := rb.cycle(order); cycle != nil {
		return nil, bad(cycle[0], "needs", "a cycle: %s", strings.Join(cycle, " → "))
	}
	// What each step may refer to: its ancestors; an on_failure step, the
	// failed step and its ancestors; a finally step, every main step.
	for _, s := range d.Steps {
		anc := rb.ancestors(s.ID)
		if err := rb.compileStep(s, inputs, anc); err != nil {
			return nil, err
		}
		for _, f := range s.OnFailure {
			if err := rb.compileStep(f, inputs, append(anc, s.ID)); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range d.Finally {
		if err := rb.compileStep(f, inputs, order); err != nil {
			return nil, err
		}
	}
	return rb, nil
}

// cycle returns a cycle in the main steps' needs, or nil.
func (rb *Runbook) cycle(order []string) []string {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(id string) []string
	visit = func(id string) []string {
		switch state[id] {
		case active:
			i := slices.Index(path, id)
			return append(slices.Clone(path[i:]), id)
		case done:
			return nil
		}
		state[id] = active
		path = append(path, id)
		for _, n := range rb.needs[id] {
			if c := visit(n); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		state[id] = done
		return nil
	}
	for _, id := range order {
		if c := visit(id); c != nil {
			return c
		}
	}
	return nil
}

// ancestors are the steps id needs, directly or not.
func (rb *Runbook) ancestors(id string) []string {
	var out []string
	var walk func(string)
	walk = func(s string) {
		for _, n := range rb.needs[s] {
			if !slices.Contains(out, n) {
				out = append(out, n)
				walk(n)
			}
		}
	}
	walk(id)
	return out
}

// Needs are a main step's needs, resolved.
func (rb *Runbook) Needs(step string) []string { return rb.needs[step] }

// compileStep parses s's templates and checks what they refer to: inputs
// that exist, and the result fields of the steps in visible.
func (rb *Runbook) compileStep(s Step, inputs map[string]Input, visible []string) error {
	cs := rb.steps[s.ID]
	cs.tmpls = map[string]*template.Template{}
	var secret []string
	if p, err := ops.NewParams(s.Kind, s.Provider); err == nil {
		secret = secretKeys(reflect.TypeOf(p))
	}
	var walk func(path string, v any) error
	walk = func(path string, v any) error {
		switch x := v.(type) {
		case string:
			if !strings.Contains(x, "{{") {
				return nil
			}
			t, err := template.New(path).Option("missingkey=error").Parse(x)
			if err != nil {
				return &Error{Runbook: rb.Name, Step: s.ID, Field: "params." + path, Message: "template: " + strings.TrimPrefix(err.Error(), "template: "+path+":")}
			}
			used, err := rb.checkRefs(t.Tree.Root, inputs, visible)
			if err != nil {
				return &Error{Runbook: rb.Name, Step: s.ID, Field: "params." + path, Message: err.Error()}
			}
			top, _, _ := strings.Cut(path, ".")
			for _, name := range used {
				if inputs[name].Secret && !slices.Contains(secret, top) {
					// The operation's record, its events and the API show
					// its params: only its secret ones are redacted there.
					return &Error{Runbook: rb.Name, Step: s.ID, Field: "params." + path,
						Message: fmt.Sprintf("secret input %q may only fill a secret param of %s on %s (%s), or it would be shown in clear", name, s.Kind, s.Provider, orNone(secret))}
				}
			}
			cs.tmpls[path] = t
		case map[string]any:
			for k, e := range x {
				if err := walk(join(path, k), e); err != nil {
					return err
				}
			}
		case []any:
			for i, e := range x {
				if err := walk(join(path, fmt.Sprint(i)), e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for k, v := range s.Params {
		if err := walk(k, v); err != nil {
			return err
		}
	}
	return nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// checkRefs checks every field a template reads: .inputs.<declared
// input>, or .steps.<visible step>.<result|handle|operation_id|state>,
// and result.<a field of that step's result type>.
func (rb *Runbook) checkRefs(n parse.Node, inputs map[string]Input, visible []string) ([]string, error) {
	var err error
	var used []string
	var visit func(parse.Node)
	check := func(ident []string) {
		if err != nil || len(ident) == 0 {
			return
		}
		switch ident[0] {
		case "inputs":
			if len(ident) < 2 {
				err = fmt.Errorf("name an input: .inputs.<name>")
			} else if _, ok := inputs[ident[1]]; !ok {
				err = fmt.Errorf("unknown input %q", ident[1])
			} else {
				used = append(used, ident[1])
			}
		case "steps":
			switch {
			case len(ident) < 3:
				err = fmt.Errorf("name a step and what of it: .steps.<id>.result.<field>, .handle, .operation_id or .state")
			case !slices.Contains(visible, ident[1]):
				err = fmt.Errorf("step %q is not one this step runs after (a step sees the steps it needs, directly or not)", ident[1])
			case !slices.Contains(stepFields, ident[2]):
				err = fmt.Errorf(".steps.%s.%s: want result, handle, operation_id or state", ident[1], ident[2])
			case rb.steps[ident[1]].Gate != nil && ident[2] != "state":
				err = fmt.Errorf(".steps.%s is a gate: only its .state can be read", ident[1])
			case ident[2] == "result" && len(ident) > 3:
				other := rb.steps[ident[1]]
				if !resultHas(other.Kind, other.Provider, ident[3]) {
					err = fmt.Errorf("the result of step %q (%s on %s) has no field %q", ident[1], other.Kind, other.Provider, ident[3])
				}
			}
		default:
			err = fmt.Errorf("unknown reference .%s (want .inputs or .steps)", ident[0])
		}
	}
	visit = func(n parse.Node) {
		if n == nil || err != nil {
			return
		}
		switch x := n.(type) {
		case *parse.ListNode:
			for _, c := range x.Nodes {
				visit(c)
			}
		case *parse.ActionNode:
			visit(x.Pipe)
		case *parse.PipeNode:
			for _, c := range x.Cmds {
				visit(c)
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				visit(a)
			}
		case *parse.FieldNode:
			check(x.Ident)
		case *parse.ChainNode:
			err = fmt.Errorf("references must be plain fields such as .steps.snap.result.snapshot_id")
		case *parse.IfNode:
			visit(x.Pipe)
			visit(x.List)
			visit(x.ElseList)
		case *parse.RangeNode, *parse.WithNode, *parse.TemplateNode:
			err = fmt.Errorf("only values, if and functions are allowed in a runbook template")
		}
	}
	visit(n)
	return used, err
}

// secretKeys are the JSON names of the top-level fields of params' type
// tagged secret:"true".
func secretKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("secret") == "true" {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			out = append(out, name)
		}
	}
	return out
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "it has none"
	}
	return "secret: " + strings.Join(l, ", ")
}

// resultHas reports whether kind on provider's result type has a JSON
// field name.
func resultHas(kind, provider, name string) bool {
	for _, pt := range ops.ParamsTypes() {
		if pt.Kind != kind || pt.Provider != provider || pt.NewResult == nil {
			continue
		}
		t := reflect.TypeOf(pt.NewResult()).Elem()
		for i := range t.NumField() {
			tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if tag == name {
				return true
			}
		}
	}
	return false
}

// coerce converts v, from YAML or JSON, to an input of type typ.
func coerce(typ string, v any) (any, error) {
	switch typ {
	case TypeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case TypeInt:
		if str, ok := v.(string); ok { // the CLI's --input k=v
			if n, err := strconv.Atoi(str); err == nil {
				return n, nil
			}
		}
		switch n := v.(type) {
		case int:
			return n, nil
		case int64:
			return int(n), nil
		case float64:
			if n == float64(int(n)) {
				return int(n), nil
			}
		case json.Number:
			if i, err := n.Int64(); err == nil {
				return int(i), nil
			}
		}
	case TypeBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		if str, ok := v.(string); ok && (str == "true" || str == "false") {
			return str == "true", nil
		}
	}
	return nil, fmt.Errorf("want a %s, got %v", typ, v)
}

// Inputs checks a run's inputs against the runbook's and fills in the
// defaults; an error names the input.
func (rb *Runbook) Inputs(given map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for k := range given {
		if !slices.ContainsFunc(rb.Definition.Inputs, func(in Input) bool { return in.Name == k }) {
			return nil, &Error{Runbook: rb.Name, Field: "inputs." + k, Message: "not an input of this runbook"}
		}
	}
	for _, in := range rb.Definition.Inputs {
		v, ok := given[in.Name]
		if !ok {
			if in.Required {
				return nil, &Error{Runbook: rb.Name, Field: "inputs." + in.Name, Message: "required"}
			}
			if in.Default == nil {
				continue
			}
			v = in.Default
		}
		c, err := coerce(in.Type, v)
		if err != nil {
			return nil, &Error{Runbook: rb.Name, Field: "inputs." + in.Name, Message: err.Error()}
		}
		out[in.Name] = c
	}
	return out, nil
}

// StepState is what a step's templates can read of an earlier step.
type StepState struct {
	Result      json.RawMessage
	Handle      string
	OperationID string
	State       string
}

// Render returns step's params with every template filled in from the
// inputs and the earlier steps, as JSON. A value that is one field
// reference alone keeps the type of what it names when that is a number
// or a boolean ("{{ .inputs.amount }}" with amount 3 gives 3, a string
// input "12345" stays "12345").
func (rb *Runbook) Render(step string, inputs map[string]any, steps map[string]StepState) (json.RawMessage, error) {
	cs, ok := rb.steps[step]
	if !ok {
		return nil, &Error{Runbook: rb.Name, Step: step, Message: "no such step"}
	}
	data := map[string]any{"inputs": inputs}
	sd := map[string]any{}
	for id, st := range steps {
		var res any
		if len(st.Result) > 0 {
			_ = json.Unmarshal(st.Result, &res)
		}
		sd[id] = map[string]any{"result": res, "handle": st.Handle, "operation_id": st.OperationID, "state": st.State}
	}
	data["steps"] = sd
	var render func(path string, v any) (any, error)
	render = func(path string, v any) (any, error) {
		switch x := v.(type) {
		case string:
			t, ok := cs.tmpls[path]
			if !ok {
				return x, nil
			}
			var b bytes.Buffer
			if err := t.Execute(&b, data); err != nil {
				return nil, &Error{Runbook: rb.Name, Step: step, Field: "params." + path, Message: err.Error()}
			}
			// A value that is one field reference alone keeps the type of
			// what it names: an int input stays a number, a string input
			// that looks like one ("12345") stays a string.
			if v, ok := fieldValue(t, data); ok {
				switch v.(type) {
				case int, int64, float64, bool:
					return v, nil
				}
			}
			return b.String(), nil
		case map[string]any:
			m := make(map[string]any, len(x))
			for k, e := range x {
				r, err := render(join(path, k), e)
				if err != nil {
					return nil, err
				}
				m[k] = r
			}
			return m, nil
		case []any:
			l := make([]any, len(x))
			for i, e := range x {
				r, err := render(join(path, fmt.Sprint(i)), e)
				if err != nil {
					return nil, err
				}
				l[i] = r
			}
			return l, nil
		}
		return v, nil
	}
	out, err := render("", cs.Params)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = map[string]any{}
	}
	return json.Marshal(out)
}

// fieldValue is the value a template names when it is one field
// reference and nothing else ({{ .inputs.n }}), looked up in data.
func fieldValue(t *template.Template, data map[string]any) (any, bool) {
	nodes := t.Tree.Root.Nodes
	if len(nodes) != 1 {
		return nil, false
	}
	a, ok := nodes[0].(*parse.ActionNode)
	if !ok || len(a.Pipe.Cmds) != 1 || len(a.Pipe.Cmds[0].Args) != 1 || len(a.Pipe.Decl) > 0 {
		return nil, false
	}
	f, ok := a.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok {
		return nil, false
	}
	var cur any = data
	for _, id := range f.Ident {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[id]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// NoLiteralSecrets refuses a secret param (a password, SSH keys, a
// script) given as a literal value instead of from an input: a runbook
// given inline is kept with its run and shown with it (API, CLI, console,
// runbook.* webhooks), so its secret values must come from secret inputs.
func (rb *Runbook) NoLiteralSecrets() error {
	for _, id := range slices.Sorted(maps.Keys(rb.steps)) {
		cs := rb.steps[id]
		p, err := ops.NewParams(cs.Kind, cs.Provider)
		if err != nil {
			continue // a gate
		}
		for _, k := range secretKeys(reflect.TypeOf(p)) {
			v, ok := cs.Params[k]
			if !ok {
				continue
			}
			paths := []string{k}
			if l, isList := v.([]any); isList {
				paths = paths[:0]
				for i := range l {
					paths = append(paths, join(k, strconv.Itoa(i)))
				}
			}
			for _, path := range paths {
				if _, templated := cs.tmpls[path]; !templated {
					return &Error{Runbook: rb.Name, Step: id, Field: "params." + path,
						Message: "a secret param of a runbook given inline takes its value from a secret input ({{ .inputs.<name> }}), never a literal: the run's definition is shown"}
				}
			}
		}
	}
	return nil
}

// StepOf returns a step of the runbook (main, on_failure or finally).
func (rb *Runbook) StepOf(id string) (Step, bool) {
	cs, ok := rb.steps[id]
	if !ok {
		return Step{}, false
	}
	return cs.Step, true
}

// SecretInputs are the names of the runbook's secret inputs.
func (rb *Runbook) SecretInputs() []string {
	var out []string
	for _, in := range rb.Definition.Inputs {
		if in.Secret {
			out = append(out, in.Name)
		}
	}
	return out
}
