package leaseweb

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// CDNService is the Leaseweb CDN v2 API.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/cdn_v2.html
type CDNService service

// URLStatus is one URL's progress inside an invalidation.
type URLStatus struct {
	DistributionGroupID string `json:"distribution_group_id"`
	URL                 string `json:"url,omitempty"`
	Status              string `json:"status"`
	Message             string `json:"message"`
}

// Action is a background job of the CDN API. The Get Action By Id sample
// omits resource: it may be nil.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/cdn_v2.html ("Do Invalidation", "Get Action By Id")
type Action struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Status     string `json:"status"`
	CustomerID string `json:"customerId"`
	Created    string `json:"created"`
	Updated    string `json:"updated"`
	Resource   *struct {
		InvalidationID string      `json:"invalidation_id"`
		Status         string      `json:"status"`
		URLStatus      []URLStatus `json:"url_status"`
		Submitted      string      `json:"submitted"`
		Completed      *string     `json:"completed"`
	} `json:"resource,omitempty"`
}

// Action statuses seen in the documented samples; no enum is documented.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/cdn_v2.html ("Get All Actions")
const (
	ActionPending  = "PENDING"
	ActionFinished = "FINISHED"
)

// Invalidate asks to purge files on every PoP: POST /cdn/v2/invalidations
// (201 action). The handle is the action's id.
func (s *CDNService) Invalidate(ctx context.Context, files []string) (*Action, error) {
	var a Action
	return &a, s.c.do(ctx, "invalidate", http.MethodPost, "/cdn/v2/invalidations", nil, map[string][]string{"files": files}, &a)
}

// GetAction reads one action: GET /cdn/v2/actions/{action_id}.
func (s *CDNService) GetAction(ctx context.Context, id string) (*Action, error) {
	var a Action
	return &a, s.c.do(ctx, "get action", http.MethodGet, "/cdn/v2/actions/"+url.PathEscape(id), nil, nil, &a)
}

// ListActions lists actions of one type (e.g. INVALIDATION), newest first:
// GET /cdn/v2/actions?filters=&limit=&offset=.
func (s *CDNService) ListActions(ctx context.Context, filter string, limit, offset int) ([]Action, int, error) {
	q := url.Values{}
	if filter != "" {
		q.Set("filters", filter)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	var out struct {
		Actions  []Action `json:"actions"`
		Metadata struct {
			TotalCount int `json:"totalCount"`
		} `json:"_metadata"`
	}
	err := s.c.do(ctx, "list actions", http.MethodGet, "/cdn/v2/actions", q, nil, &out)
	return out.Actions, out.Metadata.TotalCount, err
}
