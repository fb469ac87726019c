// Package opstore keeps operation records in Redis, by concern:
//
//   - store.go: the records (one hash per operation) and their
//     compare-and-set updates, and idempotency keys (scoped per caller);
//   - index.go: listing, the time index and the per-state, kind and
//     provider indexes, and their pruning;
//   - secrets.go: which params are secret, their redaction and removal;
//   - locks.go: resource locks and provider slots held across replicas;
//   - deliveries.go: webhook event bodies and delivery state (disabled
//     subscriptions, callbacks that answered 410 Gone).
//
// Every key carries the hash tag {ops}, so all of them live in one Redis
// Cluster slot and the Lua scripts that change several keys at once stay
// valid on Cluster. State changes are compare-and-set: a change names the
// states it may start from (and, for polls, the poll sequence number it
// expects), so a duplicated or stale task cannot move a record backwards or
// fork its poll chain.
//
// A Store is safe for concurrent use.
package opstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/opsworker/opsworker/ops"
)

// State is an operation's lifecycle state (ops.State).
type State = ops.State

// The states (see ops).
const (
	StatePendingApproval = ops.StatePendingApproval
	StateQueued          = ops.StateQueued
	StateLaunching       = ops.StateLaunching
	StateRunning         = ops.StateRunning
	StateSucceeded       = ops.StateSucceeded
	StateFailed          = ops.StateFailed
	StateCanceled        = ops.StateCanceled
	StateTimedOut        = ops.StateTimedOut
)

// States lists every state.
var States = ops.States

// Operation is the record of one infrastructure operation. It is what the
// CLI, the status API and the webhooks show.
type Operation struct {
	ID             string          `json:"id"`
	Kind           string          `json:"kind"`
	Provider       string          `json:"provider"`
	Account        string          `json:"account"`
	Params         json.RawMessage `json:"params"`
	CallbackURL    string          `json:"callback_url,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	// IdempotencyScope is whose key IdempotencyKey is: "token:<name>" for
	// an HTTP API token, "" for the CLI, raw tasks and schedules. One
	// token cannot take or read another's keys.
	IdempotencyScope string `json:"-"`
	State            State  `json:"state"`
	// Handle is the provider's id of the asynchronous job (UCDN job_id…).
	Handle string `json:"handle,omitempty"`
	// Attempts counts launch attempts.
	Attempts int `json:"attempts"`
	// Polls counts status checks at the provider.
	Polls int `json:"polls"`
	// Status is the provider's last reported status value.
	Status     string          `json:"provider_status,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	LaunchedAt *time.Time      `json:"launched_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	DeadlineAt *time.Time      `json:"deadline_at,omitempty"`
	LastError  string          `json:"last_error,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	// Progress is the provider's progress of a running job, if it reports
	// one (e.g. {"percentage": 42, "task": "Install operating system"}).
	Progress json.RawMessage `json:"progress,omitempty"`
	// CancelRequested is set by `enqueue cancel`.
	CancelRequested string `json:"cancel_requested,omitempty"`
	// LaunchStartedAt is when the latest launch attempt began; a retry
	// reconciles against the provider from this time on.
	LaunchStartedAt *time.Time `json:"launch_started_at,omitempty"`
	// SubmittedBy is who asked for it (nil on records of earlier
	// versions); CanceledBy who asked to cancel it.
	SubmittedBy *ops.Actor `json:"submitted_by,omitempty"`
	CanceledBy  *ops.Actor `json:"canceled_by,omitempty"`
	// ApprovedBy is who approved it (kinds that need an approval);
	// ApprovalDeadline is when it ends canceled if nobody has.
	ApprovedBy       *ops.Actor        `json:"approved_by,omitempty"`
	ApprovalDeadline *time.Time        `json:"approval_deadline,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	// Resource is what it acts on at the provider (provider:type:id).
	Resource string `json:"resource,omitempty"`
	// Run and RunStep name the runbook run and step it belongs to.
	Run     string `json:"run,omitempty"`
	RunStep string `json:"run_step,omitempty"`

	// PollSeq fences the poll chain: only the poll task carrying this
	// sequence number (or the next one) may act.
	PollSeq int `json:"-"`
	// Fingerprint identifies the submitted request, to tell a retry of the
	// same submit from a different request reusing its idempotency key.
	Fingerprint string `json:"-"`
	// Notified is set once the completion webhooks were enqueued.
	Notified bool `json:"-"`
	// CallbackGone: the callback_url answered 410 Gone; no more events go
	// there.
	CallbackGone bool `json:"-"`
	// SecretParams are the top-level params keys whose values are secret
	// (from the kind's params type): redacted in every rendering, removed
	// from the stored record at launch and in every final state.
	SecretParams []string `json:"-"`
	// LaunchQueue and LaunchTaskID name the asynq task that launches the
	// operation ("" for records of earlier versions): an operation whose
	// launch task is gone before it ended is an orphan.
	LaunchQueue  string `json:"-"`
	LaunchTaskID string `json:"-"`
	// RedactDigests lets the worker recognise the secret params' values in
	// provider answers once the values are removed (keyed digests, never
	// the values).
	RedactDigests string `json:"-"`
	// legacySecrets is true for a record written before SecretParams
	// existed: its params are not shown at all.
	legacySecrets bool
}

// Hash field names.
const (
	fID          = "id"
	fKind        = "kind"
	fProvider    = "provider"
	fAccount     = "account"
	fParams      = "params"
	fCallback    = "callback_url"
	fIdemKey     = "idempotency_key"
	fIdemScope   = "idempotency_scope"
	fFingerprint = "fingerprint"
	fState       = "state"
	fHandle      = "handle"
	fAttempts    = "attempts"
	fPolls       = "polls"
	fStatus      = "provider_status"
	fCreated     = "created_at"
	fUpdated     = "updated_at"
	fLaunched    = "launched_at"
	fFinished    = "finished_at"
	fDeadline    = "deadline_at"
	fLastError   = "last_error"
	fResult      = "result"
	fPollSeq     = "poll_seq"
	fNotified    = "notified"
	fGone        = "callback_gone"
	fProgress    = "progress"
	fCancel      = "cancel_requested"
	fLaunchStart = "launch_started_at"
	fSecrets     = "secret_params"
	fDigests     = "redact_digests"
	fLaunchQueue = "launch_queue"
	fLaunchTask  = "launch_task_id"
	fSubmittedBy = "submitted_by"
	fCanceledBy  = "canceled_by"
	fApprovedBy  = "approved_by"
	fApprovalDue = "approval_deadline"
	fLabels      = "labels"
	fResource    = "resource"
	fRun         = "run"
	fRunStep     = "run_step"
)

// Errors.
var (
	// ErrNotFound: no record with that id (never existed or expired).
	ErrNotFound = errors.New("operation not found")
	// ErrIdempotencyConflict: the key was used for a different request.
	ErrIdempotencyConflict = errors.New("idempotency key already used for a different request")
)

// ConflictError says a compare-and-set change did not apply because the
// record was not in the expected state or poll sequence.
type ConflictError struct {
	ID      string
	State   State
	PollSeq int
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("operation %s: concurrent change (state %s, poll_seq %d)", e.ID, e.State, e.PollSeq)
}

// Store reads and writes operation records.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string
	retention time.Duration
	now       func() time.Time
}

// New returns a store using keys under prefix; finished records are kept
// for retention.
func New(rdb redis.UniversalClient, prefix string, retention time.Duration) *Store {
	return &Store{rdb: rdb, prefix: prefix, retention: retention, now: time.Now}
}

// WithClock replaces the store's clock (tests).
func (s *Store) WithClock(now func() time.Time) *Store {
	c := *s
	c.now = now
	return &c
}

func (s *Store) opKey(id string) string { return s.prefix + ":{ops}:op:" + id }

// idemKey is the key of an idempotency key within its scope. The unscoped
// form (the CLI, raw tasks, schedules: whoever can write to Redis) is the
// one earlier versions used.
func (s *Store) idemKey(scope, key string) string {
	if scope == "" {
		return s.prefix + ":{ops}:idem:" + key
	}
	return s.prefix + ":{ops}:idem@" + url.PathEscape(scope) + "/" + key
}
func (s *Store) indexKey() string { return s.prefix + ":{ops}:index" }

// createScript stores a new record unless its idempotency key is taken,
// and adds it to the listing indexes (see index.go).
// KEYS: op, idem, index, kind index, provider index, state index,
// index:sets, index:built. ARGV: use_idem, id, score, field, value, ...
// Returns {1, id} when created, {0, existing_id} when the key was taken.
var createScript = redis.NewScript(`
if ARGV[1] == '1' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {0, existing} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ARGV[2]} end
local fields = {}
for i = 6, #ARGV do fields[#fields+1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[1] == '1' then redis.call('SET', KEYS[2], ARGV[2]) end
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[8], '1') end
for k = 3, 6 do redis.call('ZADD', KEYS[k], ARGV[3], ARGV[2]) end
redis.call('SADD', KEYS[7], KEYS[4], KEYS[5])
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[10], ARGV[4])
  redis.call('PEXPIRE', KEYS[10], ARGV[5])
end
local of = {}
for k = 11, #KEYS do
  redis.call('ZADD', KEYS[k], ARGV[3], ARGV[2])
  of[#of+1] = KEYS[k]
end
if #of > 0 then redis.call('SADD', KEYS[9], unpack(of)) end
return {1, ARGV[2]}
`)

// Create stores op (state queued) unless op.IdempotencyKey, or op.ID, is
// already taken. It returns the stored record and whether it was created.
// When the key is taken by a request with another fingerprint it returns
// the existing record and ErrIdempotencyConflict.
func (s *Store) Create(ctx context.Context, op *Operation) (*Operation, bool, error) {
	return s.CreateNoted(ctx, op, nil)
}

// CreateNoted is Create that also starts the record's timeline with
// first (when it creates the record), in the same script.
func (s *Store) CreateNoted(ctx context.Context, op *Operation, first func(*Operation) ops.TimelineEvent) (*Operation, bool, error) {
	now := s.now().UTC()
	op.CreatedAt, op.UpdatedAt = now, now
	if op.State == "" {
		op.State = StateQueued
	}
	note := ""
	if first != nil {
		ev := first(op)
		if ev.At.IsZero() {
			ev.At = now
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, false, err
		}
		note = string(b)
	}
	args := []any{"0", op.ID, now.UnixMilli(), note, s.timelineTTL().Milliseconds()}
	if op.IdempotencyKey != "" {
		args[0] = "1"
	}
	for k, v := range toHash(op) {
		args = append(args, k, v)
	}
	res, err := createScript.Run(ctx, s.rdb, s.createKeys(op), args...).Slice()
	if err != nil {
		return nil, false, fmt.Errorf("create operation: %w", err)
	}
	created := res[0].(int64) == 1
	id := res[1].(string)
	if created {
		return op, true, nil
	}
	existing, err := s.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	if existing.Fingerprint != op.Fingerprint {
		return existing, false, ErrIdempotencyConflict
	}
	return existing, false, nil
}

// Get loads one record.
func (s *Store) Get(ctx context.Context, id string) (*Operation, error) {
	m, err := s.rdb.HGetAll(ctx, s.opKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("get operation %s: %w", id, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return fromHash(m)
}

// Delete removes a record that was never started (used when its task could
// not be enqueued), with its idempotency key.
func (s *Store) Delete(ctx context.Context, op *Operation) error {
	pipe := s.rdb.TxPipeline()
	pipe.Del(ctx, s.opKey(op.ID))
	pipe.Del(ctx, s.timelineKey(op.ID), s.searchOfKey(op.ID))
	if op.IdempotencyKey != "" {
		pipe.Del(ctx, s.idemKey(op.IdempotencyScope, op.IdempotencyKey))
	}
	for _, k := range s.indexKeysOf(op) {
		pipe.ZRem(ctx, k, op.ID)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Change is a compare-and-set update of one record.
type Change struct {
	// From lists the states the record may be in; empty means any
	// non-terminal state.
	From []State
	// Note is a timeline step written in the same script as the change
	// (its State defaults to To).
	Note *ops.TimelineEvent
	// PollSeq, when > 0, requires the record's poll sequence to equal it.
	PollSeq int
	// To is the new state ("" keeps the state).
	To State
	// Set assigns fields; Incr adds to counters (attempts, polls, poll_seq).
	Handle                  *string
	Status                  *string
	LastError               *string
	Result                  json.RawMessage
	LaunchedAt              *time.Time
	DeadlineAt              *time.Time
	SetPollSeq              *int
	Notified                bool
	IncrAttempts, IncrPolls int
	// Params replaces the stored params (secrets removed after launch).
	Params json.RawMessage
	// RedactDigests, when not "", is stored (see Operation.RedactDigests).
	RedactDigests   string
	Progress        json.RawMessage
	CancelRequested *string
	// CanceledBy records who asked for the cancellation.
	CanceledBy *ops.Actor
	// ApprovedBy records who approved it; ApprovalDeadline sets when an
	// operation waiting for approval ends.
	ApprovedBy       *ops.Actor
	ApprovalDeadline *time.Time
	// LaunchTaskID names the operation's launch task anew (queue: its
	// provider's).
	LaunchTaskID    string
	LaunchStartedAt *time.Time
	// ClearLaunchStarted forgets the latest launch attempt (the provider
	// cannot have acted on it: nothing to reconcile).
	ClearLaunchStarted bool
}

// updateScript applies a Change atomically; a new state moves the record
// between state indexes (see index.go).
// KEYS: op, idem, index, state indexes... ARGV: from_csv, poll_seq,
// retention_ms, terminal, nset, field, value..., nincr, field, n...,
// to_state ("" keeps the state), id.
// Returns {'ok'} or {'conflict', state, poll_seq} or {'missing'}.
var updateScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'state', 'poll_seq')
if not cur[1] then return {'missing'} end
local state = cur[1]
local seq = cur[2] or '0'
local terminal = {succeeded=true, failed=true, canceled=true, timed_out=true}
if ARGV[1] == '' then
  if terminal[state] then return {'conflict', state, seq} end
else
  local ok = false
  for s in string.gmatch(ARGV[1], '[^,]+') do if s == state then ok = true end end
  if not ok then return {'conflict', state, seq} end
end
if ARGV[2] ~= '0' and ARGV[2] ~= seq then return {'conflict', state, seq} end
local i = 6
local nset = tonumber(ARGV[5])
if nset > 0 then
  local fields = {}
  for j = 1, nset * 2 do fields[j] = ARGV[i + j - 1] end
  redis.call('HSET', KEYS[1], unpack(fields))
end
i = i + nset * 2
local nincr = tonumber(ARGV[i])
for j = 1, nincr do
  redis.call('HINCRBY', KEYS[1], ARGV[i + 2*j - 1], tonumber(ARGV[i + 2*j]))
end
i = i + 1 + nincr * 2
local after = ARGV[i]
local id = ARGV[i + 1]
local score = ARGV[i + 2]
local note = ARGV[i + 3]
local ttls = ARGV[i + 4]
if note ~= '' then
  local n = redis.call('RPUSH', KEYS[4], note)
  if n > tonumber(ARGV[i + 5]) then redis.call('LREM', KEYS[4], 1, redis.call('LINDEX', KEYS[4], 1)) end
  if n == 1 and ARGV[4] ~= '1' then redis.call('PEXPIRE', KEYS[4], ttls) end
end
if ARGV[4] == '1' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  local idem = redis.call('HGET', KEYS[1], 'idempotency_key')
  if idem and idem ~= '' then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
  -- The timeline goes with the record; the names of its search indexes
  -- stay a day longer, for PruneIndex to find its entries there.
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
  redis.call('PEXPIRE', KEYS[5], ARGV[i + 6])
end
if after ~= '' and after ~= state then
  if score == '' then score = redis.call('ZSCORE', KEYS[3], id) end
  for k = 6, #KEYS do
    if KEYS[k] == KEYS[3] .. ':state:' .. state then redis.call('ZREM', KEYS[k], id) end
    if score and KEYS[k] == KEYS[3] .. ':state:' .. after then redis.call('ZADD', KEYS[k], score, id) end
  end
end
return {'ok', redis.call('HGETALL', KEYS[1])}
`)

// Update applies c to the record op (its ID and IdempotencyKey are used;
// the rest is read from Redis). It returns a *ConflictError when the
// record's state or poll sequence does not match, ErrNotFound when the
// record is gone, and the updated record otherwise.
func (s *Store) Update(ctx context.Context, op *Operation, c Change) (*Operation, error) {
	id := op.ID
	now := s.now().UTC()
	from := make([]string, len(c.From))
	for i, st := range c.From {
		from[i] = string(st)
	}
	set := map[string]string{fUpdated: now.Format(time.RFC3339Nano)}
	terminal := "0"
	if c.To != "" {
		set[fState] = string(c.To)
		if c.To.Terminal() {
			terminal = "1"
			set[fFinished] = now.Format(time.RFC3339Nano)
		}
	}
	if c.Handle != nil {
		set[fHandle] = *c.Handle
	}
	if c.Status != nil {
		set[fStatus] = *c.Status
	}
	if c.LastError != nil {
		set[fLastError] = *c.LastError
	}
	if c.Result != nil {
		set[fResult] = string(c.Result)
	}
	if c.LaunchedAt != nil {
		set[fLaunched] = c.LaunchedAt.UTC().Format(time.RFC3339Nano)
	}
	if c.DeadlineAt != nil {
		set[fDeadline] = c.DeadlineAt.UTC().Format(time.RFC3339Nano)
	}
	if c.SetPollSeq != nil {
		set[fPollSeq] = strconv.Itoa(*c.SetPollSeq)
	}
	if c.Notified {
		set[fNotified] = "1"
	}
	if c.Params == nil && terminal == "1" && len(op.SecretParams) > 0 {
		// Every final state, whatever the path to it, drops the secrets.
		c.Params = RemoveSecrets(op.Params, op.SecretParams)
	}
	if c.Params != nil {
		set[fParams] = string(c.Params)
	}
	if c.RedactDigests != "" {
		set[fDigests] = c.RedactDigests
	}
	if c.Progress != nil {
		set[fProgress] = string(c.Progress)
	}
	if c.CancelRequested != nil {
		set[fCancel] = *c.CancelRequested
	}
	if c.CanceledBy != nil {
		b, _ := json.Marshal(c.CanceledBy)
		set[fCanceledBy] = string(b)
	}
	if c.ApprovedBy != nil {
		b, _ := json.Marshal(c.ApprovedBy)
		set[fApprovedBy] = string(b)
	}
	if c.ApprovalDeadline != nil {
		set[fApprovalDue] = c.ApprovalDeadline.UTC().Format(time.RFC3339Nano)
	}
	if c.LaunchTaskID != "" {
		set[fLaunchTask] = c.LaunchTaskID
	}
	if c.ClearLaunchStarted {
		set[fLaunchStart] = ""
	}
	if c.LaunchStartedAt != nil {
		set[fLaunchStart] = c.LaunchStartedAt.UTC().Format(time.RFC3339Nano)
	}
	args := []any{strings.Join(from, ","), strconv.Itoa(c.PollSeq), s.retention.Milliseconds(), terminal, len(set)}
	for k, v := range set {
		args = append(args, k, v)
	}
	incr := map[string]int{}
	if c.IncrAttempts != 0 {
		incr[fAttempts] = c.IncrAttempts
	}
	if c.IncrPolls != 0 {
		incr[fPolls] = c.IncrPolls
	}
	args = append(args, len(incr))
	for k, v := range incr {
		args = append(args, k, v)
	}
	// The creation time is the indexes' score: given, the script need not
	// read it.
	score := ""
	if !op.CreatedAt.IsZero() {
		score = strconv.FormatInt(op.CreatedAt.UnixMilli(), 10)
	}
	note := ""
	if c.Note != nil {
		ev := *c.Note
		if ev.At.IsZero() {
			ev.At = now
		}
		if ev.State == "" {
			ev.State = c.To
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		note = string(b)
	}
	args = append(args, string(c.To), id, score, note, s.timelineTTL().Milliseconds(), MaxTimeline, (s.retention + 24*time.Hour).Milliseconds())
	res, err := updateScript.Run(ctx, s.rdb, s.updateKeys(id, op.IdempotencyScope, op.IdempotencyKey), args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("update operation %s: %w", id, err)
	}
	switch res[0].(string) {
	case "missing":
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	case "conflict":
		seq, _ := strconv.Atoi(fmt.Sprint(res[2]))
		return nil, &ConflictError{ID: id, State: State(fmt.Sprint(res[1])), PollSeq: seq}
	}
	// The record as the script left it.
	flat, _ := res[1].([]any)
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		m[fmt.Sprint(flat[i])] = fmt.Sprint(flat[i+1])
	}
	return fromHash(m)
}

// Filter selects records for List.
type Filter struct {
	State    State
	Kind     string
	Provider string
	// Labels match records carrying every one of these labels.
	Labels map[string]string
	// Resource matches the record's resource (leaseweb:server:12345).
	Resource string
	// Actor matches the name of who submitted it (a token's name, a
	// schedule, a declared name).
	Actor string
	// Since and Until bound the creation time (inclusive; zero: open).
	Since, Until time.Time
	// Limit is the maximum number returned (default 20).
	Limit int
	// After is a cursor from a previous page ("" starts at the newest).
	After string
}

// ErrBadCursor is a malformed pagination cursor.
var ErrBadCursor = errors.New("invalid cursor")

func toHash(op *Operation) map[string]string {
	m := map[string]string{
		fID:          op.ID,
		fKind:        op.Kind,
		fProvider:    op.Provider,
		fAccount:     op.Account,
		fParams:      string(op.Params),
		fCallback:    op.CallbackURL,
		fIdemKey:     op.IdempotencyKey,
		fFingerprint: op.Fingerprint,
		fState:       string(op.State),
		fHandle:      op.Handle,
		fAttempts:    strconv.Itoa(op.Attempts),
		fPolls:       strconv.Itoa(op.Polls),
		fCreated:     op.CreatedAt.Format(time.RFC3339Nano),
		fUpdated:     op.UpdatedAt.Format(time.RFC3339Nano),
		fPollSeq:     strconv.Itoa(op.PollSeq),
		fSecrets:     encodeKeys(op.SecretParams),
	}
	if op.IdempotencyScope != "" {
		m[fIdemScope] = op.IdempotencyScope
	}
	if op.LaunchTaskID != "" {
		m[fLaunchQueue] = op.LaunchQueue
		m[fLaunchTask] = op.LaunchTaskID
	}
	if op.Status != "" {
		m[fStatus] = op.Status
	}
	if op.LastError != "" {
		m[fLastError] = op.LastError
	}
	if op.Result != nil {
		m[fResult] = string(op.Result)
	}
	if op.SubmittedBy != nil {
		b, _ := json.Marshal(op.SubmittedBy)
		m[fSubmittedBy] = string(b)
	}
	if len(op.Labels) > 0 {
		b, _ := json.Marshal(op.Labels)
		m[fLabels] = string(b)
	}
	if op.Resource != "" {
		m[fResource] = op.Resource
	}
	if op.Run != "" {
		m[fRun], m[fRunStep] = op.Run, op.RunStep
	}
	if op.ApprovalDeadline != nil {
		m[fApprovalDue] = op.ApprovalDeadline.UTC().Format(time.RFC3339Nano)
	}
	return m
}

func fromHash(m map[string]string) (*Operation, error) {
	op := &Operation{
		ID:               m[fID],
		Kind:             m[fKind],
		Provider:         m[fProvider],
		Account:          m[fAccount],
		CallbackURL:      m[fCallback],
		IdempotencyKey:   m[fIdemKey],
		IdempotencyScope: m[fIdemScope],
		Fingerprint:      m[fFingerprint],
		State:            State(m[fState]),
		Handle:           m[fHandle],
		Status:           m[fStatus],
		LastError:        m[fLastError],
		Notified:         m[fNotified] == "1",
		CallbackGone:     m[fGone] == "1",
		CancelRequested:  m[fCancel],
	}
	if v := m[fProgress]; v != "" {
		op.Progress = json.RawMessage(v)
	}
	var known bool
	op.SecretParams, known = decodeKeys(m[fSecrets])
	op.RedactDigests = m[fDigests]
	op.LaunchQueue, op.LaunchTaskID = m[fLaunchQueue], m[fLaunchTask]
	op.legacySecrets = !known
	op.LaunchStartedAt = parseTime(m[fLaunchStart])
	if v := m[fParams]; v != "" {
		op.Params = json.RawMessage(v)
	}
	if v := m[fResult]; v != "" {
		op.Result = json.RawMessage(v)
	}
	op.Attempts, _ = strconv.Atoi(m[fAttempts])
	op.Polls, _ = strconv.Atoi(m[fPolls])
	op.PollSeq, _ = strconv.Atoi(m[fPollSeq])
	var err error
	if op.CreatedAt, err = time.Parse(time.RFC3339Nano, m[fCreated]); err != nil {
		return nil, fmt.Errorf("operation %s: bad created_at: %w", op.ID, err)
	}
	op.UpdatedAt, _ = time.Parse(time.RFC3339Nano, m[fUpdated])
	op.LaunchedAt = parseTime(m[fLaunched])
	op.FinishedAt = parseTime(m[fFinished])
	op.DeadlineAt = parseTime(m[fDeadline])
	op.SubmittedBy, op.CanceledBy = parseActor(m[fSubmittedBy]), parseActor(m[fCanceledBy])
	op.ApprovedBy, op.ApprovalDeadline = parseActor(m[fApprovedBy]), parseTime(m[fApprovalDue])
	if v := m[fLabels]; v != "" {
		_ = json.Unmarshal([]byte(v), &op.Labels)
	}
	op.Resource = m[fResource]
	op.Run, op.RunStep = m[fRun], m[fRunStep]
	return op, nil
}

func parseActor(v string) *ops.Actor {
	if v == "" {
		return nil
	}
	var a ops.Actor
	if json.Unmarshal([]byte(v), &a) != nil {
		return nil
	}
	return &a
}

func parseTime(v string) *time.Time {
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil
	}
	return &t
}

// CallbackOrigin returns the scheme and host of a callback URL: its user
// info, path or query may carry a token, so that is all a record shows.
func CallbackOrigin(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "REDACTED"
	}
	return u.Scheme + "://" + u.Host
}

// GetMany loads several records in one round trip; missing ones are left
// out.
func (s *Store) GetMany(ctx context.Context, ids []string) ([]*Operation, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.opKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]*Operation, 0, len(ids))
	for _, c := range cmds {
		if m := c.Val(); len(m) > 0 {
			if op, err := fromHash(m); err == nil {
				out = append(out, op)
			}
		}
	}
	return out, nil
}
