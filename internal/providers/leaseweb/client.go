// Package leaseweb is a client for the Leaseweb API (https://api.leaseweb.com):
// today its dedicated-server part, bareMetals v2 (seed 001 ~7709-10732;
// PROVIDER_API_MAP §2.2 and §5.1), as the BareMetal service. CDN and
// public cloud services share the same Client.
//
// The client makes one attempt per call and classifies failures into
// *providers.Error. The API key travels in the X-LSW-Auth header only.
// A Client is safe for concurrent use.
package leaseweb

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/opsworker/opsworker/internal/providers"
)

// Provider is the provider name in operation records and config.
const Provider = "leaseweb"

// DefaultBaseURL is the production API root.
const DefaultBaseURL = "https://api.leaseweb.com"

// Client talks to one Leaseweb account.
type Client struct {
	base *providers.Base

	// BareMetal is the dedicated servers API (bareMetals/v2).
	BareMetal *BareMetalService
	// PublicCloud is the public cloud API (publicCloud/v1).
	PublicCloud *PublicCloudService
	// CDN is the CDN v2 API (cdn/v2).
	CDN *CDNService
}

type service struct{ c *Client }

// Option configures a Client.
type Option = providers.Option

// Shared options: the HTTP client (default: 30 s timeout), the User-Agent
// and a rate limiter waited for before every call.
var (
	WithHTTPClient  = providers.WithHTTPClient
	WithUserAgent   = providers.WithUserAgent
	WithRateLimiter = providers.WithRateLimiter
)

// WithAPIKey sets the API key (sent as X-LSW-Auth).
func WithAPIKey(k string) Option { return providers.WithHeader("X-LSW-Auth", k) }

// New returns a client for the API rooted at baseURL.
func New(baseURL string, opts ...Option) (*Client, error) {
	b, err := providers.NewBase(Provider, baseURL, checkResponse, opts...)
	if err != nil {
		return nil, err
	}
	c := &Client{base: b}
	c.BareMetal = &BareMetalService{c}
	c.PublicCloud = &PublicCloudService{c}
	c.CDN = &CDNService{c}
	return c, nil
}

// errorBody is Leaseweb's error envelope (seed 001:4-11). errorCode is a
// string in most samples and a number in some (PROVIDER_API_MAP §4.12);
// correlationId is the request id, in the body.
type errorBody struct {
	ErrorCode     json.RawMessage `json:"errorCode"`
	ErrorMessage  string          `json:"errorMessage"`
	UserMessage   string          `json:"userMessage"`
	CorrelationID string          `json:"correlationId"`
	ErrorDetails  json.RawMessage `json:"errorDetails"`
}

func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, in, out any) error {
	return c.base.Call(ctx, op, method, path, q, in, out)
}

func checkResponse(resp *http.Response, body []byte) *providers.Error {
	e := &providers.Error{}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		e.Code = strings.Trim(string(eb.ErrorCode), `"`)
		e.Message = eb.ErrorMessage
		if eb.UserMessage != "" && eb.UserMessage != eb.ErrorMessage {
			e.Message += " (" + eb.UserMessage + ")"
		}
		e.RequestID = eb.CorrelationID
	}
	if e.Message == "" {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		e.Message = strings.ToValidUTF8(msg, "?")
	}
	return e
}
