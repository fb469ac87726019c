package opstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/opsworker/opsworker/ops"
)

// Webhook delivery state: event bodies kept on the record, disabled
// subscriptions, callbacks that answered 410 Gone.

func (s *Store) disabledKey() string { return s.prefix + ":{ops}:subs:disabled" }

// DisableSubscription stops deliveries to the named subscription (after a
// 410 Gone) until EnableSubscription.
func (s *Store) DisableSubscription(ctx context.Context, name, reason string) error {
	return s.rdb.HSet(ctx, s.disabledKey(), name, reason).Err()
}

// EnableSubscription re-enables a disabled subscription. It reports
// whether it was disabled.
func (s *Store) EnableSubscription(ctx context.Context, name string) (bool, error) {
	n, err := s.rdb.HDel(ctx, s.disabledKey(), name).Result()
	return n > 0, err
}

// DisabledSubscriptions returns the disabled subscriptions and why.
func (s *Store) DisabledSubscriptions(ctx context.Context) (map[string]string, error) {
	return s.rdb.HGetAll(ctx, s.disabledKey()).Result()
}

// markGoneScript sets the record's callback_gone field when the record
// exists. KEYS: op.
var markGoneScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'callback_gone', '1')
return 1
`)

// MarkCallbackGone records on the operation that its callback_url
// answered 410 Gone: no more events go there (Operation.CallbackGone).
func (s *Store) MarkCallbackGone(ctx context.Context, opID string) error {
	return markGoneScript.Run(ctx, s.rdb, []string{s.opKey(opID)}).Err()
}

func eventField(event string) string { return "event:" + event }

// saveEventScript stores an event body on its record unless one is there
// already. KEYS: op. ARGV: field, body. Returns 0 when the record is gone.
var saveEventScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// SaveEvent keeps the body of one webhook event on the operation's record,
// built once, so every attempt and every replay sends the same bytes while
// no queue task carries them. A body stored already is kept (body is then
// ignored).
func (s *Store) SaveEvent(ctx context.Context, opID, event string, body []byte) error {
	n, err := saveEventScript.Run(ctx, s.rdb, []string{s.opKey(opID)}, eventField(event), body).Int()
	if err != nil {
		return fmt.Errorf("save event %s of %s: %w", event, opID, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, opID)
	}
	return nil
}

// Delivery is what a webhook delivery reads from the record.
type Delivery struct {
	// Body is the stored event body (nil when none was saved).
	Body []byte
	// CallbackURL is the operation's callback_url, in full.
	CallbackURL string
	// Kind, Provider and Account are the operation's: they pick the
	// destination's filters and signing secrets, whatever a task says.
	Kind, Provider, Account string
}

// EventDelivery reads an event's stored body, the callback URL, and what
// the operation is.
func (s *Store) EventDelivery(ctx context.Context, opID, event string) (Delivery, error) {
	vals, err := s.rdb.HMGet(ctx, s.opKey(opID), fID, eventField(event), fCallback, fKind, fProvider, fAccount).Result()
	if err != nil {
		return Delivery{}, fmt.Errorf("read event %s of %s: %w", event, opID, err)
	}
	if vals[0] == nil {
		return Delivery{}, fmt.Errorf("%w: %s", ErrNotFound, opID)
	}
	var d Delivery
	if b, ok := vals[1].(string); ok {
		d.Body = []byte(b)
	}
	d.CallbackURL, _ = vals[2].(string)
	d.Kind, _ = vals[3].(string)
	d.Provider, _ = vals[4].(string)
	d.Account, _ = vals[5].(string)
	return d, nil
}

func (s *Store) providerEventKey(id string) string { return s.prefix + ":{ops}:pevent:" + id }

// SaveProviderEvent keeps the body of a provider.* event for ttl (the
// webhook retention): its deliveries read it from here. Saving an event
// again keeps the first body.
func (s *Store) SaveProviderEvent(ctx context.Context, id string, body []byte, ttl time.Duration) error {
	if err := s.rdb.SetArgs(ctx, s.providerEventKey(id), body, redis.SetArgs{Mode: "NX", TTL: ttl}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("save event %s: %w", id, err)
	}
	return nil
}

// SaveEventCallback keeps the callback URL an event that belongs to no
// operation (a runbook run's) goes to, for ttl: its delivery task names
// the destination "callback" and never carries the URL, which may hold a
// token.
func (s *Store) SaveEventCallback(ctx context.Context, id, url string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.providerEventKey(id)+":callback", url, ttl).Err(); err != nil {
		return fmt.Errorf("save event %s: %w", id, err)
	}
	return nil
}

// EventCallback reads the callback URL of an event SaveEventCallback
// kept (ErrNotFound once it expired, or when it has none).
func (s *Store) EventCallback(ctx context.Context, id string) (string, error) {
	u, err := s.rdb.Get(ctx, s.providerEventKey(id)+":callback").Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: callback of event %s", ErrNotFound, id)
	}
	if err != nil {
		return "", fmt.Errorf("read event %s: %w", id, err)
	}
	return u, nil
}

// ProviderEvent reads the body of a provider.* event (ErrNotFound once
// it expired).
func (s *Store) ProviderEvent(ctx context.Context, id string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.providerEventKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: event %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read event %s: %w", id, err)
	}
	return b, nil
}

// MaxTimeline bounds an operation's timeline: past it the oldest steps
// after the first (submitted) are dropped.
const MaxTimeline = 500

func (s *Store) timelineKey(id string) string { return s.prefix + ":{ops}:timeline:" + id }

// timelineTTL is the expiry a timeline gets when its first step is
// written while its record has none (not finished): the record's final
// state sets it to the record's retention. An operation still going
// after this long (weeks) starts a new timeline.
func (s *Store) timelineTTL() time.Duration { return s.retention + 30*24*time.Hour }

// appendScript: KEYS op, timeline; ARGV event JSON, max, ttl_ms (when the
// record has none yet). The timeline lives as long as the record: it
// takes the record's expiry once the record has one.
var appendScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('RPUSH', KEYS[2], ARGV[1])
if n > tonumber(ARGV[2]) then
  redis.call('LREM', KEYS[2], 1, redis.call('LINDEX', KEYS[2], 1))
end
if n == 1 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) else redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
end
return n
`)

// AppendTimeline adds a step to the operation's timeline (nothing when
// the record is gone).
func (s *Store) AppendTimeline(ctx context.Context, id string, ev ops.TimelineEvent) error {
	if ev.At.IsZero() {
		ev.At = s.now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := appendScript.Run(ctx, s.rdb, []string{s.opKey(id), s.timelineKey(id)}, b, MaxTimeline, s.timelineTTL().Milliseconds()).Err(); err != nil {
		return fmt.Errorf("timeline of %s: %w", id, err)
	}
	return nil
}

// Timeline returns the operation's steps, oldest first.
func (s *Store) Timeline(ctx context.Context, id string) ([]ops.TimelineEvent, error) {
	raw, err := s.rdb.LRange(ctx, s.timelineKey(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("timeline of %s: %w", id, err)
	}
	out := make([]ops.TimelineEvent, 0, len(raw))
	for _, r := range raw {
		var ev ops.TimelineEvent
		if json.Unmarshal([]byte(r), &ev) == nil {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (s *Store) dryRunKey(id string) string { return s.prefix + ":{ops}:dryrun:" + id }

// SaveDryRun keeps a dry run's request (an envelope, which may hold
// secrets) for ttl, for the worker that runs it.
func (s *Store) SaveDryRun(ctx context.Context, id string, request []byte, ttl time.Duration) error {
	return s.rdb.Set(ctx, s.dryRunKey(id), request, ttl).Err()
}

// TakeDryRun reads and deletes a dry run's request (ErrNotFound when it
// expired or was taken).
func (s *Store) TakeDryRun(ctx context.Context, id string) ([]byte, error) {
	b, err := s.rdb.GetDel(ctx, s.dryRunKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: dry run %s", ErrNotFound, id)
	}
	return b, err
}

// SaveDryRunAnswer keeps a dry run's answer (no secrets) for ttl.
func (s *Store) SaveDryRunAnswer(ctx context.Context, id string, answer []byte, ttl time.Duration) error {
	return s.rdb.Set(ctx, s.dryRunKey(id)+":answer", answer, ttl).Err()
}

// DryRunAnswer reads a dry run's answer (ErrNotFound while there is none).
func (s *Store) DryRunAnswer(ctx context.Context, id string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.dryRunKey(id)+":answer").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: dry run %s", ErrNotFound, id)
	}
	return b, err
}
