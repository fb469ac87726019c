package providers

import (
	"errors"
	"fmt"
	"net/url"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
