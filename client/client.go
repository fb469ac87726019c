// Package client is a Go client of opsworker's HTTP API: submit an
// operation from its typed params (package ops) or as JSON, read it and
// its timeline, list, search and page through operations, wait for one to
// end, cancel, approve or reject one; start, follow, decide and cancel
// runbook runs; pause and resume provider accounts.
//
//	c, err := client.New("https://opsworker.internal:8080", os.Getenv("OPSWORKER_TOKEN"))
//	op, _, err := c.Submit(ctx, &ops.UCDNPurgeParams{ZoneName: "shop", ZoneType: ops.ZoneTypeObjects, Files: []string{"/index.html"}},
//		client.IdempotencyKey("deploy-42"))
//	op, err = c.Wait(ctx, op.ID, client.WaitOptions{})
//
// Every error the API answers is a *Problem (RFC 9457) naming the bad
// field where there is one. Systems that speak asynq may instead enqueue
// ops.Envelope as a task whose type is the kind (see the README).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opsworker/opsworker/ops"
)

// Client talks to one worker's HTTP API with one bearer token. It is safe
// for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	ua    string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with a 30 s timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.ua = ua } }

// New returns a client of the API at baseURL (scheme, host and port, e.g.
// "http://127.0.0.1:8080") using token, a value of one of the worker's
// http.tokens (scope write to submit and cancel).
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("client: baseURL must be an absolute http(s) URL such as http://127.0.0.1:8080")
	}
	if token == "" {
		return nil, errors.New("client: a token is required")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, token: token, hc: &http.Client{Timeout: 30 * time.Second}, ua: "opsworker-go-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Response is the HTTP response of a call, with what opsworker's headers
// say.
type Response struct {
	*http.Response
	// Replayed is true when a submit's idempotency key named an existing
	// operation: nothing new was launched (Idempotent-Replayed).
	Replayed bool
	// NextCursor continues a List; "" on the last page.
	NextCursor string
}

// Problem is an error the API answered (RFC 9457 problem details).
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the bad input ("params.zone_name"), if any.
	Field string `json:"field,omitempty"`
}

func (p *Problem) Error() string {
	msg := fmt.Sprintf("opsworker: %d %s", p.Status, p.Title)
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	return msg
}

// SubmitOption sets an optional part of a submit.
type SubmitOption func(*submitRequest)

// IdempotencyKey makes the submit idempotent: the same key from the same
// token names one operation, however often it is sent.
func IdempotencyKey(key string) SubmitOption {
	return func(r *submitRequest) { r.IdempotencyKey = key }
}

// CallbackURL asks for the operation's webhooks at url.
func CallbackURL(url string) SubmitOption { return func(r *submitRequest) { r.CallbackURL = url } }

// Account selects the provider account (default "default").
func Account(name string) SubmitOption { return func(r *submitRequest) { r.Account = name } }

type submitRequest struct {
	TaskType       string            `json:"task_type"`
	Provider       string            `json:"provider"`
	Account        string            `json:"account,omitempty"`
	Params         json.RawMessage   `json:"params"`
	CallbackURL    string            `json:"callback_url,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	DryRun         bool              `json:"dry_run,omitempty"`
}

// Submit creates an operation from p: its kind and provider come from the
// params type. p is validated first (the worker validates it again), so
// bad input fails here with an *ops.ValidationError and nothing is sent.
func (c *Client) Submit(ctx context.Context, p ops.Params, opts ...SubmitOption) (*ops.Operation, *Response, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("client: encode params: %w", err)
	}
	req := submitRequest{TaskType: p.Kind(), Provider: p.Provider(), Params: raw}
	for _, o := range opts {
		o(&req)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	var op ops.Operation
	resp, err := c.do(ctx, http.MethodPost, "/v1/operations", nil, body, &op)
	if err != nil {
		return nil, resp, err
	}
	return &op, resp, nil
}

// Get returns one operation.
func (c *Client) Get(ctx context.Context, id string) (*ops.Operation, *Response, error) {
	var op ops.Operation
	resp, err := c.do(ctx, http.MethodGet, "/v1/operations/"+url.PathEscape(id), nil, nil, &op)
	if err != nil {
		return nil, resp, err
	}
	return &op, resp, nil
}

// ListOptions filter and page a List. Zero values mean no filter.
type ListOptions struct {
	State    ops.State
	Kind     string
	Provider string
	// Limit is the page size, 1..500 (the API's default is 20).
	Limit int
	// Cursor is a Response.NextCursor of an earlier page.
	Cursor string
	// Labels match operations carrying every one of these labels.
	Labels map[string]string
	// Resource matches what the operation acts on
	// (leaseweb:server:12345).
	Resource string
	// Actor matches the name of who submitted it.
	Actor string
	// Since and Until bound the creation time (inclusive; zero: open).
	Since, Until time.Time
}

// List returns one page of operations, newest first. A page may hold
// fewer than Limit operations and still not be the last: continue while
// Response.NextCursor is not "" (or use All).
func (c *Client) List(ctx context.Context, o ListOptions) ([]ops.Operation, *Response, error) {
	q := url.Values{}
	if o.State != "" {
		q.Set("state", string(o.State))
	}
	if o.Kind != "" {
		q.Set("kind", o.Kind)
	}
	if o.Provider != "" {
		q.Set("provider", o.Provider)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
		q.Add("label", k+"="+o.Labels[k])
	}
	if o.Resource != "" {
		q.Set("resource", o.Resource)
	}
	if o.Actor != "" {
		q.Set("actor", o.Actor)
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.Format(time.RFC3339Nano))
	}
	if !o.Until.IsZero() {
		q.Set("until", o.Until.Format(time.RFC3339Nano))
	}
	var page struct {
		Operations []ops.Operation `json:"operations"`
		NextCursor string          `json:"next_cursor"`
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/operations", q, nil, &page)
	if err != nil {
		return nil, resp, err
	}
	resp.NextCursor = page.NextCursor
	return page.Operations, resp, nil
}

// All iterates over every operation matching o, following the cursors;
// it stops at the first error, which it yields.
func (c *Client) All(ctx context.Context, o ListOptions) iter.Seq2[ops.Operation, error] {
	return func(yield func(ops.Operation, error) bool) {
		for {
			page, resp, err := c.List(ctx, o)
			if err != nil {
				yield(ops.Operation{}, err)
				return
			}
			for _, op := range page {
				if !yield(op, nil) {
					return
				}
			}
			if resp.NextCursor == "" {
				return
			}
			o.Cursor = resp.NextCursor
		}
	}
}

// Cancel asks for an operation to be canceled (expire: Leaseweb's
// administrative expiry, which leaves the server as it is). The
// cancellation is queued: the returned operation may still be running;
// Wait for its final state.
func (c *Client) Cancel(ctx context.Context, id string, expire bool) (*ops.Operation, *Response, error) {
	var body []byte
	if expire {
		body = []byte(`{"expire":true}`)
	}
	var op ops.Operation
	resp, err := c.do(ctx, http.MethodPost, "/v1/operations/"+url.PathEscape(id)+"/cancel", nil, body, &op)
	if err != nil {
		return nil, resp, err
	}
	return &op, resp, nil
}

// WaitOptions tune Wait.
type WaitOptions struct {
	// Interval between reads (default 1 s).
	Interval time.Duration
	// OnChange, if set, is called with the operation each time its state,
	// provider status or progress changes, and once at the start.
	OnChange func(*ops.Operation)
}

// Wait reads the operation until it is in a final state or ctx ends, and
// returns it. A failed operation is not an error: look at its State.
func (c *Client) Wait(ctx context.Context, id string, o WaitOptions) (*ops.Operation, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	var last string
	for {
		op, _, err := c.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if seen := string(op.State) + "\x00" + op.ProviderStatus + "\x00" + string(op.Progress); seen != last {
			last = seen
			if o.OnChange != nil {
				o.OnChange(op)
			}
		}
		if op.State.Terminal() {
			return op, nil
		}
		t := time.NewTimer(o.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return op, ctx.Err()
		case <-t.C:
		}
	}
}

// maxBody bounds a response body read.
const maxBody = 16 << 20

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) (*Response, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hr, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer hr.Body.Close()
	resp := &Response{Response: hr, Replayed: hr.Header.Get("Idempotent-Replayed") == "true"}
	data, err := io.ReadAll(io.LimitReader(hr.Body, maxBody))
	if err != nil {
		return resp, fmt.Errorf("client: read the answer: %w", err)
	}
	if hr.StatusCode >= 300 {
		p := &Problem{Status: hr.StatusCode, Title: http.StatusText(hr.StatusCode)}
		if json.Unmarshal(data, p) != nil || p.Status == 0 {
			p.Status, p.Title = hr.StatusCode, http.StatusText(hr.StatusCode)
		}
		return resp, p
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("client: decode the answer: %w", err)
		}
	}
	return resp, nil
}
