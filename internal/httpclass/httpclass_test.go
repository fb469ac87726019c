package httpclass_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/opsworker/opsworker/internal/httpclass"
)

func TestClassifyStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   httpclass.Class
	}{
		{200, httpclass.Success}, {201, httpclass.Success}, {204, httpclass.Success}, {299, httpclass.Success},
		{100, httpclass.Permanent}, {301, httpclass.Permanent}, {302, httpclass.Permanent}, {304, httpclass.Permanent},
		{400, httpclass.Permanent}, {401, httpclass.Permanent}, {403, httpclass.Permanent}, {404, httpclass.Permanent},
		{408, httpclass.Retryable}, {409, httpclass.Permanent}, {410, httpclass.Gone}, {422, httpclass.Permanent},
		{429, httpclass.RateLimited}, {499, httpclass.Permanent},
		{500, httpclass.Retryable}, {501, httpclass.Permanent}, {502, httpclass.Retryable}, {503, httpclass.Retryable},
		{504, httpclass.Retryable}, {532, httpclass.Retryable}, {599, httpclass.Retryable},
		{600, httpclass.Retryable}, {999, httpclass.Retryable}, {0, httpclass.Retryable},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, httpclass.Classify(tc.status, nil), "%d", tc.status)
	}
}

func TestClassifyError(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return &url.Error{Op: "Get", URL: "https://api.example/x", Err: err} }
	tests := []struct {
		name string
		err  error
		want httpclass.Class
	}{
		{"refused", wrap(syscall.ECONNREFUSED), httpclass.Retryable},
		{"reset", wrap(syscall.ECONNRESET), httpclass.Retryable},
		{"eof", wrap(io.EOF), httpclass.Retryable},
		{"deadline", wrap(context.DeadlineExceeded), httpclass.Retryable},
		{"canceled", wrap(context.Canceled), httpclass.Permanent},
		{"canceled bare", context.Canceled, httpclass.Permanent},
		{"unknown authority", wrap(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), httpclass.Permanent},
		{"hostname", wrap(x509.HostnameError{Host: "x"}), httpclass.Permanent},
		{"expired", wrap(x509.CertificateInvalidError{Reason: x509.Expired}), httpclass.Permanent},
		{"record header", wrap(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), httpclass.Permanent},
		{"scheme mismatch", wrap(http.ErrSchemeMismatch), httpclass.Permanent},
		{"redirects", wrap(errors.New("stopped after 10 redirects")), httpclass.Permanent},
		{"scheme", wrap(errors.New(`unsupported protocol scheme "ftp"`)), httpclass.Permanent},
		{"header", wrap(errors.New(`net/http: invalid header field value for "X-Token"`)), httpclass.Permanent},
		{"macOS trust", wrap(errors.New(`x509: “api.example” certificate is not trusted`)), httpclass.Permanent},
		{"read body", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), httpclass.Retryable},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, httpclass.Classify(200, tc.err), tc.name)
	}
}

func TestOverrides(t *testing.T) {
	t.Parallel()
	o := httpclass.Overrides{532: httpclass.Permanent}
	assert.Equal(t, httpclass.Permanent, o.Classify(532, nil))
	assert.Equal(t, httpclass.Retryable, httpclass.Classify(532, nil))
	assert.Equal(t, httpclass.Retryable, o.Classify(503, nil), "other statuses keep the shared rule")
	assert.Equal(t, httpclass.Retryable, o.Classify(532, syscall.ECONNRESET), "errors are never overridden")
	var none httpclass.Overrides
	assert.Equal(t, httpclass.Gone, none.Classify(410, nil))
}

func TestClass(t *testing.T) {
	t.Parallel()
	var zero httpclass.Class
	assert.Equal(t, httpclass.Permanent, zero, "an unclassified failure is not retried")
	for c, retry := range map[httpclass.Class]bool{
		httpclass.Permanent: false, httpclass.Retryable: true, httpclass.RateLimited: true,
		httpclass.Gone: false, httpclass.Success: false,
	} {
		assert.Equal(t, retry, c.Retryable(), c.String())
	}
	assert.Equal(t, "rate limited", httpclass.RateLimited.String())
	assert.Equal(t, "Class(9)", httpclass.Class(9).String())
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"-3", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999999999999", 0, false},
		{"9223372037", 0, false}, // seconds past time.Duration's range
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(90 * time.Second).Format(time.RFC850), 90 * time.Second, true},
		{now.Add(90 * time.Second).Format(time.ANSIC), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.in != "" {
			h.Set("Retry-After", tc.in)
		}
		d, ok := httpclass.RetryAfter(h, now)
		assert.Equal(t, tc.want, d, "Retry-After %q", tc.in)
		assert.Equal(t, tc.ok, ok, "Retry-After %q", tc.in)
	}
}

// Retry-After is honoured on the statuses that define it, 429 and 503.
func TestWait(t *testing.T) {
	t.Parallel()
	now := time.Now()
	h := http.Header{"Retry-After": {"30"}}
	for status, want := range map[int]time.Duration{429: 30 * time.Second, 503: 30 * time.Second, 500: 0, 502: 0, 301: 0, 200: 0} {
		assert.Equal(t, want, httpclass.Wait(status, h, now), "%d", status)
	}
	assert.Zero(t, httpclass.Wait(429, http.Header{}, now))
}
