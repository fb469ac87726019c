// Command opsbench measures opsworker against asynq itself on one Redis
// and prints one table (make bench). It runs the worker in-process with
// instant simulators, so the numbers are the pipeline's own overhead.
//
//	opsbench -redis 127.0.0.1:6379 -db 15 -n 2000 -c 20
//
// It uses (and flushes) one Redis database.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/internal/config"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
	"github.com/opsworker/opsworker/internal/providers/ucdn/ucdnsim"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/webhookverify"
)

type row struct{ name, value, note string }

func main() {
	addr := flag.String("redis", envOr("REDIS_ADDR", "127.0.0.1:6379"), "Redis address")
	db := flag.Int("db", 15, "Redis database (flushed)")
	n := flag.Int("n", 2000, "operations (and no-op tasks) per throughput run")
	c := flag.Int("c", 20, "worker concurrency")
	inflight := flag.Int("inflight", 0, "also measure Redis bytes per operation with this many purges in flight, polling alone (0: not)")
	sizes := flag.String("growth", "1000,10000", "the growth table's sizes: operations held in flight (\"\" skips it; add 100000 for the full table)")
	interval := flag.Duration("growth-interval", 5*time.Second, "the growth table's poll interval")
	simChild := flag.Bool("leaseweb-sim", false, "serve the Leaseweb simulator for the growth table (internal: opsbench runs itself so)")
	growthOnly := flag.Bool("growth-only", false, "run the growth table alone")
	trace := flag.Bool("trace", false, "print the Redis commands of one cdn:purge operation (MONITOR), and nothing else")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the pipeline cdn:purge run to this file")
	flag.Parse()
	if *simChild {
		serveLeasewebSim()
		return
	}
	rdb := redis.NewClient(&redis.Options{Addr: *addr, DB: *db, PoolSize: 64})
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "opsbench: redis:", err)
		os.Exit(3)
	}
	defer rdb.FlushDB(ctx)
	if *trace {
		traceOne(ctx, rdb, *addr, *db)
		return
	}
	var rows []row
	// Progress on stderr: each measure as it is taken, and what it took.
	began, last := time.Now(), time.Now()
	progress := func(what string) {
		fmt.Fprintf(os.Stderr, "opsbench: %s (%s, %s in all)\n", what, time.Since(last).Round(time.Second), time.Since(began).Round(time.Second))
		last = time.Now()
	}
	add := func(name, value, note string) {
		rows = append(rows, row{name, value, note})
		if !strings.HasPrefix(name, "  ") {
			progress(name)
		}
	}

	if !*growthOnly {
		raw, rawCmds := ceiling(ctx, rdb, *n, *c)
		add("asynq ceiling (no-op handler)", fmt.Sprintf("%.0f tasks/s", raw), fmt.Sprintf("%d tasks, concurrency %d", *n, *c))
		add("  Redis commands per no-op task (incl. in scripts)", fmt.Sprintf("%.1f", rawCmds.total), rawCmds.top)

		hand, handCmds := handwritten(ctx, rdb, *n, *c)
		add("hand-written asynq cdn:purge flow", fmt.Sprintf("%.0f ops/s", hand), "4 bare tasks/op: launch POST, one poll GET, running and final webhook POSTs; no record, no fencing")
		add("  Redis commands per operation (incl. in scripts)", fmt.Sprintf("%.1f", handCmds.total), handCmds.top)

		for _, kind := range []string{tasks.TypeCDNPurge, tasks.TypeCDNInvalidate} {
			if *cpuProfile != "" && kind == tasks.TypeCDNPurge {
				f, err := os.Create(*cpuProfile)
				if err != nil {
					fmt.Fprintln(os.Stderr, "opsbench:", err)
					os.Exit(2)
				}
				_ = pprof.StartCPUProfile(f)
			}
			ops, perOp, cmds := pipeline(ctx, rdb, kind, *n, *c)
			if *cpuProfile != "" && kind == tasks.TypeCDNPurge {
				pprof.StopCPUProfile()
			}
			note := fmt.Sprintf("%.2f tasks/op; ratio %.2f (ops/s × tasks/op ÷ ceiling)", perOp, ops*perOp/raw)
			if kind == tasks.TypeCDNPurge {
				note += fmt.Sprintf("; %.2f × the hand-written flow (target ≥ 0.8)", ops/hand)
			}
			add("pipeline "+kind, fmt.Sprintf("%.0f ops/s", ops), note)
			cmdNote := cmds.top
			if kind == tasks.TypeCDNPurge {
				cmdNote = fmt.Sprintf("%+.1f over the hand-written flow (target ≤ +15); %s", cmds.total-handCmds.total, cmds.top)
			}
			add("  Redis commands per operation (incl. in scripts)", fmt.Sprintf("%.1f", cmds.total), cmdNote)
		}

		for _, viaHTTP := range []bool{false, true} {
			for _, callers := range []int{1, 8} {
				rate, p50, p99 := submit(ctx, rdb, *n, callers, viaHTTP)
				path := "Go client (CLI path)"
				if viaHTTP {
					path = "HTTP API"
				}
				add(fmt.Sprintf("submit via %s, %d caller(s)", path, callers), fmt.Sprintf("%.0f ops/s", rate), fmt.Sprintf("p50 %s, p99 %s", p50, p99))
			}
		}

		def := config.Default().Worker
		for _, iv := range []struct {
			name         string
			check, delay time.Duration
		}{
			{"asynq's own defaults (1s/5s)", time.Second, 5 * time.Second},
			{fmt.Sprintf("the shipped defaults (%s/%s)", def.TaskCheckInterval, def.DelayedTaskCheckInterval), def.TaskCheckInterval, def.DelayedTaskCheckInterval},
			{"tuned (10ms/10ms)", 10 * time.Millisecond, 10 * time.Millisecond},
		} {
			l, w := idleLatency(ctx, rdb, iv.check, iv.delay)
			add("idle latency, "+iv.name, "submit→launch "+l, "provider done→webhook sent "+w)
		}
		for _, iv := range []struct {
			name         string
			check, delay time.Duration
		}{
			{"asynq's own defaults", time.Second, 5 * time.Second},
			{"the shipped defaults", def.TaskCheckInterval, def.DelayedTaskCheckInterval},
		} {
			add("idle worker's Redis load, "+iv.name, fmt.Sprintf("%.0f commands/s", idleLoad(ctx, rdb, iv.check, iv.delay)),
				fmt.Sprintf("one worker, no work, %d queues (the general one and one per provider), 10 s", len(benchQueues())))
		}

		if *inflight > 0 {
			perOp, rss, parts := stateScale(ctx, rdb, *inflight)
			add(fmt.Sprintf("%d operations in flight", *inflight), fmt.Sprintf("%.0f B Redis/op", perOp), fmt.Sprintf("process RSS %s (worker + simulators + %d submitted)", rss, *inflight))
			add("  of which, sampled", parts, "MEMORY USAGE of one key of each kind; Redis hash-max-listpack-value "+redisConfig(ctx, rdb, "hash-max-listpack-value"))
		}
	}

	var growthRows []growthRow
	if *sizes != "" {
		for _, f := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				fmt.Fprintln(os.Stderr, "opsbench: -growth: want sizes such as 1000,10000")
				os.Exit(2)
			}
			growthRows = append(growthRows, growth(ctx, rdb, n, true, *interval))
			progress(fmt.Sprintf("growth, %d in flight, batched", n))
			if n == 1000 {
				growthRows = append(growthRows, growth(ctx, rdb, n, false, *interval))
				progress(fmt.Sprintf("growth, %d in flight, alone", n))
			}
		}
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "MEASURE\tRESULT\tDETAIL\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, r.value, r.note)
	}
	_ = tw.Flush()
	if len(growthRows) > 0 {
		fmt.Printf("\nGrowth: cdn:invalidate operations held in flight (the simulator keeps them pending), polled every %s, then all finished at once\n", *interval)
		tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "IN FLIGHT\tPOLLING\tWORKER RSS\tREDIS B/OP\tCALLS/OP/MIN WAITING\tREDIS CMDS/S AT REST\tCMDS/S/OP\tDONE→SUCCEEDED p50\tp99\tLIST TOOK\n")
		for _, g := range growthRows {
			mode := "batched"
			if !g.batch {
				mode = "alone"
			}
			took := "-"
			if g.batch {
				took = g.listTook.String()
			}
			fmt.Fprintf(tw, "%d\t%s\t%.0f MiB\t%.0f\t%.3f\t%.0f\t%.4f\t%s\t%s\t%s\n", g.n, mode, g.rssMiB, g.bytesPerOp, g.callsPerOpMin, g.cmdsPerSec, g.cmdsPerSec/float64(g.n),
				g.p50.Round(time.Millisecond), g.p99.Round(time.Millisecond), took)
		}
		_ = tw.Flush()
		fmt.Println("WORKER RSS is the worker's process (with the submitter); the simulator runs in a child process.")
		fmt.Println("At rest: batched, once the batch's list has seen every operation running; LIST TOOK is that list's run.")
	}
	fmt.Printf("\n%d CPUs, %s, Redis %s %s db %d\n", runtime.NumCPU(), runtime.Version(), redisVersion(ctx, rdb), *addr, *db)
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

// benchQueues are the queues the bench's workers serve: the general one
// and every provider's.
func benchQueues() map[string]int {
	q := tasks.ProviderQueues(tasks.Providers(), nil)
	q["default"] = 1
	return q
}

func server(rdb *redis.Client, c int, tick time.Duration, h asynq.Handler, w *tasks.Worker) *asynq.Server {
	cfg := asynq.Config{Concurrency: c, Queues: benchQueues(), TaskCheckInterval: tick, DelayedTaskCheckInterval: tick, LogLevel: asynq.FatalLevel}
	if w != nil {
		cfg.RetryDelayFunc, cfg.IsFailure = w.RetryDelay, w.IsFailure
	}
	srv := asynq.NewServerFromRedisClient(rdb, cfg)
	if err := srv.Start(h); err != nil {
		panic(err)
	}
	return srv
}

// ceiling: raw asynq throughput, a no-op handler, same Redis and concurrency.
func ceiling(ctx context.Context, rdb *redis.Client, n, c int) (float64, cmdDelta) {
	rdb.FlushDB(ctx)
	before := commandStats(ctx, rdb)
	var done atomic.Int64
	fin := make(chan struct{})
	srv := server(rdb, c, 10*time.Millisecond, asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(n) {
			close(fin)
		}
		return nil
	}), nil)
	defer srv.Shutdown()
	client := asynq.NewClientFromRedisClient(rdb)
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := client.Enqueue(asynq.NewTask("noop", []byte(`{}`))); err != nil {
			panic(err)
		}
	}
	<-fin
	rate := float64(n) / time.Since(start).Seconds()
	return rate, commandStats(ctx, rdb).sub(before, n)
}

type rig struct {
	store   *opstore.Store
	client  *asynq.Client
	worker  *tasks.Worker
	sub     *tasks.Submitter
	ucdn    *ucdnsim.Server
	lw      *leasewebsim.Server
	hooks   *atomic.Int64
	hookAt  chan time.Time
	recvURL string
	ucdnURL string
	close   func()
}

func loopbackPrefixes() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

func newRig(rdb *redis.Client, poll time.Duration, batch bool) *rig {
	us := ucdnsim.New(ucdnsim.Config{Token: "t"})
	usrv := httptest.NewServer(us)
	lw := leasewebsim.New(leasewebsim.Config{APIKey: "k"})
	lsrv := httptest.NewServer(lw)
	hooks := &atomic.Int64{}
	hookAt := make(chan time.Time, 100000)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		hooks.Add(1)
		var ev struct{ Type string }
		_ = json.NewDecoder(r.Body).Decode(&ev)
		if ev.Type == webhooks.EventSucceeded {
			select {
			case hookAt <- now:
			default:
			}
		}
		w.WriteHeader(204)
	}))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	uc, _ := ucdn.New(usrv.URL+"/v4", ucdn.WithToken("t"), ucdn.WithHTTPClient(hc))
	lc, _ := leaseweb.New(lsrv.URL, leaseweb.WithAPIKey("k"), leaseweb.WithHTTPClient(hc))
	store := opstore.New(rdb, "bench", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	pol := poller.Policy{Initial: poll, Multiplier: 1, Max: poll, Deadline: time.Hour}
	cfg := tasks.Config{Store: store, Enqueuer: client, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: map[tasks.ExecutorKey]tasks.Executor{
			{Kind: tasks.TypeCDNPurge, Provider: "ucdn"}:          tasks.NewUCDNPurge(map[string]*ucdn.Client{"default": uc}),
			{Kind: tasks.TypeCDNInvalidate, Provider: "leaseweb"}: tasks.NewLeasewebInvalidate(map[string]*leaseweb.Client{"default": lc}),
		},
		Policies: map[string]poller.Policy{tasks.TypeCDNPurge: pol, tasks.TypeCDNInvalidate: pol},
		Sender:   webhooks.NewSender(webhooks.SenderConfig{Timeout: 5 * time.Second, AllowCIDRs: loopbackPrefixes()}),
		Logger:   zap.NewNop(),
	}
	if batch {
		cfg.Batcher = poller.NewBatcher(rdb, "bench")
	}
	w, err := tasks.NewWorker(cfg)
	if err != nil {
		panic(err)
	}
	r := &rig{store: store, client: client, worker: w, sub: tasks.NewSubmitter(store, client, tasks.SubmitOptions{}), ucdn: us, lw: lw, hooks: hooks, hookAt: hookAt}
	r.close = func() { usrv.Close(); lsrv.Close(); recv.Close(); lw.Close(); client.Close() }
	r.recvURL, r.ucdnURL = recv.URL, usrv.URL
	return r
}

func (r *rig) envelope(kind string, i int) tasks.Envelope {
	params := fmt.Sprintf(`{"zone_name":"demo","zone_type":"objects","files":["/f%d.png"]}`, i)
	provider := "ucdn"
	if kind == tasks.TypeCDNInvalidate {
		params, provider = fmt.Sprintf(`{"files":["https://cdn.example.com/f%d.png"]}`, i), "leaseweb"
	}
	return tasks.Envelope{Provider: provider, Params: json.RawMessage(params), CallbackURL: r.recvURL + "/hook"}
}

// pipeline: submit → launch → poll → succeeded → webhook delivered.
func pipeline(ctx context.Context, rdb *redis.Client, kind string, n, c int) (opsPerSec, tasksPerOp float64, cmds cmdDelta) {
	rdb.FlushDB(ctx)
	before := commandStats(ctx, rdb)
	r := newRig(rdb, 10*time.Millisecond, false)
	defer r.close()
	srv := server(rdb, c, 10*time.Millisecond, r.worker.Handler(), r.worker)
	defer srv.Shutdown()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, _, err := r.sub.Submit(ctx, kind, r.envelope(kind, i)); err != nil {
			panic(err)
		}
	}
	// Each operation sends two events: running and its final one.
	for r.hooks.Load() < int64(2*n) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cmds = commandStats(ctx, rdb).sub(before, n)
	time.Sleep(100 * time.Millisecond)
	processed := 0
	queues, err := insp.Queues()
	if err != nil {
		panic(err)
	}
	for _, q := range queues {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			panic(err)
		}
		processed += info.Processed
	}
	return float64(n) / elapsed.Seconds(), float64(processed) / float64(n), cmds
}

// handwritten: the cdn:purge flow as a team writes it by hand with asynq,
// against the same simulator, receiver and webhook sender as the
// pipeline: a launch task POSTs the purge and enqueues the running
// webhook and a poll (in the poll interval); the poll GETs the job and,
// done, enqueues the final webhook; each webhook task POSTs a signed
// event. No operation record, no fencing, no idempotency.
func handwritten(ctx context.Context, rdb *redis.Client, n, c int) (float64, cmdDelta) {
	rdb.FlushDB(ctx)
	before := commandStats(ctx, rdb)
	r := newRig(rdb, 10*time.Millisecond, false)
	defer r.close()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	uc, _ := ucdn.New(r.ucdnURL+"/v4", ucdn.WithToken("t"), ucdn.WithHTTPClient(hc))
	sender := webhooks.NewSender(webhooks.SenderConfig{Timeout: 5 * time.Second, AllowCIDRs: loopbackPrefixes()})
	secret := webhookverify.NewSecret()
	type job struct {
		I   int    `json:"i"`
		Job string `json:"job,omitempty"`
		Evt string `json:"evt,omitempty"`
	}
	enqueue := func(typ string, j job, opts ...asynq.Option) error {
		b, _ := json.Marshal(j)
		_, err := r.client.EnqueueContext(ctx, asynq.NewTask(typ, b), append(opts, asynq.Queue("default"))...)
		return err
	}
	mux := asynq.NewServeMux()
	mux.HandleFunc("hw:launch", func(ctx context.Context, t *asynq.Task) error {
		var j job
		_ = json.Unmarshal(t.Payload(), &j)
		resp, err := uc.Purge(ctx, &ucdn.PurgeRequest{ZoneName: "demo", ZoneType: "objects", Files: []string{fmt.Sprintf("/f%d.png", j.I)}})
		if err != nil {
			return err
		}
		j.Job = resp.JobID
		if err := enqueue("hw:hook", job{I: j.I, Evt: webhooks.EventRunning}); err != nil {
			return err
		}
		return enqueue("hw:poll", j, asynq.ProcessIn(10*time.Millisecond))
	})
	mux.HandleFunc("hw:poll", func(ctx context.Context, t *asynq.Task) error {
		var j job
		_ = json.Unmarshal(t.Payload(), &j)
		pj, err := uc.GetPurgeJob(ctx, j.Job)
		if err != nil {
			return err
		}
		if pj.Status != "finished" {
			return enqueue("hw:poll", j, asynq.ProcessIn(10*time.Millisecond))
		}
		return enqueue("hw:hook", job{I: j.I, Evt: webhooks.EventSucceeded})
	})
	mux.HandleFunc("hw:hook", func(ctx context.Context, t *asynq.Task) error {
		var j job
		_ = json.Unmarshal(t.Payload(), &j)
		id := fmt.Sprintf("evt_hw_%d_%s", j.I, j.Evt)
		body, _ := json.Marshal(map[string]any{"id": id, "type": j.Evt, "timestamp": time.Now().UTC(), "data": map[string]int{"i": j.I}})
		return sender.Send(ctx, r.recvURL+"/hook", id, body, []webhookverify.Secret{secret})
	})
	srv := server(rdb, c, 10*time.Millisecond, mux, nil)
	defer srv.Shutdown()
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := enqueue("hw:launch", job{I: i}); err != nil {
			panic(err)
		}
	}
	for r.hooks.Load() < int64(2*n) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	return float64(n) / elapsed.Seconds(), commandStats(ctx, rdb).sub(before, n)
}

// traceOne runs one cdn:purge operation through the pipeline and prints
// every Redis command of this database meanwhile (MONITOR): where the
// commands per operation go.
func traceOne(ctx context.Context, rdb *redis.Client, addr string, db int) {
	rdb.FlushDB(ctx)
	r := newRig(rdb, 10*time.Millisecond, false)
	defer r.close()
	srv := server(rdb, 4, 10*time.Millisecond, r.worker.Handler(), r.worker)
	time.Sleep(300 * time.Millisecond) // the server's start-up traffic
	mon := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	defer mon.Close()
	lines := make(chan string, 100000)
	go func() {
		// A raw MONITOR: go-redis has no helper for it.
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(conn, "MONITOR\r\n")
		sc := bufio.NewScanner(conn)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if l := sc.Text(); strings.Contains(l, fmt.Sprintf("[%d ", db)) {
				lines <- l
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if _, _, err := r.sub.Submit(ctx, tasks.TypeCDNPurge, r.envelope(tasks.TypeCDNPurge, 0)); err != nil {
		panic(err)
	}
	for r.hooks.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	srv.Shutdown()
	close := time.Now()
	n := 0
	for {
		select {
		case l := <-lines:
			n++
			if len(l) > 300 {
				l = l[:300] + "…"
			}
			fmt.Println(l)
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	fmt.Printf("%d commands in %s (the server's idle polling included)\n", n, close.Sub(start).Round(time.Millisecond))
}

// commandStats reads Redis's per-command call counts (INFO commandstats).
// They are server-wide: the bench assumes nothing else uses this Redis.
type commandCounts map[string]int64

func commandStats(ctx context.Context, rdb *redis.Client) commandCounts {
	info, _ := rdb.Info(ctx, "commandstats").Result()
	out := commandCounts{}
	for _, line := range strings.Split(info, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		n, _ := strconv.ParseInt(calls, 10, 64)
		out[name] = n
	}
	return out
}

// cmdDelta is Redis commands per unit of work between two readings.
type cmdDelta struct {
	total float64
	top   string
}

func (after commandCounts) sub(before commandCounts, per int) cmdDelta {
	type kv struct {
		name string
		n    int64
	}
	var all []kv
	var total int64
	for name, n := range after {
		if name == "info" {
			continue // the readings themselves
		}
		if d := n - before[name]; d > 0 {
			all = append(all, kv{name, d})
			total += d
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n })
	var parts []string
	top := 5
	if n, err := strconv.Atoi(os.Getenv("OPSBENCH_TOP")); err == nil && n > 0 {
		top = n // every command, to see where they go
	}
	for i := 0; i < len(all) && i < top; i++ {
		parts = append(parts, fmt.Sprintf("%s %.1f", all[i].name, float64(all[i].n)/float64(per)))
	}
	return cmdDelta{total: float64(total) / float64(per), top: strings.Join(parts, ", ")}
}

func percentiles(d []time.Duration) (time.Duration, time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond)
}

// submit: the CLI's Go path (Submitter) or the HTTP API, with 1 and 8
// concurrent callers.
func submit(ctx context.Context, rdb *redis.Client, n, callers int, viaHTTP bool) (float64, time.Duration, time.Duration) {
	rdb.FlushDB(ctx)
	r := newRig(rdb, time.Second, false)
	defer r.close()
	do := func(i int) error {
		_, _, err := r.sub.Submit(ctx, tasks.TypeCDNPurge, r.envelope(tasks.TypeCDNPurge, i))
		return err
	}
	if viaHTTP {
		a := api.New(api.Config{Store: r.store, Submitter: r.sub, Enqueuer: r.client, Tokens: []api.Token{{Name: "b", Secret: "bench-token-0123456789", Scope: api.ScopeWrite}}})
		mux := http.NewServeMux()
		a.Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		do = func(i int) error {
			env := r.envelope(tasks.TypeCDNPurge, i)
			body, _ := json.Marshal(map[string]any{"task_type": tasks.TypeCDNPurge, "provider": env.Provider, "params": env.Params})
			req, _ := http.NewRequest("POST", srv.URL+"/v1/operations", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer bench-token-0123456789")
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("http %d", resp.StatusCode)
			}
			return nil
		}
	}
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	start := time.Now()
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := do(i); err != nil {
					panic(err)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	rate := float64(n) / time.Since(start).Seconds()
	p50, p99 := percentiles(lat)
	return rate, p50, p99
}

// idleLatency: one operation at a time on an idle worker: submit → the
// provider's launch call, and the provider's final status → webhook sent.
func idleLatency(ctx context.Context, rdb *redis.Client, check, delay time.Duration) (string, string) {
	rdb.FlushDB(ctx)
	r := newRig(rdb, 10*time.Millisecond, false)
	defer r.close()
	cfg := asynq.Config{Concurrency: 4, Queues: benchQueues(), TaskCheckInterval: check, DelayedTaskCheckInterval: delay, LogLevel: asynq.FatalLevel}
	srv := asynq.NewServerFromRedisClient(rdb, cfg)
	if err := srv.Start(r.worker.Handler()); err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	// Each sample waits out the intervals: fewer with asynq's slow ones.
	samples := 12
	if delay >= time.Second {
		samples = 6
	}
	var launch, notify []time.Duration
	for i := 0; i < samples; i++ {
		t0 := time.Now()
		op, _, err := r.sub.Submit(ctx, tasks.TypeCDNPurge, r.envelope(tasks.TypeCDNPurge, i))
		if err != nil {
			panic(err)
		}
		for r.ucdn.CountCalls("POST", "/purge/zone") <= i {
			time.Sleep(time.Millisecond)
		}
		calls := r.ucdn.Calls()
		launch = append(launch, calls[len(calls)-1].At.Sub(t0))
		// The job is final on its first read (instant simulator): from
		// that GET's answer to the arrival of the succeeded event.
		var hook time.Time
		select {
		case hook = <-r.hookAt:
		case <-time.After(30 * time.Second):
			panic("no webhook")
		}
		var final time.Time
		for _, c := range r.ucdn.Calls() {
			if c.Method == "GET" && c.At.After(t0) && final.IsZero() {
				final = c.At
			}
		}
		_ = op
		notify = append(notify, hook.Sub(final))
	}
	l50, l99 := percentiles(launch)
	n50, n99 := percentiles(notify)
	return fmt.Sprintf("p50 %s p99 %s", l50, l99), fmt.Sprintf("p50 %s p99 %s", n50, n99)
}

type growthRow struct {
	n                                             int
	batch                                         bool
	rssMiB, bytesPerOp, callsPerOpMin, cmdsPerSec float64
	p50, p99, listTook                            time.Duration
}

// growth holds n cdn:invalidate operations in flight on the Leaseweb
// simulator (which keeps them pending), polled every interval (batched
// or each alone), with the shipped task intervals; it measures, at rest:
// the process RSS, Redis bytes per operation, provider calls per
// operation per minute and Redis commands per second over two intervals;
// then it finishes every action at once and measures how long each
// operation takes to read succeeded.
func growth(ctx context.Context, rdb *redis.Client, n int, batch bool, interval time.Duration) growthRow {
	rdb.FlushDB(ctx)
	runtime.GC()
	memBefore := usedMemory(ctx, rdb)
	// The simulator runs in a child process, so this process's RSS is
	// the worker's (and the submitter's) alone.
	sim, err := startLeasewebSim()
	if err != nil {
		panic(err)
	}
	defer sim.close()
	calls := &countingTransport{next: &http.Transport{MaxIdleConnsPerHost: 64}}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: calls}
	lc, _ := leaseweb.New(sim.url, leaseweb.WithAPIKey("k"), leaseweb.WithHTTPClient(hc))
	store := opstore.New(rdb, "bench", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	cfg := tasks.Config{Store: store, Enqueuer: client, Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: tasks.TypeCDNInvalidate, Provider: "leaseweb"}: tasks.NewLeasewebInvalidate(map[string]*leaseweb.Client{"default": lc})},
		Policies:  map[string]poller.Policy{tasks.TypeCDNInvalidate: {Initial: interval, Multiplier: 1, Max: interval, Deadline: 10 * time.Hour}},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}), Logger: zap.NewNop()}
	if batch {
		cfg.Batcher = poller.NewBatcher(rdb, "bench")
	}
	w, err := tasks.NewWorker(cfg)
	if err != nil {
		panic(err)
	}
	def := config.Default().Worker
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 20, Queues: benchQueues(), TaskCheckInterval: def.TaskCheckInterval,
		DelayedTaskCheckInterval: def.DelayedTaskCheckInterval, RetryDelayFunc: w.RetryDelay, IsFailure: w.IsFailure, LogLevel: asynq.FatalLevel})
	if err := srv.Start(w.Handler()); err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	sub := tasks.NewSubmitter(store, client, tasks.SubmitOptions{})
	ids := make([]string, n)
	for i := range n {
		op, _, err := sub.Submit(ctx, tasks.TypeCDNInvalidate, tasks.Envelope{Provider: "leaseweb",
			Params: json.RawMessage(fmt.Sprintf(`{"files":["https://cdn.example.com/g%d.png"]}`, i))})
		if err != nil {
			panic(err)
		}
		ids[i] = op.ID
	}
	for calls.posts.Load() < int64(n) {
		time.Sleep(50 * time.Millisecond)
	}
	g := growthRow{n: n, batch: batch}
	// At rest: every operation in its polling rhythm. Batched, that is
	// once its batch's list has seen every one of them running, and
	// each has made the poll that finds it covered.
	if batch {
		b := poller.NewBatcher(rdb, "bench")
		for start := time.Now(); time.Since(start) < 10*time.Minute; time.Sleep(time.Second) {
			members, err := b.Members(ctx, "leaseweb-cdn:default")
			seen := 0
			for _, m := range members {
				if m.Seen() {
					seen++
				}
			}
			if err == nil && seen == n {
				break
			}
		}
		_, _, last, _ := b.Look(ctx, "leaseweb-cdn:default", "")
		g.listTook = last.Took
	}
	time.Sleep(2*interval + time.Second)
	g.bytesPerOp = float64(usedMemory(ctx, rdb)-memBefore) / float64(n)
	g.rssMiB = rssMiB()
	calls0, cmds0 := calls.gets.Load(), commandStats(ctx, rdb)
	window := 2 * interval
	time.Sleep(window)
	g.callsPerOpMin = float64(calls.gets.Load()-calls0) / float64(n) / window.Minutes()
	g.cmdsPerSec = commandStats(ctx, rdb).sub(cmds0, 1).total / window.Seconds()

	done, err := sim.finishAll()
	if err != nil {
		panic(err)
	}
	succeeded := "bench:{ops}:index:state:succeeded"
	for rdb.ZCard(ctx, succeeded).Val() < int64(n) {
		time.Sleep(50 * time.Millisecond)
	}
	lat := make([]time.Duration, 0, n)
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, n)
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, "bench:{ops}:op:"+id, "finished_at")
	}
	_, _ = pipe.Exec(ctx)
	for _, c := range cmds {
		if t, err := time.Parse(time.RFC3339Nano, c.Val()); err == nil {
			lat = append(lat, t.Sub(done))
		}
	}
	g.p50, g.p99 = percentiles(lat)
	return g
}

// countingTransport counts the provider calls the worker makes.
type countingTransport struct {
	next        http.RoundTripper
	gets, posts atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case http.MethodGet:
		c.gets.Add(1)
	case http.MethodPost:
		c.posts.Add(1)
	}
	return c.next.RoundTrip(r)
}

// leasewebSim is the Leaseweb simulator in a child process (opsbench
// -leaseweb-sim): it prints its URL, and finishes every action when told
// so on its standard input, answering with the time it did.
type leasewebSim struct {
	url string
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startLeasewebSim() (*leasewebSim, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-leaseweb-sim")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &leasewebSim{cmd: cmd, in: in, out: bufio.NewReader(stdout)}
	line, err := s.out.ReadString('\n')
	if err != nil {
		s.close()
		return nil, fmt.Errorf("leaseweb simulator: %w", err)
	}
	s.url = strings.TrimSpace(line)
	return s, nil
}

func (s *leasewebSim) finishAll() (time.Time, error) {
	if _, err := io.WriteString(s.in, "finish\n"); err != nil {
		return time.Time{}, err
	}
	line, err := s.out.ReadString('\n')
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339Nano, strings.TrimSpace(line))
}

func (s *leasewebSim) close() {
	_ = s.in.Close() // the child exits at the end of its input
	_ = s.cmd.Wait()
}

// serveLeasewebSim is the child's side of leasewebSim.
func serveLeasewebSim() {
	lw := leasewebsim.New(leasewebsim.Config{APIKey: "k", CDNDuration: 1000 * time.Hour})
	srv := httptest.NewServer(lw)
	fmt.Println(srv.URL)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "finish" {
			fmt.Println(lw.FinishAllActions().Format(time.RFC3339Nano))
		}
	}
	srv.Close()
	lw.Close()
}

func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func redisVersion(ctx context.Context, rdb *redis.Client) string {
	info, _ := rdb.Info(ctx, "server").Result()
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			return v
		}
	}
	return "?"
}

// idleLoad: the Redis commands per second of one worker with nothing to
// do, with these intervals (its queue checks, the scheduled and retry
// forwarding, heartbeats).
func idleLoad(ctx context.Context, rdb *redis.Client, check, delay time.Duration) float64 {
	rdb.FlushDB(ctx)
	r := newRig(rdb, time.Second, false)
	defer r.close()
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 20, Queues: benchQueues(), TaskCheckInterval: check,
		DelayedTaskCheckInterval: delay, LogLevel: asynq.FatalLevel})
	if err := srv.Start(r.worker.Handler()); err != nil {
		panic(err)
	}
	defer srv.Shutdown()
	time.Sleep(2 * time.Second) // start-up traffic
	before := commandStats(ctx, rdb)
	const window = 10 * time.Second
	time.Sleep(window)
	return commandStats(ctx, rdb).sub(before, 1).total / window.Seconds()
}

// stateScale: n operations in flight (the provider never finishes them):
// Redis memory per operation and this process's RSS.
func stateScale(ctx context.Context, rdb *redis.Client, n int) (float64, string, string) {
	rdb.FlushDB(ctx)
	before := usedMemory(ctx, rdb)
	r := newRig(rdb, 30*time.Second, true)
	defer r.close()
	us := ucdnsim.New(ucdnsim.Config{Token: "t", WaitingFor: time.Hour})
	usrv := httptest.NewServer(us)
	defer usrv.Close()
	uc, _ := ucdn.New(usrv.URL+"/v4", ucdn.WithToken("t"))
	w, _ := tasks.NewWorker(tasks.Config{Store: r.store, Enqueuer: r.client,
		Executors: map[tasks.ExecutorKey]tasks.Executor{{Kind: tasks.TypeCDNPurge, Provider: "ucdn"}: tasks.NewUCDNPurge(map[string]*ucdn.Client{"default": uc})},
		Policies:  map[string]poller.Policy{tasks.TypeCDNPurge: {Initial: 30 * time.Second, Multiplier: 1, Max: 30 * time.Second, Deadline: time.Hour}},
		Sender:    webhooks.NewSender(webhooks.SenderConfig{Timeout: time.Second}), Logger: zap.NewNop(), Batcher: poller.NewBatcher(rdb, "bench")})
	srv := server(rdb, 20, 10*time.Millisecond, w.Handler(), w)
	defer srv.Shutdown()
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		op, _, err := r.sub.Submit(ctx, tasks.TypeCDNPurge, tasks.Envelope{Provider: "ucdn", Params: json.RawMessage(fmt.Sprintf(`{"zone_name":"demo","zone_type":"objects","files":["/f%d.png"]}`, i))})
		if err != nil {
			panic(err)
		}
		ids = append(ids, op.ID)
	}
	for us.CountCalls("POST", "/purge/zone") < n {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	after := usedMemory(ctx, rdb)
	return float64(after-before) / float64(n), rss(), keyBreakdown(ctx, rdb, ids[len(ids)/2])
}

// keyBreakdown reports the memory and encoding of the operation record of
// id and of one pending asynq task: where the bytes per operation go.
func keyBreakdown(ctx context.Context, rdb *redis.Client, id string) string {
	var parts []string
	describe := func(label, key string) {
		if key == "" {
			return
		}
		mem := rdb.MemoryUsage(ctx, key).Val()
		parts = append(parts, fmt.Sprintf("%s %d B (%s)", label, mem, rdb.ObjectEncoding(ctx, key).Val()))
	}
	opKeys, _ := rdb.Keys(ctx, "*:op:"+id).Result()
	if len(opKeys) == 1 {
		describe("op record", opKeys[0])
	}
	var task string
	iter := rdb.Scan(ctx, 0, "asynq:{*}:t:*", 1000).Iterator()
	if iter.Next(ctx) {
		task = iter.Val()
	}
	describe("asynq task", task)
	return strings.Join(parts, ", ")
}

func redisConfig(ctx context.Context, rdb *redis.Client, name string) string {
	v, err := rdb.ConfigGet(ctx, name).Result()
	if err != nil || v[name] == "" {
		return "unknown"
	}
	return v[name]
}

func usedMemory(ctx context.Context, rdb *redis.Client) int64 {
	info, _ := rdb.Info(ctx, "memory").Result()
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "n/a"
}
