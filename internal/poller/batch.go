package poller

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batcher coordinates batch polling across workers through Redis. A
// provider that lists many jobs in one call (Leaseweb CDN actions, UCDN
// purge jobs) can settle every in-flight operation of one account with a
// single request:
//
//   - each in-flight operation is a member of its batch key (provider +
//     account) from launch to its final state;
//   - when a member's poll is due, the worker tries to lead the batch: at
//     most one leader per key per interval, across all workers;
//   - the leader lists the jobs once, settles every member it finds
//     finished, and records which members it saw still running;
//   - a member polled within that interval that the leader saw running
//     needs no provider call; one the list did not contain falls back to
//     its own GET.
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

func (b *Batcher) membersKey(key string) string { return b.prefix + ":{ops}:batch:" + key + ":members" }
func (b *Batcher) leadKey(key string) string    { return b.prefix + ":{ops}:batch:" + key + ":lead" }
func (b *Batcher) seenKey(key string) string    { return b.prefix + ":{ops}:batch:" + key + ":seen" }

// Add makes an operation a member of key.
func (b *Batcher) Add(ctx context.Context, key, opID string) error {
	return b.rdb.ZAdd(ctx, b.membersKey(key), redis.Z{Score: float64(time.Now().UnixMilli()), Member: opID}).Err()
}

// Remove drops an operation from key.
func (b *Batcher) Remove(ctx context.Context, key, opID string) error {
	return b.rdb.ZRem(ctx, b.membersKey(key), opID).Err()
}

// Members returns up to max members of key, oldest first.
func (b *Batcher) Members(ctx context.Context, key string, max int) ([]string, error) {
	return b.rdb.ZRange(ctx, b.membersKey(key), 0, int64(max-1)).Result()
}

// TryLead reports whether the caller should run key's batch now: true for
// at most one caller per interval.
func (b *Batcher) TryLead(ctx context.Context, key string, interval time.Duration) (bool, error) {
	return b.rdb.SetNX(ctx, b.leadKey(key), "1", interval).Result()
}

// Seen records the members the leader found still running, replacing the
// previous record; it lives for ttl.
func (b *Batcher) Seen(ctx context.Context, key string, running map[string]string, ttl time.Duration) error {
	pipe := b.rdb.TxPipeline()
	pipe.Del(ctx, b.seenKey(key))
	if len(running) > 0 {
		args := make([]any, 0, 2*len(running))
		for id, st := range running {
			args = append(args, id, st)
		}
		pipe.HSet(ctx, b.seenKey(key), args...)
		pipe.PExpire(ctx, b.seenKey(key), ttl)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// SeenRunning returns the status the last batch saw for opID, and false
// when that batch did not see it (or expired).
func (b *Batcher) SeenRunning(ctx context.Context, key, opID string) (string, bool, error) {
	st, err := b.rdb.HGet(ctx, b.seenKey(key), opID).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return st, true, nil
}
