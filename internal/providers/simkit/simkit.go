// Package simkit is what every provider simulator shares: injected faults
// (status codes with Retry-After, slow, hanging, malformed, dropped, or
// "took effect but the answer was lost") and the log of received calls.
// A simulator wraps its router with Kit.Serve.
package simkit

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// FaultKind selects what an injected fault does.
type FaultKind int

const (
	// FaultStatus answers with Status (and Retry-After when set) and Body.
	FaultStatus FaultKind = iota
	// FaultSlow waits Delay, then serves the request normally.
	FaultSlow
	// FaultHang blocks until the client gives up (or ReleaseHangs).
	FaultHang
	// FaultBadJSON answers 200 with a body that is not JSON.
	FaultBadJSON
	// FaultDrop closes the connection without an answer.
	FaultDrop
	// FaultAfterEffect serves the request normally (it takes effect) and
	// then drops the connection: the client never learns the result.
	FaultAfterEffect
	// FaultHoldAfterEffect serves the request (it takes effect), then
	// holds the answer until ReleaseHangs or the client gives up — a
	// window in which a test can kill the client.
	FaultHoldAfterEffect
)

// Fault is one injected misbehaviour.
type Fault struct {
	Kind FaultKind
	// Method and PathPrefix select requests ("" matches all). PathPrefix
	// is matched against the path the simulator routes on.
	Method     string
	PathPrefix string
	// Times is how many matching requests it affects (0 means 1).
	Times int
	// Skip lets that many matching requests through first.
	Skip       int
	Status     int
	RetryAfter string
	Body       string
	Delay      time.Duration
}

// Call is one request a simulator received.
type Call struct {
	Method string
	Path   string
	// Query with credentials removed.
	Query  url.Values
	Body   string
	Status int
	At     time.Time
}

// Rates inject faults at random, on top of the queued ones: a brown-out.
type Rates struct {
	// Unavailable answers 503, TooMany 429 with RetryAfter, Slow delays
	// the answer by SlowDelay; each a probability in [0, 1].
	Unavailable, TooMany, Slow float64
	RetryAfter                 string
	SlowDelay                  time.Duration
}

// Kit holds a simulator's faults and call log. Safe for concurrent use.
type Kit struct {
	rates  Rates
	mu     sync.Mutex
	faults []*Fault
	calls  []Call
	hangs  chan struct{}
	now    func() time.Time
	// Effect is called when a FaultHoldAfterEffect request took effect
	// (optional; tests use it to know when to strike).
	effect func(Call)
}

// New returns a Kit using now as its clock (nil: time.Now).
func New(now func() time.Time) *Kit {
	if now == nil {
		now = time.Now
	}
	return &Kit{hangs: make(chan struct{}), now: now}
}

// Inject adds a fault; faults apply in the order injected.
func (k *Kit) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.faults = append(k.faults, &f)
}

// SetRates starts (or, with the zero Rates, stops) a random brown-out.
func (k *Kit) SetRates(r Rates) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rates = r
}

// OnHeldEffect registers fn to run when a FaultHoldAfterEffect request has
// taken effect and its answer is being held.
func (k *Kit) OnHeldEffect(fn func(Call)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.effect = fn
}

// ReleaseHangs unblocks every held or hanging request.
func (k *Kit) ReleaseHangs() {
	k.mu.Lock()
	defer k.mu.Unlock()
	close(k.hangs)
	k.hangs = make(chan struct{})
}

// Calls returns a copy of the recorded requests.
func (k *Kit) Calls() []Call {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Call(nil), k.calls...)
}

// CountCalls counts recorded requests with this method whose path starts
// with prefix and that took effect (a 2xx answer, delivered or not).
func (k *Kit) CountCalls(method, prefix string) int {
	n := 0
	for _, c := range k.Calls() {
		if c.Method == method && strings.HasPrefix(c.Path, prefix) && c.Status >= 200 && c.Status < 300 {
			n++
		}
	}
	return n
}

func (k *Kit) take(method, path string) *Fault {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r := k.rates; r.Unavailable+r.TooMany+r.Slow > 0 {
		x := rand.Float64()
		switch {
		case x < r.Unavailable:
			return &Fault{Kind: FaultStatus, Status: http.StatusServiceUnavailable}
		case x < r.Unavailable+r.TooMany:
			return &Fault{Kind: FaultStatus, Status: http.StatusTooManyRequests, RetryAfter: r.RetryAfter}
		case x < r.Unavailable+r.TooMany+r.Slow:
			return &Fault{Kind: FaultSlow, Delay: r.SlowDelay}
		}
	}
	for i, f := range k.faults {
		if (f.Method == "" || f.Method == method) && strings.HasPrefix(path, f.PathPrefix) {
			if f.Skip > 0 {
				f.Skip--
				return nil
			}
			f.Times--
			if f.Times <= 0 {
				k.faults = append(k.faults[:i], k.faults[i+1:]...)
			}
			c := *f
			return &c
		}
	}
	return nil
}

// Recorder captures the status a route wrote.
type Recorder struct {
	http.ResponseWriter
	Status int
}

// WriteHeader records code.
func (r *Recorder) WriteHeader(code int) {
	r.Status = code
	r.ResponseWriter.WriteHeader(code)
}

// Route serves one request after faults; body is the request body.
type Route func(w *Recorder, r *http.Request, path string, body []byte)

// Serve applies faults, routes the request, and records it. path is the
// request path as the simulator routes it; hide lists query parameters
// removed from the log (credentials).
func (k *Kit) Serve(w http.ResponseWriter, r *http.Request, path string, route Route, hide ...string) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	q := r.URL.Query()
	for _, h := range hide {
		q.Del(h)
	}
	rec := &Recorder{ResponseWriter: w, Status: http.StatusOK}
	defer func() {
		k.mu.Lock()
		k.calls = append(k.calls, Call{Method: r.Method, Path: path, Query: q, Body: string(body), Status: rec.Status, At: k.now()})
		k.mu.Unlock()
	}()
	f := k.take(r.Method, path)
	if f == nil {
		route(rec, r, path, body)
		return
	}
	switch f.Kind {
	case FaultStatus:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		b := f.Body
		if b == "" {
			b = `{"message":"` + http.StatusText(f.Status) + `","errorMessage":"` + http.StatusText(f.Status) + `"}`
		}
		WriteRaw(rec, f.Status, b)
	case FaultSlow:
		select {
		case <-time.After(f.Delay):
			route(rec, r, path, body)
		case <-r.Context().Done():
			rec.Status = 0
		}
	case FaultHang:
		k.wait(r)
		rec.Status = 0
	case FaultBadJSON:
		WriteRaw(rec, http.StatusOK, `{"message": "trunc`)
	case FaultDrop:
		rec.Status = 0
		drop(w)
	case FaultAfterEffect, FaultHoldAfterEffect:
		brec := &Recorder{ResponseWriter: discard{header: http.Header{}}, Status: http.StatusOK}
		route(brec, r, path, body)
		rec.Status = brec.Status
		if f.Kind == FaultHoldAfterEffect {
			k.mu.Lock()
			fn := k.effect
			k.mu.Unlock()
			if fn != nil {
				fn(Call{Method: r.Method, Path: path, Status: brec.Status, At: k.now()})
			}
			k.wait(r)
		}
		drop(w)
	}
}

func (k *Kit) wait(r *http.Request) {
	k.mu.Lock()
	ch := k.hangs
	k.mu.Unlock()
	select {
	case <-ch:
	case <-r.Context().Done():
	}
}

// WriteRaw writes a JSON body with status.
func WriteRaw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}
