package config_test

import (
	"encoding/base64"
	"fmt"
	"maps"
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
	onPath := map[reflect.Type]bool{}
	walk = func(tp reflect.Type, path string) {
		if onPath[tp] {
			return // a recursive type (a runbook step's on_failure steps)
		}
		onPath[tp] = true
		defer delete(onPath, tp)
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
	rbPurge := "runbooks:\n  - name: purge-it\n    inputs: [{name: zone, type: string, required: true}]\n    steps:\n      - {id: p, kind: cdn:purge, provider: ucdn, params: {zone_name: \"{{ .inputs.zone }}\", zone_type: objects, files: [/a]}}\n"
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
		{"BadRedisScheme", "redis:\n  url: http://x\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default: {}\n", "redis.url: scheme: use one of redis, rediss, redis-sentinel, redis-cluster"},
		{"EmbeddedNotLoopback", "redis:\n  embedded: true\n  embedded_addr: 0.0.0.0:16379\n", "redis.embedded_addr: must be a loopback"},
		{"NoAccounts", "redis:\n  embedded: true\nproviders:\n  ucdn:\n    simulate: true\n", "providers.ucdn.accounts: at least one"},
		{"TokenRequired", "redis:\n  embedded: true\nproviders:\n  ucdn:\n    accounts:\n      main: {}\n", "providers.ucdn.accounts.main.token: required"},
		{"BadLogFormat", base + "log:\n  format: xml\n", "log.format: must be json or console"},
		{"BadDuration", base + "worker:\n  shutdown_timeout: soon\n", "shutdown_timeout"},
		{"ZeroConcurrency", base + "worker:\n  concurrency: 0\n", "worker.concurrency: must be >= 1"},
		{"QueueWeight", base + "worker:\n  queues:\n    default: 0\n", "worker.queues.default: weight must be >= 1"},
		{"ProviderQueueListed", base + "worker:\n  queues:\n    default: 1\n    ops:ucdn: 2\n", "worker.queues.ops:ucdn: names starting \"ops:\" are the provider queues: set their weight in worker.provider_weights"},
		{"ProviderWeightUnknown", base + "worker:\n  provider_weights:\n    akamai: 2\n", "worker.provider_weights.akamai: unknown provider (known: "},
		{"ProviderWeightZero", base + "worker:\n  provider_weights:\n    ucdn: 0\n", "worker.provider_weights.ucdn: weight must be >= 1"},
		{"RunbookBadReference", base + "runbooks:\n  - name: purge-it\n    steps:\n      - id: p\n        kind: cdn:purge\n        provider: ucdn\n        params: {zone_name: \"{{ .inputs.zone }}\", zone_type: objects, files: [/a]}\n",
			`runbooks[0]: runbook "purge-it" step "p" params.zone_name: unknown input "zone"`},
		{"ScheduleUnknownRunbook", base + "schedules:\n  - {name: s, spec: '@hourly', runbook: nope}\n", `schedules[0] (s).runbook: no runbook "nope" under runbooks`},
		{"ScheduleRunbookAndKind", base + rbPurge + "schedules:\n  - {name: s, spec: '@hourly', runbook: purge-it, task_type: cdn:purge}\n", "schedules[0] (s).runbook: a schedule starts a runbook (runbook, inputs) or operations"},
		{"ScheduleRunbookInputs", base + rbPurge + "schedules:\n  - {name: s, spec: '@hourly', runbook: purge-it, inputs: {zon: a}}\n", "schedules[0] (s).inputs.zon: not an input of this runbook"},
		{"ScheduleRunbookMissingInput", base + rbPurge + "schedules:\n  - {name: s, spec: '@hourly', runbook: purge-it}\n", "schedules[0] (s).inputs.zone: required"},
		{"ScheduleInputsWithoutRunbook", base + "schedules:\n  - {name: s, spec: '@hourly', task_type: cdn:purge, provider: ucdn, params: {}, inputs: {a: 1}}\n", "schedules[0] (s).inputs: inputs go with runbook"},
		{"QueueNotListed", base + "worker:\n  queues:\n    critical: 1\n", "operations.queue: \"default\" is not in worker.queues"},
		{"PolicyField", base + "polling:\n  cdn:purge:\n    initial: 1s\n    multiplier: 1\n    max: 2s\n    deadline: 0s\n", "polling.cdn:purge.deadline: must be > 0"},
		{"NegativeRateLimit", "redis:\n  embedded: true\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default:\n        rate_limit: -1\n", "providers.ucdn.accounts.default.rate_limit: must be >= 0"},
		{"MappingForScalar", "redis: \n  url:\n    a: b\n", "redis.url: expected a string"},
		{"BadWebhookSecret", base + "webhooks:\n  secrets: [nope]\n", "webhooks.secrets[0]: webhook secret"},
		{"UnknownSubscriptionKey", base + "webhooks:\n  subscriptions:\n    - name: a\n      url: https://x\n      filter: y\n", "webhooks.subscriptions[0].filter: unknown key"},
		{"SubscriptionNoURL", base + "webhooks:\n  subscriptions:\n    - name: a\n", "webhooks.subscriptions[0].url: must be"},
		{"SubscriptionDupName", base + "webhooks:\n  subscriptions:\n    - {name: a, url: https://x}\n    - {name: a, url: https://y}\n", "webhooks.subscriptions[1].name: used twice (also webhooks.subscriptions[0].name)"},
		{"SubscriptionBadEvent", base + "webhooks:\n  subscriptions:\n    - {name: a, url: https://x, events: [operation.done]}\n", "webhooks.subscriptions[0].events[0]: unknown event"},
		{"BadCIDR", base + "webhooks:\n  ssrf:\n    allow_cidrs: [10.0.0.0]\n", "webhooks.ssrf.allow_cidrs[0]: not a CIDR"},
		{"BadScheduleEntry", base + "webhooks:\n  retry_schedule: [5s, later]\n", "webhooks.retry_schedule[1]"},
		{"CallbacksNeedListen", base + "webhooks:\n  callbacks:\n    public_base_url: https://ow.example.com\n    secret: 0123456789abcdef\n", "http.listen: required"},
		{"CallbacksNeedSecret", base + "http:\n  listen: 127.0.0.1:0\nwebhooks:\n  callbacks:\n    public_base_url: https://ow.example.com\n", "webhooks.callbacks.secret: required"},
		{"ListenPortOutOfRange", base + "http:\n  listen: 127.0.0.1:99999\n", "http.listen: the port must be a number from 0 to 65535"},
		{"DevTokenNeedsListen", base + "http:\n  dev_token: true\n", `http.dev_token: needs http.listen on a loopback address (127.0.0.1:8080), got ""`},
		{"DevTokenLoopbackOnly", base + "http:\n  listen: 0.0.0.0:8080\n  dev_token: true\n", `http.dev_token: needs http.listen on a loopback address (127.0.0.1:8080), got "0.0.0.0:8080"`},
		{"BlankQueue", base + "worker:\n  queues: {' ': 1}\noperations:\n  queue: ' '\nwebhooks:\n  queue: ' '\n", "worker.queues: a queue name must not be empty"},
		{"SameTokenTwice", base + "http:\n  listen: 127.0.0.1:0\n  tokens:\n    - {name: a, token: same-token-0123456789, scope: read}\n    - {name: b, token: same-token-0123456789, scope: write}\n", "http.tokens[1].token: the same value as http.tokens[0].token"},
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

	// An empty variable is an empty string, not null (which would keep the
	// default concurrency without a word).
	_, err = config.Parse([]byte(y), env(map[string]string{"CONC": "", "TOK": "t"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "worker.concurrency: expected a whole number, got a string (line 4)")
}

func TestQueuesReplaceDefault(t *testing.T) {
	t.Parallel()
	y := "redis:\n  embedded: true\nworker:\n  queues:\n    ops: 3\n    hooks: 1\noperations:\n  queue: ops\nwebhooks:\n  queue: hooks\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default: {}\n"
	cfg, err := config.Parse([]byte(y), env(nil))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"ops": 3, "hooks": 1}, cfg.Worker.Queues)
}

// noSecret fails when msg contains any 6-character piece of secret.
func noSecret(t *testing.T, msg, secret string) {
	t.Helper()
	for i := 0; i+6 <= len(secret); i++ {
		require.NotContains(t, msg, secret[i:i+6], "the error shows part of the secret %q", secret)
	}
}

// A secret, in its field or pasted into the wrong one, never appears in a
// config error; the error still names the field.
func TestErrorsDoNotEchoSecrets(t *testing.T) {
	t.Parallel()
	const secret = "Zq9vKx3WmT7pLr2Yh8Nd"
	redis := "redis:\n  url: %s\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default: {}\n"
	base := "redis:\n  embedded: true\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default: {}\n"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"RedisURLBadPort", fmt.Sprintf(redis, "redis://:${SECRET}@127.0.0.1:notaport/0"), "redis.url: "},
		{"RedisURLBadPortUser", fmt.Sprintf(redis, "redis://admin:${SECRET}@127.0.0.1:99999/0"), "redis.url: "},
		{"RedisURLPasswordWithSlash", fmt.Sprintf(redis, "redis://:ab/${SECRET}@127.0.0.1:6379/0"), "redis.url: "},
		{"RedisURLPasswordWithQuery", fmt.Sprintf(redis, "redis://u:1234?${SECRET}@127.0.0.1:6379"), "redis.url: "},
		{"RedisURLPasswordWithHash", fmt.Sprintf(redis, "'redis://:ab#${SECRET}@127.0.0.1:6379'"), "redis.url: "},
		{"RedisURLNoAt", fmt.Sprintf(redis, "redis://:${SECRET}:127.0.0.1:6379"), "redis.url: "},
		{"RedisURLBadEscape", fmt.Sprintf(redis, "redis://:%zz${SECRET}@127.0.0.1:6379"), "redis.url: "},
		{"RedisURLBadDB", fmt.Sprintf(redis, "redis://:${SECRET}@127.0.0.1:6379/x${SECRET}"), "redis.url: "},
		{"RedisURLBadScheme", fmt.Sprintf(redis, "${SECRET}://127.0.0.1:6379"), "redis.url: "},
		{"RedisURLNoScheme", fmt.Sprintf(redis, "${SECRET}"), "redis.url: "},
		{"SentinelBadPort", fmt.Sprintf(redis, "redis-sentinel://:${SECRET}@s1:26379,s2:x/0?master=m"), "redis.url: "},
		{"ClusterBadHost", fmt.Sprintf(redis, "redis-cluster://:${SECRET}@n1:7000,:7001"), "redis.url: "},
		{"TokenInScope", base + "http:\n  tokens:\n    - {name: ci, token: api-token-0123456789, scope: \"${SECRET}\"}\n", "http.tokens[0].scope: "},
		{"TokenTooShort", base + "http:\n  tokens:\n    - {name: ci, token: \"${SHORT}\", scope: read}\n", "http.tokens[0].token: "},
		{"TokensScalar", base + "http:\n  tokens: ${SECRET}\n", "http.tokens: "},
		{"WebhookSecretsScalar", base + "webhooks:\n  secrets: ${SECRET}\n", "webhooks.secrets: "},
		{"WebhookSecretBad", base + "webhooks:\n  secrets: [\"whsec_${SECRET}!\"]\n", "webhooks.secrets[0]: "},
		{"AccountSecretsScalar", base + "webhooks:\n  account_secrets:\n    acme: ${SECRET}\n", "webhooks.account_secrets.acme: "},
		{"SubscriptionSecretsScalar", base + "webhooks:\n  subscriptions:\n    - {name: a, url: https://x.example, secrets: \"${SECRET}\"}\n", "webhooks.subscriptions[0].secrets: "},
		{"SubscriptionURLCredentials", base + "webhooks:\n  subscriptions:\n    - {name: a, url: \"ftp://u:${SECRET}@x.example/h\"}\n", "webhooks.subscriptions[0].url: "},
		{"AccountScalar", "redis:\n  embedded: true\nproviders:\n  ucdn:\n    accounts:\n      default: ${SECRET}\n", "providers.ucdn.accounts.default: "},
		{"AccountTokenList", "redis:\n  embedded: true\nproviders:\n  ucdn:\n    accounts:\n      default: {token: [\"${SECRET}\"]}\n", "providers.ucdn.accounts.default.token: "},
		{"TokenInRateLimit", "redis:\n  embedded: true\nproviders:\n  ucdn:\n    accounts:\n      default: {token: t, rate_limit: \"${SECRET}\"}\n", "providers.ucdn.accounts.default.rate_limit: "},
		{"TokenInConcurrency", base + "worker:\n  concurrency: ${SECRET}\n", "worker.concurrency: "},
		{"BaseURLCredentials", "redis:\n  embedded: true\nproviders:\n  ucdn:\n    base_url: \"ftp://u:${SECRET}@api.example\"\n    accounts:\n      default: {token: t}\n", "providers.ucdn.base_url: "},
		{"LeasewebBaseURLCredentials", base + "  leaseweb:\n    base_url: \"https://u:${SECRET}@\"\n    accounts:\n      default: {token: t}\n", "providers.leaseweb.base_url: "},
		{"CallbackSecretShort", base + "http:\n  listen: 127.0.0.1:0\nwebhooks:\n  callbacks:\n    public_base_url: https://ow.example.com\n    secret: \"${SHORT}\"\n", "webhooks.callbacks.secret: "},
		{"CallbackBaseURLCredentials", base + "http:\n  listen: 127.0.0.1:0\nwebhooks:\n  callbacks:\n    public_base_url: \"https://u:${SECRET}@ow.example.com/?q\"\n    secret: 0123456789abcdef\n", "webhooks.callbacks.public_base_url: "},
		{"AllowHostURL", base + "webhooks:\n  ssrf:\n    allow_hosts: [\"https://u:${SECRET}@hooks.example.com\"]\n", "webhooks.ssrf.allow_hosts[0]: "},
		{"AllowCIDRURL", base + "webhooks:\n  ssrf:\n    allow_cidrs: [\"https://u:${SECRET}@10.0.0.0/8\"]\n", "webhooks.ssrf.allow_cidrs[0]: "},
		{"CallbackSecretList", base + "webhooks:\n  callbacks:\n    secret: [\"${SECRET}\"]\n", "webhooks.callbacks.secret: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tc.yaml), env(map[string]string{"SECRET": secret, "SHORT": secret[:9]}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			noSecret(t, err.Error(), secret)
		})
	}
}

// @every intervals under a second (robfig/cron rounds them up to 1s) and
// fractions of a second (it truncates them) are refused, naming the
// schedule.
func TestEveryIntervalAtLeastOneSecond(t *testing.T) {
	t.Parallel()
	y := "redis:\n  embedded: true\nproviders:\n  ucdn:\n    simulate: true\n    accounts:\n      default: {}\n" +
		"schedules:\n  - {name: ok, spec: '@every 1s', task_type: cdn:purge, params: {}}\n  - {name: hourly, spec: '@hourly', task_type: cdn:purge, params: {}}\n" +
		"  - {name: nightly-purge, spec: '%s', task_type: cdn:purge, params: {}}\n"
	for spec, want := range map[string]string{
		"@every 500ms":  "schedules[2] (nightly-purge).spec: @every 500ms: interval must be at least 1s",
		"@every 0s":     "schedules[2] (nightly-purge).spec: @every 0s: interval must be at least 1s",
		"@every -5m":    "schedules[2] (nightly-purge).spec: @every -5m: interval must be at least 1s",
		"@every 1500ms": "schedules[2] (nightly-purge).spec: @every 1500ms: interval must be a whole number of seconds",
	} {
		_, err := config.Parse([]byte(fmt.Sprintf(y, spec)), env(nil))
		require.Error(t, err, spec)
		assert.Equal(t, want, err.Error())
	}
	for _, spec := range []string{"@every 1s", "@every 90s", "@every 1h30m"} {
		_, err := config.Parse([]byte(fmt.Sprintf(y, spec)), env(nil))
		require.NoError(t, err, spec)
	}
}

// Values read from the environment lose surrounding whitespace (a secret
// file's trailing newline); a token that is empty once trimmed is refused;
// a token with a control character inside cannot be sent in a header and
// is refused too.
func TestEnvValuesAreTrimmed(t *testing.T) {
	t.Parallel()
	whsec := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	y := "redis:\n  url: ${REDIS_URL}\nproviders:\n  ucdn:\n    accounts:\n      default: {token: \"${UCDN_TOKEN}\"}\n" +
		"  leaseweb:\n    accounts:\n      default: {token: \"${LSW_KEY}\"}\n" +
		"http:\n  listen: 127.0.0.1:0\n  tokens:\n    - {name: ci, token: \"${API_TOKEN}\", scope: write}\n" +
		"webhooks:\n  secrets: [\"${WHSEC}\"]\n  account_secrets:\n    acme: [\"${WHSEC}\"]\n  callbacks:\n    public_base_url: https://ow.example.com\n    secret: \"${CB_SECRET}\"\n"
	vars := map[string]string{"REDIS_URL": "redis://:pw@127.0.0.1:6379/2\n", "UCDN_TOKEN": "ucdn-token\n", "LSW_KEY": "\tlsw-key \r\n",
		"API_TOKEN": "api-token-0123456789\n", "WHSEC": whsec + "\n", "CB_SECRET": " callback-secret-0123456789\n"}
	cfg, err := config.Parse([]byte(y), env(vars))
	require.NoError(t, err)
	assert.Equal(t, "redis://:pw@127.0.0.1:6379/2", cfg.Redis.URL)
	assert.Equal(t, "ucdn-token", cfg.Providers.UCDN.Accounts["default"].Token)
	assert.Equal(t, "lsw-key", cfg.Providers.Leaseweb.Accounts["default"].Token)
	assert.Equal(t, "api-token-0123456789", cfg.HTTP.Tokens[0].Token)
	assert.Equal(t, []string{whsec}, cfg.Webhooks.Secrets)
	assert.Equal(t, []string{whsec}, cfg.Webhooks.AccountSecrets["acme"])
	assert.Equal(t, "callback-secret-0123456789", cfg.Webhooks.Callbacks.Secret)

	for name, tc := range map[string]struct{ key, value, want string }{
		"BlankAPIToken":        {"API_TOKEN", strings.Repeat(" ", 16) + "\n", "http.tokens[0].token: required"},
		"BlankProviderToken":   {"UCDN_TOKEN", " \n", "providers.ucdn.accounts.default.token: required"},
		"BlankLeasewebKey":     {"LSW_KEY", "\n", "providers.leaseweb.accounts.default.token: required"},
		"BlankCallbackSecret":  {"CB_SECRET", strings.Repeat(" ", 20) + "\n", "webhooks.callbacks.secret: required"},
		"BlankWebhookSecret":   {"WHSEC", " \n", "webhooks.secrets[0]: webhook secret"},
		"EmptyWebhookSecret":   {"WHSEC", "", "webhooks.secrets[0]: webhook secret"},
		"NewlineInAPIToken":    {"API_TOKEN", "api-token-01234\n56789", "http.tokens[0].token: must not contain control characters"},
		"NewlineInProviderKey": {"LSW_KEY", "lsw\nkey", "providers.leaseweb.accounts.default.token: must not contain control characters"},
	} {
		bad := maps.Clone(vars)
		bad[tc.key] = tc.value
		_, err := config.Parse([]byte(y), env(bad))
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), tc.want, name)
	}
}
