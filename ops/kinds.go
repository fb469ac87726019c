package ops

import (
	"encoding/json"
	"slices"
	"strings"
)

// Operation kinds: each is an asynq task type, and the task_type of the
// HTTP API. A kind's name never changes once released.
const (
	// KindCDNPurge removes cached files from a CDN.
	KindCDNPurge = "cdn:purge"
	// KindCDNInvalidate invalidates URLs on every PoP of a CDN.
	KindCDNInvalidate = "cdn:invalidate"
	// KindCDNDistributionEnsure creates or replaces a CDN distribution and
	// waits until it is available.
	KindCDNDistributionEnsure = "cdn:distribution_ensure"
	// KindServerInstall (re)installs a dedicated server's operating
	// system: it wipes its disks.
	KindServerInstall = "server:install"
	// KindServerRescue boots a dedicated server into a rescue image.
	KindServerRescue = "server:rescue"
	// KindInstanceSnapshot snapshots a public cloud instance.
	KindInstanceSnapshot = "instance:snapshot"
	// KindVPSSnapshot snapshots a VPS.
	KindVPSSnapshot = "vps:snapshot"
	// KindASGScale changes an auto scaling group's amounts or schedule.
	KindASGScale = "asg:scale"
	// KindInstanceResize changes a public cloud instance's type.
	KindInstanceResize = "instance:resize"
)

// Providers.
const (
	ProviderUCDN     = "ucdn"
	ProviderLeaseweb = "leaseweb"
	ProviderEdgio    = "edgio"
	ProviderIONOS    = "ionos"
)

// Params is the params type of one (kind, provider): its JSON tags are
// the only keys accepted, exactly as spelled, and its fields tagged
// `secret:"true"` never leave the worker. Kind and Provider say what it
// runs, so a typed value is a complete request (see the client package).
type Params interface {
	Kind() string
	Provider() string
	// Validate checks the values and returns a *ValidationError naming
	// the first bad field (params.<name>).
	Validate() error
}

// ParamsType is one (kind, provider) and its params type.
type ParamsType struct {
	Kind, Provider string
	// New returns a pointer to a new zero value of the params type.
	New func() Params
	// NewResult returns a pointer to a new zero value of the result type
	// its operations report (see ResultReporter).
	NewResult func() any
	// Examples are valid params, as JSON (shown in the OpenAPI document;
	// tests check each against Validate and the schema).
	Examples []json.RawMessage
}

func newOf[T any, P interface {
	*T
	Params
}]() Params {
	return P(new(T))
}

var paramsTypes []ParamsType

// registerParams adds a (kind, provider), its params type and examples of
// valid params; each params type's file registers its own. A pair
// registered twice, or without an example, is a programming error, found
// at start.
func registerParams[T any, P interface {
	*T
	Params
}](examples ...string) {
	p := newOf[T, P]()
	for _, t := range paramsTypes {
		if t.Kind == p.Kind() && t.Provider == p.Provider() {
			panic("ops: " + p.Kind() + " on " + p.Provider() + " registered twice")
		}
	}
	r, ok := p.(ResultReporter)
	if !ok {
		panic("ops: " + p.Kind() + " on " + p.Provider() + ": params type has no NewResult")
	}
	if len(examples) == 0 {
		panic("ops: " + p.Kind() + " on " + p.Provider() + ": no example params")
	}
	pt := ParamsType{Kind: p.Kind(), Provider: p.Provider(), New: newOf[T, P], NewResult: r.NewResult}
	for _, e := range examples {
		pt.Examples = append(pt.Examples, json.RawMessage(e))
	}
	paramsTypes = append(paramsTypes, pt)
	slices.SortFunc(paramsTypes, func(a, b ParamsType) int {
		return strings.Compare(a.Kind+" "+a.Provider, b.Kind+" "+b.Provider)
	})
}

// ParamsTypes lists every supported (kind, provider) with its params
// type.
func ParamsTypes() []ParamsType { return slices.Clone(paramsTypes) }

// Kinds lists the operation kinds, sorted.
func Kinds() []string {
	var out []string
	for _, t := range paramsTypes {
		if !slices.Contains(out, t.Kind) {
			out = append(out, t.Kind)
		}
	}
	slices.Sort(out)
	return out
}

// Providers lists the providers, sorted.
func Providers() []string {
	var out []string
	for _, t := range paramsTypes {
		if !slices.Contains(out, t.Provider) {
			out = append(out, t.Provider)
		}
	}
	slices.Sort(out)
	return out
}

// NewParams returns a new zero params value of kind on provider. An
// unknown kind is a *ValidationError on "task_type", an unsupported
// provider one on "provider".
func NewParams(kind, provider string) (Params, error) {
	var providers []string
	for _, t := range paramsTypes {
		if t.Kind != kind {
			continue
		}
		if t.Provider == provider {
			return t.New(), nil
		}
		providers = append(providers, t.Provider)
	}
	if len(providers) == 0 {
		return nil, invalid("task_type", "unknown task type %q (known: %s)", kind, strings.Join(Kinds(), ", "))
	}
	if provider == "" {
		return nil, invalid("provider", "required (one of: %s)", strings.Join(providers, ", "))
	}
	return nil, invalid("provider", "%q does not support %s (supported: %s)", provider, kind, strings.Join(providers, ", "))
}
