package tasks

import (
	"encoding/json"
	"fmt"

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

// cancelable are the kinds `enqueue cancel` can stop at the provider.
var cancelable = map[ExecutorKey]bool{
	{TypeServerInstall, ops.ProviderLeaseweb}: true,
	{TypeServerRescue, ops.ProviderLeaseweb}:  true,
}

// Specs lists every supported (kind, provider) pair.
func Specs() []Spec {
	var out []Spec
	for _, t := range ops.ParamsTypes() {
		out = append(out, Spec{Kind: t.Kind, Provider: t.Provider, Params: func() any { return t.New() },
			Cancelable: cancelable[ExecutorKey{t.Kind, t.Provider}]})
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
