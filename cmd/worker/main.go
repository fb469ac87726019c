// Command worker runs the opsworker daemon: an asynq server that launches
// infrastructure operations at provider APIs, polls them to completion and
// sends completion webhooks.
//
// With no --config it runs config/dev.yaml (embedded in the binary): an
// in-process Redis and the provider simulators, so it needs nothing else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"
	_ "time/tzdata" // schedules name IANA zones; do not depend on the host's zoneinfo

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
	"github.com/opsworker/opsworker/internal/schedule"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/webhookverify"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "path to the YAML config (default: the embedded config/dev.yaml)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	checkOnly := fs.Bool("check-config", false, "validate the config and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println("opsworker", version)
		return nil
	}
	var cfg config.Config
	var err error
	source := "embedded config/dev.yaml"
	if *cfgPath == "" {
		cfg, err = config.Parse(configfiles.Dev, os.LookupEnv)
	} else {
		source = *cfgPath
		cfg, err = config.Load(*cfgPath)
	}
	if err != nil {
		return err
	}
	if *checkOnly {
		fmt.Println("config ok:", source)
		return nil
	}
	specs, err := schedule.Parse(cfg.Schedules)
	if err != nil {
		return fmt.Errorf("config %s: %w", source, err)
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log.Info("starting opsworker", zap.String("version", version), zap.String("config", source))

	rdb, connOpt, closeRedis, err := openRedis(ctx, cfg.Redis, log)
	if err != nil {
		return err
	}
	defer closeRedis()

	inspector := asynq.NewInspectorFromRedisClient(rdb)
	mx := metrics.New(inspector)
	execs, closeProviders, err := buildProviders(ctx, cfg, log, mx.ProviderCall)
	if err != nil {
		return err
	}
	defer closeProviders()

	store := opstore.New(rdb, cfg.Redis.KeyPrefix, cfg.Operations.Retention)
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	whCfg, sender, err := buildWebhooks(cfg, log)
	if err != nil {
		return err
	}
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
		Logger:          log,
	})
	if err != nil {
		return err
	}

	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              cfg.Worker.Concurrency,
		Queues:                   cfg.Worker.Queues,
		StrictPriority:           cfg.Worker.StrictPriority,
		ShutdownTimeout:          cfg.Worker.ShutdownTimeout,
		TaskCheckInterval:        cfg.Worker.TaskCheckInterval,
		DelayedTaskCheckInterval: cfg.Worker.DelayedTaskCheckInterval,
		RetryDelayFunc:           w.RetryDelay,
		IsFailure:                w.IsFailure,
		Logger:                   log.Named("asynq").Sugar(),
		LogLevel:                 asynqLevel(cfg.Log.Level),
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			if !w.IsFailure(err) {
				log.Debug("task waits", zap.String("task_type", t.Type()), zap.String("task_id", id), zap.Error(err))
				return
			}
			n, _ := asynq.GetRetryCount(ctx)
			max, _ := asynq.GetMaxRetry(ctx)
			level := log.Warn
			if errors.Is(err, asynq.SkipRetry) || n >= max {
				level = log.Error
			}
			level("task failed", zap.String("task_type", t.Type()), zap.String("task_id", id),
				zap.Int("retried", n), zap.Int("max_retry", max), zap.Bool("final", errors.Is(err, asynq.SkipRetry) || n >= max), zap.Error(err))
		}),
	})
	if err := srv.Start(w.Handler()); err != nil {
		return fmt.Errorf("start asynq server: %w", err)
	}
	sub := tasks.NewSubmitter(store, client, tasks.SubmitOptions{Queue: cfg.Operations.Queue, Timeout: cfg.Operations.TaskTimeout})
	stopHTTP, err := startHTTP(cfg, httpDeps{worker: w, store: store, sub: sub, client: client, rdb: rdb, srv: srv, mx: mx, connOpt: connOpt}, log)
	if err != nil {
		srv.Shutdown()
		return err
	}
	// "worker ready" means every listener is up: scripts and probes wait
	// for this line before they talk to the HTTP API.
	queues := make([]string, 0, len(cfg.Worker.Queues))
	for q := range cfg.Worker.Queues {
		queues = append(queues, q)
	}
	sort.Strings(queues)
	log.Info("worker ready", zap.Strings("queues", queues), zap.Int("concurrency", cfg.Worker.Concurrency), zap.Strings("kinds", tasks.Kinds()))

	schedCtx, stopSched := context.WithCancel(ctx)
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		s := schedule.New(specs, sub, store, schedule.NewStore(rdb, cfg.Redis.KeyPrefix), log.Named("scheduler"))
		if len(specs) > 0 {
			log.Info("scheduler running", zap.Int("schedules", len(specs)))
		}
		_ = s.Run(schedCtx)
	}()

	pruneDone := make(chan struct{})
	go func() {
		defer close(pruneDone)
		pruneIndex(schedCtx, store, indexPruneEvery, log)
	}()

	<-ctx.Done()
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

// pruneIndex runs store.PruneIndex every interval until ctx ends. Every
// replica runs it; the work is idempotent and cheap when there is nothing
// to remove.
func pruneIndex(ctx context.Context, store *opstore.Store, every time.Duration, log *zap.Logger) {
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
	}
}

func newLogger(c config.Log) (*zap.Logger, error) {
	var zc zap.Config
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		zc.DisableStacktrace = true
	} else {
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.TimeKey = "ts"
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	}
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	return zc.Build()
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

// buildProviders creates one client per configured account (and the
// simulators when asked) and returns the executors of every kind.
func buildProviders(ctx context.Context, cfg config.Config, log *zap.Logger, observe providers.Observer) (map[tasks.ExecutorKey]tasks.Executor, func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	u := cfg.Providers.UCDN
	base := u.BaseURL
	if u.Simulate {
		sctx, cancel := context.WithCancel(ctx)
		sim := ucdnsim.New(ucdnsim.Config{WaitingFor: u.Simulator.WaitingFor, RunningFor: u.Simulator.RunningFor})
		url, errc, err := sim.ListenAndServe(sctx, u.Simulator.Addr)
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("providers.ucdn.simulator.addr: %w", err)
		}
		closers = append(closers, func() { cancel(); <-errc })
		base = url
		log.Warn("UCDN SIMULATOR: cdn:purge on ucdn goes to the in-process simulator, not the real API", zap.String("url", url))
	}
	clients, err := buildClients("ucdn", u.Accounts, u.Simulate, u.Timeout, observe, ucdn.WithToken,
		func(o ...providers.Option) (*ucdn.Client, error) { return ucdn.New(base, o...) })
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	execs := map[tasks.ExecutorKey]tasks.Executor{
		{Kind: tasks.TypeCDNPurge, Provider: ucdn.Provider}: tasks.NewUCDNPurge(clients),
	}

	lw := cfg.Providers.Leaseweb
	if len(lw.Accounts) > 0 {
		lwBase := lw.BaseURL
		if lw.Simulate {
			sim := leasewebsim.New(leasewebsim.Config{TaskDuration: lw.Simulator.TaskDuration, CloudStep: lw.Simulator.CloudStep, CDNDuration: lw.Simulator.CloudStep})
			url, stop, err := serveSim(sim, lw.Simulator.Addr)
			if err != nil {
				sim.Close()
				closeAll()
				return nil, nil, fmt.Errorf("providers.leaseweb.simulator.addr: %w", err)
			}
			closers = append(closers, func() { sim.Close(); stop() })
			lwBase = url
			log.Warn("LEASEWEB SIMULATOR: server:install and server:rescue go to the in-process simulator, not the real API", zap.String("url", lwBase))
		}
		lwClients, err := buildClients("leaseweb", lw.Accounts, lw.Simulate, lw.Timeout, observe, leaseweb.WithAPIKey,
			func(o ...providers.Option) (*leaseweb.Client, error) { return leaseweb.New(lwBase, o...) })
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		execs[tasks.ExecutorKey{Kind: tasks.TypeServerInstall, Provider: leaseweb.Provider}] = tasks.NewLeasewebServerJob(tasks.TypeServerInstall, lwClients)
		execs[tasks.ExecutorKey{Kind: tasks.TypeServerRescue, Provider: leaseweb.Provider}] = tasks.NewLeasewebServerJob(tasks.TypeServerRescue, lwClients)
		execs[tasks.ExecutorKey{Kind: tasks.TypeInstanceSnapshot, Provider: leaseweb.Provider}] = tasks.NewLeasewebSnapshot(false, lwClients)
		execs[tasks.ExecutorKey{Kind: tasks.TypeVPSSnapshot, Provider: leaseweb.Provider}] = tasks.NewLeasewebSnapshot(true, lwClients)
		execs[tasks.ExecutorKey{Kind: tasks.TypeASGScale, Provider: leaseweb.Provider}] = tasks.NewLeasewebASGScale(lwClients)
		execs[tasks.ExecutorKey{Kind: tasks.TypeInstanceResize, Provider: leaseweb.Provider}] = tasks.NewLeasewebResize(lwClients)
		execs[tasks.ExecutorKey{Kind: tasks.TypeCDNInvalidate, Provider: leaseweb.Provider}] = tasks.NewLeasewebInvalidate(lwClients)
	}

	if eg := cfg.Providers.Edgio; len(eg.Accounts) > 0 {
		base := eg.BaseURL
		if eg.Simulate {
			url, stop, err := serveSim(edgiosim.New(edgiosim.Config{Duration: eg.SimulatorDuration}), "127.0.0.1:0")
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			closers = append(closers, stop)
			base = url
			log.Warn("EDGIO SIMULATOR: cdn:purge on edgio goes to the in-process simulator", zap.String("url", url))
		}
		egClients, err := buildClients("edgio", eg.Accounts, eg.Simulate, eg.Timeout, observe, edgio.WithToken,
			func(o ...providers.Option) (*edgio.Client, error) { return edgio.New(base, o...) })
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		accounts := map[string]tasks.EdgioAccount{}
		for name, c := range egClients {
			accounts[name] = tasks.EdgioAccount{Client: c, AccountNumber: eg.Accounts[name].AccountNumber}
		}
		execs[tasks.ExecutorKey{Kind: tasks.TypeCDNPurge, Provider: edgio.Provider}] = tasks.NewEdgioPurge(accounts)
	}

	if io := cfg.Providers.IONOS; len(io.Accounts) > 0 {
		base := io.BaseURL
		if io.Simulate {
			url, stop, err := serveSim(ionossim.New(ionossim.Config{Duration: io.SimulatorDuration}), "127.0.0.1:0")
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			closers = append(closers, stop)
			base = url
			log.Warn("IONOS SIMULATOR: cdn:distribution_ensure goes to the in-process simulator", zap.String("url", url))
		}
		clients, err := buildClients("ionos", io.Accounts, io.Simulate, io.Timeout, observe, ionos.WithToken,
			func(o ...providers.Option) (*ionos.Client, error) { return ionos.New(base, o...) })
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		execs[tasks.ExecutorKey{Kind: tasks.TypeCDNDistributionEnsure, Provider: ionos.Provider}] = tasks.NewIONOSDistribution(clients)
	}
	return execs, closeAll, nil
}

// buildClients makes one client per configured account: its credential
// (a simulated provider needs none), the call timeout, the User-Agent and
// the account's rate limit.
func buildClients[C any](provider string, accounts map[string]config.Account, simulate bool, timeout time.Duration, observe providers.Observer,
	auth func(string) providers.Option, newClient func(...providers.Option) (C, error)) (map[string]C, error) {
	out := make(map[string]C, len(accounts))
	for name, acc := range accounts {
		token := acc.Token
		if simulate && token == "" {
			token = "simulated"
		}
		opts := []providers.Option{auth(token), providers.WithHTTPClient(&http.Client{Timeout: timeout}), providers.WithUserAgent("opsworker/" + version), providers.WithObserver(observe),
			providers.WithReadRetries(2)}
		if acc.RateLimit > 0 {
			opts = append(opts, providers.WithRateLimiter(rate.NewLimiter(rate.Limit(acc.RateLimit), max(acc.Burst, 1))))
		}
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

// buildWebhooks turns the webhooks config into the worker's delivery
// settings and sender. Without configured secrets it makes a random one
// for this process and says so.
func buildWebhooks(cfg config.Config, log *zap.Logger) (tasks.WebhookConfig, *webhooks.Sender, error) {
	wc := cfg.Webhooks
	parse := func(list []string) []webhookverify.Secret {
		var out []webhookverify.Secret
		for _, v := range list {
			s, _ := webhookverify.ParseSecret(v) // validated with the config
			out = append(out, s)
		}
		return out
	}
	secrets := parse(wc.Secrets)
	if len(secrets) == 0 {
		secrets = []webhookverify.Secret{webhookverify.NewSecret()}
		log.Warn("webhooks.secrets is empty: deliveries are signed with a random secret made at start-up, which receivers cannot know. Set webhooks.secrets (whsec_..., from the environment) for real use.")
	}
	out := tasks.WebhookConfig{
		Queue:          wc.Queue,
		Timeout:        wc.Timeout,
		Schedule:       wc.RetrySchedule,
		Jitter:         wc.Jitter,
		Retention:      wc.Retention,
		Secrets:        secrets,
		AccountSecrets: map[string][]webhookverify.Secret{},
	}
	for a, list := range wc.AccountSecrets {
		out.AccountSecrets[a] = parse(list)
	}
	for _, sub := range wc.Subscriptions {
		out.Subscriptions = append(out.Subscriptions, tasks.Subscription{
			Name: sub.Name, URL: sub.URL, Secrets: parse(sub.Secrets),
			Events: sub.Events, Kinds: sub.Kinds, Providers: sub.Providers,
		})
	}
	var cidrs []netip.Prefix
	for _, c := range wc.SSRF.AllowCIDRs {
		p, _ := netip.ParsePrefix(c) // validated with the config
		cidrs = append(cidrs, p)
	}
	if len(cidrs) > 0 || len(wc.SSRF.AllowHosts) > 0 {
		log.Info("webhook SSRF guard opened for", zap.Strings("allow_cidrs", wc.SSRF.AllowCIDRs), zap.Strings("allow_hosts", wc.SSRF.AllowHosts))
	}
	sender := webhooks.NewSender(webhooks.SenderConfig{
		Timeout:    wc.Timeout,
		UserAgent:  "opsworker/" + version,
		AllowCIDRs: cidrs,
		AllowHosts: wc.SSRF.AllowHosts,
	})
	return out, sender, nil
}

type httpDeps struct {
	worker  *tasks.Worker
	store   *opstore.Store
	sub     *tasks.Submitter
	client  *asynq.Client
	rdb     redis.UniversalClient
	srv     *asynq.Server
	mx      *metrics.Metrics
	connOpt asynq.RedisConnOpt
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
	a := api.New(api.Config{Store: d.store, Submitter: d.sub, Enqueuer: d.client, Queue: cfg.Operations.Queue, Tokens: tokens, Logger: log.Named("api")})
	a.Register(mux)
	if ui := cfg.HTTP.UI; ui == nil || *ui {
		// Browsers sign in at /ui/login (a session cookie); scripts may
		// send a token. Writes must come from the UI's own origin.
		ro := asynqmon.New(asynqmon.Options{RootPath: "/ui", RedisConnOpt: d.connOpt, ReadOnly: true})
		rw := asynqmon.New(asynqmon.Options{RootPath: "/ui", RedisConnOpt: d.connOpt})
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
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}

// batcher returns the batch-polling coordinator unless
// operations.batch_polling is false.
func batcher(cfg config.Config, rdb redis.UniversalClient) *poller.Batcher {
	if b := cfg.Operations.BatchPolling; b != nil && !*b {
		return nil
	}
	return poller.NewBatcher(rdb, cfg.Redis.KeyPrefix)
}
