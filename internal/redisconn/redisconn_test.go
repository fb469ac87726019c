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

// Errors say which part of the URL is wrong and never show the URL or any
// part of its authority: a password with an unescaped '/', '?', '#' or a
// missing '@' would otherwise land in the host, path or query.
func TestParseErrorsHideTheURL(t *testing.T) {
	t.Parallel()
	const pw = "Zq9vKx3WmT7pLr2Yh8Nd"
	tests := []struct{ url, want string }{
		{"redis://:" + pw + "@127.0.0.1:notaport/0", "host 1: port must be a number from 1 to 65535"},
		{"redis://admin:" + pw + "@127.0.0.1:99999", "host 1: port must be a number from 1 to 65535"},
		{"redis://:" + pw + ":127.0.0.1:6379", "host 1: not host:port"},
		{"redis://:ab/" + pw + "@127.0.0.1:6379/0", "'/', '?' or '#' in the user name or password"},
		{"redis://u:1234?" + pw + "@127.0.0.1:6379", "'/', '?' or '#' in the user name or password"},
		{"redis://:ab#" + pw + "@127.0.0.1:6379", "'/', '?' or '#' in the user name or password"},
		{"redis://:%zz" + pw + "@127.0.0.1:6379", "user name or password: invalid percent-encoding"},
		{"redis://:" + pw + "@127.0.0.1:6379/x" + pw, "database (the path) must be a number"},
		{"redis://:" + pw + "@127.0.0.1:6379/0?dial_timeout=x" + pw, "query: "},
		{"redis://:" + pw + "@127.0.0.1:6379/0?" + pw + "=1", "query: unknown option"},
		{"redis://:" + pw + "@/0", "needs a host"},
		{pw + "://127.0.0.1:6379", "scheme: use one of redis, rediss, redis-sentinel, redis-cluster, rediss-cluster"},
		{pw, "not a URL: want scheme://"},
		{"redis-sentinel://:" + pw + "@s1:26379,s2:x/0?master=m", "host 2: port must be a number"},
		{"redis-sentinel://:" + pw + "@s1:26379/" + pw + "?master=m", "database (the path) must be a number"},
		{"redis-cluster://:" + pw + "@n1:7000,:7001", "host 2: missing host name"},
		{"redis-cluster://:" + pw + "@n1:7000/3", "redis-cluster:// has no database number"},
	}
	for _, tc := range tests {
		_, err := redisconn.Parse(tc.url)
		require.Error(t, err, tc.url)
		assert.Contains(t, err.Error(), tc.want, tc.url)
		for i := 0; i+6 <= len(pw); i++ {
			require.NotContains(t, err.Error(), pw[i:i+6], tc.url)
		}
		assert.Equal(t, err, redisconn.Check(tc.url), "Check and Parse agree")
	}
	for _, good := range []string{"redis://:" + pw + "@10.0.0.1:6380/3", "rediss://admin:" + pw + "@redis.example.com", "redis-sentinel://:" + pw + "@s1,s2:26380/1?master=m",
		"redis-cluster://:" + pw + "@n1:7000,n2", "rediss-cluster://:" + pw + "@n1:7000", "redis://:p%40ss%2F" + pw + "@[::1]:6379/0?dial_timeout=3s"} {
		require.NoError(t, redisconn.Check(good), good)
		c, err := redisconn.Parse(good)
		require.NoError(t, err, good)
		assert.NotContains(t, c.Desc, pw[:6], good)
		_ = c.Client.Close()
	}
}
