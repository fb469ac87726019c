package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/httpclass"
)

// MaxBodySize bounds how much of any provider answer is read.
const MaxBodySize = 1 << 20

// Request is one provider API call.
type Request struct {
	// Provider and Op name the call in errors ("ucdn", "purge").
	Provider, Op string
	Method       string
	URL          *url.URL
	// Body is sent as is; nil sends none.
	Body   []byte
	Header http.Header
	// Overrides are the statuses this provider's API documents a meaning
	// for that differs from httpclass.Classify (UCDN's 532, say).
	Overrides httpclass.Overrides
}

// CheckFunc reads a non-2xx answer's body into the provider's *Error
// (Code, Message, RequestID); Do fills in Provider, Op, Method, URL,
// StatusCode, Class and RetryAfter.
type CheckFunc func(resp *http.Response, body []byte) *Error

// Do makes one attempt: it waits for limiter (nil: none), sends r with hc,
// reads at most MaxBodySize of the answer, and decodes a 2xx JSON body
// into out (nil: ignored). Every failure is an *Error, classified by
// httpclass.Classify with r.Overrides: transport errors (with the URL,
// which may carry credentials, cut away) and non-2xx answers (described
// by check, with the Retry-After of a 429 or 503). A 2xx body that is not
// JSON is retryable. It never retries.
func Do(ctx context.Context, hc *http.Client, limiter Limiter, r Request, check CheckFunc, out any) error {
	fill := func(e *Error) *Error {
		e.Provider, e.Op, e.Method, e.URL = r.Provider, r.Op, r.Method, RedactURL(r.URL)
		return e
	}
	// transport classifies an error on the way: a canceled ctx is the
	// caller giving up, whatever error it surfaced as.
	transport := func(err error) Class {
		if errors.Is(ctx.Err(), context.Canceled) {
			return Permanent
		}
		return httpclass.Classify(0, err)
	}
	if limiter != nil {
		if err := limiter.Wait(ctx); err != nil {
			if d, ok := flow.IsThrottled(err); ok {
				// Not sent: the account's limit (or a hold) has no room.
				return fill(&Error{Err: err, Class: httpclass.RateLimited, RetryAfter: d})
			}
			return fill(&Error{Err: err, Class: transport(err)})
		}
	}
	var rd io.Reader
	if r.Body != nil {
		rd = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL.String(), rd)
	if err != nil {
		return fill(&Error{Err: err, Class: Permanent})
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		// http.Client wraps errors in *url.Error carrying the full URL;
		// keep only the cause.
		var ue *url.Error
		cause := err
		if errors.As(err, &ue) {
			cause = ue.Err
		}
		return fill(&Error{Err: cause, Class: transport(err)})
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize))
	if err != nil {
		return fill(&Error{StatusCode: resp.StatusCode, Err: err, Class: transport(err)})
	}
	if class := r.Overrides.Classify(resp.StatusCode, nil); class != httpclass.Success {
		e := check(resp, data)
		if e == nil {
			e = &Error{}
		}
		e.StatusCode, e.Class = resp.StatusCode, class
		e.RetryAfter = httpclass.Wait(resp.StatusCode, resp.Header, time.Now())
		if h, ok := limiter.(Holder); ok && resp.StatusCode == http.StatusTooManyRequests && e.RetryAfter > 0 {
			// The provider asked the account to slow down: every replica
			// holds its calls that long.
			h.Hold(ctx, e.RetryAfter)
		}
		return fill(e)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		// A 2xx we cannot read: a proxy page or a cut answer. Retryable;
		// callers whose call is not idempotent reconcile before retrying.
		return fill(&Error{StatusCode: resp.StatusCode, Message: "malformed JSON in response", Err: err, Class: Retryable})
	}
	return nil
}
