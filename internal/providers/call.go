package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"

	"golang.org/x/time/rate"
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
}

// CheckFunc turns a non-2xx answer into the provider's *Error; Do fills
// in Provider, Op, Method and URL.
type CheckFunc func(resp *http.Response, body []byte) *Error

// Do makes one attempt: it waits for limiter (nil: none), sends r with hc,
// reads at most MaxBodySize of the answer, and decodes a 2xx JSON body
// into out (nil: ignored). Every failure is an *Error: transport errors
// classified by ClassifyTransport (with the URL, which may carry
// credentials, cut away), non-2xx answers by check, a 2xx body that is not
// JSON as retryable. It never retries.
func Do(ctx context.Context, hc *http.Client, limiter *rate.Limiter, r Request, check CheckFunc, out any) error {
	fill := func(e *Error) *Error {
		e.Provider, e.Op, e.Method, e.URL = r.Provider, r.Op, r.Method, RedactURL(r.URL)
		return e
	}
	if limiter != nil {
		if err := limiter.Wait(ctx); err != nil {
			return fill(&Error{Err: err, Class: ClassifyTransport(ctx, err)})
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
		return fill(&Error{Err: cause, Class: ClassifyTransport(ctx, err)})
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize))
	if err != nil {
		return fill(&Error{StatusCode: resp.StatusCode, Err: err, Class: ClassifyTransport(ctx, err)})
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fill(check(resp, data))
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
