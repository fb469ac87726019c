package flow

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Served is the register of the (provider, account) pairs the running
// workers serve: each worker announces its own, and an announcement
// lapses when the worker stops renewing it.
type Served struct {
	rdb redis.UniversalClient
	key string
	now func() time.Time
}

// NewServed returns the register under prefix (the {ops} hash tag).
func NewServed(rdb redis.UniversalClient, prefix string) *Served {
	return &Served{rdb: rdb, key: prefix + ":{ops}:served", now: time.Now}
}

// Announce says this worker serves provider/account pairs for ttl.
func (s *Served) Announce(ctx context.Context, pairs [][2]string, ttl time.Duration) error {
	until := float64(s.now().Add(ttl).UnixMilli())
	var zs []redis.Z
	for _, p := range pairs {
		zs = append(zs, redis.Z{Score: until, Member: p[0] + "/" + p[1]})
	}
	if len(zs) == 0 {
		return nil
	}
	pipe := s.rdb.TxPipeline()
	// GT: a shorter announcement of another worker does not cut a longer
	// one short.
	pipe.ZAddArgs(ctx, s.key, redis.ZAddArgs{GT: true, Members: zs})
	pipe.ZRemRangeByScore(ctx, s.key, "-inf", strconv.FormatInt(s.now().UnixMilli(), 10))
	_, err := pipe.Exec(ctx)
	return err
}

// Serves reports whether a running worker serves provider's account, and
// the pairs that are served ("provider/account"), for the answer that
// says no.
func (s *Served) Serves(ctx context.Context, provider, account string) (bool, []string, error) {
	now := strconv.FormatInt(s.now().UnixMilli(), 10)
	pairs, err := s.rdb.ZRangeByScore(ctx, s.key, &redis.ZRangeBy{Min: "(" + now, Max: "+inf"}).Result()
	if err != nil {
		return false, nil, err
	}
	for _, p := range pairs {
		if p == provider+"/"+account {
			return true, pairs, nil
		}
	}
	return false, pairs, nil
}

// Keep announces pairs now and every ttl/3 until ctx ends.
func (s *Served) Keep(ctx context.Context, pairs [][2]string, ttl time.Duration, onErr func(error)) {
	if err := s.Announce(ctx, pairs, ttl); err != nil && onErr != nil {
		onErr(err)
	}
	go func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.Announce(ctx, pairs, ttl); err != nil && onErr != nil && ctx.Err() == nil {
					onErr(err)
				}
			}
		}
	}()
}

// Join lists served pairs for a message.
func Join(pairs []string) string {
	if len(pairs) == 0 {
		return "none"
	}
	return strings.Join(pairs, ", ")
}
