package providers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
)

// ErrDryRun is the error of a call a dry run did not send: every call
// but a read (GET) is recorded instead.
var ErrDryRun = errors.New("dry run: not sent")

// PlannedCall is one provider call of a dry run: a read that was sent, or
// a write that would have been.
type PlannedCall struct {
	// Op names the client method ("install", "get server").
	Op     string `json:"op"`
	Method string `json:"method"`
	// URL has its credentials removed.
	URL string `json:"url"`
	// Body is the request body, as JSON when it is JSON.
	Body json.RawMessage `json:"body,omitempty"`
	// Sent is true for the reads the dry run made (pre-flight checks).
	Sent bool `json:"sent"`
}

// DryRun collects the calls of a dry run. Safe for concurrent use.
type DryRun struct {
	mu    sync.Mutex
	calls []PlannedCall
}

// Calls returns the calls so far, in order.
func (d *DryRun) Calls() []PlannedCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]PlannedCall(nil), d.calls...)
}

func (d *DryRun) add(c PlannedCall) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, c)
}

type dryRunKey struct{}

// WithDryRun makes every provider call made with ctx part of d: reads go
// out and are noted, writes are noted and not sent (ErrDryRun).
func WithDryRun(ctx context.Context, d *DryRun) context.Context {
	return context.WithValue(ctx, dryRunKey{}, d)
}

// dryRun notes a call of a dry run; it reports whether the call must not
// be sent.
func dryRun(ctx context.Context, provider, op, method string, u *url.URL, body []byte) bool {
	d, _ := ctx.Value(dryRunKey{}).(*DryRun)
	if d == nil {
		return false
	}
	c := PlannedCall{Op: op, Method: method, URL: RedactURL(u), Sent: method == http.MethodGet}
	if len(body) > 0 {
		if json.Valid(body) {
			c.Body = json.RawMessage(body)
		} else {
			c.Body, _ = json.Marshal(string(body))
		}
	}
	d.add(c)
	return !c.Sent
}
