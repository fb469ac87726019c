// Package edgio is a client for the legacy EdgeCast (Edgio) Media
// Management purge API. The token travels as "Authorization: TOK:<token>"
// and a purge needs a token whose user holds the PUT method; otherwise the
// API answers 403.
//
// Edgio's CDN was shut down in January 2025. The shape is kept so that a
// compatible endpoint or the simulator can serve it. Field casing lives in
// this file only, so it is easy to correct.
//
// EdgeCast API docs: https://developer.edgecast.com/cdn/api/Content/Media_Management/Purge_Content.htm
// and https://developer.edgecast.com/cdn/api/Content/Media_Management/Get_Purge_Request.htm;
// token permissions: https://docs.edgecast.com/cdn/Content/User_Accounts/Web_Services_REST_API_Access.htm
package edgio

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/opsworker/opsworker/internal/providers"
)

// Provider is the provider name in operation records and config.
const Provider = "edgio"

// DefaultBaseURL is the EdgeCast API root.
const DefaultBaseURL = "https://api.edgecast.com"

// MaxOutstanding is Edgio's limit of outstanding purge requests per
// account ("a default limit of 50 concurrent purge requests" in
// https://developer.edgecast.com/cdn/api/Content/Media_Management/Bulk-Purge-Content.htm).
const MaxOutstanding = 50

// Media types (platforms) a purge addresses.
var MediaTypes = map[string]int{"http_large": 3, "http_small": 8, "adn": 14, "flash": 2}

// Client talks to the API for any account number its token may use.
type Client struct{ base *providers.Base }

// Option configures a Client.
type Option = providers.Option

// Shared options: the HTTP client, the User-Agent and a rate limiter.
var (
	WithHTTPClient  = providers.WithHTTPClient
	WithUserAgent   = providers.WithUserAgent
	WithRateLimiter = providers.WithRateLimiter
)

// WithToken sets the REST API token (sent as "Authorization: TOK:<token>").
func WithToken(t string) Option { return providers.WithAuthorization("TOK:", t) }

// New returns a client for the API at baseURL.
func New(baseURL string, opts ...Option) (*Client, error) {
	b, err := providers.NewBase(Provider, baseURL, checkResponse, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{base: b}, nil
}

// PurgeRequest purges one path or URL on one platform.
type PurgeRequest struct {
	MediaPath string `json:"MediaPath"`
	MediaType int    `json:"MediaType"`
}

// Purge is a purge request's state.
type Purge struct {
	ID           string  `json:"Id"`
	MediaPath    string  `json:"MediaPath,omitempty"`
	MediaType    int     `json:"MediaType,omitempty"`
	InDate       string  `json:"InDate,omitempty"`
	CompleteDate *string `json:"CompleteDate"`
}

// Done reports whether the purge completed.
func (p *Purge) Done() bool { return p.CompleteDate != nil && *p.CompleteDate != "" }

func (c *Client) path(account string) string {
	return "/v2/mcc/customers/" + url.PathEscape(account) + "/edge/purge"
}

// CreatePurge submits a purge: PUT .../customers/{account}/edge/purge.
func (c *Client) CreatePurge(ctx context.Context, account string, req *PurgeRequest) (*Purge, error) {
	var p Purge
	return &p, c.do(ctx, "purge", http.MethodPut, c.path(account), req, &p)
}

// GetPurge reads a purge: GET .../customers/{account}/edge/purge/{id}.
func (c *Client) GetPurge(ctx context.Context, account, id string) (*Purge, error) {
	var p Purge
	return &p, c.do(ctx, "get purge", http.MethodGet, c.path(account)+"/"+url.PathEscape(id), nil, &p)
}

func (c *Client) do(ctx context.Context, op, method, path string, in, out any) error {
	return c.base.Call(ctx, op, method, path, nil, in, out)
}

// checkResponse reads EdgeCast's error body, {"Message": "..."}.
func checkResponse(resp *http.Response, body []byte) *providers.Error {
	e := &providers.Error{}
	var eb struct {
		Message string `json:"Message"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Message != "" {
		e.Message = eb.Message
	} else {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200]
		}
	}
	if resp.StatusCode == http.StatusForbidden {
		e.Message = "the token's user lacks the permission for this call (a purge needs the PUT method and MCC purge rights): " + e.Message
	}
	e.RequestID = resp.Header.Get("X-Request-Id")
	return e
}
