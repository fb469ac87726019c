package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/ionos"
)

// TypeCDNDistributionEnsure creates or replaces a CDN distribution and
// waits until it is AVAILABLE.
const TypeCDNDistributionEnsure = "cdn:distribution_ensure"

// Limits and patterns from seed 002 (filter.domain: 2..253 characters,
// the hostname pattern below).
var (
	ionosDomainRe = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}\.?$`)
	countryRe     = regexp.MustCompile(`^[A-Z]{2}$`)
	rateClassRe   = regexp.MustCompile(`^R[0-9]{1,4}$`)
	prefixRe      = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$`)
)

// DistributionParams are the params of cdn:distribution_ensure on ionos.
// The whole distribution is given: IONOS fills what is left out with
// defaults, not with the previous values.
type DistributionParams struct {
	DistributionID string            `json:"distribution_id"`
	Domain         string            `json:"domain"`
	CertificateID  string            `json:"certificate_id,omitempty"`
	RoutingRules   []RoutingRuleParm `json:"routing_rules"`
}

// RoutingRuleParm is one routing rule.
type RoutingRuleParm struct {
	Scheme   string `json:"scheme"`
	Prefix   string `json:"prefix"`
	Upstream struct {
		Host            string `json:"host"`
		Caching         bool   `json:"caching"`
		WAF             bool   `json:"waf"`
		GeoRestrictions *struct {
			BlockList []string `json:"block_list,omitempty"`
			AllowList []string `json:"allow_list,omitempty"`
		} `json:"geo_restrictions,omitempty"`
		RateLimitClass string `json:"rate_limit_class,omitempty"`
		SNIMode        string `json:"sni_mode,omitempty"`
	} `json:"upstream"`
}

func validateDistribution(params json.RawMessage) error {
	var p DistributionParams
	if err := decodeParams(params, &p); err != nil {
		return err
	}
	switch {
	case p.DistributionID == "":
		return invalid("params.distribution_id", "required")
	case !uuidRe.MatchString(p.DistributionID):
		return invalid("params.distribution_id", "must be a UUID, got %q", p.DistributionID)
	case p.Domain == "":
		return invalid("params.domain", "required")
	case len(p.Domain) < 2 || len(p.Domain) > 253 || !ionosDomainRe.MatchString(p.Domain):
		return invalid("params.domain", "must be a domain name of 2-253 characters (e.g. cdn.example.com), got %q", p.Domain)
	case p.CertificateID != "" && !uuidRe.MatchString(p.CertificateID):
		return invalid("params.certificate_id", "must be a UUID")
	case len(p.RoutingRules) == 0:
		return invalid("params.routing_rules", "at least one rule is required")
	}
	seen := map[string]bool{}
	for i, r := range p.RoutingRules {
		f := fmt.Sprintf("params.routing_rules[%d]", i)
		switch {
		case r.Scheme != "http" && r.Scheme != "https" && r.Scheme != "http/https":
			return invalid(f+".scheme", "must be http, https or http/https")
		case !prefixRe.MatchString(r.Prefix):
			return invalid(f+".prefix", "must be a path starting with /")
		case seen[r.Scheme+" "+r.Prefix]:
			return invalid(f+".prefix", "%s %s is routed twice", r.Scheme, r.Prefix)
		case r.Upstream.Host == "":
			return invalid(f+".upstream.host", "required")
		case validHostname(r.Upstream.Host) != nil:
			return invalid(f+".upstream.host", "must be a hostname, got %q", r.Upstream.Host)
		case r.Upstream.RateLimitClass != "" && !rateClassRe.MatchString(r.Upstream.RateLimitClass):
			return invalid(f+".upstream.rate_limit_class", "must look like R1, R10, R100, got %q", r.Upstream.RateLimitClass)
		case r.Upstream.SNIMode != "" && r.Upstream.SNIMode != "distribution" && r.Upstream.SNIMode != "origin":
			return invalid(f+".upstream.sni_mode", "must be distribution or origin")
		}
		seen[r.Scheme+" "+r.Prefix] = true
		if g := r.Upstream.GeoRestrictions; g != nil {
			if len(g.BlockList) > 0 && len(g.AllowList) > 0 {
				return invalid(f+".upstream.geo_restrictions", "give block_list or allow_list, not both")
			}
			for j, c := range append(append([]string{}, g.BlockList...), g.AllowList...) {
				if !countryRe.MatchString(c) {
					return invalid(fmt.Sprintf("%s.upstream.geo_restrictions[%d]", f, j), "must be an ISO 3166-1 alpha-2 code such as DE, got %q", c)
				}
			}
		}
	}
	return nil
}

// IONOSDistribution runs cdn:distribution_ensure on IONOS CDN: PUT the
// full distribution (idempotent: the same body twice is the same
// distribution), then GET until metadata.state is AVAILABLE.
type IONOSDistribution struct{ clients map[string]*ionos.Client }

// NewIONOSDistribution returns the executor.
func NewIONOSDistribution(clients map[string]*ionos.Client) *IONOSDistribution {
	return &IONOSDistribution{clients: clients}
}

func (x *IONOSDistribution) client(account string) (*ionos.Client, error) {
	c, ok := x.clients[account]
	if !ok {
		return nil, Permanent(fmt.Errorf("account %q is not configured for provider ionos (providers.ionos.accounts)", account))
	}
	return c, nil
}

// LockKey keeps one change per distribution at a time.
func (x *IONOSDistribution) LockKey(op *opstore.Operation) string {
	var p DistributionParams
	_ = json.Unmarshal(op.Params, &p)
	return "ionos:distribution:" + p.DistributionID
}

// Launch sends the distribution; the handle is its id.
func (x *IONOSDistribution) Launch(ctx context.Context, op *opstore.Operation, _ LaunchOptions) (string, error) {
	var p DistributionParams
	if err := decodeParams(op.Params, &p); err != nil {
		return "", Permanent(err)
	}
	c, err := x.client(op.Account)
	if err != nil {
		return "", err
	}
	props := ionos.Properties{Domain: p.Domain, CertificateID: p.CertificateID}
	for _, r := range p.RoutingRules {
		up := ionos.Upstream{Host: r.Upstream.Host, Caching: r.Upstream.Caching, WAF: r.Upstream.WAF, RateLimitClass: r.Upstream.RateLimitClass, SNIMode: r.Upstream.SNIMode}
		if up.RateLimitClass == "" {
			up.RateLimitClass = "R1"
		}
		if up.SNIMode == "" {
			up.SNIMode = "distribution"
		}
		if g := r.Upstream.GeoRestrictions; g != nil {
			up.GeoRestrictions = &ionos.GeoRestrictions{BlockList: g.BlockList, AllowList: g.AllowList}
		}
		props.RoutingRules = append(props.RoutingRules, ionos.RoutingRule{Scheme: r.Scheme, Prefix: r.Prefix, Upstream: up})
	}
	if _, err := c.EnsureDistribution(ctx, p.DistributionID, props); err != nil {
		return "", err
	}
	return p.DistributionID, nil
}

// Poll reads metadata.state: AVAILABLE succeeds, FAILED fails, BUSY (and
// any unknown value) keeps polling.
func (x *IONOSDistribution) Poll(ctx context.Context, op *opstore.Operation) (PollResult, error) {
	c, err := x.client(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	d, err := c.GetDistribution(ctx, op.Handle)
	if err != nil {
		return PollResult{}, err
	}
	res := PollResult{Status: d.Metadata.State}
	res.Result, _ = json.Marshal(map[string]any{"distribution_id": d.ID, "state": d.Metadata.State, "message": d.Metadata.Message, "domain": d.Properties.Domain})
	switch d.Metadata.State {
	case ionos.StateAvailable:
		res.Done, res.Succeeded = true, true
	case ionos.StateFailed:
		res.Done, res.Error = true, fmt.Sprintf("distribution %s is FAILED: %s", d.ID, d.Metadata.Message)
	case ionos.StateBusy:
	default:
		res.Unknown = true
	}
	return res, nil
}
