// Package ionos is a client for the IONOS CDN API's distributions: it
// ensures (creates or replaces) a distribution and reads its
// metadata.state. IONOS has no purge endpoint; a distribution change is
// its long-running operation. The token travels as a Bearer token.
//
// IONOS CDN API docs: https://api.ionos.com/docs/cdn/v1/
package ionos

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opsworker/opsworker/internal/providers"
)

// Provider is the provider name in operation records and config.
const Provider = "ionos"

// Distribution states (metadata.state). The API documents AVAILABLE,
// BUSY, FAILED and UNKNOWN (the filter.state enum of "Retrieve all
// Distributions" in https://api.ionos.com/docs/cdn/v1/).
const (
	StateAvailable = "AVAILABLE"
	StateBusy      = "BUSY"
	StateFailed    = "FAILED"
)

// Client talks to one regional API host.
type Client struct{ base *providers.Base }

// Option configures a Client.
type Option = providers.Option

// Shared options: the HTTP client, the User-Agent and a rate limiter.
var (
	WithHTTPClient  = providers.WithHTTPClient
	WithUserAgent   = providers.WithUserAgent
	WithRateLimiter = providers.WithRateLimiter
)

// WithToken sets the Bearer token.
func WithToken(t string) Option { return providers.WithAuthorization("Bearer ", t) }

// New returns a client for the API at baseURL (e.g.
// https://cdn.de-fra.ionos.com).
func New(baseURL string, opts ...Option) (*Client, error) {
	b, err := providers.NewBase(Provider, baseURL, checkResponse, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{base: b}, nil
}

// Upstream is where a routing rule sends requests.
type Upstream struct {
	Host            string           `json:"host"`
	Caching         bool             `json:"caching"`
	WAF             bool             `json:"waf"`
	GeoRestrictions *GeoRestrictions `json:"geoRestrictions,omitempty"`
	RateLimitClass  string           `json:"rateLimitClass"`
	SNIMode         string           `json:"sniMode"`
}

// GeoRestrictions block or allow countries (ISO 3166-1 alpha-2).
type GeoRestrictions struct {
	BlockList []string `json:"blockList,omitempty"`
	AllowList []string `json:"allowList,omitempty"`
}

// RoutingRule routes a path prefix and scheme to an upstream.
type RoutingRule struct {
	Scheme   string   `json:"scheme"`
	Prefix   string   `json:"prefix"`
	Upstream Upstream `json:"upstream"`
}

// Properties are a distribution's settings.
type Properties struct {
	Domain        string        `json:"domain"`
	CertificateID string        `json:"certificateId,omitempty"`
	RoutingRules  []RoutingRule `json:"routingRules"`
}

// Distribution is the resource envelope.
//
// IONOS CDN API docs: https://api.ionos.com/docs/cdn/v1/ ("Retrieve Distribution")
type Distribution struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Metadata struct {
		State   string `json:"state,omitempty"`
		Message string `json:"message,omitempty"`
	} `json:"metadata"`
	Properties Properties `json:"properties"`
}

// EnsureDistribution creates or replaces a distribution with exactly
// these properties: PUT /distributions/{id} (200). Omitted settings take
// defaults, not previous values.
func (c *Client) EnsureDistribution(ctx context.Context, id string, props Properties) (*Distribution, error) {
	var d Distribution
	body := map[string]any{"properties": props}
	return &d, c.do(ctx, "ensure distribution", http.MethodPut, "/distributions/"+url.PathEscape(id), body, &d)
}

// DistributionPage is one page of GET /distributions.
type DistributionPage struct {
	Items  []Distribution `json:"items"`
	Offset int            `json:"offset"`
	Limit  int            `json:"limit"`
	Links  struct {
		Next string `json:"next,omitempty"`
	} `json:"_links"`
}

// MaxDistributionPage is the largest limit GET /distributions takes.
const MaxDistributionPage = 1000

// ListDistributions reads one page of the account's distributions: GET
// /distributions?offset=&limit= (limit 1 to 1000; state "" lists every
// state, else filter.state).
//
// IONOS CDN API docs: https://api.ionos.com/docs/cdn/v1/ ("Retrieve all Distributions")
func (c *Client) ListDistributions(ctx context.Context, state string, offset, limit int) (*DistributionPage, error) {
	q := url.Values{}
	q.Set("offset", strconv.Itoa(offset))
	q.Set("limit", strconv.Itoa(limit))
	if state != "" {
		q.Set("filter.state", state)
	}
	var p DistributionPage
	return &p, c.base.Call(ctx, "list distributions", http.MethodGet, "/distributions", q, nil, &p)
}

// GetDistribution reads one: GET /distributions/{id}.
func (c *Client) GetDistribution(ctx context.Context, id string) (*Distribution, error) {
	var d Distribution
	return &d, c.do(ctx, "get distribution", http.MethodGet, "/distributions/"+url.PathEscape(id), nil, &d)
}

// DeleteDistribution deletes a distribution: DELETE
// /distributions/{distributionId} (202). The deletion is asynchronous:
// GET answers 404 once it is done.
//
// IONOS API docs: https://api.ionos.com/docs/cdn/v1/ ("Delete Distribution")
func (c *Client) DeleteDistribution(ctx context.Context, id string) error {
	return c.do(ctx, "delete distribution", http.MethodDelete, "/distributions/"+url.PathEscape(id), nil, nil)
}

func (c *Client) do(ctx context.Context, op, method, path string, in, out any) error {
	return c.base.Call(ctx, op, method, path, nil, in, out)
}

// checkResponse reads the IONOS Cloud error body: {"httpStatus": 400,
// "messages": [{"errorCode": "...", "message": "..."}]} (the Error schema
// of https://api.ionos.com/docs/cdn/v1/). The correlation id is the
// X-Request-Id header.
func checkResponse(resp *http.Response, body []byte) *providers.Error {
	e := &providers.Error{RequestID: resp.Header.Get("X-Request-Id")}
	var eb struct {
		Messages []struct {
			ErrorCode string `json:"errorCode"`
			Message   string `json:"message"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &eb) == nil && len(eb.Messages) > 0 {
		e.Code, e.Message = eb.Messages[0].ErrorCode, eb.Messages[0].Message
	} else {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200]
		}
	}
	return e
}
