// Package leaseweb is a client for the Leaseweb API (https://api.leaseweb.com):
// its dedicated-server part, bareMetals v2, as the BareMetal service; the
// CDN and public cloud services share the same Client.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html
//
// The client makes one attempt per call and classifies failures into
// *providers.Error. The API key travels in the X-LSW-Auth header only.
// A Client is safe for concurrent use.
package leaseweb

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
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

// errorBody is Leaseweb's error envelope ("Error" in
// https://developer.leaseweb.com/docs/). errorCode is a string in most of
// the documented samples and a number in some; correlationId is the
// request id, in the body.
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

// details renders errorDetails, which names the fields a request got
// wrong ({"hostname": ["not a valid hostname"]}), as "hostname: not a
// valid hostname; …", sorted by field and at most 300 bytes; "" when
// there are none. (The worker redacts secret values in errors.)
func details(raw json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		var msgs []string
		switch v := m[k].(type) {
		case string:
			msgs = append(msgs, v)
		case []any:
			for _, x := range v {
				msgs = append(msgs, fmt.Sprint(x))
			}
		default:
			b, _ := json.Marshal(v)
			msgs = append(msgs, string(b))
		}
		parts = append(parts, k+": "+strings.Join(msgs, ", "))
	}
	out := strings.ToValidUTF8(strings.Join(parts, "; "), "?")
	if len(out) > 300 {
		out = strings.ToValidUTF8(out[:300], "") + "…"
	}
	return out
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
		if d := details(eb.ErrorDetails); d != "" {
			e.Message += " (" + d + ")"
		}
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
