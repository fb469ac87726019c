package flow

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Served is the register of the (provider, account) pairs the running
// workers serve: each worker announces its own, under its name, and an
// announcement lapses when the worker stops renewing it, or at once when
// the worker withdraws it as it stops.
type Served struct {
	rdb redis.UniversalClient
	key string
	now func() time.Time
}

// NewServed returns the register under prefix (the {ops} hash tag).
func NewServed(rdb redis.UniversalClient, prefix string) *Served {
	return &Served{rdb: rdb, key: prefix + ":{ops}:served", now: time.Now}
}

// member is one worker's announcement of one pair.
func member(provider, account, worker string) string { return provider + "/" + account + "/" + worker }

// Announce says worker serves provider/account pairs for ttl.
func (s *Served) Announce(ctx context.Context, worker string, pairs [][2]string, ttl time.Duration) error {
	until := float64(s.now().Add(ttl).UnixMilli())
	var zs []redis.Z
	for _, p := range pairs {
		zs = append(zs, redis.Z{Score: until, Member: member(p[0], p[1], worker)})
	}
	if len(zs) == 0 {
		return nil
	}
	pipe := s.rdb.TxPipeline()
	pipe.ZAdd(ctx, s.key, zs...)
	pipe.ZRemRangeByScore(ctx, s.key, "-inf", strconv.FormatInt(s.now().UnixMilli(), 10))
	_, err := pipe.Exec(ctx)
	return err
}

// Withdraw removes worker's announcements of pairs.
func (s *Served) Withdraw(ctx context.Context, worker string, pairs [][2]string) error {
	members := make([]any, 0, len(pairs))
	for _, p := range pairs {
		members = append(members, member(p[0], p[1], worker))
	}
	if len(members) == 0 {
		return nil
	}
	return s.rdb.ZRem(ctx, s.key, members...).Err()
}

// Serves reports whether a running worker serves provider's account, and
// the pairs that are served ("provider/account", sorted), for the answer
// that says no.
func (s *Served) Serves(ctx context.Context, provider, account string) (bool, []string, error) {
	now := strconv.FormatInt(s.now().UnixMilli(), 10)
	members, err := s.rdb.ZRangeByScore(ctx, s.key, &redis.ZRangeBy{Min: "(" + now, Max: "+inf"}).Result()
	if err != nil {
		return false, nil, err
	}
	var pairs []string
	for _, m := range members {
		i := strings.LastIndexByte(m, '/')
		if i < 0 {
			continue
		}
		if p := m[:i]; !slices.Contains(pairs, p) {
			pairs = append(pairs, p)
		}
	}
	slices.Sort(pairs)
	return slices.Contains(pairs, provider+"/"+account), pairs, nil
}

// Keep announces worker's pairs now and every ttl/3 until ctx ends or
// the returned stop is called; stop withdraws them (a worker that stops
// serves nothing any more).
func (s *Served) Keep(ctx context.Context, worker string, pairs [][2]string, ttl time.Duration, onErr func(error)) (stop func()) {
	if err := s.Announce(ctx, worker, pairs, ttl); err != nil && onErr != nil {
		onErr(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.Announce(ctx, worker, pairs, ttl); err != nil && onErr != nil && ctx.Err() == nil {
					onErr(err)
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
		wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer wcancel()
		if err := s.Withdraw(wctx, worker, pairs); err != nil && onErr != nil {
			onErr(err)
		}
	}
}

// Join lists served pairs for a message.
func Join(pairs []string) string {
	if len(pairs) == 0 {
		return "none"
	}
	return strings.Join(pairs, ", ")
}
