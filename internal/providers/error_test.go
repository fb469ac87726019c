package providers

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassifyStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   Class
	}{
		{400, Permanent}, {401, Permanent}, {403, Permanent}, {404, Permanent}, {409, Permanent},
		{408, Retryable}, {422, Permanent}, {429, Retryable},
		{500, Retryable}, {501, Permanent}, {502, Retryable}, {503, Retryable}, {504, Retryable},
		{301, Permanent}, {302, Permanent},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, ClassifyStatus(tc.status))
		})
	}
}

func TestClassifyTransport(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	assert.Equal(t, Permanent, ClassifyTransport(canceled, context.Canceled))
	assert.Equal(t, Retryable, ClassifyTransport(bg, &url.Error{Op: "Post", URL: "x", Err: syscall.ECONNREFUSED}))
	assert.Equal(t, Retryable, ClassifyTransport(bg, context.DeadlineExceeded))
	assert.Equal(t, Permanent, ClassifyTransport(bg, &url.Error{Op: "Get", URL: "x", Err: x509.UnknownAuthorityError{}}))
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"-3", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format("Mon, 02 Jan 2006 15:04:05 GMT"), 90 * time.Second},
		{now.Add(-time.Minute).Format("Mon, 02 Jan 2006 15:04:05 GMT"), 0},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, ParseRetryAfter(tc.in, now), "Retry-After %q", tc.in)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	u, err := url.Parse("https://user:pw@api.example.com/v4/purge?zone_name=z&token=abc123&api_key=k")
	require.NoError(t, err)
	got := RedactURL(u)
	assert.NotContains(t, got, "abc123")
	assert.NotContains(t, got, "pw@")
	assert.NotContains(t, got, "=k")
	assert.Contains(t, got, "zone_name=z")
}

func TestErrorMatching(t *testing.T) {
	t.Parallel()
	inner := syscall.ECONNRESET
	err := fmt.Errorf("launch: %w", &Error{Provider: "ucdn", Op: "purge", StatusCode: 503, Message: "busy", RequestID: "r-1", Class: Retryable, Err: inner})
	var pe *Error
	require.True(t, errors.As(err, &pe))
	assert.True(t, pe.Retryable())
	assert.True(t, errors.Is(err, &Error{}))
	assert.True(t, errors.Is(err, syscall.ECONNRESET))
	assert.Equal(t, "ucdn: purge: http 503: busy: connection reset by peer [request_id r-1]", pe.Error())
}
