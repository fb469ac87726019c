package ucdn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/opsworker/opsworker/internal/httpclass"
	"github.com/opsworker/opsworker/internal/providers"
)

// Provider is the provider name used in operation records, config and errors.
const Provider = "ucdn"

// DefaultBaseURL is the production API root.
const DefaultBaseURL = "https://api.ucdn.com/v4"

// StatusFail is UCDN's non-standard "Fail message" status, listed for
// most endpoints in the UCDN API docs (https://api.ucdn.com/docs/). It
// reports a refused request (unknown zone, bad parameter), not a transient
// server fault, so it is classified permanent.
const StatusFail = 532

// statusOverrides are UCDN's exceptions to httpclass.Classify, which
// would retry a 5xx: StatusFail is permanent.
var statusOverrides = httpclass.Overrides{StatusFail: httpclass.Permanent}

// Zone types accepted by the purge endpoint.
//
// UCDN API docs: https://api.ucdn.com/docs/ ("Purge files", zone_type)
const (
	ZoneTypeObjects    = "objects"
	ZoneTypeLivestream = "livestream"
)

// Purge job statuses.
//
// UCDN API docs: https://api.ucdn.com/docs/ ("View purge job", "List purge jobs")
const (
	JobWaiting  = "waiting"
	JobRunning  = "running"
	JobFinished = "finished"
	JobFailed   = "failed"
)

// Client talks to one UCDN account.
type Client struct{ base *providers.Base }

// Option configures a Client.
type Option = providers.Option

// Shared options: the HTTP client (default: 30 s timeout), the User-Agent
// and a rate limiter waited for before every call.
var (
	WithHTTPClient  = providers.WithHTTPClient
	WithUserAgent   = providers.WithUserAgent
	WithRateLimiter = providers.WithRateLimiter
)

// WithToken sets the account's API token (sent as X-UCDN-Token).
func WithToken(token string) Option { return providers.WithHeader("X-UCDN-Token", token) }

// New returns a client for the API rooted at baseURL (e.g.
// DefaultBaseURL or a simulator's URL).
func New(baseURL string, opts ...Option) (*Client, error) {
	opts = append([]Option{providers.WithStatusOverrides(statusOverrides)}, opts...)
	b, err := providers.NewBase(Provider, baseURL, checkResponse, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{base: b}, nil
}

// PurgeRequest asks UCDN to remove files from a zone's cache.
type PurgeRequest struct {
	ZoneName string
	ZoneType string
	// Files are paths (/dir/file.txt) or absolute URLs; sent newline-separated.
	Files []string
}

// PurgeResponse is the answer to a purge request.
type PurgeResponse struct {
	Message string `json:"message"`
	JobID   string `json:"job_id"`
}

// PurgeJob is one purge job as UCDN reports it.
type PurgeJob struct {
	JobID string `json:"job_id"`
	// Files come back as absolute URLs on the zone's CDN domain, even when
	// paths were submitted (the "View purge job" example in the UCDN API
	// docs, https://api.ucdn.com/docs/).
	Files     []string `json:"files"`
	Status    string   `json:"status"`
	CreatedAt int64    `json:"created_at"`
}

// Purge creates a purge job: POST /purge/zone?zone_name=&zone_type=.
// The documented status table says 204 but the documented example answers
// 200 with a body; both are accepted, and a success without a job_id is an
// error. Errors are *providers.Error.
//
// UCDN API docs: https://api.ucdn.com/docs/ ("Purge files")
func (c *Client) Purge(ctx context.Context, req *PurgeRequest) (*PurgeResponse, error) {
	q := url.Values{"zone_name": {req.ZoneName}, "zone_type": {req.ZoneType}}
	body, err := json.Marshal(map[string]string{"files": strings.Join(req.Files, "\n")})
	if err != nil {
		return nil, err
	}
	var out PurgeResponse
	if err := c.do(ctx, "purge", http.MethodPost, "/purge/zone", q, body, &out); err != nil {
		return nil, err
	}
	if out.JobID == "" {
		return nil, &providers.Error{Provider: Provider, Op: "purge", Message: "success response without job_id", Class: providers.Retryable}
	}
	return &out, nil
}

// GetPurgeJob reads one purge job: GET /purge/job/{job_id}/.
//
// UCDN API docs: https://api.ucdn.com/docs/ ("View purge job")
func (c *Client) GetPurgeJob(ctx context.Context, jobID string) (*PurgeJob, error) {
	var out PurgeJob
	if err := c.do(ctx, "get purge job", http.MethodGet, "/purge/job/"+url.PathEscape(jobID)+"/", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListPurgeJobs lists the latest purge jobs in one status: GET
// /purge?status=&count=. status "" lets the API apply its default (waiting,
// running and failed); count 0 means the API default (20), at most 500.
//
// UCDN API docs: https://api.ucdn.com/docs/ ("List purge jobs")
func (c *Client) ListPurgeJobs(ctx context.Context, status string, count int) ([]PurgeJob, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if count > 0 {
		q.Set("count", fmt.Sprint(count))
	}
	var out []PurgeJob
	if err := c.do(ctx, "list purge jobs", http.MethodGet, "/purge/", q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DeletePurgeJob removes a waiting or finished purge job: DELETE
// /purge/job/{job_id}/.
//
// UCDN API docs: https://api.ucdn.com/docs/ ("Delete a purge job")
func (c *Client) DeletePurgeJob(ctx context.Context, jobID string) error {
	return c.do(ctx, "delete purge job", http.MethodDelete, "/purge/job/"+url.PathEscape(jobID)+"/", nil, nil, nil)
}

func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, body []byte, out any) error {
	h := http.Header{}
	// The UCDN API docs (https://api.ucdn.com/docs/) require a Content-Type
	// header on every request.
	h.Set("Content-Type", "application/json")
	return c.base.CallRaw(ctx, op, method, c.base.URL(path, q), body, h, out)
}

// checkResponse reads a non-2xx answer into *providers.Error; Base
// classifies it.
//
// The UCDN API docs (https://api.ucdn.com/docs/) give no error body
// example: errors are typed "string" or "json". We accept
// {"message": "..."} / {"error": "..."} objects and bare JSON strings, and
// fall back to the raw text. UCDN names no correlation-id header;
// X-Request-Id is kept when a proxy adds one.
func checkResponse(resp *http.Response, body []byte) *providers.Error {
	return &providers.Error{RequestID: requestID(resp), Message: errorMessage(body)}
}

func errorMessage(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	var obj struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &obj) == nil {
		if obj.Message != "" {
			return obj.Message
		}
		if obj.Error != "" {
			return obj.Error
		}
	}
	var s string
	if json.Unmarshal(body, &s) == nil {
		return s
	}
	const max = 200
	if len(body) > max {
		body = body[:max]
	}
	return strings.ToValidUTF8(string(body), "?")
}

func requestID(resp *http.Response) string {
	return resp.Header.Get("X-Request-Id")
}
