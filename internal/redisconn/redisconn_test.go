package redisconn_test

import (
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/redisconn"
)

func TestParse(t *testing.T) {
	t.Parallel()
	c, err := redisconn.Parse("redis://:pw@10.1.2.3:6380/4")
	require.NoError(t, err)
	assert.IsType(t, &redis.Client{}, c.Client)
	assert.Equal(t, asynq.RedisClientOpt{Addr: "10.1.2.3:6380", Password: "pw", DB: 4}, c.Opt)
	assert.NotContains(t, c.Desc, "pw")

	c, err = redisconn.Parse("redis-sentinel://:pw@s1:26379,s2/2?master=mymaster")
	require.NoError(t, err)
	assert.Equal(t, asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26379"}, Password: "pw", DB: 2}, c.Opt)

	c, err = redisconn.Parse("redis-cluster://n1:7000,n2:7001,n3")
	require.NoError(t, err)
	assert.IsType(t, &redis.ClusterClient{}, c.Client)
	assert.Equal(t, []string{"n1:7000", "n2:7001", "n3:6379"}, c.Opt.(asynq.RedisClusterClientOpt).Addrs)

	for _, bad := range []string{"http://x", "redis-sentinel://s1:26379", "redis-sentinel://s1?master=m", "redis-cluster://", "::"} {
		_, err := redisconn.Parse(bad)
		if bad == "redis-sentinel://s1?master=m" {
			assert.NoError(t, err, bad)
			continue
		}
		assert.Error(t, err, bad)
	}
}
