// Command worker runs the opsworker daemon: an asynq server that launches
// infrastructure operations at provider APIs, polls them to completion and
// sends completion webhooks.
//
// With no --config it runs config/dev.yaml (embedded in the binary): an
// in-process Redis and the provider simulators, so it needs nothing else.
package main

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // schedules name IANA zones; do not depend on the host's zoneinfo

	"github.com/spf13/pflag"

	"github.com/google/uuid"

	"github.com/opsworker/opsworker/internal/buildinfo"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/time/rate"

	configfiles "github.com/opsworker/opsworker/config"
	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/internal/config"
	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/metrics"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/edgio"
	"github.com/opsworker/opsworker/internal/providers/edgio/edgiosim"
	"github.com/opsworker/opsworker/internal/providers/ionos"
	"github.com/opsworker/opsworker/internal/providers/ionos/ionossim"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/redisconn"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/schedule"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/webhookverify"
)

// version is this build's (see internal/buildinfo).
var version = buildinfo.Version()

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		var logged *loggedError
		if !errors.As(err, &logged) {
			fmt.Fprintln(os.Stderr, "worker:", err)
		}
		os.Exit(1)
	}
}

// loggedError is an error the worker's logger already wrote, in the
// configured format.
type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string) (err error) {
	// pflag, as the CLI (cobra): --long flags, -h.
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	cfgPath := fs.String("config", "", "path to the YAML config (default: the embedded config/dev.yaml)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	checkOnly := fs.Bool("check-config", false, "validate the config and exit")
	dev := fs.Bool("dev", false, "allow development-only settings on a real Redis: simulated providers (providers.*.simulate)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil // the usage is printed: asked for, not an error
		}
		return err
	}
	if *showVersion {
		fmt.Println("opsworker", buildinfo.Get())
		return nil
	}
	var cfg config.Config
	source := "embedded config/dev.yaml"
	// Decoded only: prepare validates, with everything else it checks.
	if *cfgPath == "" {
		cfg, err = config.Decode(configfiles.Dev, os.LookupEnv)
	} else {
		source = *cfgPath
		cfg, err = config.ReadFile(*cfgPath)
	}
	if err != nil {
		return err
	}
	p, err := prepare(cfg, *dev)
	if err != nil {
		return fmt.Errorf("config %s: %w", source, err)
	}
	if *checkOnly {
		fmt.Println("config ok:", source)
		return nil
	}
	specs := p.specs
	log, err := p.logConfig.Build()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	// From here on a fatal error is a log line in the configured format
	// (JSON in production), not bare text.
	defer func() {
		if err != nil {
			log.WithOptions(zap.AddStacktrace(zapcore.FatalLevel)).Error("worker failed", zap.Error(err))
			err = &loggedError{err}
		}
	}()
	log.Info("starting opsworker", zap.String("version", version), zap.String("config", source))

	rdb, connOpt, closeRedis, err := openRedis(ctx, cfg.Redis, log)
	if err != nil {
		return err
	}
	defer closeRedis()

	inspector := asynq.NewInspectorFromRedisClient(rdb)
	// Every replica exports every queue, its provider's or not: the
	// gauges are the cluster's.
	mx := metrics.New(inspector, append(slices.Sorted(maps.Keys(cfg.Worker.Queues)), slices.Sorted(maps.Keys(tasks.ProviderQueues(tasks.Providers(), nil)))...)...)
	mx.WatchAccounts(accountStates(cfg, rdb))
	// The breakers exist before the worker that sends their events.
	var breakerChanged func(flow.Change)
	execs, closeProviders, err := buildProviders(cfg, log, mx.ProviderCall, sharedLimiter(rdb, cfg.Redis.KeyPrefix, log, mx.ProviderHeld, &breakerChanged))
	if err != nil {
		return err
	}
	defer closeProviders()

	store := opstore.New(rdb, cfg.Redis.KeyPrefix, cfg.Operations.Retention)
	// The cluster's operations in flight, read from Redis at each scrape.
	mx.WatchOperations(store)
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	whCfg, sender, err := buildWebhooks(p, log)
	if err != nil {
		return err
	}
	runbooks, err := compileRunbooks(cfg)
	if err != nil {
		return err
	}
	var coord *runbook.Coordinator
	w, err := tasks.NewWorker(tasks.Config{
		Store:           store,
		Enqueuer:        client,
		Inspector:       inspector,
		Observer:        mx,
		Executors:       execs,
		Policies:        cfg.Polling,
		Queue:           cfg.Operations.Queue,
		TaskTimeout:     cfg.Operations.TaskTimeout,
		Webhooks:        whCfg,
		Sender:          sender,
		LockTTL:         cfg.Operations.LockTTL,
		RetryBackoffMax: cfg.Operations.RetryBackoffMax,
		LaunchMaxRetry:  cfg.Operations.LaunchMaxRetry,
		Batcher:         batcher(cfg, rdb),
		OnBusy:          cfg.Operations.OnBusy,
		BusyRetry:       cfg.Operations.BusyRetry,
		BusyWaitMax:     cfg.Operations.BusyWaitMax,
		CallbackBaseURL: cfg.Webhooks.Callbacks.PublicBaseURL,
		CallbackSecret:  []byte(cfg.Webhooks.Callbacks.Secret),
		Credentials:     credentials(cfg),
		MaxInFlight:     maxInFlight(cfg),
		AccountHeld:     accountHeld(cfg, rdb),
		Approvals:       approvalRules(cfg),
		// The coordinator needs the submitter, which needs the worker:
		// both are set before the server starts.
		OnFinished: func(ctx context.Context, op *opstore.Operation) error { return coord.OnFinished(ctx, op) },
		Extra: map[string]asynq.HandlerFunc{
			runbook.TypeAdvance: func(ctx context.Context, t *asynq.Task) error { return coord.ProcessAdvance(ctx, t) },
			runbook.TypeCommand: func(ctx context.Context, t *asynq.Task) error { return coord.ProcessCommand(ctx, t) },
		},
		Logger: log,
	})
	if err != nil {
		return err
	}
	breakerChanged = w.ProviderChanged
	sub := tasks.NewSubmitter(store, client, tasks.SubmitOptions{Timeout: cfg.Operations.TaskTimeout, Hold: w.HoldForApproval})
	coord = runbook.NewCoordinator(rdb, cfg.Redis.KeyPrefix, store, sub, client, cfg.Operations.Queue, runbooks, cfg.Operations.Retention, log.Named("runbook"))
	coord.Notify = func(ctx context.Context, event, id string, run *runbook.Run) error {
		return w.SendRunEvent(ctx, event, id, run, run.CallbackURL)
	}

	queues := serverQueues(cfg, execs)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              cfg.Worker.Concurrency,
		Queues:                   queues,
		StrictPriority:           cfg.Worker.StrictPriority,
		ShutdownTimeout:          cfg.Worker.ShutdownTimeout,
		TaskCheckInterval:        cfg.Worker.TaskCheckInterval,
		DelayedTaskCheckInterval: cfg.Worker.DelayedTaskCheckInterval,
		RetryDelayFunc:           w.RetryDelay,
		IsFailure:                w.IsFailure,
		Logger:                   log.Named("asynq").Sugar(),
		LogLevel:                 asynqLevel(cfg.Log.Level),
		ErrorHandler:             w.ErrorHandler(log),
	})
	if err := srv.Start(w.Handler()); err != nil {
		return fmt.Errorf("start asynq server: %w", err)
	}
	// Announce the accounts this worker serves before the API answers:
	// it refuses work for an account no running worker serves.
	// A worker that stops withdraws them at once.
	stopServing := flow.NewServed(rdb, cfg.Redis.KeyPrefix).Keep(ctx, workerName(), servedPairs(cfg, execs), 90*time.Second, func(err error) {
		log.Warn("announce the accounts this worker serves", zap.Error(err))
	})
	stopHTTP, err := startHTTP(cfg, httpDeps{worker: w, runbooks: coord, store: store, sub: sub, client: client, rdb: rdb, srv: srv, mx: mx, connOpt: connOpt}, log)
	if err != nil {
		srv.Shutdown()
		return err
	}
	// "worker ready" means every listener is up: scripts and probes wait
	// for this line before they talk to the HTTP API.
	// What this worker serves: the (kind, provider) pairs it has clients
	// for. Tasks of any other pair wait for a worker that serves them.
	serves := make([]string, 0, len(execs))
	for k := range execs {
		serves = append(serves, k.Kind+" on "+k.Provider)
	}
	sort.Strings(serves)
	log.Info("worker ready", zap.Strings("queues", slices.Sorted(maps.Keys(queues))), zap.Int("concurrency", cfg.Worker.Concurrency), zap.Strings("serves", serves))

	schedCtx, stopSched := context.WithCancel(ctx)
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		s := schedule.New(specs, sub, store, schedule.NewStore(rdb, cfg.Redis.KeyPrefix), log.Named("scheduler"), schedule.WithRuns(coord))
		if len(specs) > 0 {
			log.Info("scheduler running", zap.Int("schedules", len(specs)))
		}
		_ = s.Run(schedCtx)
	}()

	pruneDone := make(chan struct{})
	go func() {
		defer close(pruneDone)
		maintain(schedCtx, store, w, indexPruneEvery, log)
	}()

	<-ctx.Done()
	stopServing()
	stopSched()
	<-schedDone
	<-pruneDone
	stopHTTP()
	log.Info("shutting down: no new tasks; in-flight tasks get the shutdown timeout, the rest are re-queued",
		zap.Duration("shutdown_timeout", cfg.Worker.ShutdownTimeout))
	srv.Shutdown()
	log.Info("stopped")
	return nil
}

// indexPruneEvery is how often each worker removes the list index's entries
// of expired operation records (see opstore.Store.PruneIndex).
const indexPruneEvery = 10 * time.Minute

// maintain runs store.PruneIndex and w.ReapOrphans every interval until
// ctx ends. Every replica runs them; the work is idempotent and cheap when
// there is nothing to do.
func maintain(ctx context.Context, store *opstore.Store, w *tasks.Worker, every time.Duration, log *zap.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := store.PruneIndex(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("pruning the operation index failed; retried next round", zap.Error(err))
		case n > 0:
			log.Info("pruned the operation index", zap.Int("expired_entries", n))
		}
		n, err = w.ReapOrphans(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("looking for orphaned operations failed; retried next round", zap.Error(err))
		case n > 0:
			log.Warn("ended operations whose launch task was gone", zap.Int("operations", n))
		}
	}
}

// plan is a config that passed every check start-up makes before it
// touches the network, with what those checks produced.
type plan struct {
	logConfig zap.Config
	specs     []*schedule.Spec
	// webhooks has every configured secret parsed; Secrets is empty when
	// webhooks.secrets is.
	webhooks tasks.WebhookConfig
	// allowCIDRs and allowHosts open the SSRF guard.
	allowCIDRs []netip.Prefix
	allowHosts []string
}

// prepare runs every check the worker makes at start-up that needs no
// network, and returns what they produce for run to use. Start-up and
// --check-config both call it, so --check-config refuses exactly the
// configs start-up refuses, with the same message. Besides config.Validate
// (every key; loading ran it already), it checks log.level, every
// schedule (spec, kind, provider, params, callback_url), redis.url, the
// webhook secrets and SSRF prefixes, the provider clients of every
// account and a polling policy for every kind served.
//
// Deliberately not done by --check-config, because each needs the network
// or the machine the worker runs on:
//   - connecting to Redis (a wrong host or password shows at start);
//   - starting the embedded Redis or a provider simulator, and binding
//     http.listen (an address in use shows at start);
//   - calling a provider API (a wrong token shows on the first operation).
func prepare(cfg config.Config, dev bool) (*plan, error) {
	// Every problem at once: the config's own checks, then what start-up
	// would find (schedules, the Redis URL, webhooks, provider clients).
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !cfg.Redis.Embedded && !dev {
		for _, name := range simulatedProviders(cfg.Providers) {
			errs = append(errs, fmt.Errorf("providers.%s.simulate: a simulated provider on a real Redis (redis.url) is refused unless the worker runs with --dev: operations would succeed without reaching %s", name, name))
		}
	}
	if !cfg.Redis.Embedded && !dev && cfg.HTTP.DevToken {
		errs = append(errs, errors.New("http.dev_token: a printed token on a real Redis (redis.url) is refused unless the worker runs with --dev"))
	}
	p := &plan{}
	var err error
	if p.logConfig, err = loggerConfig(cfg.Log); err != nil {
		errs = append(errs, err)
	}
	if p.specs, err = schedule.Parse(cfg.Schedules); err != nil {
		errs = append(errs, err)
	}
	if !cfg.Redis.Embedded {
		if err := redisconn.Check(cfg.Redis.URL); err != nil {
			errs = append(errs, fmt.Errorf("redis.url: %w", err))
		}
	}
	if p.webhooks, p.allowCIDRs, err = webhookSettings(cfg.Webhooks); err != nil {
		errs = append(errs, err)
	}
	p.allowHosts = cfg.Webhooks.SSRF.AllowHosts
	// The clients are built as start-up builds them; a simulated
	// provider's URL is only known once its simulator listens, and is a
	// loopback http URL like this one.
	execs, err := buildExecutors(cfg, configuredBases(cfg.Providers, "http://127.0.0.1"), nil, localLimiter)
	if err != nil {
		errs = append(errs, err)
	}
	kinds := map[string]bool{}
	for k := range execs {
		kinds[k.Kind] = true
	}
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		if _, err := cfg.Policy(k); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, distinct(errs)
	}
	return p, nil
}

// loggerConfig is the zap configuration of log.
func loggerConfig(c config.Log) (zap.Config, error) {
	var zc zap.Config
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		// Colour codes only for a terminal: a file or a log collector
		// gets plain text.
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
		if isTerminal(os.Stderr) {
			zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
		zc.DisableStacktrace = true
	} else {
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.TimeKey = "ts"
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	}
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return zap.Config{}, fmt.Errorf("log.level: %w", err)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	return zc, nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// asynqLevel maps log.level to asynq's; asynq's debug lines ("All queues
// are empty" several times a second) are left out even at debug.
func asynqLevel(l string) asynq.LogLevel {
	switch l {
	case "warn":
		return asynq.WarnLevel
	case "error":
		return asynq.ErrorLevel
	}
	return asynq.InfoLevel
}

// openRedis connects to the configured Redis, or starts the embedded one.
func openRedis(ctx context.Context, c config.Redis, log *zap.Logger) (redis.UniversalClient, asynq.RedisConnOpt, func(), error) {
	if c.Embedded {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr(c.EmbeddedAddr); err != nil {
			return nil, nil, nil, fmt.Errorf("redis.embedded_addr %s: %w", c.EmbeddedAddr, err)
		}
		log.Warn("EMBEDDED REDIS: in-process miniredis, NOTHING IS PERSISTED; all queues and operations are lost when the worker stops. Development only; set redis.embedded: false and redis.url for real use.",
			zap.String("addr", mr.Addr()))
		// miniredis only expires keys when told: advance its clock with ours.
		tick := time.NewTicker(time.Second)
		done := make(chan struct{})
		go func() {
			last := time.Now()
			for {
				select {
				case <-done:
					return
				case now := <-tick.C:
					mr.FastForward(now.Sub(last))
					last = now
				}
			}
		}()
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		return rdb, asynq.RedisClientOpt{Addr: mr.Addr()}, func() { tick.Stop(); close(done); _ = rdb.Close(); mr.Close() }, nil
	}
	conn, err := redisconn.Parse(c.URL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("redis.url: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := conn.Client.Ping(pctx).Err(); err != nil {
		_ = conn.Client.Close()
		return nil, nil, nil, fmt.Errorf("redis %s: %w", conn.Desc, err)
	}
	log.Info("connected to redis", zap.String("redis", conn.Desc))
	return conn.Client, conn.Opt, func() { _ = conn.Client.Close() }, nil
}

// buildProviders starts the simulators asked for and returns the
// executors of every kind, with one client per configured account.
func buildProviders(cfg config.Config, log *zap.Logger, observe providers.Observer, limiter limiterFunc) (map[tasks.ExecutorKey]tasks.Executor, func(), error) {
	bases, closeAll, err := startSimulators(cfg.Providers, log)
	if err != nil {
		return nil, nil, err
	}
	execs, err := buildExecutors(cfg, bases, observe, limiter)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return execs, closeAll, nil
}

// providerBases are the API roots the clients call.
type providerBases struct{ ucdn, leaseweb, edgio, ionos string }

// configuredBases returns each provider's base_url, and simBase for the
// simulated ones.
func configuredBases(p config.Providers, simBase string) providerBases {
	pick := func(simulate bool, base string) string {
		if simulate {
			return simBase
		}
		return base
	}
	return providerBases{
		ucdn:     pick(p.UCDN.Simulate, p.UCDN.BaseURL),
		leaseweb: pick(p.Leaseweb.Simulate, p.Leaseweb.BaseURL),
		edgio:    pick(p.Edgio.Simulate, p.Edgio.BaseURL),
		ionos:    pick(p.IONOS.Simulate, p.IONOS.BaseURL),
	}
}

// simulator is one provider's in-process simulator, started when the
// provider is simulated.
type simulator struct {
	name string // providers.<name>
	// on reports whether the provider is simulated (and served).
	on func(config.Providers) bool
	// addr is where it listens.
	addr func(config.Providers) string
	// start makes its handler and what stops it (nil: nothing).
	start func(config.Providers) (http.Handler, func())
	// root is the path of the API under the listener ("/v4").
	root string
	// base is where the provider's base URL goes.
	base func(*providerBases) *string
}

// served lists the registered kinds of a provider, for the line that
// says they go to its simulator.
func served(provider string) string {
	var kinds []string
	for _, s := range tasks.Specs() {
		if s.Provider == provider {
			kinds = append(kinds, s.Kind)
		}
	}
	return strings.Join(kinds, ", ") + " on " + provider
}

// simulators is one row per provider.
var simulators = []simulator{
	{name: "ucdn", root: "/v4",
		on:   func(p config.Providers) bool { return p.UCDN.Simulate },
		addr: func(p config.Providers) string { return p.UCDN.Simulator.Addr },
		start: func(p config.Providers) (http.Handler, func()) {
			sim := ucdnsim.New(ucdnsim.Config{WaitingFor: p.UCDN.Simulator.WaitingFor, RunningFor: p.UCDN.Simulator.RunningFor})
			return sim, sim.ReleaseHangs
		},
		base: func(b *providerBases) *string { return &b.ucdn }},
	{name: "leaseweb",
		on:   func(p config.Providers) bool { return len(p.Leaseweb.Accounts) > 0 && p.Leaseweb.Simulate },
		addr: func(p config.Providers) string { return p.Leaseweb.Simulator.Addr },
		start: func(p config.Providers) (http.Handler, func()) {
			lw := p.Leaseweb.Simulator
			sim := leasewebsim.New(leasewebsim.Config{TaskDuration: lw.TaskDuration, CloudStep: lw.CloudStep, CDNDuration: lw.CloudStep})
			return sim, sim.Close
		},
		base: func(b *providerBases) *string { return &b.leaseweb }},
	{name: "edgio",
		on:   func(p config.Providers) bool { return len(p.Edgio.Accounts) > 0 && p.Edgio.Simulate },
		addr: func(config.Providers) string { return "127.0.0.1:0" },
		start: func(p config.Providers) (http.Handler, func()) {
			return edgiosim.New(edgiosim.Config{Duration: p.Edgio.SimulatorDuration}), nil
		},
		base: func(b *providerBases) *string { return &b.edgio }},
	{name: "ionos",
		on:   func(p config.Providers) bool { return len(p.IONOS.Accounts) > 0 && p.IONOS.Simulate },
		addr: func(config.Providers) string { return "127.0.0.1:0" },
		start: func(p config.Providers) (http.Handler, func()) {
			return ionossim.New(ionossim.Config{Duration: p.IONOS.SimulatorDuration}), nil
		},
		base: func(b *providerBases) *string { return &b.ionos }},
}

// printDevTour prints, once at start, where the HTTP server's parts are
// and the dev token to use them (http.dev_token). It goes to stderr as
// plain text, outside the log: it is meant for the person who ran
// `make run`, and the token is valid for this run only.
func printDevTour(w io.Writer, base, token string) {
	line := strings.Repeat("=", 72)
	fmt.Fprintf(w, `%s
DEVELOPMENT ONLY (http.dev_token): a write token for this run, printed
because this is a local demo. Never set http.dev_token in production.

  export OPSWORKER_TOKEN=%s

  Operations console   %s/console/   (sign in with the token)
  Queue UI             %s/ui/
  HTTP API             %s/v1/operations   (OpenAPI: %s/v1/openapi.json)
  Metrics              %s/metrics

  curl -sS -H "Authorization: Bearer $OPSWORKER_TOKEN" %s/v1/operations
  make demo   submits one operation of every kind
%s
`, line, token, base, base, base, base, base, base, line)
}

// distinct joins errs one problem a line, each key once: the config's
// own checks and start-up's may both find a bad value (the first says it
// best).
func distinct(errs []error) error {
	var lines []string
	seen := map[string]bool{}
	for _, err := range errs {
		for _, line := range strings.Split(err.Error(), "\n") {
			key, _, _ := strings.Cut(line, ": ")
			if line == "" || seen[key] {
				continue
			}
			seen[key] = true
			lines = append(lines, line)
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

// simulatedProviders names the providers served by a simulator.
func simulatedProviders(p config.Providers) []string {
	var out []string
	for _, s := range simulators {
		if s.on(p) {
			out = append(out, s.name)
		}
	}
	return out
}

// startSimulators starts the simulator of every simulated provider that
// is served and returns the API roots, the simulators' for those.
func startSimulators(p config.Providers, log *zap.Logger) (providerBases, func(), error) {
	bases := configuredBases(p, "")
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	for _, sim := range simulators {
		if !sim.on(p) {
			continue
		}
		h, stopSim := sim.start(p)
		url, stop, err := serveSim(h, sim.addr(p))
		if err != nil {
			if stopSim != nil {
				stopSim()
			}
			closeAll()
			return bases, nil, fmt.Errorf("providers.%s.simulator: %w", sim.name, err)
		}
		closers = append(closers, func() {
			if stopSim != nil {
				stopSim()
			}
			stop()
		})
		*sim.base(&bases) = url + sim.root
		log.Warn(strings.ToUpper(sim.name)+" SIMULATOR: "+served(sim.name)+" go to the in-process simulator, not the real API", zap.String("url", url+sim.root))
	}
	return bases, closeAll, nil
}

// buildExecutors creates one client per configured account, calling the
// API at bases, and returns the executors of every kind. It starts
// nothing: prepare runs it to check the clients can be built.
func buildExecutors(cfg config.Config, bases providerBases, observe providers.Observer, limiter limiterFunc) (map[tasks.ExecutorKey]tasks.Executor, error) {
	var c tasks.Clients
	var err error
	u := cfg.Providers.UCDN
	if c.UCDN, err = buildClients("ucdn", u.Accounts, u.Simulate, u.Timeout, observe, limiter, ucdn.WithToken,
		func(o ...providers.Option) (*ucdn.Client, error) { return ucdn.New(bases.ucdn, o...) }); err != nil {
		return nil, err
	}
	if lw := cfg.Providers.Leaseweb; len(lw.Accounts) > 0 {
		if c.Leaseweb, err = buildClients("leaseweb", lw.Accounts, lw.Simulate, lw.Timeout, observe, limiter, leaseweb.WithAPIKey,
			func(o ...providers.Option) (*leaseweb.Client, error) { return leaseweb.New(bases.leaseweb, o...) }); err != nil {
			return nil, err
		}
	}
	if eg := cfg.Providers.Edgio; len(eg.Accounts) > 0 {
		clients, err := buildClients("edgio", eg.Accounts, eg.Simulate, eg.Timeout, observe, limiter, edgio.WithToken,
			func(o ...providers.Option) (*edgio.Client, error) { return edgio.New(bases.edgio, o...) })
		if err != nil {
			return nil, err
		}
		c.Edgio = map[string]tasks.EdgioAccount{}
		for name, cl := range clients {
			c.Edgio[name] = tasks.EdgioAccount{Client: cl, AccountNumber: eg.Accounts[name].AccountNumber}
		}
	}
	if io := cfg.Providers.IONOS; len(io.Accounts) > 0 {
		if c.IONOS, err = buildClients("ionos", io.Accounts, io.Simulate, io.Timeout, observe, limiter, ionos.WithToken,
			func(o ...providers.Option) (*ionos.Client, error) { return ionos.New(bases.ionos, o...) }); err != nil {
			return nil, err
		}
	}
	// Every registered kind whose provider has clients.
	return tasks.Executors(c), nil
}

// limiterFunc makes an account's flow control: its rate limiter (when it
// has a rate_limit) and its circuit breaker.
type limiterFunc func(provider, account string, acc config.Account) []providers.Option

// localLimiter limits this process alone (checking a config needs no
// Redis).
func localLimiter(_, _ string, acc config.Account) []providers.Option {
	if acc.RateLimit <= 0 {
		return nil
	}
	return []providers.Option{providers.WithRateLimiter(rate.NewLimiter(rate.Limit(acc.RateLimit), max(acc.Burst, 1)))}
}

// sharedLimiter limits and guards every replica together, through Redis.
// A breaker's state change is logged once, by the replica that made it,
// and handed to onChange (the worker's provider events) once it is set.
func sharedLimiter(rdb redis.UniversalClient, prefix string, log *zap.Logger, held providers.HoldObserver, onChange *func(flow.Change)) limiterFunc {
	return func(provider, account string, acc config.Account) []providers.Option {
		opts := []providers.Option{providers.WithHoldObserver(held)}
		if acc.RateLimit > 0 {
			opts = append(opts, providers.WithRateLimiter(flow.NewLimiter(rdb, prefix, provider, account, acc.RateLimit, acc.Burst)))
		}
		// Always there: a disabled breaker never opens by itself, but an
		// operator's pause holds the account through it.
		br := flow.NewBreaker(rdb, prefix, provider, account, flow.BreakerConfig{Failures: acc.Breaker.Failures, Window: acc.Breaker.Window,
			CoolDown: acc.Breaker.CoolDown, Disabled: acc.Breaker.Disabled})
		br.OnChange = func(ch flow.Change) {
			l := log.With(zap.String("provider", ch.Provider), zap.String("account", ch.Account), zap.String("from", ch.From), zap.String("to", ch.To))
			if ch.To == flow.Open {
				l.Warn("provider account circuit open: its calls wait until a probe succeeds")
			} else {
				l.Info("provider account circuit " + ch.To)
			}
			if *onChange != nil {
				(*onChange)(ch)
			}
		}
		return append(opts, providers.WithBreaker(br))
	}
}

// buildClients makes one client per configured account: its credential
// (a simulated provider needs none), the call timeout, the User-Agent and
// the account's rate limit.
func buildClients[C any](provider string, accounts map[string]config.Account, simulate bool, timeout time.Duration, observe providers.Observer,
	limiter limiterFunc, auth func(string) providers.Option, newClient func(...providers.Option) (C, error)) (map[string]C, error) {
	out := make(map[string]C, len(accounts))
	for _, name := range slices.Sorted(maps.Keys(accounts)) {
		acc := accounts[name]
		token := acc.Token
		if simulate && token == "" {
			token = "simulated"
		}
		opts := []providers.Option{auth(token), providers.WithHTTPClient(&http.Client{Timeout: timeout}), providers.WithUserAgent("opsworker/" + version), providers.WithObserver(observe),
			providers.WithReadRetries(2)}
		opts = append(opts, limiter(provider, name, acc)...)
		c, err := newClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("providers.%s.accounts.%s: %w", provider, name, err)
		}
		out[name] = c
	}
	return out, nil
}

// serveSim serves a simulator on a loopback listener; it returns its base
// URL and a stop function.
func serveSim(h http.Handler, addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = hs.Close() }, nil
}

// webhookSettings parses the webhooks section into the worker's delivery
// settings (every signing secret parsed; Secrets is empty when
// webhooks.secrets is) and the SSRF guard's allowed prefixes.
func webhookSettings(wc config.Webhooks) (tasks.WebhookConfig, []netip.Prefix, error) {
	var errs []error
	parse := func(key string, list []string) []webhookverify.Secret {
		var out []webhookverify.Secret
		for i, v := range list {
			s, err := webhookverify.ParseSecret(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", key, i, err))
				continue
			}
			out = append(out, s)
		}
		return out
	}
	out := tasks.WebhookConfig{
		Queue:          wc.Queue,
		Timeout:        wc.Timeout,
		Schedule:       wc.RetrySchedule,
		Jitter:         wc.Jitter,
		Retention:      wc.Retention,
		Secrets:        parse("webhooks.secrets", wc.Secrets),
		AccountSecrets: map[string][]webhookverify.Secret{},
	}
	for _, a := range slices.Sorted(maps.Keys(wc.AccountSecrets)) {
		out.AccountSecrets[a] = parse("webhooks.account_secrets."+a, wc.AccountSecrets[a])
	}
	for i, sub := range wc.Subscriptions {
		out.Subscriptions = append(out.Subscriptions, tasks.Subscription{
			Name: sub.Name, URL: sub.URL, Secrets: parse(fmt.Sprintf("webhooks.subscriptions[%d].secrets", i), sub.Secrets),
			Events: sub.Events, Kinds: sub.Kinds, Providers: sub.Providers,
		})
	}
	var cidrs []netip.Prefix
	for i, c := range wc.SSRF.AllowCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("webhooks.ssrf.allow_cidrs[%d]: not a CIDR prefix such as 10.20.0.0/16", i))
			continue
		}
		cidrs = append(cidrs, p)
	}
	return out, cidrs, errors.Join(errs...)
}

// buildWebhooks returns the worker's delivery settings and sender for a
// prepared config. Without configured secrets it makes a random one for
// this process and says so.
func buildWebhooks(p *plan, log *zap.Logger) (tasks.WebhookConfig, *webhooks.Sender, error) {
	out := p.webhooks
	if len(out.Secrets) == 0 {
		out.Secrets = []webhookverify.Secret{webhookverify.NewSecret()}
		log.Warn("webhooks.secrets is empty: deliveries are signed with a random secret made at start-up, which receivers cannot know. Set webhooks.secrets (whsec_..., from the environment) for real use.")
	}
	if len(p.allowCIDRs) > 0 || len(p.allowHosts) > 0 {
		log.Info("webhook SSRF guard opened for", zap.Stringers("allow_cidrs", p.allowCIDRs), zap.Strings("allow_hosts", p.allowHosts))
	}
	sender := webhooks.NewSender(webhooks.SenderConfig{
		Timeout:    out.Timeout,
		UserAgent:  "opsworker/" + version,
		AllowCIDRs: p.allowCIDRs,
		AllowHosts: p.allowHosts,
	})
	return out, sender, nil
}

type httpDeps struct {
	worker   *tasks.Worker
	runbooks *runbook.Coordinator
	store    *opstore.Store
	sub      *tasks.Submitter
	client   *asynq.Client
	rdb      redis.UniversalClient
	srv      *asynq.Server
	mx       *metrics.Metrics
	connOpt  asynq.RedisConnOpt
}

// startHTTP serves the API, /metrics, /healthz, /readyz, the queue UI and
// provider callbacks on http.listen, if set.
func startHTTP(cfg config.Config, d httpDeps, log *zap.Logger) (func(), error) {
	if cfg.HTTP.Listen == "" {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.WriteHeader(http.StatusOK)
		_, _ = rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := d.rdb.Ping(ctx).Err(); err != nil {
			http.Error(rw, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		if err := d.srv.Ping(); err != nil {
			http.Error(rw, "asynq server not running", http.StatusServiceUnavailable)
			return
		}
		_, _ = rw.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.mx.Registry, promhttp.HandlerOpts{}))
	var tokens []api.Token
	for _, t := range cfg.HTTP.Tokens {
		tokens = append(tokens, api.Token{Name: t.Name, Secret: t.Token, Scope: t.Scope})
	}
	var devToken string
	if cfg.HTTP.DevToken {
		devToken = "dev-" + strings.ReplaceAll(uuid.NewString(), "-", "")
		tokens = append(tokens, api.Token{Name: "dev", Secret: devToken, Scope: "write"})
	}
	a := api.New(api.Config{Store: d.store, Submitter: d.sub, Enqueuer: d.client, Queue: cfg.Operations.Queue, Tokens: tokens, Logger: log.Named("api"),
		Pauses: flow.NewPauses(d.rdb, cfg.Redis.KeyPrefix), Served: flow.NewServed(d.rdb, cfg.Redis.KeyPrefix),
		DryRunner: d.worker, WebhookQueue: cfg.Webhooks.Queue, Runbooks: d.runbooks, Accounts: consoleAccounts(cfg, d.rdb, d.store)})
	a.Register(mux)
	if c := cfg.HTTP.Console; c == nil || *c {
		// The operations console: the same sign-in as the queue UI.
		h := a.ConsoleHandler()
		a.RegisterUI(mux, "/console", h, h)
	}
	if ui := cfg.HTTP.UI; ui == nil || *ui {
		// Browsers sign in at /ui/login (a session cookie); scripts may
		// send a token. Writes must come from the UI's own origin.
		// Payloads are shown through tasks.FormatPayload: nothing a raw
		// task from another system carries (params, a callback URL) is
		// shown in clear.
		pf := asynqmon.PayloadFormatterFunc(tasks.FormatPayload)
		ro := asynqmon.New(asynqmon.Options{RootPath: "/ui", RedisConnOpt: d.connOpt, ReadOnly: true, PayloadFormatter: pf})
		rw := asynqmon.New(asynqmon.Options{RootPath: "/ui", RedisConnOpt: d.connOpt, PayloadFormatter: pf})
		a.RegisterUI(mux, "/ui", ro, rw)
	}
	if cfg.Webhooks.Callbacks.PublicBaseURL != "" {
		mux.Handle(webhooks.CallbackPath, webhooks.NewCallbackHandler([]byte(cfg.Webhooks.Callbacks.Secret), d.worker, log.Named("callbacks")))
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", zap.Error(err))
		}
	}()
	log.Info("http server listening", zap.String("addr", ln.Addr().String()), zap.Int("api_tokens", len(tokens)), zap.Bool("callbacks", cfg.Webhooks.Callbacks.PublicBaseURL != ""))
	if devToken != "" {
		printDevTour(os.Stderr, "http://"+ln.Addr().String(), devToken)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}

// credentials returns the secrets of each provider account, which the
// worker redacts from any provider message it stores, logs or sends.
// accounts are the configured accounts by provider.
func accounts(cfg config.Config) map[string]map[string]config.Account {
	return map[string]map[string]config.Account{
		ucdn.Provider:     cfg.Providers.UCDN.Accounts,
		leaseweb.Provider: cfg.Providers.Leaseweb.Accounts,
		edgio.Provider:    cfg.Providers.Edgio.Accounts,
		ionos.Provider:    cfg.Providers.IONOS.Accounts,
	}
}

// accountStates reads every configured account's breaker, pause and
// slots in use from Redis (for the metrics).
func accountStates(cfg config.Config, rdb redis.UniversalClient) func(ctx context.Context) []metrics.AccountState {
	pauses := flow.NewPauses(rdb, cfg.Redis.KeyPrefix)
	store := opstore.New(rdb, cfg.Redis.KeyPrefix, cfg.Operations.Retention)
	return func(ctx context.Context) []metrics.AccountState {
		var out []metrics.AccountState
		byProvider := accounts(cfg)
		for _, provider := range slices.Sorted(maps.Keys(byProvider)) {
			for _, name := range slices.Sorted(maps.Keys(byProvider[provider])) {
				st, err := flow.NewBreaker(rdb, cfg.Redis.KeyPrefix, provider, name, flow.BreakerConfig{}).State(ctx)
				if err != nil {
					continue
				}
				_, paused, _ := pauses.PausedBy(ctx, provider, name)
				a := metrics.AccountState{Provider: provider, Account: name, Breaker: st, Paused: paused, MaxInFlight: byProvider[provider][name].MaxInFlight}
				if a.MaxInFlight > 0 {
					a.InFlight, _ = store.SlotsInUse(ctx, tasks.AccountCapResource(provider, name))
				}
				out = append(out, a)
			}
		}
		return out
	}
}

// workerName names this process in the register of served accounts:
// host, process id and a random part (a restarted container may reuse
// both).
func workerName() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = crand.Read(b[:])
	return fmt.Sprintf("%s:%d:%x", host, os.Getpid(), b)
}

// serverQueues are the queues this worker listens on: worker.queues and
// the queue of each provider it has executors for.
func serverQueues(cfg config.Config, execs map[tasks.ExecutorKey]tasks.Executor) map[string]int {
	var served []string
	for k := range execs {
		if !slices.Contains(served, k.Provider) {
			served = append(served, k.Provider)
		}
	}
	queues := tasks.ProviderQueues(served, cfg.Worker.ProviderWeights)
	maps.Copy(queues, cfg.Worker.Queues)
	return queues
}

// consoleAccounts lists every configured provider account with its
// flow control as Redis holds it, for the console's providers page.
func consoleAccounts(cfg config.Config, rdb redis.UniversalClient, store *opstore.Store) func(ctx context.Context) []api.AccountInfo {
	pauses := flow.NewPauses(rdb, cfg.Redis.KeyPrefix)
	served := flow.NewServed(rdb, cfg.Redis.KeyPrefix)
	return func(ctx context.Context) []api.AccountInfo {
		var out []api.AccountInfo
		byProvider := accounts(cfg)
		for _, provider := range slices.Sorted(maps.Keys(byProvider)) {
			for _, name := range slices.Sorted(maps.Keys(byProvider[provider])) {
				acc := byProvider[provider][name]
				a := api.AccountInfo{Provider: provider, Account: name, Breaker: flow.Closed, RateLimit: acc.RateLimit, Burst: max(acc.Burst, 1), MaxInFlight: acc.MaxInFlight}
				if st, err := flow.NewBreaker(rdb, cfg.Redis.KeyPrefix, provider, name, flow.BreakerConfig{}).State(ctx); err == nil {
					a.Breaker = st
				}
				a.PausedBy, a.Paused, _ = pauses.PausedBy(ctx, provider, name)
				if a.MaxInFlight > 0 {
					a.InFlight, _ = store.SlotsInUse(ctx, tasks.AccountCapResource(provider, name))
				}
				a.Served, _, _ = served.Serves(ctx, provider, name)
				out = append(out, a)
			}
		}
		return out
	}
}

// compileRunbooks compiles the config's runbooks (config validation
// checked them already).
func compileRunbooks(cfg config.Config) ([]*runbook.Runbook, error) {
	var out []*runbook.Runbook
	for _, d := range cfg.Runbooks {
		rb, err := runbook.Compile(d)
		if err != nil {
			return nil, err
		}
		out = append(out, rb)
	}
	return out, nil
}

// approvalRules are the config's approvals as the worker applies them.
func approvalRules(cfg config.Config) []tasks.ApprovalRule {
	out := make([]tasks.ApprovalRule, 0, len(cfg.Approvals))
	for _, a := range cfg.Approvals {
		out = append(out, tasks.ApprovalRule{Kind: a.Kind, Providers: a.Providers, Accounts: a.Accounts, Deadline: a.Deadline})
	}
	return out
}

// accountHeld says why a provider account's calls are held back now: an
// operator's pause or an open breaker ("" neither).
func accountHeld(cfg config.Config, rdb redis.UniversalClient) func(ctx context.Context, provider, account string) string {
	pauses := flow.NewPauses(rdb, cfg.Redis.KeyPrefix)
	return func(ctx context.Context, provider, account string) string {
		if by, paused, _ := pauses.PausedBy(ctx, provider, account); paused {
			return "paused by an operator (" + by + ")"
		}
		st, _ := flow.NewBreaker(rdb, cfg.Redis.KeyPrefix, provider, account, flow.BreakerConfig{}).State(ctx)
		if st != "" && st != flow.Closed {
			return "circuit breaker " + st + ": the provider failed repeatedly; calls wait until a probe succeeds"
		}
		return ""
	}
}

// servedPairs are the (provider, account) pairs this worker serves: the
// accounts of the providers it has executors for.
func servedPairs(cfg config.Config, execs map[tasks.ExecutorKey]tasks.Executor) [][2]string {
	providers := map[string]bool{}
	for k := range execs {
		providers[k.Provider] = true
	}
	var out [][2]string
	byProvider := accounts(cfg)
	for _, p := range slices.Sorted(maps.Keys(providers)) {
		for _, a := range slices.Sorted(maps.Keys(byProvider[p])) {
			out = append(out, [2]string{p, a})
		}
	}
	return out
}

// maxInFlight is each account's max_in_flight.
func maxInFlight(cfg config.Config) func(provider, account string) int {
	byProvider := accounts(cfg)
	return func(provider, account string) int { return byProvider[provider][account].MaxInFlight }
}

func credentials(cfg config.Config) func(provider, account string) []string {
	byProvider := accounts(cfg)
	return func(provider, account string) []string {
		if a, ok := byProvider[provider][account]; ok && a.Token != "" {
			return []string{a.Token}
		}
		return nil
	}
}

// batcher returns the batch-polling coordinator unless
// operations.batch_polling is false.
func batcher(cfg config.Config, rdb redis.UniversalClient) *poller.Batcher {
	if b := cfg.Operations.BatchPolling; b != nil && !*b {
		return nil
	}
	return poller.NewBatcher(rdb, cfg.Redis.KeyPrefix)
}
