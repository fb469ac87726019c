package webhooks_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/webhookverify"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func open(timeout time.Duration) *webhooks.Sender {
	return webhooks.NewSender(webhooks.SenderConfig{Timeout: timeout, UserAgent: "opsworker/test", AllowCIDRs: loopback})
}

// Every class of answer maps to the right decision.
func TestDeliveryDecisions(t *testing.T) {
	t.Parallel()
	status := func(code int, hdr ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Set(hdr[i], hdr[i+1])
			}
			w.WriteHeader(code)
		}
	}
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		tls        bool
		target     string
		delivered  bool
		retryable  bool
		gone       bool
		retryAfter time.Duration
	}{
		{name: "200", handler: status(200), delivered: true},
		{name: "204", handler: status(204), delivered: true},
		{name: "301", handler: status(301, "Location", "https://elsewhere.example/"), retryable: false},
		{name: "308", handler: status(308, "Location", "/x"), retryable: false},
		{name: "400", handler: status(400)},
		{name: "401", handler: status(401)},
		{name: "404", handler: status(404)},
		{name: "408", handler: status(408), retryable: true},
		{name: "410", handler: status(410), gone: true},
		{name: "422", handler: status(422)},
		{name: "429RetryAfter", handler: status(429, "Retry-After", "42"), retryable: true, retryAfter: 42 * time.Second},
		{name: "500", handler: status(500), retryable: true},
		{name: "503", handler: status(503), retryable: true},
		{name: "Timeout", handler: hang, retryable: true},
		{name: "TLSUnknownAuthority", handler: status(200), tls: true},
		{name: "ConnectionRefused", target: refusedURL(t), retryable: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := tc.target
			if target == "" {
				var srv *httptest.Server
				if tc.tls {
					srv = httptest.NewTLSServer(tc.handler)
				} else {
					srv = httptest.NewServer(tc.handler)
				}
				t.Cleanup(srv.Close)
				target = srv.URL + "/hook?token=s3cret"
			}
			// 2 s: a TLS handshake on a loaded machine under -race can take
			// longer than a short timeout, which would turn the refused
			// certificate into a retryable timeout.
			err := open(2*time.Second).Send(t.Context(), target, "evt", []byte(`{}`), []webhookverify.Secret{webhookverify.NewSecret()})
			if tc.delivered {
				require.NoError(t, err)
				return
			}
			var de *webhooks.DeliveryError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tc.retryable, de.Retryable, err.Error())
			assert.Equal(t, tc.gone, de.Gone)
			assert.Equal(t, tc.retryAfter, de.RetryAfter)
			assert.False(t, de.Refused)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

// hang answers only when the client goes away. It reads the body first:
// the server notices a closed connection only once the body is consumed.
var hang = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
})

func refusedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/hook"
}

// With the guard on (no allow-list), internal destinations are refused at
// connect time, permanently, with a message that says how to allow them.
// Only loopback is ever actually connected to (when allowed).
func TestSSRFGuard(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	guarded := webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second})
	refused := []string{
		"http://127.0.0.1:" + port + "/h",
		"http://10.0.0.1/h",
		"http://192.168.1.1:8080/h",
		"http://169.254.169.254/latest/meta-data/",
		"http://100.64.0.1/h",
		"http://0.0.0.0:" + port + "/h",
		"http://[::1]:" + port + "/h",
		"http://localhost:" + port + "/h", // a name that resolves to loopback
	}
	for _, u := range refused {
		err := guarded.Send(t.Context(), u, "e", []byte(`{}`), nil)
		var de *webhooks.DeliveryError
		require.ErrorAs(t, err, &de, u)
		assert.True(t, de.Refused, "%s: %v", u, err)
		assert.False(t, de.Retryable, u)
		assert.Contains(t, err.Error(), "allow_cidrs", u)
	}

	allowed := webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second, AllowCIDRs: loopback})
	for _, u := range []string{"http://127.0.0.1:" + port + "/h", "http://localhost:" + port + "/h"} {
		assert.NoError(t, allowed.Send(t.Context(), u, "e", []byte(`{}`), nil), u)
	}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		v6 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		v6.Listener = ln
		v6.Start()
		t.Cleanup(v6.Close)
		assert.NoError(t, allowed.Send(t.Context(), v6.URL+"/h", "e", []byte(`{}`), nil))
	}
	byHost := webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second, AllowHosts: []string{"LOCALHOST"}})
	assert.NoError(t, byHost.Send(t.Context(), "http://localhost:"+port+"/h", "e", []byte(`{}`), nil), "allow_hosts opens a name")
	assert.Error(t, byHost.Send(t.Context(), "http://127.0.0.1:"+port+"/h", "e", []byte(`{}`), nil), "but not its address")
}

func TestCanceledIsNotRetryable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	// Canceled while the receiver holds the request.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		hang(w, r)
	}))
	t.Cleanup(srv.Close)
	err := open(5*time.Second).Send(ctx, srv.URL, "e", []byte(`{}`), nil)
	var de *webhooks.DeliveryError
	require.ErrorAs(t, err, &de)
	assert.False(t, de.Retryable)
	assert.True(t, errors.Is(err, context.Canceled))
}
