package opstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Locks and slots: what running operations hold across every replica.

func (s *Store) lockKey(resource string) string { return s.prefix + ":{ops}:lock:" + resource }

// lockScript takes or refreshes a lock: it succeeds when the lock is free
// or already held by ARGV[1]. Returns {1, owner} or {0, holder}.
var lockScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, ARGV[1]}
`)

var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// AcquireLock takes the lock on resource for owner (an operation id) for
// ttl, or refreshes it when owner already holds it. When another owner
// holds it, it returns false and that owner.
func (s *Store) AcquireLock(ctx context.Context, resource, owner string, ttl time.Duration) (bool, string, error) {
	res, err := lockScript.Run(ctx, s.rdb, []string{s.lockKey(resource)}, owner, ttl.Milliseconds()).Slice()
	if err != nil {
		return false, "", fmt.Errorf("lock %s: %w", resource, err)
	}
	return res[0].(int64) == 1, fmt.Sprint(res[1]), nil
}

// ReleaseLock frees resource if owner holds it.
func (s *Store) ReleaseLock(ctx context.Context, resource, owner string) error {
	return unlockScript.Run(ctx, s.rdb, []string{s.lockKey(resource)}, owner).Err()
}

// LockHolder returns who holds resource ("" when free).
func (s *Store) LockHolder(ctx context.Context, resource string) (string, error) {
	v, err := s.rdb.Get(ctx, s.lockKey(resource)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

func (s *Store) slotsKey(resource string) string { return s.prefix + ":{ops}:slots:" + resource }

// slotsScript takes n of limit slots for owner: fields are owners, values
// "count:expiry_ms"; expired entries do not count. An owner that already
// holds slots refreshes them.
var slotsScript = redis.NewScript(`
local now = tonumber(ARGV[4])
local used = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local n, exp = string.match(all[i+1], '(%d+):(%d+)')
  if tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= ARGV[1] then
    used = used + tonumber(n)
  end
end
if used + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return used end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[5])))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return -1
`)

// AcquireSlots takes n of the limit slots of resource for owner, for ttl
// (or refreshes them). When too few are free it returns false and how
// many are in use by others.
func (s *Store) AcquireSlots(ctx context.Context, resource, owner string, n, limit int, ttl time.Duration) (bool, int, error) {
	used, err := slotsScript.Run(ctx, s.rdb, []string{s.slotsKey(resource)}, owner, n, limit, s.now().UnixMilli(), ttl.Milliseconds()).Int()
	if err != nil {
		return false, 0, fmt.Errorf("slots %s: %w", resource, err)
	}
	return used < 0, used, nil
}

// ReleaseSlots frees owner's slots of resource.
func (s *Store) ReleaseSlots(ctx context.Context, resource, owner string) error {
	return s.rdb.HDel(ctx, s.slotsKey(resource), owner).Err()
}

// SlotsInUse counts the live slots of resource (expired entries do not
// count).
func (s *Store) SlotsInUse(ctx context.Context, resource string) (int, error) {
	all, err := s.rdb.HGetAll(ctx, s.slotsKey(resource)).Result()
	if err != nil {
		return 0, err
	}
	now := s.now().UnixMilli()
	used := 0
	for _, v := range all {
		n, exp, ok := strings.Cut(v, ":")
		e, err1 := strconv.ParseInt(exp, 10, 64)
		c, err2 := strconv.Atoi(n)
		if ok && err1 == nil && err2 == nil && e > now {
			used += c
		}
	}
	return used, nil
}
