package tasks

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
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
	// type: its json tags are the only keys accepted, exactly as spelled,
	// and its fields tagged `secret:"true"` are the secret params.
	Params func() any
	// Validate checks params and returns a *ValidationError.
	Validate func(params json.RawMessage) error
	// Cancelable says `enqueue cancel` can stop it at the provider.
	Cancelable bool
}

// Specs lists every supported (kind, provider) pair.
func Specs() []Spec {
	return []Spec{
		{Kind: TypeCDNPurge, Provider: "ucdn", Params: newParams[UCDNPurgeParams], Validate: validateUCDNPurge},
		{Kind: TypeServerInstall, Provider: "leaseweb", Params: newParams[ServerInstallParams], Validate: validateServerInstall, Cancelable: true},
		{Kind: TypeServerRescue, Provider: "leaseweb", Params: newParams[ServerRescueParams], Validate: validateServerRescue, Cancelable: true},
		{Kind: TypeCDNInvalidate, Provider: "leaseweb", Params: newParams[InvalidateParams], Validate: validateInvalidate},
		{Kind: TypeCDNPurge, Provider: "edgio", Params: newParams[EdgioPurgeParams], Validate: validateEdgioPurge},
		{Kind: TypeCDNDistributionEnsure, Provider: "ionos", Params: newParams[DistributionParams], Validate: validateDistribution},
		{Kind: TypeInstanceSnapshot, Provider: "leaseweb", Params: newParams[SnapshotParams], Validate: validateSnapshot(false)},
		{Kind: TypeVPSSnapshot, Provider: "leaseweb", Params: newParams[SnapshotParams], Validate: validateSnapshot(true)},
		{Kind: TypeASGScale, Provider: "leaseweb", Params: newParams[ASGScaleParams], Validate: validateASGScale},
		{Kind: TypeInstanceResize, Provider: "leaseweb", Params: newParams[ResizeParams], Validate: validateResize},
	}
}

func newParams[T any]() any { return new(T) }

// Kinds lists the supported operation kinds (task types).
func Kinds() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range Specs() {
		if !seen[s.Kind] {
			seen[s.Kind] = true
			out = append(out, s.Kind)
		}
	}
	sort.Strings(out)
	return out
}

// Providers lists the providers of the supported kinds, sorted.
func Providers() []string {
	var out []string
	for _, s := range Specs() {
		if !slices.Contains(out, s.Provider) {
			out = append(out, s.Provider)
		}
	}
	slices.Sort(out)
	return out
}

// LookupSpec finds the spec of kind on provider. An unknown kind is a
// *ValidationError on "task_type", an unsupported provider one on
// "provider".
func LookupSpec(kind, provider string) (Spec, error) {
	var providers []string
	for _, s := range Specs() {
		if s.Kind != kind {
			continue
		}
		if s.Provider == provider {
			return s, nil
		}
		providers = append(providers, s.Provider)
	}
	if len(providers) == 0 {
		return Spec{}, invalid("task_type", "unknown task type %q (known: %s)", kind, strings.Join(Kinds(), ", "))
	}
	if provider == "" {
		return Spec{}, invalid("provider", "required (one of: %s)", strings.Join(providers, ", "))
	}
	return Spec{}, invalid("provider", "%q does not support %s (supported: %s)", provider, kind, strings.Join(providers, ", "))
}
