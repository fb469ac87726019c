package providers

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/httpclass"
)

// Class says what the caller should do with a failed provider call:
// httpclass.Retryable or httpclass.RateLimited (retry), httpclass.Gone or
// httpclass.Permanent (fail). Do classifies every call with
// httpclass.Classify and the client's documented overrides.
type Class = httpclass.Class

// The two classes provider code sets itself, for failures that are not an
// HTTP status (a 2xx answer that cannot be read, say).
const (
	// Permanent means the same request will fail again: bad input, auth
	// failures, unknown resources. The operation fails with the provider's
	// message.
	Permanent = httpclass.Permanent
	// Retryable means the call may succeed later.
	Retryable = httpclass.Retryable
)

// Error is the one error type returned by every provider client. It never
// contains credentials: clients send tokens in headers and URLs are
// redacted before they are stored here.
type Error struct {
	// Provider is the provider API name, e.g. "ucdn".
	Provider string
	// Op is the client method that failed, e.g. "purge".
	Op string
	// Method and URL of the request, URL with credentials removed.
	Method string
	URL    string
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Code is the provider's own error code when its error body has one.
	Code string
	// Message is the provider's human-readable message.
	Message string
	// RequestID is the provider's correlation id (header or body), if any.
	RequestID string
	// RetryAfter is the wait the provider asked for (Retry-After), 0 if none.
	RetryAfter time.Duration
	// Class is whether to retry (httpclass.Classify of the status or
	// transport error, with the provider's overrides).
	Class Class
	// Err is the underlying transport error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	if e.Op != "" {
		b.WriteString(": ")
		b.WriteString(e.Op)
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": http %d", e.StatusCode)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request_id %s]", e.RequestID)
	}
	return b.String()
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the call may succeed if tried again.
func (e *Error) Retryable() bool { return e.Class.Retryable() }

// NotProcessed reports whether the provider cannot have acted on the
// request: it answered 429 (rate limited) or 503 (unavailable), the
// connection was never made, or the rate limit held the call back. Any other failure (a 500, a timeout, a
// connection cut after the request was sent) may hide a change the
// provider made.
func (e *Error) NotProcessed() bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case 0:
		if _, ok := flow.IsThrottled(e.Err); ok {
			return true // held back by the rate limit: never sent
		}
		var op *net.OpError
		return errors.As(e.Err, &op) && op.Op == "dial"
	}
	return false
}

// Is matches any *Error, so errors.Is(err, &providers.Error{}) works.
func (e *Error) Is(target error) bool {
	_, ok := target.(*Error)
	return ok
}

// RedactURL returns u with query values of credential-like parameters
// (token, key, password, secret, signature) and any userinfo replaced.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.User != nil {
		c.User = url.User("REDACTED")
	}
	q := c.Query()
	changed := false
	for k := range q {
		lk := strings.ToLower(k)
		for _, s := range []string{"token", "key", "password", "secret", "signature", "auth"} {
			if strings.Contains(lk, s) {
				q.Set(k, "REDACTED")
				changed = true
				break
			}
		}
	}
	if changed {
		c.RawQuery = q.Encode()
	}
	return c.String()
}
