package config_test

import (
	"encoding/base64"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	configfiles "github.com/opsworker/opsworker/config"
	"github.com/opsworker/opsworker/internal/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDevConfigIsValidAndEmbedded(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse(configfiles.Dev, env(nil))
	require.NoError(t, err)
	assert.True(t, cfg.Redis.Embedded)
	assert.Equal(t, "127.0.0.1:16379", cfg.Redis.EmbeddedAddr)
	assert.True(t, cfg.Providers.UCDN.Simulate)
	assert.Equal(t, "console", cfg.Log.Format)
	onDisk, err := os.ReadFile("../../config/dev.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(onDisk), string(configfiles.Dev))
}

func TestExampleConfigLoadsWithSecretsFromEnv(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../config/example.yaml")
	require.NoError(t, err)
	whsec := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	cfg, err := config.Parse(data, env(map[string]string{"OPSWORKER_REDIS_URL": "redis://:pw@redis:6379/2", "UCDN_TOKEN": "secret-token",
		"OPSWORKER_WEBHOOK_SECRET": whsec, "AUDIT_WEBHOOK_SECRET": whsec, "LEASEWEB_API_KEY": "lsw", "EDGIO_TOKEN": "e", "IONOS_TOKEN": "i", "OPSWORKER_API_TOKEN": "api-token-0123456789"}))
	require.NoError(t, err)
	assert.Equal(t, "secret-token", cfg.Providers.UCDN.Accounts["default"].Token)
	assert.Equal(t, "redis://:pw@redis:6379/2", cfg.Redis.URL)
	assert.Equal(t, 2*time.Second, cfg.Polling["cdn:purge"].Initial)

	assert.Equal(t, "audit", cfg.Webhooks.Subscriptions[0].Name)
	assert.Len(t, cfg.Webhooks.RetrySchedule, 7)

	_, err = config.Parse(data, env(map[string]string{"OPSWORKER_REDIS_URL": "redis://r:6379", "OPSWORKER_WEBHOOK_SECRET": whsec, "AUDIT_WEBHOOK_SECRET": whsec, "LEASEWEB_API_KEY": "lsw", "EDGIO_TOKEN": "e", "IONOS_TOKEN": "i", "OPSWORKER_API_TOKEN": "api-token-0123456789"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "providers.ucdn.accounts.default.token: environment variable UCDN_TOKEN is not set")
}

// Every key of Config appears in config/example.yaml: the example documents
// all of them.
func TestExampleDocumentsEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../config/example.yaml")
	require.NoError(t, err)
	var keys []string
	var walk func(tp reflect.Type, path string)
	walk = func(tp reflect.Type, path string) {
		for i := 0; i < tp.NumField(); i++ {
			f := tp.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			p := name
			if path != "" {
				p = path + "." + name
			}
			keys = append(keys, p)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				walk(f.Type, p)
			}
			if (f.Type.Kind() == reflect.Map || f.Type.Kind() == reflect.Slice) && f.Type.Elem().Kind() == reflect.Struct {
				walk(f.Type.Elem(), p+".*")
			}
		}
	}
	walk(reflect.TypeOf(config.Config{}), "")
	text := string(data)
	for _, k := range keys {
		last := k[strings.LastIndex(k, ".")+1:]
		if last == "*" {
			continue
		}
		assert.Regexp(t, regexp.MustCompile(`(?m)^[\s-]*`+regexp.QuoteMeta(last)+`:`), text, "example.yaml does not document %s", k)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	base := "redis:\n  embedded: true\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default: {}\n"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"UnknownTopKey", base + "extra: 1\n", "extra: unknown key"},
		{"UnknownNestedKey", "redis:\n  embeded: true\n", "redis.embeded: unknown key (line 2)"},
		{"UnknownKeyInMapValue", base + "polling:\n  cdn:purge:\n    inital: 1s\n", "polling.cdn:purge.inital: unknown key"},
		{"UnknownAccountKey", "providers:\n  ucdn:\n    accounts:\n      default:\n        tokn: x\n", "providers.ucdn.accounts.default.tokn: unknown key"},
		{"MissingRedisURL", "providers:\n  ucdn:\n    simulate: true\n    accounts:\n      default: {}\n", "redis.url: required"},
		{"BadRedisScheme", "redis:\n  url: http://x\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default: {}\n", "redis.url: must be a redis://"},
		{"EmbeddedNotLoopback", "redis:\n  embedded: true\n  embedded_addr: 0.0.0.0:16379\n", "redis.embedded_addr: must be a loopback"},
		{"NoAccounts", "redis:\n  embedded: true\nproviders:\n  ucdn:\n    simulate: true\n", "providers.ucdn.accounts: at least one"},
		{"TokenRequired", "redis:\n  embedded: true\nproviders:\n  ucdn:\n    accounts:\n      main: {}\n", "providers.ucdn.accounts.main.token: required"},
		{"BadLogFormat", base + "log:\n  format: xml\n", "log.format: must be json or console"},
		{"BadDuration", base + "worker:\n  shutdown_timeout: soon\n", "shutdown_timeout"},
		{"ZeroConcurrency", base + "worker:\n  concurrency: 0\n", "worker.concurrency: must be >= 1"},
		{"QueueWeight", base + "worker:\n  queues:\n    default: 0\n", "worker.queues.default: weight must be >= 1"},
		{"QueueNotListed", base + "worker:\n  queues:\n    critical: 1\n", "operations.queue: \"default\" is not in worker.queues"},
		{"PolicyField", base + "polling:\n  cdn:purge:\n    initial: 1s\n    multiplier: 1\n    max: 2s\n    deadline: 0s\n", "polling.cdn:purge.deadline: must be > 0"},
		{"NegativeRateLimit", "redis:\n  embedded: true\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default:\n        rate_limit: -1\n", "providers.ucdn.accounts.default.rate_limit: must be >= 0"},
		{"MappingForScalar", "redis: \n  url:\n    a: b\n", "redis.url: expected a string"},
		{"BadWebhookSecret", base + "webhooks:\n  secrets: [nope]\n", "webhooks.secrets[0]: webhook secret"},
		{"UnknownSubscriptionKey", base + "webhooks:\n  subscriptions:\n    - name: a\n      url: https://x\n      filter: y\n", "webhooks.subscriptions[0].filter: unknown key"},
		{"SubscriptionNoURL", base + "webhooks:\n  subscriptions:\n    - name: a\n", "webhooks.subscriptions[0].url: must be"},
		{"SubscriptionDupName", base + "webhooks:\n  subscriptions:\n    - {name: a, url: https://x}\n    - {name: a, url: https://y}\n", "webhooks.subscriptions[1].name: \"a\" is used twice"},
		{"SubscriptionBadEvent", base + "webhooks:\n  subscriptions:\n    - {name: a, url: https://x, events: [operation.done]}\n", "webhooks.subscriptions[0].events[0]: unknown event"},
		{"BadCIDR", base + "webhooks:\n  ssrf:\n    allow_cidrs: [10.0.0.0]\n", "webhooks.ssrf.allow_cidrs[0]: not a CIDR"},
		{"BadScheduleEntry", base + "webhooks:\n  retry_schedule: [5s, later]\n", "webhooks.retry_schedule[1]"},
		{"CallbacksNeedListen", base + "webhooks:\n  callbacks:\n    public_base_url: https://ow.example.com\n    secret: 0123456789abcdef\n", "http.listen: required"},
		{"CallbacksNeedSecret", base + "http:\n  listen: 127.0.0.1:0\nwebhooks:\n  callbacks:\n    public_base_url: https://ow.example.com\n", "webhooks.callbacks.secret: required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tc.yaml), env(nil))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestEnvExpansionTypesAndSecrets(t *testing.T) {
	t.Parallel()
	y := "redis:\n  embedded: true\nworker:\n  concurrency: ${CONC}\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default:\n        token: \"${TOK}\"\n"
	cfg, err := config.Parse([]byte(y), env(map[string]string{"CONC": "7", "TOK": "a: b # not a comment"}))
	require.NoError(t, err)
	assert.Equal(t, 7, cfg.Worker.Concurrency)
	assert.Equal(t, "a: b # not a comment", cfg.Providers.UCDN.Accounts["default"].Token)
}

func TestQueuesReplaceDefault(t *testing.T) {
	t.Parallel()
	y := "redis:\n  embedded: true\nworker:\n  queues:\n    ops: 3\n    hooks: 1\noperations:\n  queue: ops\nwebhooks:\n  queue: hooks\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default: {}\n"
	cfg, err := config.Parse([]byte(y), env(nil))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"ops": 3, "hooks": 1}, cfg.Worker.Queues)
}
