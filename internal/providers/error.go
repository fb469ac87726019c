package providers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Class says what the caller should do with a failed provider call.
type Class int

const (
	// Permanent means the same request will fail again: bad input, auth
	// failures, unknown resources. The operation fails with the provider's
	// message.
	Permanent Class = iota
	// Retryable means the call may succeed later: 5xx (but 501), 408, 429,
	// network errors and timeouts.
	Retryable
)

func (c Class) String() string {
	if c == Retryable {
		return "retryable"
	}
	return "permanent"
}

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
	// Class is whether to retry.
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
func (e *Error) Retryable() bool { return e.Class == Retryable }

// Is matches any *Error, so errors.Is(err, &providers.Error{}) works.
func (e *Error) Is(target error) bool {
	_, ok := target.(*Error)
	return ok
}

// ClassifyStatus maps an HTTP status to a Class. It is the one place the
// generic rule lives; a provider with documented exceptions (UCDN's 532)
// overrides it before calling. 2xx never reaches here.
func ClassifyStatus(status int) Class {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return Retryable
	case status == http.StatusNotImplemented:
		return Permanent
	case status >= 500 && status <= 599:
		return Retryable
	default:
		return Permanent
	}
}

// ClassifyTransport classifies an error from http.Client.Do. Cancellation
// by the caller is permanent (never retried by us: the caller is gone);
// timeouts and network errors are retryable; TLS/certificate and URL
// scheme errors are permanent.
func ClassifyTransport(ctx context.Context, err error) Class {
	if errors.Is(err, context.Canceled) || ctx.Err() == context.Canceled {
		return Permanent
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) {
		return Permanent
	}
	// Everything else that comes out of http.Client.Do (connection refused,
	// reset, DNS failure, timeouts) may pass if tried again.
	return Retryable
}

// ParseRetryAfter reads a Retry-After header in either form: delay seconds
// or an HTTP date. It returns 0 when absent or unparsable.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
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
