// Package config loads and validates the worker's YAML configuration.
//
// Loading is strict: an unknown key, a missing required key or a bad value
// is an error that names the key by its full path (e.g.
// "providers.ucdn.accounts.default.token"). Secrets are never written in
// the file: a string value may reference an environment variable as
// ${NAME}, and a referenced variable that is unset is an error. The
// variable's value is used without its surrounding whitespace, so the
// trailing newline of a secret file does not become part of a token.
//
// Errors never quote a value that may be a secret (tokens, secrets, URLs
// that may carry credentials, values of the wrong type), so a secret in
// the wrong place is not printed either; they name the key instead.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/redisconn"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/webhookverify"
)

// Config is the whole worker configuration.
type Config struct {
	Log        Log                      `yaml:"log"`
	Redis      Redis                    `yaml:"redis"`
	Worker     Worker                   `yaml:"worker"`
	Operations Operations               `yaml:"operations"`
	Polling    map[string]poller.Policy `yaml:"polling"`
	Providers  Providers                `yaml:"providers"`
	Webhooks   Webhooks                 `yaml:"webhooks"`
	HTTP       HTTP                     `yaml:"http"`
	Schedules  []Schedule               `yaml:"schedules"`
	Approvals  []Approval               `yaml:"approvals"`
	// Runbooks are named compositions of operations (see package
	// runbook), started through POST /v1/runbooks/{name}/runs.
	Runbooks []runbook.Definition `yaml:"runbooks"`
}

// Approval makes the operations of a kind wait in pending_approval until
// a write token other than the submitter's approves them (or the
// deadline passes and they end canceled).
type Approval struct {
	// Kind is the operation kind, e.g. server:install; required.
	Kind string `yaml:"kind"`
	// Providers and Accounts narrow the rule; empty means all.
	Providers []string `yaml:"providers"`
	Accounts  []string `yaml:"accounts"`
	// Deadline is how long an operation waits for its approval. Default
	// 24h, at most 720h.
	Deadline time.Duration `yaml:"deadline"`
}

// Schedule enqueues operations on a clock. Every worker runs the
// scheduler; each tick still yields exactly one operation per item.
type Schedule struct {
	// Name identifies the schedule (a-z, 0-9, '-', '_'); required, unique.
	// It is part of every tick's idempotency key: renaming a schedule
	// makes it a new one.
	Name string `yaml:"name"`
	// Spec is a robfig/cron/v3 spec: 5 fields (minute precision), 6
	// fields (with seconds first), or a descriptor (@hourly, @daily,
	// @every 90s...). @every ticks are aligned to the Unix epoch, so all
	// replicas agree on them.
	Spec string `yaml:"spec"`
	// Timezone is an IANA zone (e.g. Europe/Amsterdam) the spec is read
	// in. Default UTC.
	Timezone string `yaml:"timezone"`
	// TaskType is the operation kind, e.g. cdn:purge. Give task_type (with
	// provider, account and params or fan_out) or runbook (with inputs).
	TaskType string `yaml:"task_type"`
	// Runbook starts one run of this runbook (of runbooks:) per tick
	// instead of operations; its id is the schedule and the tick's, so a
	// tick starts one run whatever the number of replicas.
	Runbook string `yaml:"runbook"`
	// Inputs are the inputs of each run (with runbook).
	Inputs map[string]any `yaml:"inputs"`
	// Provider and Account as in the payload envelope; Account defaults
	// to "default".
	Provider string `yaml:"provider"`
	Account  string `yaml:"account"`
	// Params are the operation's params. Give Params or FanOut, not both.
	Params map[string]any `yaml:"params"`
	// FanOut lists params: one operation per item and tick.
	FanOut []map[string]any `yaml:"fan_out"`
	// CallbackURL receives the operations' webhooks (subscriptions match
	// as for any operation), or a run's runbook.* events.
	CallbackURL string `yaml:"callback_url"`
	// Misfire is what happens to ticks no worker was running for: "skip"
	// (default) or "run_once" (one catch-up run at start-up, however many
	// ticks were missed).
	Misfire string `yaml:"misfire"`
	// Overlap is "allow" (default) or "skip_if_running": a tick is skipped
	// while an operation (or the run) of the previous tick is not
	// finished.
	Overlap string `yaml:"overlap"`
}

// HTTP configures the worker's HTTP server: the API (/v1), /metrics,
// /healthz, /readyz, the queue UI (/ui/) and provider callbacks.
type HTTP struct {
	// Listen is the address to serve on, e.g. 127.0.0.1:8080. "" (the
	// default) runs no HTTP server.
	Listen string `yaml:"listen"`
	// Tokens authorize the API and the UI (Bearer, or Basic with the
	// token as password). Without tokens both answer 401.
	Tokens []APIToken `yaml:"tokens"`
	// UI mounts the asynq queue UI (asynqmon) at /ui/. Default true.
	UI *bool `yaml:"ui"`
	// Console mounts the operations console at /console/. Default true.
	Console *bool `yaml:"console"`
	// DevToken makes the worker create a write token for this run only
	// and print it, with where to use it, at start. Development only:
	// refused unless Redis is embedded (or the worker runs with --dev).
	DevToken bool `yaml:"dev_token"`
}

// APIToken is one credential of the HTTP API.
type APIToken struct {
	// Name identifies the token in logs and errors.
	Name string `yaml:"name"`
	// Token is the secret (>= 16 characters, from the environment).
	Token string `yaml:"token"`
	// Scope is read (GET routes, read-only UI) or write (everything).
	Scope string `yaml:"scope"`
}

// Log configures logging.
type Log struct {
	// Format is "json" (production) or "console" (development). Default json.
	Format string `yaml:"format"`
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
}

// Redis says where the queue and operation records live.
type Redis struct {
	// Embedded starts an in-process Redis emulation (miniredis) on
	// EmbeddedAddr. Nothing persists: for development and demos only.
	Embedded bool `yaml:"embedded"`
	// EmbeddedAddr is the loopback address of the embedded Redis. It is
	// deliberately not 6379. Default 127.0.0.1:16379.
	EmbeddedAddr string `yaml:"embedded_addr"`
	// URL of a real Redis, required unless Embedded:
	// redis://[:password@]host:port/db (rediss:// for TLS),
	// redis-sentinel://[:password@]h1:26379,h2:26379/db?master=NAME, or
	// redis-cluster://[:password@]h1:7000,h2:7001,h3:7002.
	URL string `yaml:"url"`
	// KeyPrefix prefixes the operation store's keys. Default "opsworker".
	KeyPrefix string `yaml:"key_prefix"`
}

// Worker configures the asynq server.
type Worker struct {
	// Concurrency is the number of tasks processed at once. Default 10.
	Concurrency int `yaml:"concurrency"`
	// Queues maps queue name to weight (>= 1). Default {default: 1}.
	// Names starting "ops:" are the provider queues (ProviderWeights).
	Queues map[string]int `yaml:"queues"`
	// ProviderWeights maps a provider to the weight (>= 1) of its queue,
	// ops:<provider>, which holds its operations' launches and polls. A
	// worker listens on the queue of each provider it has credentials
	// for, and on no other. Default 1 each.
	ProviderWeights map[string]int `yaml:"provider_weights"`
	// StrictPriority drains higher-weight queues first.
	StrictPriority bool `yaml:"strict_priority"`
	// ShutdownTimeout bounds how long in-flight tasks may run after
	// SIGTERM before they are re-queued. Default 25s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TaskCheckInterval is how often an idle worker looks for work.
	// Default 100ms (asynq's own is 1s): a task submitted to an idle
	// worker starts within it.
	TaskCheckInterval time.Duration `yaml:"task_check_interval"`
	// DelayedTaskCheckInterval is how often scheduled tasks (polls,
	// retries) are moved to their queue. Default 250ms (asynq's own is
	// 5s). It bounds how precisely a poll delay is honoured.
	DelayedTaskCheckInterval time.Duration `yaml:"delayed_task_check_interval"`
}

// Operations configures the operation pipeline.
type Operations struct {
	// Queue is the general queue: it receives cancel requests, and it
	// held the launch and poll tasks of versions before provider queues
	// (still served there). Must be in worker.queues.
	// Default "default".
	Queue string `yaml:"queue"`
	// Retention is how long a finished operation record is kept. Default 168h.
	Retention time.Duration `yaml:"retention"`
	// LaunchMaxRetry is how often a launch that failed with a retryable
	// provider error is retried before the operation fails. Default 10.
	LaunchMaxRetry int `yaml:"launch_max_retry"`
	// TaskTimeout bounds one launch or poll task. Default 2m.
	TaskTimeout time.Duration `yaml:"task_timeout"`
	// RetryBackoffMax caps the wait between launch retries (1s doubling,
	// +-20%; a provider's Retry-After wins). Default 5m.
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max"`
	// OnBusy is what a launch does when its server is busy with another
	// operation or job: "wait" (default: look again every busy_retry, up
	// to busy_wait_max) or "fail" (fail at once, naming the holder).
	OnBusy string `yaml:"on_busy"`
	// BusyRetry and BusyWaitMax bound waiting. Defaults 10s and 1h.
	BusyRetry   time.Duration `yaml:"busy_retry"`
	BusyWaitMax time.Duration `yaml:"busy_wait_max"`
	// LockTTL is how long a server lock outlives its last refresh (each
	// poll refreshes it). Must exceed every polling max. Default 15m.
	LockTTL time.Duration `yaml:"lock_ttl"`
	// BatchPolling polls the operations of one provider account together
	// where the provider lists many jobs in one call (Leaseweb CDN
	// actions, UCDN purge jobs). Default true.
	BatchPolling *bool `yaml:"batch_polling"`
}

// Providers holds one section per provider API.
type Providers struct {
	UCDN     UCDN     `yaml:"ucdn"`
	Leaseweb Leaseweb `yaml:"leaseweb"`
	Edgio    Simple   `yaml:"edgio"`
	IONOS    Simple   `yaml:"ionos"`
}

// Simple configures a provider with one simulator duration (Edgio: how
// long a purge stays outstanding; IONOS: how long a distribution is
// BUSY). Without accounts, the provider's kinds are not served.
type Simple struct {
	// Simulate starts the provider's in-process simulator.
	Simulate bool `yaml:"simulate"`
	// SimulatorDuration is how long a simulated job takes. Default 1s.
	SimulatorDuration time.Duration `yaml:"simulator_duration"`
	// BaseURL is the API root (Edgio: https://api.edgecast.com; IONOS:
	// the regional host, e.g. https://cdn.de-fra.ionos.com).
	BaseURL string `yaml:"base_url"`
	// Timeout bounds one API call. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Accounts maps account name to token, limits and (Edgio) account
	// number.
	Accounts map[string]Account `yaml:"accounts"`
}

// Leaseweb configures the Leaseweb API client (dedicated servers, CDN,
// public cloud and VPS).
// The section is optional: without accounts, Leaseweb kinds are not
// served by this worker.
type Leaseweb struct {
	// Simulate starts the in-process Leaseweb simulator.
	Simulate bool `yaml:"simulate"`
	// Simulator configures it.
	Simulator LeasewebSimulator `yaml:"simulator"`
	// BaseURL is the API root. Default https://api.leaseweb.com.
	BaseURL string `yaml:"base_url"`
	// Timeout bounds one API call. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Accounts maps account name to its API key (X-LSW-Auth) and limits.
	Accounts map[string]Account `yaml:"accounts"`
}

// LeasewebSimulator configures the in-process Leaseweb simulator.
type LeasewebSimulator struct {
	// Addr is its loopback listen address. Default 127.0.0.1:0.
	Addr string `yaml:"addr"`
	// TaskDuration is how long each task of a simulated job takes (an
	// install has 7 tasks). Default 1s.
	TaskDuration time.Duration `yaml:"task_duration"`
	// CloudStep is how long each public-cloud step takes (a snapshot is
	// READY after 3, a type change takes 2, a group moves one instance per
	// step). Default 1s.
	CloudStep time.Duration `yaml:"cloud_step"`
}

// UCDN configures the UCDN API v4 client.
type UCDN struct {
	// Simulate starts the in-process UCDN simulator and points the client
	// at it; no credentials are needed.
	Simulate bool `yaml:"simulate"`
	// Simulator configures the simulator when Simulate is true.
	Simulator Simulator `yaml:"simulator"`
	// BaseURL is the API root. Default https://api.ucdn.com/v4. Ignored
	// when Simulate is true.
	BaseURL string `yaml:"base_url"`
	// Timeout bounds one API call. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// Accounts maps account name (the envelope's "account") to its
	// credentials and limits. At least one is required.
	Accounts map[string]Account `yaml:"accounts"`
}

// Simulator configures an in-process provider simulator.
type Simulator struct {
	// Addr is the loopback address it listens on. Default 127.0.0.1:0
	// (any free port).
	Addr string `yaml:"addr"`
	// WaitingFor and RunningFor are how long a simulated job stays in each
	// state. Default 1s each.
	WaitingFor time.Duration `yaml:"waiting_for"`
	RunningFor time.Duration `yaml:"running_for"`
}

// Account is one provider account.
type Account struct {
	// Token is the API token. Use ${ENV_VAR}; required unless the provider
	// is simulated.
	Token string `yaml:"token"`
	// RateLimit is the sustained number of API calls per second for this
	// account across every worker replica (a limit shared in Redis). 0
	// means unlimited. Default 0.
	RateLimit float64 `yaml:"rate_limit"`
	// Burst is how many calls may exceed RateLimit at once. Default 1.
	Burst int `yaml:"burst"`
	// AccountNumber is the Edgio customer account number (the
	// {AccountNumber} in its API paths); required for Edgio.
	AccountNumber string `yaml:"account_number"`
	// Breaker is the account's circuit breaker, shared by every replica.
	Breaker Breaker `yaml:"breaker"`
	// MaxInFlight caps the account's operations running at the provider
	// at once, across every replica; the others wait in queued. 0 means
	// no cap. Default 0.
	MaxInFlight int `yaml:"max_in_flight"`
}

// Breaker opens an account's circuit after Failures retryable provider
// failures (5xx, timeouts, connection errors) within Window: its calls
// are then held back, and its tasks wait without using attempts, until
// CoolDown has passed and one probe call succeeds.
type Breaker struct {
	// Failures that open the circuit. Default 5.
	Failures int `yaml:"failures"`
	// Window the failures fall within. Default 30s.
	Window time.Duration `yaml:"window"`
	// CoolDown before a probe. Default 30s.
	CoolDown time.Duration `yaml:"cool_down"`
	// Disabled turns the breaker off.
	Disabled bool `yaml:"disabled"`
}

// checkFlow checks an account's rate limit and breaker settings.
func checkFlow(bad func(key, format string, args ...any), key string, a Account) {
	if a.RateLimit < 0 {
		bad(key+".rate_limit", "must be >= 0")
	}
	if a.Burst < 0 {
		bad(key+".burst", "must be >= 0")
	}
	if a.MaxInFlight < 0 {
		bad(key+".max_in_flight", "must be >= 0")
	}
	if a.Breaker.Failures < 0 {
		bad(key+".breaker.failures", "must be >= 0")
	}
	if a.Breaker.Window < 0 {
		bad(key+".breaker.window", "must be >= 0")
	}
	if a.Breaker.CoolDown < 0 {
		bad(key+".breaker.cool_down", "must be >= 0")
	}
}

// Webhooks configures completion webhooks and provider callbacks.
type Webhooks struct {
	// Queue receives webhook:deliver tasks. Must be in worker.queues.
	// Default "default".
	Queue string `yaml:"queue"`
	// Timeout bounds one delivery attempt. Default 15s.
	Timeout time.Duration `yaml:"timeout"`
	// RetrySchedule is the wait before each retry after the first attempt
	// (which is immediate); its length is the number of retries. Default
	// 5s, 5m, 30m, 2h, 5h, 10h, 10h.
	RetrySchedule []time.Duration `yaml:"retry_schedule"`
	// Jitter spreads each retry wait by ±Jitter×wait, in [0, 1). Default 0.2.
	Jitter float64 `yaml:"jitter"`
	// Retention is how long a delivered or dead-lettered delivery stays
	// listable (enqueue webhooks list). Default 72h.
	Retention time.Duration `yaml:"retention"`
	// Secrets sign every delivery (whsec_<base64>, from the environment).
	// List two while rotating: each request then carries both signatures.
	// Empty: the worker makes a random secret at start-up and warns
	// (development only: receivers cannot know it).
	Secrets []string `yaml:"secrets"`
	// AccountSecrets replace Secrets for the callback_url of operations of
	// that account.
	AccountSecrets map[string][]string `yaml:"account_secrets"`
	// Subscriptions receive events of every matching operation.
	Subscriptions []Subscription `yaml:"subscriptions"`
	// SSRF opens the delivery guard for chosen destinations.
	SSRF SSRF `yaml:"ssrf"`
	// Callbacks configures inbound provider callbacks.
	Callbacks Callbacks `yaml:"callbacks"`
}

// Subscription is a configured webhook destination.
type Subscription struct {
	// Name identifies it (a-z, 0-9, '-', '_'); required and unique.
	Name string `yaml:"name"`
	// URL receives the events; required.
	URL string `yaml:"url"`
	// Secrets sign its deliveries; empty means webhooks.secrets.
	Secrets []string `yaml:"secrets"`
	// Events filters by event type; empty means every operation.* event.
	// provider.degraded and provider.recovered go only to subscriptions
	// that name them.
	Events []string `yaml:"events"`
	// Kinds and Providers filter by operation; empty means all. Providers
	// also filters provider.* events; Kinds does not.
	Kinds     []string `yaml:"kinds"`
	Providers []string `yaml:"providers"`
}

// SSRF lists destinations opened despite the guard, which by default
// refuses loopback, private, link-local, CGNAT, multicast and unspecified
// addresses at connect time.
type SSRF struct {
	// AllowCIDRs are address prefixes to allow, e.g. 10.20.0.0/16.
	AllowCIDRs []string `yaml:"allow_cidrs"`
	// AllowHosts are host names delivered to without the guard.
	AllowHosts []string `yaml:"allow_hosts"`
}

// Callbacks configures provider callbacks (Leaseweb callbackUrl). They
// need http.listen, a public base URL and a secret; unset, no callback URL
// is sent and polling alone follows operations.
type Callbacks struct {
	// PublicBaseURL is how providers reach http.listen, e.g.
	// https://opsworker.example.com. "" disables callbacks.
	PublicBaseURL string `yaml:"public_base_url"`
	// Secret keys the per-operation callback tokens (>= 16 characters,
	// from the environment).
	Secret string `yaml:"secret"`
}

// Default returns the configuration every file is applied over.
func Default() Config {
	return Config{
		Log:   Log{Format: "json", Level: "info"},
		Redis: Redis{EmbeddedAddr: "127.0.0.1:16379", KeyPrefix: "opsworker"},
		Worker: Worker{
			Concurrency:              10,
			Queues:                   map[string]int{"default": 1},
			ShutdownTimeout:          25 * time.Second,
			TaskCheckInterval:        100 * time.Millisecond,
			DelayedTaskCheckInterval: 250 * time.Millisecond,
		},
		Operations: Operations{Queue: "default", Retention: 168 * time.Hour, LaunchMaxRetry: 10, TaskTimeout: 2 * time.Minute, RetryBackoffMax: 5 * time.Minute,
			OnBusy: "wait", BusyRetry: 10 * time.Second, BusyWaitMax: time.Hour, LockTTL: 15 * time.Minute},
		// Each kind's default comes with its registration (package tasks).
		Polling: tasks.DefaultPolicies(),

		Providers: Providers{
			UCDN: UCDN{
				BaseURL:   "https://api.ucdn.com/v4",
				Timeout:   30 * time.Second,
				Simulator: Simulator{Addr: "127.0.0.1:0", WaitingFor: time.Second, RunningFor: time.Second},
			},
			Edgio: Simple{BaseURL: "https://api.edgecast.com", Timeout: 30 * time.Second, SimulatorDuration: time.Second},
			IONOS: Simple{BaseURL: "https://cdn.de-fra.ionos.com", Timeout: 30 * time.Second, SimulatorDuration: time.Second},
			Leaseweb: Leaseweb{
				BaseURL:   "https://api.leaseweb.com",
				Timeout:   30 * time.Second,
				Simulator: LeasewebSimulator{Addr: "127.0.0.1:0", TaskDuration: time.Second, CloudStep: time.Second},
			},
		},
		Webhooks: Webhooks{
			Queue:   "default",
			Timeout: 15 * time.Second,
			RetrySchedule: []time.Duration{
				5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
			},
			Jitter:    0.2,
			Retention: 72 * time.Hour,
		},
	}
}

// Load reads the file at path; see Parse.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data, os.LookupEnv)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ReadFile is Load without the validation (see Decode).
func ReadFile(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := Decode(data, os.LookupEnv)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML over Default, expands ${NAME} references with lookup
// and validates the result. Every error names the key it concerns.
func Parse(data []byte, lookup func(string) (string, bool)) (Config, error) {
	cfg, err := Decode(data, lookup)
	if err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// Decode is Parse without the validation: the worker validates along with
// what else it checks at start, to report every problem at once. Its
// errors are the document's own (YAML, unknown keys, values of the wrong
// type).
func Decode(data []byte, lookup func(string) (string, bool)) (Config, error) {
	cfg := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, err
	}
	if len(root.Content) == 0 {
		return cfg, nil
	}
	doc := root.Content[0]
	if err := expandEnv(doc, "", lookup); err != nil {
		return Config{}, err
	}
	if err := checkKeys(doc, reflect.TypeOf(cfg), ""); err != nil {
		return Config{}, err
	}
	// Maps are replaced, not merged, when the file sets them: a file that
	// lists queues lists all of them.
	if hasKey(doc, "worker", "queues") {
		cfg.Worker.Queues = nil
	}
	if err := doc.Decode(&cfg); err != nil {
		// checkKeys has seen every value; yaml's own message would quote
		// the start of the offending one.
		return Config{}, errors.New("the document does not decode into the configuration")
	}
	return cfg, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

func expandEnv(n *yaml.Node, path string, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := expandEnv(n.Content[i+1], join(path, n.Content[i].Value), lookup); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := expandEnv(c, fmt.Sprintf("%s[%d]", path, i), lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !envRef.MatchString(n.Value) {
			return nil
		}
		var missing []string
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := envRef.FindStringSubmatch(m)[1]
			v, ok := lookup(name)
			if !ok {
				missing = append(missing, name)
			}
			return strings.TrimSpace(v)
		})
		if len(missing) > 0 {
			return fmt.Errorf("%s: environment variable %s is not set", path, strings.Join(missing, ", "))
		}
		// Let the expanded text resolve to its own type (a number for an
		// int field); string fields accept any scalar. An empty value
		// stays an empty string: as a plain scalar it would be null, which
		// drops out of a list (an empty secret would leave none) and
		// silently leaves a number at its default.
		n.Tag = ""
		if n.Value == "" {
			n.Tag = "!!str"
		}
		n.Style = 0
	}
	return nil
}

// checkKeys reports keys in the document that t does not define, by path.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ft, ok := fields[k]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: unknown key (line %d)", join(path, k), n.Content[i].Line))
				continue
			}
			if err := checkKeys(n.Content[i+1], ft, join(path, k)); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		var errs []error
		for i, c := range n.Content {
			if err := checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	case n.Kind == yaml.SequenceNode && t.Kind() != reflect.Interface:
		return fmt.Errorf("%s: expected a %s, got a list (line %d)", path, t.Kind(), n.Line)
	case n.Kind == yaml.MappingNode && t.Kind() != reflect.Interface:
		return fmt.Errorf("%s: expected a %s, got a mapping (line %d)", path, t.Kind(), n.Line)
	case n.Kind == yaml.ScalarNode:
		// Decode the value alone so a type error names its key. yaml's
		// message quotes the value, which may be a secret in the wrong
		// place: say what was expected instead.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return fmt.Errorf("%s: expected %s, got %s (line %d)", path, typeName(t), tagName(n.ShortTag()), n.Line)
		}
	}
	return nil
}

// typeName describes a Go type as a config value.
func typeName(t reflect.Type) string {
	if t == reflect.TypeOf(time.Duration(0)) {
		return "a duration such as 30s or 5m"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "a " + t.Kind().String()
}

// tagName describes a YAML scalar's resolved tag.
func tagName(tag string) string {
	switch tag {
	case "!!str":
		return "a string"
	case "!!int":
		return "a whole number"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "nothing"
	case "!!timestamp":
		return "a timestamp"
	}
	return "a value of another type"
}

func hasKey(n *yaml.Node, keys ...string) bool {
	for _, k := range keys {
		if n.Kind != yaml.MappingNode {
			return false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return false
		}
		n = next
	}
	return true
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// Validate checks every value and reports all problems, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	// name checks a list item's name: the pattern, and unique in seen
	// (which maps each name to the key of its first use).
	name := func(key string, seen map[string]string, n string) {
		switch {
		case !subNameRe.MatchString(n):
			bad(key+".name", "required: 1-64 of a-z, 0-9, '-', '_'")
		case seen[n] != "":
			bad(key+".name", "used twice (also %s.name)", seen[n])
		default:
			seen[n] = key
		}
	}
	// token checks a credential sent in an HTTP header.
	token := func(key, v string) {
		if strings.ContainsFunc(v, unicode.IsControl) {
			bad(key, "must not contain control characters (a line break inside the value?)")
		}
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		bad("log.format", "must be json or console, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Redis.Embedded {
		host, _, err := net.SplitHostPort(c.Redis.EmbeddedAddr)
		if err != nil {
			bad("redis.embedded_addr", "must be host:port: %v", err)
		} else if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad("redis.embedded_addr", "must be a loopback address, got %q", c.Redis.EmbeddedAddr)
		}
	} else if c.Redis.URL == "" {
		bad("redis.url", "required when redis.embedded is false")
	} else if err := redisconn.Check(c.Redis.URL); err != nil {
		// The error names the part of the URL at fault, never its text.
		bad("redis.url", "%v", err)
	}
	if c.Redis.KeyPrefix == "" || strings.ContainsAny(c.Redis.KeyPrefix, "{} ") {
		bad("redis.key_prefix", "must be non-empty without braces or spaces")
	}
	if c.Worker.Concurrency < 1 {
		bad("worker.concurrency", "must be >= 1")
	}
	if len(c.Worker.Queues) == 0 {
		bad("worker.queues", "at least one queue is required")
	}
	for _, q := range sortedKeys(c.Worker.Queues) {
		if strings.TrimSpace(q) == "" || q != strings.TrimSpace(q) {
			// asynq would drop such a queue without a word.
			bad("worker.queues", "a queue name must not be empty or start or end with a space")
		}
		if c.Worker.Queues[q] < 1 {
			bad("worker.queues."+q, "weight must be >= 1")
		}
		if tasks.IsProviderQueue(q) {
			bad("worker.queues."+q, "names starting %q are the provider queues: set their weight in worker.provider_weights", "ops:")
		}
	}
	for _, p := range sortedKeys(c.Worker.ProviderWeights) {
		if !slices.Contains(tasks.Providers(), p) {
			bad("worker.provider_weights."+p, "unknown provider (known: %s)", strings.Join(tasks.Providers(), ", "))
		}
		if c.Worker.ProviderWeights[p] < 1 {
			bad("worker.provider_weights."+p, "weight must be >= 1")
		}
	}
	if c.Worker.ShutdownTimeout <= 0 {
		bad("worker.shutdown_timeout", "must be > 0")
	}
	if c.Worker.TaskCheckInterval <= 0 {
		bad("worker.task_check_interval", "must be > 0")
	}
	if c.Worker.DelayedTaskCheckInterval <= 0 {
		bad("worker.delayed_task_check_interval", "must be > 0")
	}
	if _, ok := c.Worker.Queues[c.Operations.Queue]; !ok {
		bad("operations.queue", "%q is not in worker.queues", c.Operations.Queue)
	}
	if c.Operations.Retention <= 0 {
		bad("operations.retention", "must be > 0")
	}
	if c.Operations.LaunchMaxRetry < 0 {
		bad("operations.launch_max_retry", "must be >= 0")
	}
	if c.Operations.TaskTimeout <= 0 {
		bad("operations.task_timeout", "must be > 0")
	}
	if c.Operations.RetryBackoffMax < time.Second {
		bad("operations.retry_backoff_max", "must be >= 1s")
	}
	if c.Operations.OnBusy != "wait" && c.Operations.OnBusy != "fail" {
		bad("operations.on_busy", "must be wait or fail, got %q", c.Operations.OnBusy)
	}
	if c.Operations.BusyRetry <= 0 {
		bad("operations.busy_retry", "must be > 0")
	}
	if c.Operations.BusyWaitMax <= 0 {
		bad("operations.busy_wait_max", "must be > 0")
	}
	if c.Operations.LockTTL <= 0 {
		bad("operations.lock_ttl", "must be > 0")
	}
	for _, k := range sortedKeys(c.Polling) {
		if c.Polling[k].Max >= c.Operations.LockTTL {
			bad("polling."+k+".max", "must be below operations.lock_ttl (%s), or the server lock lapses between polls", c.Operations.LockTTL)
		}
	}
	for _, k := range sortedKeys(c.Polling) {
		if err := c.Polling[k].Validate(); err != nil {
			bad("polling."+k+"."+strings.SplitN(err.Error(), ":", 2)[0], "%s", strings.TrimSpace(strings.SplitN(err.Error(), ":", 2)[1]))
		}
	}
	u := c.Providers.UCDN
	if u.Simulate {
		if u.Simulator.WaitingFor < 0 || u.Simulator.RunningFor < 0 {
			bad("providers.ucdn.simulator", "waiting_for and running_for must be >= 0")
		}
	} else if bu, err := url.Parse(u.BaseURL); err != nil || (bu.Scheme != "https" && bu.Scheme != "http") || bu.Host == "" {
		bad("providers.ucdn.base_url", "must be an http(s) URL")
	}
	if u.Timeout <= 0 {
		bad("providers.ucdn.timeout", "must be > 0")
	}
	if len(u.Accounts) == 0 {
		bad("providers.ucdn.accounts", "at least one account is required")
	}
	for _, name := range sortedKeys(u.Accounts) {
		a := u.Accounts[name]
		key := "providers.ucdn.accounts." + name
		if a.Token == "" && !u.Simulate {
			bad(key+".token", "required (use ${ENV_VAR})")
		}
		token(key+".token", a.Token)
		checkFlow(bad, key, a)
	}
	lw := c.Providers.Leaseweb
	if !lw.Simulate && len(lw.Accounts) > 0 {
		if bu, err := url.Parse(lw.BaseURL); err != nil || (bu.Scheme != "https" && bu.Scheme != "http") || bu.Host == "" {
			bad("providers.leaseweb.base_url", "must be an http(s) URL")
		}
	}
	if lw.Simulate && lw.Simulator.TaskDuration < 0 {
		bad("providers.leaseweb.simulator.task_duration", "must be >= 0")
	}
	if lw.Timeout <= 0 {
		bad("providers.leaseweb.timeout", "must be > 0")
	}
	for _, name := range sortedKeys(lw.Accounts) {
		a := lw.Accounts[name]
		key := "providers.leaseweb.accounts." + name
		if a.Token == "" && !lw.Simulate {
			bad(key+".token", "required: the API key (use ${ENV_VAR})")
		}
		token(key+".token", a.Token)
		checkFlow(bad, key, a)
	}
	for _, sp := range []struct {
		name string
		cfg  Simple
	}{{"edgio", c.Providers.Edgio}, {"ionos", c.Providers.IONOS}} {
		key := "providers." + sp.name
		if !sp.cfg.Simulate && len(sp.cfg.Accounts) > 0 {
			if bu, err := url.Parse(sp.cfg.BaseURL); err != nil || (bu.Scheme != "https" && bu.Scheme != "http") || bu.Host == "" {
				bad(key+".base_url", "must be an http(s) URL")
			}
		}
		if sp.cfg.Timeout <= 0 {
			bad(key+".timeout", "must be > 0")
		}
		if sp.cfg.SimulatorDuration < 0 {
			bad(key+".simulator_duration", "must be >= 0")
		}
		for _, name := range sortedKeys(sp.cfg.Accounts) {
			a := sp.cfg.Accounts[name]
			if a.Token == "" && !sp.cfg.Simulate {
				bad(key+".accounts."+name+".token", "required (use ${ENV_VAR})")
			}
			token(key+".accounts."+name+".token", a.Token)
			if sp.name == "edgio" && !regexp.MustCompile(`^[A-Za-z0-9]{1,16}$`).MatchString(a.AccountNumber) {
				bad(key+".accounts."+name+".account_number", "required: the Edgio customer account number (letters and digits)")
			}
			checkFlow(bad, key+".accounts."+name, a)
		}
	}
	if _, ok := c.Worker.Queues[c.Webhooks.Queue]; !ok {
		bad("webhooks.queue", "%q is not in worker.queues", c.Webhooks.Queue)
	}
	if c.Webhooks.Timeout <= 0 {
		bad("webhooks.timeout", "must be > 0")
	}
	for i, d := range c.Webhooks.RetrySchedule {
		if d < 0 {
			bad(fmt.Sprintf("webhooks.retry_schedule[%d]", i), "must be >= 0")
		}
	}
	if c.Webhooks.Jitter < 0 || c.Webhooks.Jitter >= 1 {
		bad("webhooks.jitter", "must be in [0, 1)")
	}
	if c.Webhooks.Retention <= 0 {
		bad("webhooks.retention", "must be > 0")
	}
	checkSecrets := func(key string, list []string) {
		for i, v := range list {
			if _, err := webhookverify.ParseSecret(v); err != nil {
				bad(fmt.Sprintf("%s[%d]", key, i), "%v", err)
			}
		}
	}
	checkSecrets("webhooks.secrets", c.Webhooks.Secrets)
	for _, a := range sortedKeys(c.Webhooks.AccountSecrets) {
		checkSecrets("webhooks.account_secrets."+a, c.Webhooks.AccountSecrets[a])
		if len(c.Webhooks.AccountSecrets[a]) == 0 {
			bad("webhooks.account_secrets."+a, "at least one secret")
		}
	}
	names := map[string]string{}
	for i, sub := range c.Webhooks.Subscriptions {
		key := fmt.Sprintf("webhooks.subscriptions[%d]", i)
		name(key, names, sub.Name)
		if u, err := url.Parse(sub.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(key+".url", "must be an absolute http(s) URL")
		}
		checkSecrets(key+".secrets", sub.Secrets)
		for j, e := range sub.Events {
			if !validEvent(e) {
				bad(fmt.Sprintf("%s.events[%d]", key, j), "unknown event %q (operation.pending_approval, operation.running, operation.succeeded, operation.failed, operation.timed_out, operation.canceled, provider.degraded, provider.recovered, runbook.succeeded, runbook.failed, runbook.canceled, runbook.waiting_gate)", e)
			}
		}
	}
	for i, cidr := range c.Webhooks.SSRF.AllowCIDRs {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			bad(fmt.Sprintf("webhooks.ssrf.allow_cidrs[%d]", i), "not a CIDR prefix such as 10.20.0.0/16")
		}
	}
	for i, h := range c.Webhooks.SSRF.AllowHosts {
		if h == "" || strings.ContainsAny(h, "/: ") {
			bad(fmt.Sprintf("webhooks.ssrf.allow_hosts[%d]", i), "must be a bare host name (no scheme, port, path or credentials)")
		}
	}
	if cb := c.Webhooks.Callbacks; cb.PublicBaseURL != "" {
		if u, err := url.Parse(cb.PublicBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			bad("webhooks.callbacks.public_base_url", "must be an absolute http(s) URL without a query")
		}
		if len(cb.Secret) < 16 {
			bad("webhooks.callbacks.secret", "required (>= 16 characters, use ${ENV_VAR}) when public_base_url is set")
		}
		if c.HTTP.Listen == "" {
			bad("http.listen", "required when webhooks.callbacks.public_base_url is set")
		}
	}
	if c.HTTP.Listen != "" {
		if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			bad("http.listen", "must be host:port: %v", err)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("http.listen", "the port must be a number from 0 to 65535")
		}
	}
	if c.HTTP.DevToken {
		// The token is printed: only a server on this machine's loopback
		// may accept it.
		host, _, err := net.SplitHostPort(c.HTTP.Listen)
		if ip := net.ParseIP(host); c.HTTP.Listen == "" || err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			bad("http.dev_token", "needs http.listen on a loopback address (127.0.0.1:8080), got %q", c.HTTP.Listen)
		}
	}
	tokNames := map[string]string{}
	tokSecrets := map[string]int{}
	for i, tk := range c.HTTP.Tokens {
		key := fmt.Sprintf("http.tokens[%d]", i)
		name(key, tokNames, tk.Name)
		if len(tk.Token) < 16 {
			bad(key+".token", "required: at least 16 characters (use ${ENV_VAR})")
		}
		if j, dup := tokSecrets[tk.Token]; dup && tk.Token != "" {
			// Which name and scope would a request get? Refuse, without
			// printing the value.
			bad(key+".token", "the same value as http.tokens[%d].token", j)
		} else {
			tokSecrets[tk.Token] = i
		}
		token(key+".token", tk.Token)
		if tk.Scope != "read" && tk.Scope != "write" {
			// Not quoted: a token pasted one line too low would be printed.
			bad(key+".scope", "must be read or write")
		}
	}
	compiled := map[string]*runbook.Runbook{}
	for i, d := range c.Runbooks {
		rb, err := runbook.Compile(d)
		switch _, dup := compiled[d.Name]; {
		case err != nil:
			bad(fmt.Sprintf("runbooks[%d]", i), "%v", err)
		case dup:
			bad(fmt.Sprintf("runbooks[%d].name", i), "%q is used twice", d.Name)
		default:
			compiled[d.Name] = rb
		}
	}
	for i, ap := range c.Approvals {
		key := fmt.Sprintf("approvals[%d]", i)
		if !slices.Contains(tasks.Kinds(), ap.Kind) {
			bad(key+".kind", "unknown kind %q (known: %s)", ap.Kind, strings.Join(tasks.Kinds(), ", "))
		}
		for j, p := range ap.Providers {
			if !slices.Contains(tasks.Providers(), p) {
				bad(fmt.Sprintf("%s.providers[%d]", key, j), "unknown provider %q", p)
			}
		}
		if ap.Deadline < 0 || ap.Deadline > 720*time.Hour {
			bad(key+".deadline", "must be between 0 (the default, 24h) and 720h")
		}
	}
	schedNames := map[string]string{}
	for i, sc := range c.Schedules {
		key := fmt.Sprintf("schedules[%d]", i)
		if sc.Name != "" {
			key += " (" + sc.Name + ")"
		}
		name(key, schedNames, sc.Name)
		if _, err := ParseCron(sc.Spec, sc.Timezone); err != nil {
			bad(key+".spec", "%v", err)
		}
		switch {
		case sc.Runbook != "" && (sc.TaskType != "" || sc.Provider != "" || sc.Account != "" || sc.Params != nil || sc.FanOut != nil):
			bad(key+".runbook", "a schedule starts a runbook (runbook, inputs) or operations (task_type, provider, account, params or fan_out), not both")
		case sc.Runbook != "":
			if rb, ok := compiled[sc.Runbook]; !ok {
				bad(key+".runbook", "no runbook %q under runbooks", sc.Runbook)
			} else if _, err := rb.Inputs(sc.Inputs); err != nil {
				var re *runbook.Error
				if errors.As(err, &re) {
					bad(key+"."+re.Field, "%s", re.Message)
				} else {
					bad(key+".inputs", "%v", err)
				}
			}
		case sc.Inputs != nil:
			bad(key+".inputs", "inputs go with runbook; an operation's go under params")
		case sc.TaskType == "":
			bad(key+".task_type", "required (or runbook)")
		case (sc.Params == nil) == (sc.FanOut == nil):
			bad(key+".params", "give params or fan_out (one operation per item), not both or neither")
		case sc.FanOut != nil && len(sc.FanOut) == 0:
			bad(key+".fan_out", "at least one item")
		}
		switch sc.Misfire {
		case "", "skip", "run_once":
		default:
			bad(key+".misfire", "must be skip or run_once, got %q", sc.Misfire)
		}
		switch sc.Overlap {
		case "", "allow", "skip_if_running":
		default:
			bad(key+".overlap", "must be allow or skip_if_running, got %q", sc.Overlap)
		}
	}
	return errors.Join(errs...)
}

var subNameRe = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

func validEvent(e string) bool {
	switch e {
	case "operation.pending_approval", "operation.running", "operation.succeeded", "operation.failed", "operation.timed_out", "operation.canceled",
		"provider.degraded", "provider.recovered", "runbook.succeeded", "runbook.failed", "runbook.canceled", "runbook.waiting_gate":
		return true
	}
	return false
}

// Policy returns the polling policy of kind, or an error naming the
// missing key.
func (c Config) Policy(kind string) (poller.Policy, error) {
	p, ok := c.Polling[kind]
	if !ok {
		return poller.Policy{}, fmt.Errorf("polling.%s: no polling policy configured", kind)
	}
	return p, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
