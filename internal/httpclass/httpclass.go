// Package httpclass decides what the outcome of one HTTP call means for a
// caller that may try again: delivered, worth retrying, or bound to fail
// the same way. Provider clients (internal/providers) and webhook delivery
// (internal/webhooks) share it, so one status means one thing everywhere.
//
// The rule follows go-retryablehttp's default policy
// (https://pkg.go.dev/github.com/hashicorp/go-retryablehttp#DefaultRetryPolicy)
// with two additions, 408 and a refusal of TLS setups that cannot work:
//
//	2xx                                  Success
//	408 Request Timeout                  Retryable
//	429 Too Many Requests                RateLimited (retryable)
//	410 Gone                             Gone (permanent)
//	501 Not Implemented                  Permanent
//	other 5xx, and codes outside 100-599 Retryable
//	any other 1xx, 3xx, 4xx              Permanent
//	network error, timeout               Retryable
//	TLS, redirect, scheme, header error  Permanent
//	the caller's context canceled        Permanent
//
// 501 is permanent: the server says it does not support the request's
// method or feature (RFC 9110 §15.6.2), which no retry changes. Codes
// outside 100-599 are handled as 5xx, as RFC 9110 §15 asks of clients. A
// client whose API gives a status its own meaning states it with
// [Overrides], next to the API documentation that says so.
package httpclass

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Class is what the caller should do after one HTTP call. The zero Class
// is Permanent, so a failure nobody classified is never retried.
type Class int

const (
	// Permanent means the same request will fail again: bad input, auth
	// failures, unknown resources, redirects, TLS errors.
	Permanent Class = iota
	// Retryable means a later attempt may succeed: 5xx but 501, 408,
	// network errors and timeouts.
	Retryable
	// RateLimited is a 429: retryable, after the Retry-After if one came.
	RateLimited
	// Gone is a 410: permanent, and the resource will not come back.
	Gone
	// Success is a 2xx.
	Success
)

// Retryable reports whether a later attempt may succeed.
func (c Class) Retryable() bool { return c == Retryable || c == RateLimited }

func (c Class) String() string {
	switch c {
	case Permanent:
		return "permanent"
	case Retryable:
		return "retryable"
	case RateLimited:
		return "rate limited"
	case Gone:
		return "gone"
	case Success:
		return "success"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Classify classifies one call: err is what http.Client.Do (or reading the
// answer) returned, status the answer's status when err is nil. A non-nil
// err wins over status.
func Classify(status int, err error) Class {
	if err != nil {
		return classifyError(err)
	}
	switch {
	case status >= 200 && status <= 299:
		return Success
	case status == http.StatusTooManyRequests:
		return RateLimited
	case status == http.StatusRequestTimeout:
		return Retryable
	case status == http.StatusGone:
		return Gone
	case status == http.StatusNotImplemented:
		return Permanent
	case status >= 500, status < 100:
		// 5xx, and codes that are not HTTP (0: no status at all).
		return Retryable
	}
	return Permanent
}

// Overrides are the statuses one API gives its own meaning, classified
// as listed instead of by [Classify]. Errors are never overridden.
type Overrides map[int]Class

// Classify is [Classify] with o's statuses replaced.
func (o Overrides) Classify(status int, err error) Class {
	if err == nil {
		if c, ok := o[status]; ok {
			return c
		}
	}
	return Classify(status, err)
}

// classifyError: the caller giving up, TLS failures and errors in the
// request itself are permanent; every other transport error (refused,
// reset, DNS, timeouts, a cut answer) may pass on a later attempt.
func classifyError(err error) Class {
	if errors.Is(err, context.Canceled) || isTLSError(err) {
		return Permanent
	}
	// net/http does not type these; go-retryablehttp matches the same
	// messages.
	if permanentMessage.MatchString(err.Error()) {
		return Permanent
	}
	return Retryable
}

// permanentMessage matches net/http's errors for too many redirects, a
// redirect to a scheme it cannot speak (ftp:, say), a header it refuses
// to send (a credential with a newline) and the macOS verifier's wording
// of an untrusted certificate.
var permanentMessage = regexp.MustCompile(`stopped after \d+ redirects|unsupported protocol scheme|invalid header|certificate is not trusted`)

// isTLSError reports certificate and handshake failures, and an https URL
// served by plain HTTP: a TLS setup does not fix itself between retries.
func isTLSError(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	return errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) ||
		errors.As(err, &invalid) || errors.As(err, &record) || errors.Is(err, http.ErrSchemeMismatch)
}

// RetryAfter reads h's Retry-After in either form (RFC 9110 §10.2.3):
// delay seconds or an HTTP date, taken relative to now. ok is false when
// the header is absent or unreadable (negative, not a number nor a date,
// or too large to be a time.Duration); a date in the past is 0, true.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 || s > math.MaxInt64/int64(time.Second) {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// Wait is the pause the server asked for before the next attempt: its
// Retry-After on a 429 or a 503, the two statuses that define one
// (RFC 6585 §4, RFC 9110 §15.6.4); 0 otherwise.
func Wait(status int, h http.Header, now time.Time) time.Duration {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return 0
	}
	d, _ := RetryAfter(h, now)
	return d
}
