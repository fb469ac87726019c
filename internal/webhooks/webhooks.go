// Package webhooks delivers completion events to the systems that asked
// for an operation. A Sender makes one HTTP attempt and classifies the
// result with package httpclass, by the same rule as provider calls; the
// webhook:deliver task (internal/tasks) owns the retries.
//
// Deliveries are signed in the Standard Webhooks v1 format (see package
// webhookverify) and pass an SSRF guard that is enforced at connect time.
package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/opsworker/opsworker/internal/httpclass"
	"github.com/opsworker/opsworker/ops"
	"github.com/opsworker/opsworker/webhookverify"
)

// Event types (see ops).
const (
	EventPendingApproval = ops.EventPendingApproval
	EventRunning         = ops.EventRunning
	EventSucceeded       = ops.EventSucceeded
	EventFailed          = ops.EventFailed
	EventTimedOut        = ops.EventTimedOut
	EventCanceled        = ops.EventCanceled
)

// Event is the JSON body POSTed to a receiver (ops.Event).
type Event = ops.Event

// maxResponseBody bounds how much of a receiver's answer is read.
const maxResponseBody = 64 << 10

// SenderConfig configures a Sender.
type SenderConfig struct {
	// Timeout bounds one attempt, connection to last byte.
	Timeout time.Duration
	// UserAgent names opsworker and its version.
	UserAgent string
	// AllowCIDRs opens these prefixes to deliveries despite the SSRF guard
	// (e.g. 127.0.0.0/8 for a local receiver).
	AllowCIDRs []netip.Prefix
	// AllowHosts are host names delivered to without the guard. The
	// operator vouches for what they resolve to.
	AllowHosts []string
}

// Sender POSTs signed events. By default it refuses to connect to
// loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16,
// including cloud metadata), CGNAT, multicast and unspecified addresses.
// The check runs at connect time, after DNS resolution, so a name that
// resolves (or re-resolves) to such an address is refused too. It never
// follows redirects and ignores proxy environment variables. Safe for
// concurrent use.
type Sender struct {
	guarded    *http.Client
	open       *http.Client
	allowHosts map[string]bool
	userAgent  string
	now        func() time.Time
}

// NewSender returns a Sender.
func NewSender(cfg SenderConfig) *Sender {
	var v4, v6 []netip.Prefix
	for _, p := range cfg.AllowCIDRs {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	guard := ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(v4...), ssrf.WithAllowedV6Prefixes(v6...))
	client := func(control func(string, string, syscall.RawConn) error) *http.Client {
		dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second, Control: control}
		return &http.Client{
			Timeout: cfg.Timeout,
			Transport: &http.Transport{
				Proxy:                 nil, // a proxy would dial for us, past the guard
				DialContext:           dialer.DialContext,
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          256,
				MaxIdleConnsPerHost:   32,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   10 * time.Second,
				ExpectContinueTimeout: time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	hosts := map[string]bool{}
	for _, h := range cfg.AllowHosts {
		hosts[strings.ToLower(h)] = true
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "opsworker"
	}
	return &Sender{guarded: client(guard.Safe), open: client(nil), allowHosts: hosts, userAgent: ua, now: time.Now}
}

// DeliveryError is a failed delivery attempt.
type DeliveryError struct {
	// StatusCode is the receiver's answer, 0 when none arrived.
	StatusCode int
	// Class is httpclass.Classify of the answer or transport error, the
	// rule provider calls follow too; a destination the SSRF guard
	// refused is Permanent.
	Class httpclass.Class
	// Retryable is Class.Retryable(): whether a later attempt may succeed.
	Retryable bool
	// Gone is Class == httpclass.Gone (a 410): the receiver wants no
	// more deliveries.
	Gone bool
	// Refused is true when the SSRF guard refused the destination.
	Refused bool
	// RetryAfter is the receiver's requested pause (429/503), 0 if none.
	RetryAfter time.Duration
	// Host is the receiver's host (the URL's path and query may carry
	// tokens and are never shown).
	Host string
	Err  error
}

func (e *DeliveryError) Error() string {
	s := "webhook to " + e.Host
	if e.StatusCode != 0 {
		s += fmt.Sprintf(": http %d", e.StatusCode)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *DeliveryError) Unwrap() error { return e.Err }

func newDeliveryError(host string, status int, class httpclass.Class, err error) *DeliveryError {
	return &DeliveryError{Host: host, StatusCode: status, Class: class, Retryable: class.Retryable(), Gone: class == httpclass.Gone, Err: err}
}

// Send POSTs body to target once, signed with secrets (none: unsigned).
// id is the event's stable id; the timestamp and signatures are made
// fresh for this attempt.
func (s *Sender) Send(ctx context.Context, target, id string, body []byte, secrets []webhookverify.Secret) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return newDeliveryError("(invalid url)", 0, httpclass.Permanent, errors.New("destination must be an absolute http(s) URL"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return newDeliveryError(u.Host, 0, httpclass.Permanent, errors.New("cannot build request"))
	}
	now := s.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.userAgent)
	req.Header.Set(webhookverify.HeaderID, id)
	req.Header.Set(webhookverify.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if len(secrets) > 0 {
		req.Header.Set(webhookverify.HeaderSignature, webhookverify.Sign(id, now, body, secrets...))
	}
	client := s.guarded
	if s.allowHosts[strings.ToLower(u.Hostname())] {
		client = s.open
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		cause := err
		if errors.As(err, &ue) {
			cause = ue.Err // drop the URL: it may carry a token
		}
		if errors.Is(err, ssrf.ErrProhibitedIP) || errors.Is(err, ssrf.ErrProhibitedNetwork) || errors.Is(err, ssrf.ErrProhibitedPort) || errors.Is(err, ssrf.ErrInvalidHostPort) {
			// A refusal is a dial error to httpclass, but the destination
			// will not become allowed by itself.
			de := newDeliveryError(u.Host, 0, httpclass.Permanent, fmt.Errorf("refused by the SSRF guard (allow it with webhooks.ssrf.allow_cidrs or allow_hosts): %w", cause))
			de.Refused = true
			return de
		}
		return newDeliveryError(u.Host, 0, httpclass.Classify(0, err), cause)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	class := httpclass.Classify(resp.StatusCode, nil)
	if class == httpclass.Success {
		return nil
	}
	e := newDeliveryError(u.Host, resp.StatusCode, class, nil)
	e.RetryAfter = httpclass.Wait(resp.StatusCode, resp.Header, s.now())
	return e
}
