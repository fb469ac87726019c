// Package api is the worker's HTTP API for systems that do not speak
// asynq: submit, read, list and cancel operations, with bearer tokens
// scoped read or write. The routes and shapes are documented in
// openapi.json (served at /v1/openapi.json).
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// OpenAPI is the API's OpenAPI 3.1 document, generated from the Go types
// (the ops params types, the operation view, the webhook event, and the
// request and response types here) by openapigen.
//
//go:generate go run ./openapigen -o openapi.json
//go:embed openapi.json
var OpenAPI []byte

// Scopes.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// Token is one API credential. Write scope includes read.
type Token struct {
	Name   string
	Secret string
	Scope  string
}

// Config wires the API.
type Config struct {
	Store     *opstore.Store
	Submitter *tasks.Submitter
	Enqueuer  tasks.Enqueuer
	// Queue receives cancel tasks (operations.queue).
	Queue  string
	Tokens []Token
	Logger *zap.Logger
	// MaxBody bounds a request body (default 1 MiB).
	MaxBody int64
	// SessionTTL is how long a queue-UI login lasts (default 12h).
	SessionTTL time.Duration
	// Now is the clock of sessions (default time.Now).
	Now func() time.Time
	// Pauses pauses and resumes provider accounts (nil: those routes
	// answer 503).
	Pauses Pauser
	// Served tells whether a running worker serves a provider account; a
	// submit for one no worker serves is a 400 naming account (nil: not
	// checked).
	Served tasks.ServedRegister
	// WebhookQueue receives the console's webhook replays. Default
	// "default".
	WebhookQueue string
	// Accounts lists the configured provider accounts and their flow
	// control, for the console (nil: none shown).
	Accounts func(ctx context.Context) []AccountInfo
	// Runbooks starts and reads runbook runs (nil: their routes answer
	// 404).
	Runbooks interface {
		StartRun(ctx context.Context, name string, o runbook.StartOptions) (*runbook.Run, bool, error)
		View(ctx context.Context, id string) (*runbook.Run, error)
		List(ctx context.Context, limit int) ([]*runbook.Run, error)
		DryRun(ctx context.Context, name string, def *runbook.Definition, inputs map[string]any,
			dryRun func(ctx context.Context, kind string, env tasks.Envelope) (*ops.Plan, error)) (*runbook.RunPlan, error)
		Decide(ctx context.Context, runID, step string, cont bool, by *ops.Actor) (*runbook.Run, error)
		Cancel(ctx context.Context, runID string, compensate bool, by *ops.Actor) (*runbook.Run, error)
		// Graph lays a run out as a step graph (the console).
		Graph(run *runbook.Run) (*runbook.Graph, error)
		// Timeline reads a run's timeline, oldest first.
		Timeline(ctx context.Context, id string) ([]runbook.RunEvent, error)
	}
	// DryRunner answers submits with dry_run true (nil: they are a 400).
	DryRunner interface {
		DryRun(ctx context.Context, kind string, env tasks.Envelope) (*ops.Plan, error)
	}
}

// Pauser pauses and resumes provider accounts for every replica.
type Pauser interface {
	Pause(ctx context.Context, provider, account, by string) error
	Resume(ctx context.Context, provider, account string) (bool, error)
}

// API serves /v1 and the queue UI's login. Safe for concurrent use.
type API struct {
	cfg Config
	// cop refuses cross-origin browser requests with unsafe methods.
	cop *http.CrossOriginProtection
}

// New returns the API.
func New(cfg Config) *API {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Queue == "" {
		cfg.Queue = "default"
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		problem(w, http.StatusForbidden, "cross-origin request refused: writes must come from a page of this server's own origin", "")
	}))
	return &API{cfg: cfg, cop: cop}
}

// Route is one registered route.
type Route struct{ Method, Path string }

// Routes lists the routes Register adds (OpenAPI path syntax).
func Routes() []Route {
	return []Route{
		{"POST", "/v1/operations"},
		{"GET", "/v1/operations"},
		{"GET", "/v1/operations/{id}"},
		{"GET", "/v1/operations/{id}/events"},
		{"POST", "/v1/runbooks/{name}/runs"},
		{"POST", "/v1/runs"},
		{"GET", "/v1/runs"},
		{"GET", "/v1/runs/{id}"},
		{"GET", "/v1/runs/{id}/events"},
		{"POST", "/v1/runs/{id}/cancel"},
		{"POST", "/v1/runs/{id}/gates/{step}/continue"},
		{"POST", "/v1/runs/{id}/gates/{step}/abort"},
		{"POST", "/v1/operations/{id}/cancel"},
		{"POST", "/v1/operations/{id}/approve"},
		{"POST", "/v1/operations/{id}/reject"},
		{"POST", "/v1/providers/{provider}/accounts/{account}/pause"},
		{"POST", "/v1/providers/{provider}/accounts/{account}/resume"},
		{"GET", "/v1/openapi.json"},
	}
}

// Register adds the routes to mux, and below /v1/ problem answers for
// the rest: 405 with an Allow header for a route's other methods, 404 for
// unknown paths. Requests with unsafe methods from a browser page of
// another origin (Sec-Fetch-Site, else Origin against Host) get a 403.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("POST /v1/operations", a.cop.Handler(a.Require(ScopeWrite, http.HandlerFunc(a.submit))))
	mux.Handle("GET /v1/operations", a.Require(ScopeRead, http.HandlerFunc(a.list)))
	mux.Handle("GET /v1/operations/{id}", a.Require(ScopeRead, http.HandlerFunc(a.get)))
	mux.Handle("GET /v1/operations/{id}/events", a.Require(ScopeRead, http.HandlerFunc(a.events)))
	mux.Handle("POST /v1/runbooks/{name}/runs", a.cop.Handler(a.Require(ScopeWrite, http.HandlerFunc(a.startRun))))
	mux.Handle("POST /v1/runs", a.cop.Handler(a.Require(ScopeWrite, http.HandlerFunc(a.startRun))))
	mux.Handle("GET /v1/runs", a.Require(ScopeRead, http.HandlerFunc(a.listRuns)))
	mux.Handle("GET /v1/runs/{id}", a.Require(ScopeRead, http.HandlerFunc(a.getRun)))
	mux.Handle("GET /v1/runs/{id}/events", a.Require(ScopeRead, http.HandlerFunc(a.runEvents)))
	mux.Handle("POST /v1/runs/{id}/cancel", a.cop.Handler(a.Require(ScopeWrite, http.HandlerFunc(a.cancelRun))))
	mux.Handle("POST /v1/runs/{id}/gates/{step}/continue", a.cop.Handler(a.Require(ScopeWrite, a.decideGate(true))))
	mux.Handle("POST /v1/runs/{id}/gates/{step}/abort", a.cop.Handler(a.Require(ScopeWrite, a.decideGate(false))))
	mux.Handle("POST /v1/operations/{id}/cancel", a.cop.Handler(a.Require(ScopeWrite, http.HandlerFunc(a.cancel))))
	mux.Handle("POST /v1/operations/{id}/approve", a.cop.Handler(a.Require(ScopeWrite, http.HandlerFunc(a.approve))))
	mux.Handle("POST /v1/operations/{id}/reject", a.cop.Handler(a.Require(ScopeWrite, http.HandlerFunc(a.reject))))
	mux.Handle("POST /v1/providers/{provider}/accounts/{account}/pause", a.cop.Handler(a.Require(ScopeWrite, a.pause(true))))
	mux.Handle("POST /v1/providers/{provider}/accounts/{account}/resume", a.cop.Handler(a.Require(ScopeWrite, a.pause(false))))
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(OpenAPI)
	})
	allow := map[string][]string{}
	for _, r := range Routes() {
		allow[r.Path] = append(allow[r.Path], r.Method)
		if r.Method == http.MethodGet {
			allow[r.Path] = append(allow[r.Path], http.MethodHead)
		}
	}
	for path, methods := range allow {
		sort.Strings(methods)
		list := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", list)
			problem(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed here; allowed: %s", r.Method, list), "")
		})
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, _ *http.Request) {
		problem(w, http.StatusNotFound, "no such route; see /v1/openapi.json", "")
	})
}

type ctxKey struct{}

// TokenFrom returns the token that authorized the request.
func TokenFrom(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(ctxKey{}).(Token)
	return t, ok
}

// Require lets a request through when its Authorization header carries a
// token with scope: 401 without a valid token, 403 when its scope lacks
// the action. The header is "Bearer <token>" (the scheme in any case,
// RFC 9110 section 11.1) or Basic auth with the token as password. Only
// Bearer is offered in WWW-Authenticate, so browsers never prompt for
// and cache credentials; browsers log in to the queue UI instead
// (RegisterUI).
func (a *API) Require(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		match, _ := a.fromHeader(r)
		if match == nil {
			unauthorized(w)
			return
		}
		a.allow(w, r, scope, match, next)
	})
}

// allow serves next as tok if tok has scope, else answers 403.
func (a *API) allow(w http.ResponseWriter, r *http.Request, scope string, tok *Token, next http.Handler) {
	if scope == ScopeWrite && tok.Scope != ScopeWrite {
		problem(w, http.StatusForbidden, fmt.Sprintf("token %q has scope %s; this needs %s", tok.Name, tok.Scope, scope), "")
		return
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, *tok)))
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="opsworker"`)
	problem(w, http.StatusUnauthorized, "a valid bearer token is required", "")
}

// fromHeader returns the token the Authorization header names; present
// says whether the request had credentials in the header at all.
func (a *API) fromHeader(r *http.Request) (tok *Token, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, false
	}
	scheme, given, _ := strings.Cut(h, " ")
	if strings.EqualFold(scheme, "Bearer") {
		return a.match(strings.TrimLeft(given, " ")), true
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return a.match(pass), true
	}
	return nil, true
}

// match returns the token whose secret is given. Secrets are compared in
// constant time, all of them, every time.
func (a *API) match(given string) *Token {
	var match *Token
	if given == "" {
		return nil
	}
	for i := range a.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(given), []byte(a.cfg.Tokens[i].Secret)) == 1 && match == nil {
			match = &a.cfg.Tokens[i]
		}
	}
	return match
}

// Problem is an RFC 9457 problem body; Field names the bad input.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Field  string `json:"field,omitempty"`
}

func problem(w http.ResponseWriter, status int, detail, field string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Field: field})
}

// headerKey takes the Idempotency-Key header into key (the body's
// idempotency_key): both may be given only when equal. It answers the 400
// and reports false otherwise.
func headerKey(w http.ResponseWriter, r *http.Request, key *string) bool {
	h := r.Header.Get("Idempotency-Key")
	switch {
	case h == "":
	case *key != "" && *key != h:
		problem(w, http.StatusBadRequest, "idempotency_key differs from the Idempotency-Key header", "idempotency_key")
		return false
	default:
		*key = h
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// SubmitRequest is the body of POST /v1/operations: the payload envelope
// plus the task type.
type SubmitRequest struct {
	TaskType       string          `json:"task_type"`
	Provider       string          `json:"provider"`
	Account        string          `json:"account,omitempty"`
	Params         json.RawMessage `json:"params"`
	CallbackURL    string          `json:"callback_url,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	// Labels are kept on the operation and searchable (see ops.Envelope).
	Labels map[string]string `json:"labels,omitempty"`
	// DryRun answers 200 with what the submit would do (an ops.Plan),
	// and stores, enqueues and launches nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

func (a *API) submit(w http.ResponseWriter, r *http.Request) {
	var req SubmitRequest
	if !jsonBody(w, r) || !decode(w, r, a.cfg.MaxBody, &req) {
		return
	}
	if req.TaskType == "" {
		problem(w, http.StatusBadRequest, "task_type: required", "task_type")
		return
	}
	if !headerKey(w, r, &req.IdempotencyKey) {
		return
	}
	env := tasks.Envelope{Provider: req.Provider, Account: req.Account, Params: req.Params, CallbackURL: req.CallbackURL, IdempotencyKey: req.IdempotencyKey,
		Labels: req.Labels}
	if req.DryRun {
		a.dryRun(w, r, req.TaskType, env)
		return
	}
	if !a.served(w, r, req.TaskType, env) {
		return
	}
	token := ""
	if tok, ok := TokenFrom(r.Context()); ok {
		token = tok.Name
	}
	op, created, err := a.cfg.Submitter.SubmitAs(r.Context(), token, req.TaskType, env)
	var ve *ops.ValidationError
	switch {
	case errors.As(err, &ve):
		problem(w, http.StatusBadRequest, ve.Error(), ve.Field)
		return
	case errors.Is(err, opstore.ErrIdempotencyConflict):
		problem(w, http.StatusConflict, fmt.Sprintf("Idempotency-Key %q already names operation %s, submitted with a different request", req.IdempotencyKey, op.ID), "idempotency_key")
		return
	case err != nil:
		a.cfg.Logger.Error("api: submit", zap.Error(err))
		problem(w, http.StatusServiceUnavailable, "the operation store is unavailable; try again", "")
		return
	}
	w.Header().Set("Location", "/v1/operations/"+op.ID)
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
	} else {
		a.cfg.Logger.Info("audit: operation submitted", zap.String("operation_id", op.ID), zap.String("kind", op.Kind), zap.String("provider", op.Provider),
			zap.String("account", op.Account), zap.String("resource", op.Resource), zap.Stringer("submitted_by", op.SubmittedBy), zap.Any("labels", op.Labels))
	}
	writeJSON(w, http.StatusAccepted, op)
}

// jsonBody answers 415 unless the request's Content-Type is
// application/json (parameters allowed; a charset must be UTF-8). HTML
// forms cannot send that type, so a page on another site cannot post a
// write with a browser's ambient credentials. False means it answered.
func jsonBody(w http.ResponseWriter, r *http.Request) bool {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mt == "application/json" {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return true
		}
	}
	problem(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json (UTF-8)", "")
	return false
}

// decode reads a JSON body strictly and bounded: valid UTF-8, one value,
// nothing after it but whitespace. False means it answered.
func decode(w http.ResponseWriter, r *http.Request, max int64, v any) bool {
	body := http.MaxBytesReader(w, r.Body, max)
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", max), "")
			return false
		}
		problem(w, http.StatusBadRequest, "cannot read the request body", "")
		return false
	}
	if err := ops.DecodeObject(buf.Bytes(), v); err != nil {
		var ve *ops.ValidationError
		if errors.As(err, &ve) {
			msg := ve.Message
			if ve.Field != "" {
				msg = ve.Field + ": " + msg
			}
			problem(w, http.StatusBadRequest, "malformed JSON body: "+msg, ve.Field)
			return false
		}
		problem(w, http.StatusBadRequest, "malformed JSON body", "")
		return false
	}
	return true
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	op, err := a.cfg.Store.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, opstore.ErrNotFound) {
		problem(w, http.StatusNotFound, "no such operation (unknown id, or expired after its retention)", "")
		return
	}
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "the operation store is unavailable; try again", "")
		return
	}
	tasks.NoteUnserved(r.Context(), a.cfg.Served, op, time.Now())
	writeJSON(w, http.StatusOK, op)
}

// EventsResponse is an operation's timeline, oldest step first.
type EventsResponse struct {
	OperationID string              `json:"operation_id"`
	Events      []ops.TimelineEvent `json:"events"`
}

func (a *API) events(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.cfg.Store.Get(r.Context(), id); errors.Is(err, opstore.ErrNotFound) {
		problem(w, http.StatusNotFound, "no such operation (unknown id, or expired after its retention)", "")
		return
	} else if err != nil {
		problem(w, http.StatusServiceUnavailable, "the operation store is unavailable; try again", "")
		return
	}
	evs, err := a.cfg.Store.Timeline(r.Context(), id)
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "the operation store is unavailable; try again", "")
		return
	}
	writeJSON(w, http.StatusOK, EventsResponse{OperationID: id, Events: evs})
}

// ListResponse is a page of operations.
type ListResponse struct {
	Operations []*opstore.Operation `json:"operations"`
	// NextCursor fetches the next page (absent on the last one).
	NextCursor string `json:"next_cursor,omitempty"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := opstore.Filter{State: opstore.State(q.Get("state")), Kind: q.Get("kind"), Provider: q.Get("provider"), After: q.Get("cursor"), Limit: 20}
	if f.State != "" && !f.State.Valid() {
		problem(w, http.StatusBadRequest, fmt.Sprintf("state: unknown state %q", f.State), "state")
		return
	}
	if f.Kind != "" && !slices.Contains(tasks.Kinds(), f.Kind) {
		problem(w, http.StatusBadRequest, fmt.Sprintf("kind: unknown kind %q (known: %s)", f.Kind, strings.Join(tasks.Kinds(), ", ")), "kind")
		return
	}
	if f.Provider != "" && !slices.Contains(tasks.Providers(), f.Provider) {
		problem(w, http.StatusBadRequest, fmt.Sprintf("provider: unknown provider %q (known: %s)", f.Provider, strings.Join(tasks.Providers(), ", ")), "provider")
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			problem(w, http.StatusBadRequest, "limit: must be 1..500", "limit")
			return
		}
		f.Limit = n
	}
	if field, err := searchFilter(q, &f); err != nil {
		problem(w, http.StatusBadRequest, fmt.Sprintf("%s: %v", field, err), field)
		return
	}
	ops, next, err := a.cfg.Store.ListPage(r.Context(), f)
	if errors.Is(err, opstore.ErrBadCursor) {
		problem(w, http.StatusBadRequest, "cursor: not a cursor from this API", "cursor")
		return
	}
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "the operation store is unavailable; try again", "")
		return
	}
	if ops == nil {
		ops = []*opstore.Operation{}
	}
	for _, op := range ops {
		tasks.NoteUnserved(r.Context(), a.cfg.Served, op, time.Now())
	}
	writeJSON(w, http.StatusOK, ListResponse{Operations: ops, NextCursor: next})
}

// dryRun answers a submit with dry_run true: the plan, or the problem
// that names the bad field.
func (a *API) dryRun(w http.ResponseWriter, r *http.Request, kind string, env tasks.Envelope) {
	if a.cfg.DryRunner == nil {
		problem(w, http.StatusBadRequest, "dry_run: this server cannot run dry runs", "dry_run")
		return
	}
	plan, err := a.cfg.DryRunner.DryRun(r.Context(), kind, env)
	var ve *ops.ValidationError
	switch {
	case errors.As(err, &ve):
		problem(w, http.StatusBadRequest, ve.Error(), ve.Field)
		return
	case err != nil:
		a.cfg.Logger.Error("api: dry run", zap.Error(err))
		problem(w, http.StatusServiceUnavailable, "the operation store is unavailable; try again", "")
		return
	}
	token := ""
	if tok, ok := TokenFrom(r.Context()); ok {
		token = tok.Name
	}
	a.cfg.Logger.Info("audit: dry run", zap.String("kind", kind), zap.String("provider", plan.Provider), zap.String("account", plan.Account),
		zap.String("resource", plan.Resource), zap.String("by", token), zap.String("outcome", plan.Outcome))
	writeJSON(w, http.StatusOK, plan)
}

// requestCancel queues a cancel (or reject) request in the general queue,
// where any worker takes it.
func (a *API) requestCancel(ctx context.Context, op *opstore.Operation, p tasks.CancelPayload) error {
	p.OperationID = op.ID
	return tasks.RequestCancel(ctx, a.cfg.Enqueuer, a.cfg.Queue, p)
}

// emptyBody accepts a request that needs no body: none, or an empty JSON
// object sent as application/json (415 otherwise). False means it
// answered.
func (a *API) emptyBody(w http.ResponseWriter, r *http.Request) bool {
	if (r.ContentLength != 0 || r.Header.Get("Content-Type") != "") && !jsonBody(w, r) {
		return false
	}
	var none struct{}
	return r.ContentLength == 0 || decode(w, r, a.cfg.MaxBody, &none)
}

// actor is who makes the request: its token, authenticated.
func actor(r *http.Request) *ops.Actor {
	if tok, ok := TokenFrom(r.Context()); ok {
		return &ops.Actor{Name: tok.Name, Via: ops.ViaAPI, Authenticated: true}
	}
	return tasks.Declared(ops.ViaAPI, "")
}

// approve lets an operation waiting for its approval go on. The approver
// is the token; the submitter's own token cannot approve.
func (a *API) approve(w http.ResponseWriter, r *http.Request) {
	if !a.emptyBody(w, r) {
		return
	}
	by := actor(r)
	op, err := tasks.Approve(r.Context(), a.cfg.Store, a.cfg.Enqueuer, r.PathValue("id"), by)
	switch {
	case errors.Is(err, opstore.ErrNotFound):
		problem(w, http.StatusNotFound, "no such operation", "")
	case errors.Is(err, tasks.ErrOwnApproval):
		problem(w, http.StatusForbidden, "the token that submitted the operation cannot approve it: another write token must", "")
	case errors.Is(err, tasks.ErrNotPending):
		problem(w, http.StatusConflict, err.Error(), "")
	case err != nil:
		a.cfg.Logger.Error("api: approve", zap.Error(err))
		problem(w, http.StatusServiceUnavailable, "the operation store is unavailable; try again", "")
	default:
		a.cfg.Logger.Info("audit: operation approved", zap.String("operation_id", op.ID), zap.String("kind", op.Kind),
			zap.String("resource", op.Resource), zap.Stringer("by", by), zap.Stringer("submitted_by", op.SubmittedBy))
		writeJSON(w, http.StatusOK, op)
	}
}

// reject ends an operation waiting for its approval, canceled, saying who
// rejected it. The cancellation is queued (202).
func (a *API) reject(w http.ResponseWriter, r *http.Request) {
	if !a.emptyBody(w, r) {
		return
	}
	op, err := a.cfg.Store.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, opstore.ErrNotFound):
		problem(w, http.StatusNotFound, "no such operation", "")
		return
	case err != nil:
		problem(w, http.StatusServiceUnavailable, "the operation store is unavailable; try again", "")
		return
	case op.State != opstore.StatePendingApproval:
		problem(w, http.StatusConflict, fmt.Sprintf("%v (it is %s)", tasks.ErrNotPending, op.State), "")
		return
	}
	by := actor(r)
	if err := a.requestCancel(r.Context(), op, tasks.CancelPayload{OperationID: op.ID, Reject: true, By: by}); err != nil {
		problem(w, http.StatusServiceUnavailable, "cannot enqueue the rejection; try again", "")
		return
	}
	a.cfg.Logger.Info("audit: operation rejected", zap.String("operation_id", op.ID), zap.String("kind", op.Kind),
		zap.String("resource", op.Resource), zap.Stringer("by", by))
	writeJSON(w, http.StatusAccepted, op)
}

// StartRunRequest starts a run of a configured runbook (POST
// /v1/runbooks/{name}/runs).
type StartRunRequest struct {
	Inputs map[string]any    `json:"inputs,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// CallbackURL receives the run's runbook.* events (signed like every
	// webhook); its steps' operations send theirs to the subscriptions.
	CallbackURL string `json:"callback_url,omitempty" jsonschema:"format=uri,maxLength=2048"`
	// IdempotencyKey (or the Idempotency-Key header): the same key from
	// the same token answers the first run (200) instead of starting
	// another; with another runbook or other inputs, 409.
	IdempotencyKey string `json:"idempotency_key,omitempty" jsonschema:"maxLength=200"`
	// DryRun answers 200 with what the run's first steps would do (a
	// RunPlan) and starts nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// StartInlineRunRequest starts a run of a runbook given in the request
// (POST /v1/runs): the definition is checked as a configured one is, and
// kept with the run.
type StartInlineRunRequest struct {
	// Runbook is the definition, as under runbooks: in the config (gate
	// timeouts as duration strings, "30m").
	Runbook *runbook.Definition `json:"runbook"`
	StartRunRequest
}

func (a *API) startRun(w http.ResponseWriter, r *http.Request) {
	var req StartInlineRunRequest
	name := r.PathValue("name")
	if !jsonBody(w, r) {
		return
	}
	if name != "" {
		if !decode(w, r, a.cfg.MaxBody, &req.StartRunRequest) {
			return
		}
	} else {
		if !decode(w, r, a.cfg.MaxBody, &req) {
			return
		}
		if req.Runbook == nil {
			problem(w, http.StatusBadRequest, "runbook: required (the runbook's definition: name, inputs, steps, finally)", "runbook")
			return
		}
	}
	if a.cfg.Runbooks == nil {
		problem(w, http.StatusNotFound, "this server runs no runbooks", "")
		return
	}
	if !headerKey(w, r, &req.IdempotencyKey) {
		return
	}
	runErr := func(err error) {
		var re *runbook.Error
		var ve *ops.ValidationError
		switch {
		case errors.Is(err, runbook.ErrUnknownRunbook):
			problem(w, http.StatusNotFound, err.Error(), "")
		case errors.As(err, &re):
			field := re.Field
			if req.Runbook != nil {
				// An inline definition's fields sit under runbook.
				field = inlineField(re)
			}
			problem(w, http.StatusBadRequest, re.Error(), field)
		case errors.As(err, &ve):
			problem(w, http.StatusBadRequest, ve.Error(), ve.Field)
		default:
			a.cfg.Logger.Error("api: start run", zap.Error(err))
			problem(w, http.StatusServiceUnavailable, "the store is unavailable; try again", "")
		}
	}
	by := actor(r)
	if req.DryRun {
		if a.cfg.DryRunner == nil {
			problem(w, http.StatusBadRequest, "dry_run: this server cannot run dry runs", "dry_run")
			return
		}
		plan, err := a.cfg.Runbooks.DryRun(r.Context(), name, req.Runbook, req.Inputs, a.cfg.DryRunner.DryRun)
		if err != nil {
			runErr(err)
			return
		}
		writeJSON(w, http.StatusOK, plan)
		return
	}
	scope := ""
	if tok, ok := TokenFrom(r.Context()); ok {
		scope = "token:" + tok.Name
	}
	run, created, err := a.cfg.Runbooks.StartRun(r.Context(), name, runbook.StartOptions{Inputs: req.Inputs, Labels: req.Labels, By: by,
		Definition: req.Runbook, CallbackURL: req.CallbackURL, IdempotencyKey: req.IdempotencyKey, Scope: scope})
	switch {
	case errors.Is(err, runbook.ErrIdempotencyConflict):
		problem(w, http.StatusConflict, fmt.Sprintf("Idempotency-Key %q already names run %s, started with another runbook or other inputs", req.IdempotencyKey, run.ID), "idempotency_key")
	case err != nil:
		runErr(err)
	case !created:
		w.Header().Set("Location", "/v1/runs/"+run.ID)
		writeJSON(w, http.StatusOK, run)
	default:
		w.Header().Set("Location", "/v1/runs/"+run.ID)
		writeJSON(w, http.StatusAccepted, run)
	}
}

// inlineField is where a definition's error sits in an inline request:
// runbook.steps[id].params.x names the step by id.
func inlineField(e *runbook.Error) string {
	if e.Step == "" && strings.HasPrefix(e.Field, "inputs.") {
		return e.Field // the request's inputs, not the definition's
	}
	f := "runbook"
	if e.Step != "" {
		f += ".steps[" + e.Step + "]"
	}
	if e.Field != "" {
		f += "." + e.Field
	}
	return f
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Runbooks == nil {
		problem(w, http.StatusNotFound, "no such run", "")
		return
	}
	run, err := a.cfg.Runbooks.View(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, opstore.ErrNotFound):
		problem(w, http.StatusNotFound, "no such run (unknown id, or expired after its retention)", "")
	case err != nil:
		problem(w, http.StatusServiceUnavailable, "the store is unavailable; try again", "")
	default:
		writeJSON(w, http.StatusOK, run)
	}
}

// RunEventsResponse is a run's timeline, oldest first.
type RunEventsResponse struct {
	Events []runbook.RunEvent `json:"events"`
}

func (a *API) runEvents(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Runbooks == nil {
		problem(w, http.StatusNotFound, "no such run", "")
		return
	}
	id := r.PathValue("id")
	if _, err := a.cfg.Runbooks.View(r.Context(), id); err != nil {
		a.runAnswer(w, nil, err)
		return
	}
	events, err := a.cfg.Runbooks.Timeline(r.Context(), id)
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "the store is unavailable; try again", "")
		return
	}
	writeJSON(w, http.StatusOK, RunEventsResponse{Events: events})
}

// RunsResponse lists runs, newest first.
type RunsResponse struct {
	Runs []*runbook.Run `json:"runs"`
}

func (a *API) listRuns(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			problem(w, http.StatusBadRequest, "limit: must be 1..200", "limit")
			return
		}
		limit = n
	}
	runs := []*runbook.Run{}
	if a.cfg.Runbooks != nil {
		got, err := a.cfg.Runbooks.List(r.Context(), limit)
		if err != nil {
			problem(w, http.StatusServiceUnavailable, "the store is unavailable; try again", "")
			return
		}
		runs = append(runs, got...)
	}
	writeJSON(w, http.StatusOK, RunsResponse{Runs: runs})
}

// CancelRunRequest cancels a run.
type CancelRunRequest struct {
	// Compensate runs the on_failure and finally steps after the
	// cancellation (default true).
	Compensate *bool `json:"compensate,omitempty"`
}

func (a *API) cancelRun(w http.ResponseWriter, r *http.Request) {
	var req CancelRunRequest
	if (r.ContentLength != 0 || r.Header.Get("Content-Type") != "") && !jsonBody(w, r) {
		return
	}
	if r.ContentLength != 0 && !decode(w, r, a.cfg.MaxBody, &req) {
		return
	}
	if a.cfg.Runbooks == nil {
		problem(w, http.StatusNotFound, "no such run", "")
		return
	}
	run, err := a.cfg.Runbooks.Cancel(r.Context(), r.PathValue("id"), req.Compensate == nil || *req.Compensate, actor(r))
	a.runAnswer(w, run, err)
}

func (a *API) decideGate(cont bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.emptyBody(w, r) {
			return
		}
		if a.cfg.Runbooks == nil {
			problem(w, http.StatusNotFound, "no such run", "")
			return
		}
		run, err := a.cfg.Runbooks.Decide(r.Context(), r.PathValue("id"), r.PathValue("step"), cont, actor(r))
		a.runAnswer(w, run, err)
	})
}

// runAnswer answers a change of a run: the run, or why not.
func (a *API) runAnswer(w http.ResponseWriter, run *runbook.Run, err error) {
	switch {
	case errors.Is(err, opstore.ErrNotFound):
		problem(w, http.StatusNotFound, "no such run (unknown id, or expired after its retention)", "")
	case errors.Is(err, runbook.ErrRunOver):
		problem(w, http.StatusConflict, fmt.Sprintf("the run already ended %s", run.State), "")
	case errors.Is(err, runbook.ErrNotWaiting):
		problem(w, http.StatusConflict, err.Error(), "")
	case err != nil:
		a.cfg.Logger.Error("api: run", zap.Error(err))
		problem(w, http.StatusServiceUnavailable, "the store is unavailable; try again", "")
	default:
		writeJSON(w, http.StatusOK, run)
	}
}

// searchFilter reads the search parameters of a listing into f (see
// opstore.Filter.SetSearch), naming the bad one.
func searchFilter(q url.Values, f *opstore.Filter) (string, error) {
	return f.SetSearch(q["label"], q.Get("resource"), q.Get("actor"), q.Get("since"), q.Get("until"))
}

// served refuses a submit for a provider account no running worker
// serves (work that could only wait), naming account. An unknown kind or
// provider is left to the submit's own validation; a register that cannot
// answer lets the submit through.
func (a *API) served(w http.ResponseWriter, r *http.Request, kind string, env tasks.Envelope) bool {
	if a.cfg.Served == nil {
		return true
	}
	if _, err := ops.NewParams(kind, env.Provider); err != nil {
		return true
	}
	account := env.Account
	if account == "" {
		account = ops.DefaultAccount
	}
	ok, pairs, err := a.cfg.Served.Serves(r.Context(), env.Provider, account)
	if err != nil || ok {
		return true
	}
	problem(w, http.StatusBadRequest, fmt.Sprintf("no running worker serves account %q of %s (served now: %s)", account, env.Provider, flow.Join(pairs)), "account")
	return false
}

// AccountPause is the answer of POST .../pause and .../resume.
type AccountPause struct {
	Provider string `json:"provider"`
	Account  string `json:"account"`
	// Paused is whether the account's calls are now held back.
	Paused bool `json:"paused"`
	// WasPaused is whether it was paused before this request.
	WasPaused bool `json:"was_paused"`
}

var accountNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// pause pauses (or resumes) a provider account on every replica: its
// calls are held back and its tasks wait, without using attempts, until
// it is resumed.
func (a *API) pause(on bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		provider, account := r.PathValue("provider"), r.PathValue("account")
		if r.ContentLength != 0 {
			// No body is needed; one that is sent is JSON, and empty.
			var none struct{}
			if !decode(w, r, a.cfg.MaxBody, &none) {
				return
			}
		}
		if !slices.Contains(ops.Providers(), provider) {
			problem(w, http.StatusBadRequest, fmt.Sprintf("unknown provider %q (known: %s)", provider, strings.Join(ops.Providers(), ", ")), "provider")
			return
		}
		if !accountNameRe.MatchString(account) {
			problem(w, http.StatusBadRequest, "an account name is 1-64 letters, digits, - or _", "account")
			return
		}
		if a.cfg.Pauses == nil {
			problem(w, http.StatusServiceUnavailable, "pausing accounts is not available on this server", "")
			return
		}
		res := AccountPause{Provider: provider, Account: account, Paused: on}
		var err error
		if on {
			tok, _ := r.Context().Value(ctxKey{}).(Token)
			_, res.WasPaused, err = a.pausedBy(r.Context(), provider, account)
			if err == nil {
				err = a.cfg.Pauses.Pause(r.Context(), provider, account, "token "+tok.Name)
			}
		} else {
			res.WasPaused, err = a.cfg.Pauses.Resume(r.Context(), provider, account)
		}
		if err != nil {
			problem(w, http.StatusServiceUnavailable, "the pause state is unavailable; try again", "")
			return
		}
		a.cfg.Logger.Info(map[bool]string{true: "provider account paused", false: "provider account resumed"}[on],
			zap.String("provider", provider), zap.String("account", account))
		writeJSON(w, http.StatusOK, res)
	})
}

// pausedBy reports whether the account is paused, when the Pauser can
// tell.
func (a *API) pausedBy(ctx context.Context, provider, account string) (string, bool, error) {
	if p, ok := a.cfg.Pauses.(interface {
		PausedBy(ctx context.Context, provider, account string) (string, bool, error)
	}); ok {
		return p.PausedBy(ctx, provider, account)
	}
	return "", false, nil
}

// CancelRequest is the optional body of POST .../cancel.
type CancelRequest struct {
	// Expire uses the provider's administrative expiry (Leaseweb
	// expireActiveJob) instead of a cancellation.
	Expire bool `json:"expire,omitempty"`
}

// cancel takes an optional JSON body. A request without a body may leave
// out Content-Type; one that names a type must name application/json (an
// empty HTML form is not a bodyless cancel).
func (a *API) cancel(w http.ResponseWriter, r *http.Request) {
	var req CancelRequest
	if (r.ContentLength != 0 || r.Header.Get("Content-Type") != "") && !jsonBody(w, r) {
		return
	}
	if r.ContentLength != 0 && !decode(w, r, a.cfg.MaxBody, &req) {
		return
	}
	op, err := a.cfg.Store.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, opstore.ErrNotFound) {
		problem(w, http.StatusNotFound, "no such operation", "")
		return
	}
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "the operation store is unavailable; try again", "")
		return
	}
	// A kind that can never be canceled says so whatever the state (but
	// waiting for an approval, when nothing has launched): the request is
	// wrong in itself, not late.
	if !tasks.Cancelable(op.Kind, op.Provider) && op.State != opstore.StatePendingApproval {
		problem(w, http.StatusBadRequest, fmt.Sprintf("%s on %s cannot be canceled", op.Kind, op.Provider), "")
		return
	}
	if op.State.Terminal() {
		problem(w, http.StatusConflict, fmt.Sprintf("operation already ended %s", op.State), "")
		return
	}
	by := actor(r)
	if err := a.requestCancel(r.Context(), op, tasks.CancelPayload{OperationID: op.ID, Expire: req.Expire, By: by}); err != nil {
		problem(w, http.StatusServiceUnavailable, "cannot enqueue the cancellation; try again", "")
		return
	}
	a.cfg.Logger.Info("audit: cancel requested", zap.String("operation_id", op.ID), zap.String("kind", op.Kind), zap.String("resource", op.Resource),
		zap.Stringer("by", by), zap.Bool("expire", req.Expire))
	writeJSON(w, http.StatusAccepted, op)
}
