package tasks

import (
	"encoding/json"
	"fmt"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/ionos"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
	"github.com/opsworker/opsworker/ops"
)

// Internal task types of the pipeline.
const (
	// TypePoll checks an operation's status at its provider once.
	TypePoll = "op:poll"
	// TypeWebhookDeliver POSTs one event to one destination.
	TypeWebhookDeliver = "webhook:deliver"
	// TypeWebhookReplay re-sends an operation's events (enqueue webhooks
	// replay): a new attempt series with the same webhook-id.
	TypeWebhookReplay = "webhook:replay"
)

// Spec describes one (kind, provider) pair: what it accepts. It needs no
// provider client, so the CLI validates with it before enqueueing.
type Spec struct {
	Kind     string
	Provider string
	// Params returns a pointer to a new zero value of the kind's params
	// type (see ops.Params): its json tags are the only keys accepted,
	// exactly as spelled, and its fields tagged `secret:"true"` are the
	// secret params.
	Params func() any
	// Cancelable says `enqueue cancel` can stop it at the provider.
	Cancelable bool
}

// Validate decodes params strictly into the kind's params type and checks
// them; it returns a *ValidationError.
func (s Spec) Validate(params json.RawMessage) error {
	p, ok := s.Params().(ops.Params)
	if !ok {
		return fmt.Errorf("%s on %s: no params type", s.Kind, s.Provider)
	}
	if err := decodeParams(params, p); err != nil {
		return err
	}
	return p.Validate()
}

// Kind is what the worker knows of one (kind, provider) beyond its params
// type (package ops): its default polling policy and whether it can be
// canceled. The file of each kind's executor registers it (registerKind);
// everything that lists kinds reads ops.ParamsTypes and these.
type Kind struct {
	Kind, Provider string
	// Policy is the default polling policy; config polling.<kind>
	// replaces it. Kinds of the same name share one.
	Policy poller.Policy
	// Cancelable says `enqueue cancel` can stop it at the provider.
	Cancelable bool
	// New returns the kind's executor over the provider's clients, or nil
	// when the worker has none (the provider is not configured).
	New func(Clients) Executor
}

// Clients are the provider clients of a worker, by account; a provider
// left nil is not configured on this worker.
type Clients struct {
	UCDN     map[string]*ucdn.Client
	Leaseweb map[string]*leaseweb.Client
	Edgio    map[string]EdgioAccount
	IONOS    map[string]*ionos.Client
}

// Executors returns the executor of every registered kind whose provider
// has clients.
func Executors(c Clients) map[ExecutorKey]Executor {
	out := map[ExecutorKey]Executor{}
	for key, k := range registeredKinds {
		if e := k.New(c); e != nil {
			out[key] = e
		}
	}
	return out
}

var registeredKinds = map[ExecutorKey]Kind{}

// registerKind adds k; a kind without a params type, registered twice, or
// with another policy than its namesake on another provider is a
// programming error, found at start.
func registerKind(k Kind) {
	key := ExecutorKey{k.Kind, k.Provider}
	if _, err := ops.NewParams(k.Kind, k.Provider); err != nil {
		panic(fmt.Sprintf("tasks: %s on %s has no params type in package ops", k.Kind, k.Provider))
	}
	if _, dup := registeredKinds[key]; dup {
		panic(fmt.Sprintf("tasks: %s on %s registered twice", k.Kind, k.Provider))
	}
	for _, o := range registeredKinds {
		if o.Kind == k.Kind && o.Policy != k.Policy {
			panic(fmt.Sprintf("tasks: %s has two default polling policies", k.Kind))
		}
	}
	if k.New == nil {
		panic(fmt.Sprintf("tasks: %s on %s has no executor", k.Kind, k.Provider))
	}
	if err := k.Policy.Validate(); err != nil {
		panic(fmt.Sprintf("tasks: %s on %s: %v", k.Kind, k.Provider, err))
	}
	registeredKinds[key] = k
}

// DefaultPolicies are the registered kinds' default polling policies, by
// kind (config's polling defaults).
func DefaultPolicies() map[string]poller.Policy {
	out := map[string]poller.Policy{}
	for _, k := range registeredKinds {
		out[k.Kind] = k.Policy
	}
	return out
}

// Specs lists every supported (kind, provider) pair.
func Specs() []Spec {
	var out []Spec
	for _, t := range ops.ParamsTypes() {
		out = append(out, Spec{Kind: t.Kind, Provider: t.Provider, Params: func() any { return t.New() },
			Cancelable: registeredKinds[ExecutorKey{t.Kind, t.Provider}].Cancelable})
	}
	return out
}

// Kinds lists the supported operation kinds (task types).
func Kinds() []string { return ops.Kinds() }

// Providers lists the providers of the supported kinds, sorted.
func Providers() []string { return ops.Providers() }

// LookupSpec finds the spec of kind on provider. An unknown kind is a
// *ValidationError on "task_type", an unsupported provider one on
// "provider".
func LookupSpec(kind, provider string) (Spec, error) {
	if _, err := ops.NewParams(kind, provider); err != nil {
		return Spec{}, err
	}
	for _, s := range Specs() {
		if s.Kind == kind && s.Provider == provider {
			return s, nil
		}
	}
	return Spec{}, fmt.Errorf("%s on %s: not registered", kind, provider)
}

// when returns make() if ok, else nil: a kind's executor exists only
// where its provider has clients.
func when(ok bool, make func() Executor) Executor {
	if !ok {
		return nil
	}
	return make()
}
