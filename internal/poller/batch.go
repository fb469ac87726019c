package poller

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batcher keeps the batches of batch polling in Redis. A provider that
// lists many jobs in one call (Leaseweb CDN actions, UCDN purge jobs,
// IONOS distributions, Leaseweb auto scaling groups) can follow every
// in-flight operation of one account with a few requests:
//
//   - each in-flight operation is a member of its batch key (provider +
//     account) from launch to its final state, with its provider handle;
//   - one batch task per key, across all workers, lists the jobs once per
//     interval, settles every member it finds finished, and records on
//     each member what the list said (Saw);
//   - a member the last list saw running is covered: its own poll makes
//     no provider call and comes back only rarely, as a safety net;
//   - a member the list did not contain, one that just joined, and one
//     whose provider called back are not covered, and poll alone.
//
// All keys carry the {ops} hash tag, like the operation store's. A Batcher
// is safe for concurrent use.
type Batcher struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewBatcher returns a Batcher using keys under prefix.
func NewBatcher(rdb redis.UniversalClient, prefix string) *Batcher {
	return &Batcher{rdb: rdb, prefix: prefix}
}

// Member is one operation of a batch as the batch's last list saw it.
type Member struct {
	Handle string
	// Status and Progress are what the last list said. Status "" means
	// no list has seen it running since it joined, was missing from the
	// list, or its provider called back: it is not covered.
	Status   string
	Progress string
}

// Seen reports whether the last list saw the member running.
func (m Member) Seen() bool { return m.Status != "" }

// A member is stored as one hash field: handle, status and progress
// separated by a unit separator (none of them contains one: handles are
// provider ids, statuses provider words, progress compact JSON, where
// control characters are escaped).
const sep = "\x1f"

func (m Member) encode() string { return m.Handle + sep + m.Status + sep + m.Progress }

func decodeMember(s string) Member {
	parts := strings.SplitN(s, sep, 3)
	m := Member{Handle: parts[0]}
	if len(parts) > 1 {
		m.Status = parts[1]
	}
	if len(parts) > 2 {
		m.Progress = parts[2]
	}
	return m
}

// ranField is the members hash's field holding when the last list ended
// and how long it took ("<Unix ms>:<ms>"); operation ids never take this
// name.
const ranField = "_ran"

func (b *Batcher) membersKey(key string) string { return b.prefix + ":{ops}:batch:" + key + ":m" }
func (b *Batcher) leadKey(key string) string    { return b.prefix + ":{ops}:batch:" + key + ":lead" }

// Add makes an operation a member of key, not yet seen.
func (b *Batcher) Add(ctx context.Context, key, opID, handle string) error {
	return b.rdb.HSet(ctx, b.membersKey(key), opID, Member{Handle: handle}.encode()).Err()
}

// Remove drops an operation from key.
func (b *Batcher) Remove(ctx context.Context, key, opID string) error {
	return b.rdb.HDel(ctx, b.membersKey(key), opID).Err()
}

// Run is when a batch's last list ended, and how long it took.
type Run struct {
	At   time.Time
	Took time.Duration
}

// Fresh reports whether a member seen by this run is still covered at
// now, for a batch listed every interval: the next run is due within
// two intervals plus twice what the last one took (a run that outlasts
// its interval makes the next one skip).
func (r Run) Fresh(now time.Time, interval time.Duration) bool {
	return !r.At.IsZero() && now.Sub(r.At) < 2*interval+2*r.Took
}

func (r Run) encode() string {
	return strconv.FormatInt(r.At.UnixMilli(), 10) + ":" + strconv.FormatInt(r.Took.Milliseconds(), 10)
}

func decodeRun(v any) Run {
	s, ok := v.(string)
	if !ok {
		return Run{}
	}
	at, took, _ := strings.Cut(s, ":")
	ms, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return Run{}
	}
	d, _ := strconv.ParseInt(took, 10, 64)
	return Run{At: time.UnixMilli(ms), Took: time.Duration(d) * time.Millisecond}
}

// Look returns opID's membership of key (in: whether it is a member) and
// key's last list (zero if none yet).
func (b *Batcher) Look(ctx context.Context, key, opID string) (m Member, in bool, last Run, err error) {
	vals, err := b.rdb.HMGet(ctx, b.membersKey(key), opID, ranField).Result()
	if err != nil {
		return Member{}, false, Run{}, err
	}
	if s, ok := vals[0].(string); ok {
		m, in = decodeMember(s), true
	}
	return m, in, decodeRun(vals[1]), nil
}

// Members returns every member of key, by operation id.
func (b *Batcher) Members(ctx context.Context, key string) (map[string]Member, error) {
	out := map[string]Member{}
	var cursor uint64
	for {
		kv, next, err := b.rdb.HScan(ctx, b.membersKey(key), cursor, "", 5000).Result()
		if err != nil {
			return nil, err
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] != ranField {
				out[kv[i]] = decodeMember(kv[i+1])
			}
		}
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}

// sawScript records what a list saw: it rewrites the members named in
// ARGV (id, encoded member pairs after ARGV[1]) that are still members (a
// member that left meanwhile stays gone), and the list's time ARGV[1]
// unless it is "".
var sawScript = redis.NewScript(`
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
  end
end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], '` + ranField + `', ARGV[1])
end
return 0`)

// Saw records a list's run: seen holds the members whose entry
// changed (a member it did not find has Status ""). It writes in chunks,
// so a large batch never holds Redis for long; the run time goes last.
func (b *Batcher) Saw(ctx context.Context, key string, seen map[string]Member, run Run) error {
	const chunk = 1000
	args := make([]any, 0, 1+2*min(len(seen), chunk))
	flush := func(ran string) error {
		args[0] = ran
		err := sawScript.Run(ctx, b.rdb, []string{b.membersKey(key)}, args...).Err()
		args = args[:1]
		return err
	}
	args = append(args, "")
	for id, m := range seen {
		args = append(args, id, m.encode())
		if len(args) == 1+2*chunk {
			if err := flush(""); err != nil {
				return err
			}
		}
	}
	return flush(run.encode())
}

// unseeScript clears a member's status (KEYS[1], ARGV[1] = id), if it is
// still a member.
var unseeScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local i = string.find(v, '\31', 1, true)
if i then v = string.sub(v, 1, i - 1) end
redis.call('HSET', KEYS[1], ARGV[1], v .. '\31\31')
return 1`)

// Unsee makes opID not covered until the next list sees it again (its
// provider called back, or it was asked to stop): its next poll asks the
// provider itself.
func (b *Batcher) Unsee(ctx context.Context, key, opID string) error {
	return unseeScript.Run(ctx, b.rdb, []string{b.membersKey(key)}, opID).Err()
}

// leadScript takes KEYS[1] for token ARGV[1] for ARGV[2] ms, or finds
// it already held by the same token (a run retried after a crash).
var leadScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`)

// unleadScript deletes KEYS[1] if token ARGV[1] holds it.
var unleadScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Lead reports whether the run named token may list key now: true for
// one token at a time, until Unlead or ttl (the same token may lead
// again: a run retried after a crash).
func (b *Batcher) Lead(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	n, err := leadScript.Run(ctx, b.rdb, []string{b.leadKey(key)}, token, ttl.Milliseconds()).Int()
	return n == 1, err
}

// Unlead ends token's lead of key.
func (b *Batcher) Unlead(ctx context.Context, key, token string) error {
	return unleadScript.Run(ctx, b.rdb, []string{b.leadKey(key)}, token).Err()
}
