package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/ionos"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	registerKind(Kind{Kind: TypeCDNDistributionEnsure, Provider: ops.ProviderIONOS,
		New: func(c Clients) Executor {
			return when(c.IONOS != nil, func() Executor { return NewIONOSDistribution(c.IONOS) })
		},
		Policy: poller.Policy{Initial: 5 * time.Second, Multiplier: 1.5, Max: 30 * time.Second, Jitter: 0.1, Deadline: time.Hour}})
}

// IONOSDistribution runs cdn:distribution_ensure on IONOS CDN: PUT the
// full distribution (idempotent: the same body twice is the same
// distribution), then GET until metadata.state is AVAILABLE.
type IONOSDistribution struct{ clients map[string]*ionos.Client }

// NewIONOSDistribution returns the executor.
func NewIONOSDistribution(clients map[string]*ionos.Client) Executor {
	return Register[ops.DistributionParams](&IONOSDistribution{clients: clients})
}

func (x *IONOSDistribution) client(account string) (*ionos.Client, error) {
	c, ok := x.clients[account]
	if !ok {
		return nil, Permanent(fmt.Errorf("account %q is not configured for provider ionos (providers.ionos.accounts)", account))
	}
	return c, nil
}

// LockKey keeps one change per distribution at a time.
func (x *IONOSDistribution) LockKey(op Op[*ops.DistributionParams]) string {
	p := op.Params
	return "ionos:distribution:" + p.DistributionID
}

// Launch sends the distribution; the handle is its id.
func (x *IONOSDistribution) Launch(ctx context.Context, op Op[*ops.DistributionParams], _ LaunchOptions) (string, error) {
	p := op.Params
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
func (x *IONOSDistribution) Poll(ctx context.Context, op Op[*ops.DistributionParams]) (PollResult, error) {
	c, err := x.client(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	d, err := c.GetDistribution(ctx, op.Handle)
	if err != nil {
		return PollResult{}, err
	}
	return distributionResult(d), nil
}

// BatchKey groups distributions by account.
func (x *IONOSDistribution) BatchKey(op Op[*ops.DistributionParams]) string {
	return "ionos:" + op.Account
}

// PollBatch lists the account's distributions, 1,000 a page, until every
// handle is found or the list ends (at most as many pages as the handles
// need, plus ten), and maps every handle it finds.
func (x *IONOSDistribution) PollBatch(ctx context.Context, account string, handles []string) (map[string]PollResult, error) {
	c, err := x.client(account)
	if err != nil {
		return nil, err
	}
	const page = ionos.MaxDistributionPage
	return listBatch(handles, page, len(handles)/page+10, func(offset int) ([]ionos.Distribution, bool, error) {
		p, err := c.ListDistributions(ctx, "", offset, page)
		if err != nil {
			return nil, false, err
		}
		return p.Items, len(p.Items) == page && p.Links.Next != "", nil
	}, func(d *ionos.Distribution) string { return d.ID }, distributionResult)
}

// distributionResult is what a distribution's state means for its
// operation.
func distributionResult(d *ionos.Distribution) PollResult {
	res := PollResult{Status: d.Metadata.State}
	res.Result, _ = json.Marshal(ops.DistributionResult{DistributionID: d.ID, State: d.Metadata.State, Message: d.Metadata.Message, Domain: d.Properties.Domain})
	switch d.Metadata.State {
	case ionos.StateAvailable:
		res.Done, res.Succeeded = true, true
	case ionos.StateFailed:
		res.Done, res.Error = true, fmt.Sprintf("distribution %s is FAILED: %s", d.ID, d.Metadata.Message)
	case ionos.StateBusy:
	default:
		res.Unknown = true
	}
	return res
}
