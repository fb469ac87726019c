package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/httpclass"
)

// Base is what every provider client holds: the API root, the HTTP
// client, the rate limiter and how credentials are sent. Provider clients
// embed it and add typed methods. Safe for concurrent use once built.
type Base struct {
	provider  string
	url       *url.URL
	http      *http.Client
	userAgent string
	limiter   Limiter
	breaker   Breaker
	auth      func(http.Header)
	check     CheckFunc
	overrides httpclass.Overrides
	observe   Observer
	held      HoldObserver
	reads     int
}

// WithReadRetries retries a GET whose failure is retryable (its
// Error.Retryable: 5xx but 501, 408, 429, network errors, timeouts) up to
// n more times, 200 ms apart doubling (or the Retry-After, up to 2 s),
// inside the same call. Reads are idempotent, and a launch that needs
// several of them (pre-flight, reconcile) would otherwise fail as soon as
// any one of them does. Writes are never retried here.
func WithReadRetries(n int) Option { return func(b *Base) { b.reads = n } }

// WithStatusOverrides classifies the listed statuses as given instead of
// by httpclass.Classify: for a provider API that documents its own
// meaning for a status. Each client states its overrides in New.
func WithStatusOverrides(o httpclass.Overrides) Option {
	return func(b *Base) { b.overrides = o }
}

// Observer hears about every provider call: which, its HTTP status (0
// when no answer came) and how long it took. Metrics implement it.
type Observer func(provider, op string, status int, d time.Duration)

// WithObserver reports every call to o.
func WithObserver(o Observer) Option { return func(b *Base) { b.observe = o } }

// HoldObserver hears of each call that was not sent because its account
// is held back (cause: flow.CauseRateLimit, CauseRetryAfter, CauseBreaker
// or CausePaused); the caller's task waits and comes back.
type HoldObserver func(provider, account, cause string)

// WithHoldObserver reports every held call to o.
func WithHoldObserver(o HoldObserver) Option { return func(b *Base) { b.held = o } }

// Option configures a Base.
type Option func(*Base)

// WithHTTPClient sets the HTTP client (default: a 30 s timeout).
func WithHTTPClient(h *http.Client) Option { return func(b *Base) { b.http = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(b *Base) { b.userAgent = ua } }

// Limiter paces an account's calls: a *rate.Limiter (this process), or a
// *flow.Limiter shared by every replica through Redis.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Holder is a Limiter a provider's 429 with Retry-After can hold: no call
// of the account goes out for that long.
type Holder interface {
	Hold(ctx context.Context, d time.Duration)
}

// WithRateLimiter makes every call wait for l first; nil disables it.
func WithRateLimiter(l Limiter) Option { return func(b *Base) { b.limiter = l } }

// Breaker guards an account against a provider that is down: Allow holds
// a call back (a *flow.ThrottledError) while it is open, and Record hears
// each call's outcome (false: a retryable failure of the provider).
type Breaker interface {
	Allow(ctx context.Context) error
	Record(ctx context.Context, ok bool)
}

// WithBreaker puts every call behind br; nil disables it.
func WithBreaker(br Breaker) Option { return func(b *Base) { b.breaker = br } }

// WithHeader sends the credential (or any header) on every call.
func WithHeader(name, value string) Option {
	return func(b *Base) {
		prev := b.auth
		b.auth = func(h http.Header) {
			if prev != nil {
				prev(h)
			}
			if value != "" {
				h.Set(name, value)
			}
		}
	}
}

// WithAuthorization sends "Authorization: <scheme><token>" on every
// call (scheme includes its separator, e.g. "Bearer "); an empty token
// sends nothing.
func WithAuthorization(scheme, token string) Option {
	if token == "" {
		return func(*Base) {}
	}
	return WithHeader("Authorization", scheme+token)
}

// NewBase checks baseURL and applies opts. check decodes the provider's
// error body into an *Error.
func NewBase(provider, baseURL string, check CheckFunc, opts ...Option) (*Base, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not quoted: the URL may carry credentials.
		return nil, fmt.Errorf("%s: base url: must be an absolute http(s) URL", provider)
	}
	b := &Base{provider: provider, url: u, http: &http.Client{Timeout: 30 * time.Second}, userAgent: "opsworker", check: check}
	for _, o := range opts {
		o(b)
	}
	return b, nil
}

// Call makes one attempt of a JSON call: in (nil: no body) is marshalled,
// a 2xx answer decoded into out. Errors are *Error (see Do).
func (b *Base) Call(ctx context.Context, op, method, path string, q url.Values, in, out any) error {
	u := *b.url
	u.Path = b.url.Path + path
	u.RawQuery = q.Encode()
	h := http.Header{}
	var body []byte
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = data
		h.Set("Content-Type", "application/json")
	}
	return b.CallRaw(ctx, op, method, &u, body, h, out)
}

// CallRaw sends body as is, with extra headers.
func (b *Base) CallRaw(ctx context.Context, op, method string, u *url.URL, body []byte, h http.Header, out any) error {
	h.Set("Accept", "application/json")
	h.Set("User-Agent", b.userAgent)
	if b.auth != nil {
		b.auth(h)
	}
	if dryRun(ctx, b.provider, op, method, u, body) {
		return &Error{Provider: b.provider, Op: op, Method: method, URL: RedactURL(u), Err: ErrDryRun, Class: httpclass.Permanent}
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		if b.breaker != nil {
			if err := b.breaker.Allow(ctx); err != nil {
				b.noteHeld(err)
				d, _ := flow.IsThrottled(err)
				return &Error{Provider: b.provider, Op: op, Method: method, URL: RedactURL(u), Err: err, Class: httpclass.RateLimited, RetryAfter: d}
			}
		}
		err := Do(ctx, b.http, b.limiter, Request{Provider: b.provider, Op: op, Method: method, URL: u, Body: body, Header: h, Overrides: b.overrides}, b.check, out)
		if b.noteHeld(err) {
			return err // not sent: not a call
		}
		b.record(ctx, err)
		var pe *Error
		if b.observe != nil {
			status := http.StatusOK
			if errors.As(err, &pe) {
				status = pe.StatusCode
			}
			b.observe(b.provider, op, status, time.Since(start))
		}
		if err == nil || method != http.MethodGet || attempt >= b.reads || !errors.As(err, &pe) || !pe.Retryable() {
			return err
		}
		wait := 200 * time.Millisecond << attempt
		if pe.RetryAfter > 0 {
			wait = pe.RetryAfter
		}
		if wait > 2*time.Second {
			return err // a long Retry-After is the caller's to honour
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// noteHeld reports whether err says the call was held back (not sent),
// and tells the hold observer.
func (b *Base) noteHeld(err error) bool {
	var te *flow.ThrottledError
	if !errors.As(err, &te) {
		return false
	}
	if b.held != nil {
		provider, account := te.Split()
		b.held(provider, account, te.Cause())
	}
	return true
}

// record tells the breaker how the provider answered: a retryable
// failure (5xx, timeout, connection) counts against it; any answer
// counts for it; a call held back or given up by the caller, nothing.
func (b *Base) record(ctx context.Context, err error) {
	if b.breaker == nil || ctx.Err() != nil {
		return
	}
	if err == nil {
		b.breaker.Record(ctx, true)
		return
	}
	var pe *Error
	if !errors.As(err, &pe) {
		return
	}
	if _, held := flow.IsThrottled(pe.Err); held || pe.Class == httpclass.RateLimited {
		return
	}
	b.breaker.Record(ctx, pe.Class != httpclass.Retryable)
}

// URL returns the API root joined with path and query.
func (b *Base) URL(path string, q url.Values) *url.URL {
	u := *b.url
	u.Path = b.url.Path + path
	u.RawQuery = q.Encode()
	return &u
}
