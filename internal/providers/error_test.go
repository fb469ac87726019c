package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// NotProcessed is true only where the provider cannot have acted: a 429
// or 503 answer, or a connection never made. A refused connection to a
// real closed port proves the dial case.
func TestNotProcessed(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]bool{429: true, 503: true, 500: false, 502: false, 504: false, 400: false, 409: false} {
		assert.Equal(t, want, (&Error{StatusCode: status}).NotProcessed(), "http %d", status)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, dialErr := (&http.Client{}).Get("http://" + addr + "/")
	require.Error(t, dialErr)
	assert.True(t, (&Error{Err: dialErr}).NotProcessed(), "connection refused: %v", dialErr)
	assert.False(t, (&Error{Err: fmt.Errorf("read: %w", io.ErrUnexpectedEOF)}).NotProcessed(), "a cut answer may hide a change")
	assert.False(t, (&Error{Err: context.DeadlineExceeded}).NotProcessed(), "a timeout may hide a change")
}
