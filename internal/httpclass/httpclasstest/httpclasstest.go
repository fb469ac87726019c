// Package httpclasstest is the contract every HTTP client of opsworker is
// held to: one table of answers and failures, each served for real by a
// local server, and the class and Retry-After wait every client must
// report for it. A client's test wraps one call in a [Target] and runs
// [Run]; a client that gives a status its own meaning lists it in
// Target.Overrides, and nothing else may differ.
package httpclasstest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/httpclass"
)

// Timeout is the per-call timeout a Target's client must have: the
// Timeout case answers only after the client gives up. It is long enough
// for a TLS handshake on a loaded CI machine under -race (500 ms was not:
// the untrusted-certificate case then timed out, a retryable failure,
// before the certificate was refused).
const Timeout = 2 * time.Second

// Outcome is what a client reported for one call.
type Outcome struct {
	Class httpclass.Class
	// RetryAfter is the wait the client will honour, 0 for none.
	RetryAfter time.Duration
}

// Target is one client under contract.
type Target struct {
	// Call makes one call, with ctx, to the server rooted at baseURL
	// (every path below it gives the case's answer) with a client whose
	// timeout is Timeout, and reports what the client decided in the end
	// (after any retries of its own). t is the case's test.
	Call func(t *testing.T, ctx context.Context, baseURL string) Outcome
	// Overrides are the statuses the client's API documents a meaning
	// for that differs from the table's; each is served and checked too.
	Overrides httpclass.Overrides
}

// fault is how a case fails when it is not an answer.
type fault int

const (
	answer       fault = iota // the server answers Status
	redirectLoop              // every answer redirects to itself
	drop                      // the connection closes without an answer
	refused                   // nothing listens
	hang                      // no answer before the client's timeout
	untrusted                 // TLS with a certificate nobody trusts
	plainHTTP                 // an https URL served by plain HTTP
	callerGone                // the caller cancels while waiting
)

// Case is one row of the table.
type Case struct {
	Name   string
	Status int
	// RetryAfter, when set, gives the Retry-After header's value at now.
	RetryAfter func(now time.Time) string
	fault      fault
	// Want is the class every client must report.
	Want httpclass.Class
	// WantRetryAfter is the wait the client must honour; from an HTTP
	// date it may be up to a second shorter (dates have whole seconds).
	WantRetryAfter time.Duration
	fromDate       bool
}

func seconds(s string) func(time.Time) string { return func(time.Time) string { return s } }

func inSeconds(d time.Duration) func(time.Time) string {
	return func(now time.Time) string { return now.Add(d).UTC().Format(http.TimeFormat) }
}

// Cases is the table.
func Cases() []Case {
	return []Case{
		{Name: "200", Status: 200, Want: httpclass.Success},
		{Name: "201", Status: 201, Want: httpclass.Success},
		{Name: "204", Status: 204, Want: httpclass.Success},
		{Name: "304", Status: 304, Want: httpclass.Permanent},
		{Name: "308Loop", Status: 308, fault: redirectLoop, Want: httpclass.Permanent},
		{Name: "400", Status: 400, Want: httpclass.Permanent},
		{Name: "401", Status: 401, Want: httpclass.Permanent},
		{Name: "403", Status: 403, Want: httpclass.Permanent},
		{Name: "404", Status: 404, Want: httpclass.Permanent},
		{Name: "408", Status: 408, Want: httpclass.Retryable},
		{Name: "409", Status: 409, Want: httpclass.Permanent},
		{Name: "410", Status: 410, Want: httpclass.Gone},
		{Name: "422", Status: 422, Want: httpclass.Permanent},
		{Name: "429", Status: 429, Want: httpclass.RateLimited},
		{Name: "429RetryAfterSeconds", Status: 429, RetryAfter: seconds("7"), Want: httpclass.RateLimited, WantRetryAfter: 7 * time.Second},
		{Name: "429RetryAfterDate", Status: 429, RetryAfter: inSeconds(90 * time.Second), Want: httpclass.RateLimited, WantRetryAfter: 90 * time.Second, fromDate: true},
		{Name: "429RetryAfterPastDate", Status: 429, RetryAfter: inSeconds(-time.Hour), Want: httpclass.RateLimited},
		{Name: "429RetryAfterGarbage", Status: 429, RetryAfter: seconds("soon"), Want: httpclass.RateLimited},
		{Name: "500", Status: 500, Want: httpclass.Retryable},
		{Name: "500RetryAfterIgnored", Status: 500, RetryAfter: seconds("5"), Want: httpclass.Retryable},
		{Name: "501", Status: 501, Want: httpclass.Permanent},
		{Name: "502", Status: 502, Want: httpclass.Retryable},
		{Name: "503", Status: 503, Want: httpclass.Retryable},
		{Name: "503RetryAfterSeconds", Status: 503, RetryAfter: seconds("3"), Want: httpclass.Retryable, WantRetryAfter: 3 * time.Second},
		{Name: "503RetryAfterDate", Status: 503, RetryAfter: inSeconds(2 * time.Minute), Want: httpclass.Retryable, WantRetryAfter: 2 * time.Minute, fromDate: true},
		{Name: "504", Status: 504, Want: httpclass.Retryable},
		{Name: "599", Status: 599, Want: httpclass.Retryable},
		{Name: "999NotHTTP", Status: 999, Want: httpclass.Retryable},
		{Name: "ConnectionDropped", fault: drop, Want: httpclass.Retryable},
		{Name: "ConnectionRefused", fault: refused, Want: httpclass.Retryable},
		{Name: "Timeout", fault: hang, Want: httpclass.Retryable},
		{Name: "TLSUntrusted", fault: untrusted, Want: httpclass.Permanent},
		{Name: "TLSToPlainHTTP", fault: plainHTTP, Want: httpclass.Permanent},
		{Name: "CallerCanceled", fault: callerGone, Want: httpclass.Permanent},
	}
}

// Run runs every case, and one per override, against target.
func Run(t *testing.T, target Target) {
	t.Helper()
	cases := Cases()
	for i, tc := range cases {
		if c, ok := target.Overrides[tc.Status]; ok && tc.fault == answer {
			cases[i].Name += "Overridden"
			cases[i].Want = c // the Retry-After rule is not overridden
		}
	}
	for status, c := range target.Overrides {
		cases = append(cases, Case{Name: strconv.Itoa(status) + "Override", Status: status, Want: c})
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			srv := serve(t, tc)
			if tc.fault == callerGone {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				arrived := srv.arrived
				go func() {
					select {
					case <-arrived:
						cancel()
					case <-ctx.Done():
					}
				}()
			}
			got := target.Call(t, ctx, srv.base)
			assert.Equal(t, tc.Want, got.Class, "class: want %s, got %s", tc.Want, got.Class)
			if tc.fromDate {
				assert.LessOrEqual(t, got.RetryAfter, tc.WantRetryAfter, "Retry-After")
				assert.Greater(t, got.RetryAfter, tc.WantRetryAfter-3*time.Second, "Retry-After")
			} else {
				assert.Equal(t, tc.WantRetryAfter, got.RetryAfter, "Retry-After")
			}
		})
	}
}

type served struct {
	base    string
	arrived chan struct{}
}

// serve starts the server tc needs and returns its root URL.
func serve(t *testing.T, tc Case) served {
	t.Helper()
	s := served{arrived: make(chan struct{})}
	release := make(chan struct{})
	var once sync.Once
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch tc.fault {
		case redirectLoop:
			w.Header().Set("Location", r.URL.Path)
			w.WriteHeader(tc.Status)
		case drop:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		case hang, callerGone:
			once.Do(func() { close(s.arrived) })
			select {
			case <-r.Context().Done():
			case <-release:
			}
		default:
			if tc.RetryAfter != nil {
				w.Header().Set("Retry-After", tc.RetryAfter(time.Now()))
			}
			body := `{"message":"answer ` + strconv.Itoa(tc.Status) + `"}`
			if tc.Status >= 200 && tc.Status <= 299 {
				body = `{}` // a valid answer to any read
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.Status)
			_, _ = io.WriteString(w, body) // dropped by net/http for 204 and 304
		}
	})
	switch tc.fault {
	case refused:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		s.base = "http://" + ln.Addr().String() + "/api"
		require.NoError(t, ln.Close())
		return s
	case untrusted:
		srv := httptest.NewTLSServer(handler)
		t.Cleanup(srv.Close)
		s.base = srv.URL + "/api"
		return s
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	s.base = srv.URL + "/api"
	if tc.fault == plainHTTP {
		s.base = "https" + srv.URL[len("http"):] + "/api"
	}
	return s
}
