package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opsworker/opsworker/internal/buildinfo"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/redisconn"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// defaultRedisURL is the embedded Redis of config/dev.yaml.
const defaultRedisURL = "redis://127.0.0.1:16379/0"

type globals struct {
	redisURL  string
	output    string
	keyPrefix string
	queue     string
	as        string
	// apiFlag is --api; contextFlag is --context; res is what they, the
	// environment and the contexts file resolve to.
	apiFlag     string
	contextFlag string
	tokenFlag   string
	res         *resolved
	cmd         *cobra.Command // the command running
	stdin       io.Reader
	stdout      io.Writer
	stderr      io.Writer
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "enqueue",
		Short:         "Submit and follow opsworker operations",
		Version:       buildinfo.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.output != "text" && g.output != "json" && g.output != "jsonl" {
				return fail(exitBadInput, "--output: must be text, json or jsonl, got %q", g.output)
			}
			if cmd.Flags().Changed("token") {
				return fail(exitBadInput, "--token is not accepted on the command line (it would show in ps and shell history): set OPSWORKER_TOKEN, or token_env or token_file in a context (enqueue config --help)")
			}
			g.cmd = cmd
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("enqueue {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.redisURL, "redis", defaultRedisURL, "Redis URL, for direct access without the API (env OPSWORKER_REDIS_URL, or the context's redis)")
	pf.StringVar(&g.apiFlag, "api", "", "the worker's HTTP API URL: commands go through it with the token in OPSWORKER_TOKEN or the context (env OPSWORKER_API_URL, or the context's api; --api= turns API mode off)")
	pf.StringVar(&g.contextFlag, "context", "", "the context of the contexts file to use (env OPSWORKER_CONTEXT; default its current-context; see enqueue config)")
	pf.StringVar(&g.tokenFlag, "token", "", "not accepted: set OPSWORKER_TOKEN or a context's token_env/token_file")
	_ = pf.MarkHidden("token")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text, json, or jsonl (one JSON object a line)")
	pf.StringVar(&g.keyPrefix, "key-prefix", envOr("OPSWORKER_KEY_PREFIX", "opsworker"), "operation store key prefix, as redis.key_prefix (env OPSWORKER_KEY_PREFIX)")
	pf.StringVar(&g.as, "as", envOr("OPSWORKER_AS", os.Getenv("USER")), "who you are, recorded as submitted_by or canceled_by, unauthenticated (env OPSWORKER_AS; default $USER)")
	pf.StringVar(&g.queue, "queue", envOr("OPSWORKER_QUEUE", "default"), "the general queue, where cancel requests go, as operations.queue (env OPSWORKER_QUEUE); operations go to their provider's queue, ops:<provider>")
	root.AddCommand(newSubmitCmd(g), newStatusCmd(g), newWaitCmd(g), newListCmd(g), newWebhooksCmd(g), newSchedulesCmd(g), newCancelCmd(g), newAccountCmd(g), newEventsCmd(g), newApproveCmd(g), newRejectCmd(g), newRunCmd(g), newRunsCmd(g), newGateCmd(g), newCancelRunCmd(g), newConfigCmd(g), newDemoCmd(g))
	return root
}

// connect opens Redis and checks it answers (exit 3 otherwise). In API
// mode only a command the API does not cover gets here: it refuses unless
// --redis is on the command line.
func (g *globals) connect(ctx context.Context) (redis.UniversalClient, error) {
	if g.cmd != nil {
		if err := g.resolve(g.cmd); err != nil {
			return nil, err
		}
	}
	if err := g.redisOnly(); err != nil {
		return nil, err
	}
	conn, err := redisconn.Parse(g.redisURL)
	if err != nil {
		return nil, fail(exitBadInput, "--redis: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := conn.Client.Ping(pctx).Err(); err != nil {
		_ = conn.Client.Close()
		return nil, fail(exitNoRedis, "cannot reach Redis at %s: %v", conn.Desc, err)
	}
	return conn.Client, nil
}

// loadOp connects and reads one operation: exit 2 when it does not
// exist, 3 when Redis fails. The caller closes the client.
func (g *globals) loadOp(ctx context.Context, id string) (redis.UniversalClient, *opstore.Operation, error) {
	rdb, err := g.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	op, err := g.store(rdb).Get(ctx, id)
	if errors.Is(err, opstore.ErrNotFound) {
		rdb.Close()
		return nil, nil, fail(exitBadInput, "operation %s: not found (unknown id, or expired after its retention)", id)
	}
	if err != nil {
		rdb.Close()
		return nil, nil, fail(exitNoRedis, "%v", err)
	}
	tasks.NoteUnserved(ctx, flow.NewServed(rdb, g.keyPrefix), op, time.Now())
	return rdb, op, nil
}

func (g *globals) store(rdb redis.UniversalClient) *opstore.Store {
	return opstore.New(rdb, g.keyPrefix, 0)
}

func newSubmitCmd(g *globals) *cobra.Command {
	var env tasks.Envelope
	var params, paramsFile string
	var labels []string
	var dryRun bool
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "submit <task-type> --provider P --params JSON",
		Short: "Submit an operation; prints its id (with --wait, its final record)",
		Example: `  enqueue submit cdn:purge --provider ucdn \
    --params '{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}' --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := args[0]
			switch {
			case params != "" && paramsFile != "":
				return fail(exitBadInput, "--params and --params-file: give one, not both")
			case paramsFile != "":
				var b []byte
				var err error
				if paramsFile == "-" {
					b, err = io.ReadAll(io.LimitReader(g.stdin, 1<<20))
				} else {
					b, err = os.ReadFile(paramsFile)
				}
				if err != nil {
					return fail(exitBadInput, "--params-file: %v", err)
				}
				params = string(b)
			case params == "":
				return fail(exitBadInput, "params: required (--params JSON or --params-file FILE)")
			}
			if !json.Valid([]byte(params)) {
				return fail(exitBadInput, "params: not valid JSON")
			}
			env.Params = json.RawMessage(params)
			env.SubmittedBy = g.as
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok {
					return fail(exitBadInput, "--label %q: want key=value", l)
				}
				if env.Labels == nil {
					env.Labels = map[string]string{}
				}
				env.Labels[k] = v
			}
			env.Normalize()
			if err := env.Validate(kind); err != nil {
				return fail(exitBadInput, "%v", err)
			}
			ctx := cmd.Context()
			if c, err := g.api(cmd); err != nil {
				return err
			} else if c != nil {
				return g.submitAPI(ctx, c, kind, env, dryRun, wait, timeout)
			}
			rdb, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer rdb.Close()
			client := asynq.NewClientFromRedisClient(rdb)
			if dryRun {
				return g.dryRun(ctx, rdb, client, kind, env)
			}
			sub := tasks.NewSubmitter(g.store(rdb), client, tasks.SubmitOptions{})
			op, created, err := sub.Submit(ctx, kind, env)
			var ve *tasks.ValidationError
			switch {
			case errors.As(err, &ve):
				return fail(exitBadInput, "%v", err)
			case errors.Is(err, opstore.ErrIdempotencyConflict):
				return fail(exitBadInput, "idempotency_key: %q already names operation %s, submitted with a different request", env.IdempotencyKey, op.ID)
			case err != nil:
				return fail(exitNoRedis, "submit: %v", err)
			}
			if !created {
				fmt.Fprintf(g.stderr, "idempotency key %q already names operation %s (%s); nothing new was launched\n", env.IdempotencyKey, op.ID, op.State)
			}
			if wait {
				return g.waitFor(ctx, g.redisGetter(rdb), op.ID, timeout)
			}
			if g.jsonOut() {
				return g.printJSON(op)
			}
			fmt.Fprintln(g.stdout, op.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&env.Provider, "provider", "", "provider API (e.g. ucdn)")
	f.StringVar(&env.Account, "account", tasks.DefaultAccount, "provider account from the worker's config")
	f.StringVar(&params, "params", "", "operation params as JSON")
	f.StringVar(&paramsFile, "params-file", "", "read params JSON from a file (- for stdin)")
	f.StringVar(&env.CallbackURL, "callback", "", "URL that receives the completion webhook")
	f.StringVar(&env.IdempotencyKey, "key", "", "idempotency key: resubmitting with it returns the same operation")
	f.StringArrayVar(&labels, "label", nil, "a label key=value kept on the operation and searchable (repeat for more)")
	f.BoolVar(&dryRun, "dry-run", false, "show what the submit would do (checks, pre-flight reads, the call it would send) and submit nothing; a worker of the provider answers within 30 s")
	f.BoolVar(&wait, "wait", false, "wait until the operation ends; state changes go to stderr, the final record to stdout")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait: how long to wait")
	cmd.Long = "Submit an operation; prints its id (with --wait, its final record).\n\nKinds and their providers:\n" + kindsHelp()
	cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return tasks.Kinds(), cobra.ShellCompDirectiveNoFileComp
	}
	_ = cmd.RegisterFlagCompletionFunc("provider", func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		return providersOf(args), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	var events bool
	cmd := &cobra.Command{
		Use:               "status <operation-id>",
		Short:             "Show an operation's record",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeOpIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var view ops.Operation
			var evs []ops.TimelineEvent
			if c, err := g.api(cmd); err != nil {
				return err
			} else if c != nil {
				op, err := g.apiOp(ctx, c, args[0])
				if err != nil {
					return err
				}
				view = *op
				if events {
					if evs, _, err = c.Events(ctx, op.ID); err != nil {
						return g.apiFail("events", err)
					}
				}
			} else {
				rdb, op, err := g.loadOp(ctx, args[0])
				if err != nil {
					return err
				}
				defer rdb.Close()
				view = op.View()
				if events {
					if evs, err = g.store(rdb).Timeline(ctx, op.ID); err != nil {
						return fail(exitNoRedis, "%v", err)
					}
				}
			}
			if !events {
				return g.printView(view)
			}
			if g.jsonOut() {
				// The view, not the record: the record's own MarshalJSON
				// would hide the events.
				return g.printJSON(struct {
					ops.Operation
					Events []ops.TimelineEvent `json:"events"`
				}{view, evs})
			}
			if err := g.printView(view); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout)
			return g.printTimeline(evs)
		},
	}
	cmd.Flags().BoolVar(&events, "events", false, "also show the operation's timeline (in JSON: an events array)")
	return cmd
}

func newEventsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "events <operation-id>",
		Aliases:           []string{"history"},
		Short:             "Show an operation's timeline: who asked, waits, attempts, polls, callbacks, cancels, webhooks",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeOpIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var evs []ops.TimelineEvent
			if c, err := g.api(cmd); err != nil {
				return err
			} else if c != nil {
				op, err := g.apiOp(ctx, c, args[0])
				if err != nil {
					return err
				}
				if evs, _, err = c.Events(ctx, op.ID); err != nil {
					return g.apiFail("events", err)
				}
			} else {
				rdb, op, err := g.loadOp(ctx, args[0])
				if err != nil {
					return err
				}
				defer rdb.Close()
				if evs, err = g.store(rdb).Timeline(ctx, op.ID); err != nil {
					return fail(exitNoRedis, "%v", err)
				}
			}
			if g.jsonOut() {
				if evs == nil {
					evs = []ops.TimelineEvent{}
				}
				return g.printList(evs)
			}
			return g.printTimeline(evs)
		},
	}
}

// dryRunWait is how long `submit --dry-run` waits for a worker's answer.
const dryRunWait = 30 * time.Second

// dryRun asks a worker of env's provider what submitting would do, and
// prints the plan.
func (g *globals) dryRun(ctx context.Context, rdb redis.UniversalClient, q tasks.Enqueuer, kind string, env tasks.Envelope) error {
	store := g.store(rdb)
	id, err := tasks.RequestDryRun(ctx, store, q, kind, env)
	if err != nil {
		return fail(exitNoRedis, "dry run: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, dryRunWait)
	defer cancel()
	for {
		a, err := tasks.ReadDryRun(ctx, store, id)
		switch {
		case err == nil && a.Plan == nil:
			return fail(exitBadInput, "%s", a.Message)
		case err == nil:
			if g.jsonOut() {
				return g.printJSON(a.Plan)
			}
			return g.printPlan(a.Plan)
		case !errors.Is(err, opstore.ErrNotFound) && ctx.Err() == nil:
			return fail(exitNoRedis, "dry run: %v", err)
		}
		select {
		case <-ctx.Done():
			return fail(exitTimeout, "dry run: no worker answered within %s (does a running worker serve %s? `enqueue list` and the worker's ready line say)", dryRunWait, env.Provider)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// printPlan writes a dry run's plan for people.
func (g *globals) printPlan(p *ops.Plan) error {
	fmt.Fprintf(g.stdout, "dry run: %s on %s, account %s, resource %s\n", p.Kind, p.Provider, p.Account, p.Resource)
	fmt.Fprintf(g.stdout, "would:   %s", p.Outcome)
	if p.Reason != "" {
		fmt.Fprintf(g.stdout, " (%s)", p.Reason)
	}
	fmt.Fprintln(g.stdout)
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCHECK\tOK\tDETAIL")
	for _, c := range p.Checks {
		fmt.Fprintf(tw, "%s\t%v\t%s\n", c.Name, c.OK, oneLine(c.Detail, 140))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range p.Calls {
		what := "would send"
		if c.Sent {
			what = "read"
		}
		fmt.Fprintf(g.stdout, "\n%s: %s %s (%s)\n", what, c.Method, c.URL, c.Op)
		if len(c.Body) > 0 {
			fmt.Fprintf(g.stdout, "  %s\n", oneLine(string(c.Body), 2000))
		}
	}
	return nil
}

// printTimeline writes one line per step: time, step, state, and what
// happened.
func (g *globals) printTimeline(evs []ops.TimelineEvent) error {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSTEP\tSTATE\tDETAIL")
	for _, ev := range evs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ev.At.Format(time.RFC3339Nano), ev.Type, ev.State, oneLine(stepDetail(ev), 160))
	}
	return tw.Flush()
}

// stepDetail says what a step did, in words.
func stepDetail(ev ops.TimelineEvent) string {
	var parts []string
	add := func(format string, a ...any) { parts = append(parts, fmt.Sprintf(format, a...)) }
	if ev.Actor != nil {
		add("by %s", ev.Actor)
	}
	if ev.Attempt > 0 {
		add("#%d", ev.Attempt)
	}
	if ev.Event != "" {
		add("%s to %s", ev.Event, ev.Destination)
	}
	if ev.StatusCode != 0 {
		add("http %d", ev.StatusCode)
	}
	if ev.Handle != "" {
		add("handle %s", ev.Handle)
	}
	if ev.ProviderStatus != "" {
		add("provider status %s", ev.ProviderStatus)
	}
	if bar := progressBar(ev.Progress); bar != "" {
		add("%s", strings.TrimSpace(bar))
	}
	if ev.ErrorClass != "" {
		add("[%s]", ev.ErrorClass)
	}
	if ev.RequestID != "" {
		add("request %s", ev.RequestID)
	}
	if ev.Message != "" {
		add("%s", ev.Message)
	}
	return strings.Join(parts, " ")
}

// labelList renders labels as k=v, sorted.
func labelList(labels map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		out = append(out, k+"="+labels[k])
	}
	return strings.Join(out, ", ")
}

func newWaitCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:               "wait <operation-id>",
		Short:             "Wait until an operation ends; exit 0 if it succeeded, 1 otherwise",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeOpIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if c, err := g.api(cmd); err != nil {
				return err
			} else if c != nil {
				return g.waitFor(cmd.Context(), g.apiGetter(c), args[0], timeout)
			}
			rdb, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer rdb.Close()
			return g.waitFor(cmd.Context(), g.redisGetter(rdb), args[0], timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait")
	return cmd
}

func newListCmd(g *globals) *cobra.Command {
	var state, kind, provider, resource, actor, since, until string
	var labels []string
	var limit int
	var cursor string
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recent operations, newest first (--cursor to go on, --all to follow every page)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if state != "" && !opstore.State(state).Valid() {
				return fail(exitBadInput, "--state: unknown state %q (one of %v)", state, opstore.States)
			}
			if kind != "" && !slices.Contains(tasks.Kinds(), kind) {
				return fail(exitBadInput, "--kind: unknown kind %q (one of %s)", kind, strings.Join(tasks.Kinds(), ", "))
			}
			if provider != "" && !slices.Contains(tasks.Providers(), provider) {
				return fail(exitBadInput, "--provider: unknown provider %q (one of %s)", provider, strings.Join(tasks.Providers(), ", "))
			}
			// --all follows every page, up to --limit only if given.
			bound := limit
			switch {
			case all && !cmd.Flags().Changed("limit"):
				bound = 0
			case all && limit < 1:
				return fail(exitBadInput, "--limit: must be at least 1")
			case !all && (limit < 1 || limit > 1000):
				return fail(exitBadInput, "--limit: must be 1..1000 (--all for more)")
			}
			filter := opstore.Filter{State: opstore.State(state), Kind: kind, Provider: provider, After: cursor}
			if field, err := filter.SetSearch(labels, resource, actor, since, until); err != nil {
				return fail(exitBadInput, "--%s: %v", field, err)
			}
			ops, next, short, err := g.listOps(cmd.Context(), cmd, filter, bound, all)
			if err != nil {
				return err
			}
			if short {
				fmt.Fprintf(g.stderr, "enqueue: showing %d; the search stopped after 100 pages of the index, and older operations may match too (narrow the filter, or go on with the cursor below)\n", len(ops))
			}
			if next != "" {
				// Not in the JSON: -o json stays an array.
				fmt.Fprintf(g.stderr, "next_cursor: %s (enqueue list --cursor %s, with the same filters)\n", next, next)
			}
			if g.jsonOut() {
				return g.printList(ops)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tPROVIDER\tACCOUNT\tSTATE\tCREATED\tUPDATED")
			for _, op := range ops {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", op.ID, op.Kind, op.Provider, op.Account, op.State,
					op.CreatedAt.Format(time.RFC3339), op.UpdatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&state, "state", "", "only this state")
	f.StringVar(&kind, "kind", "", "only this kind (task type)")
	f.StringVar(&provider, "provider", "", "only this provider")
	f.StringArrayVar(&labels, "label", nil, "only operations with this label key=value (repeat: all must match)")
	f.StringVar(&resource, "resource", "", "only this resource (leaseweb:server:12345)")
	f.StringVar(&actor, "actor", "", "only operations this token, schedule or declared name submitted")
	f.StringVar(&since, "since", "", "only operations created at or after this RFC 3339 time")
	f.StringVar(&until, "until", "", "only operations created at or before this RFC 3339 time")
	complete := func(values func() []string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return values(), cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = cmd.RegisterFlagCompletionFunc("kind", complete(tasks.Kinds))
	_ = cmd.RegisterFlagCompletionFunc("provider", complete(tasks.Providers))
	_ = cmd.RegisterFlagCompletionFunc("state", complete(func() []string {
		var out []string
		for _, s := range opstore.States {
			out = append(out, string(s))
		}
		return out
	}))
	f.IntVar(&limit, "limit", 20, "at most this many (with --all: only if given)")
	f.StringVar(&cursor, "cursor", "", "go on from this cursor (the next_cursor an earlier list printed on stderr)")
	f.BoolVar(&all, "all", false, "follow the cursors to the last match (bounded by --limit if given)")
	return cmd
}

// waitFor follows an operation until it ends, printing state changes to
// stderr and the final record to stdout.
// waitFor follows operation id until it ends, then prints it. It exits 0
// when it ends in one of want (default: succeeded), 1 otherwise.
func (g *globals) waitFor(ctx context.Context, get opGetter, id string, timeout time.Duration, want ...opstore.State) error {
	if len(want) == 0 {
		want = []opstore.State{opstore.StateSucceeded}
	}
	if timeout <= 0 {
		return fail(exitBadInput, "--timeout: must be > 0")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	interval := 100 * time.Millisecond
	for {
		op, err := get(ctx, id)
		var ee *exitError
		switch {
		case errors.Is(err, opstore.ErrNotFound):
			return fail(exitBadInput, "operation %s: not found", id)
		case err != nil && ctx.Err() == nil && errors.As(err, &ee):
			return err
		case err != nil && ctx.Err() == nil:
			return fail(exitNoRedis, "%v", err)
		case err == nil:
			line := string(op.State)
			if op.ProviderStatus != "" {
				line += " (provider status " + op.ProviderStatus + ")"
			}
			if op.State == opstore.StateRunning {
				line += progressBar(op.Progress)
			}
			if op.State == opstore.StateQueued && strings.HasPrefix(op.LastError, "waiting") {
				line += " — " + op.LastError
			}
			if line != last {
				fmt.Fprintf(g.stderr, "%s  %s  %s\n", time.Now().Format("15:04:05.000"), op.ID, line)
				last = line
			}
			if op.State.Terminal() {
				if err := g.printView(*op); err != nil {
					return err
				}
				if !slices.Contains(want, op.State) {
					return &exitError{code: exitOpFailed, err: fmt.Errorf("operation %s ended %s: %s", op.ID, op.State, op.LastError)}
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fail(exitTimeout, "operation %s still %s after %s; it goes on (enqueue wait %s)", id, last, timeout, id)
			}
			return fail(exitTimeout, "interrupted while waiting for %s", id)
		case <-time.After(interval):
		}
		if interval < time.Second {
			interval += 100 * time.Millisecond
		}
	}
}

func (g *globals) printOp(op *opstore.Operation) error {
	return g.printView(op.View())
}

// printView writes an operation as everything outside the worker sees
// it (secrets redacted): the record's fields, or its JSON.
func (g *globals) printView(op ops.Operation) error {
	if g.jsonOut() {
		return g.printJSON(op)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Format(time.RFC3339Nano)
	}
	row("id", op.ID)
	row("kind", op.Kind)
	row("provider", op.Provider)
	row("account", op.Account)
	row("state", string(op.State))
	row("resource", op.Resource)
	row("submitted_by", op.SubmittedBy.String())
	row("canceled_by", op.CanceledBy.String())
	row("labels", labelList(op.Labels))
	row("provider_status", op.ProviderStatus)
	row("handle", op.Handle)
	row("attempts", fmt.Sprint(op.Attempts))
	row("polls", fmt.Sprint(op.Polls))
	row("created_at", op.CreatedAt.Format(time.RFC3339Nano))
	row("launched_at", ts(op.LaunchedAt))
	row("finished_at", ts(op.FinishedAt))
	row("deadline_at", ts(op.DeadlineAt))
	row("idempotency_key", op.IdempotencyKey)
	row("callback_url", op.CallbackURL)
	row("params", string(op.Params))
	row("result", string(op.Result))
	row("last_error", op.LastError)
	return tw.Flush()
}

// progressBar renders a provider's progress, e.g.
// "  [########------------] 42% Install operating system".
func progressBar(raw json.RawMessage) string {
	var p struct {
		Percentage int    `json:"percentage"`
		Task       string `json:"task"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &p) != nil {
		return ""
	}
	const width = 20
	n := max(0, min(width, p.Percentage*width/100))
	s := fmt.Sprintf("  [%s%s] %3d%%", strings.Repeat("#", n), strings.Repeat("-", width-n), p.Percentage)
	if p.Task != "" {
		s += " " + p.Task
	}
	return s
}

func newCancelCmd(g *globals) *cobra.Command {
	var expire, wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "cancel <operation-id> [--expire]",
		Short: "Cancel an operation (dedicated-server jobs: cancelActiveJob, or expireActiveJob with --expire)",
		Long: `Cancel an operation. One not launched yet ends canceled at once. A running
Leaseweb server job is stopped at the provider:

  cancel (default)  POST .../cancelActiveJob: runs the job's on-fail flow,
                    which often reboots the server.
  --expire          POST .../expireActiveJob: marks the job expired and does
                    not touch the server (an administrative action only).

The operation ends canceled once the provider reports the job CANCELED or
EXPIRED.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeOpIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if c, err := g.api(cmd); err != nil {
				return err
			} else if c != nil {
				op, _, err := c.Cancel(ctx, args[0], expire)
				if isNotFound(err) {
					return fail(exitBadInput, "operation %s: not found (unknown id, or expired after its retention)", args[0])
				}
				if err != nil {
					return g.apiFail("cancel "+args[0], err)
				}
				fmt.Fprintf(g.stderr, "cancel of %s requested\n", op.ID)
				if wait {
					return g.waitFor(ctx, g.apiGetter(c), op.ID, timeout, opstore.StateCanceled)
				}
				return nil
			}
			rdb, op, err := g.loadOp(ctx, args[0])
			if err != nil {
				return err
			}
			defer rdb.Close()
			if op.State.Terminal() {
				return fail(exitBadInput, "operation %s already ended %s", op.ID, op.State)
			}
			if !tasks.Cancelable(op.Kind, op.Provider) && op.State != opstore.StatePendingApproval {
				return fail(exitBadInput, "%s on %s cannot be canceled", op.Kind, op.Provider)
			}
			err = tasks.RequestCancel(ctx, asynq.NewClientFromRedisClient(rdb), g.queue,
				tasks.CancelPayload{OperationID: op.ID, Expire: expire, By: tasks.Declared(ops.ViaCLI, g.as)})
			if err != nil {
				return fail(exitNoRedis, "enqueue cancel: %v", err)
			}
			fmt.Fprintf(g.stderr, "cancel of %s requested\n", op.ID)
			if wait {
				// Canceled is what was asked: exit 0.
				return g.waitFor(ctx, g.redisGetter(rdb), op.ID, timeout, opstore.StateCanceled)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&expire, "expire", false, "expire the provider job instead of canceling it (leaves the server as it is)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the operation ends: exit 0 if it ends canceled, 1 if it ended otherwise")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait: how long to wait")
	return cmd
}

// kindsHelp lists every registered kind with its providers, one a line.
func kindsHelp() string {
	var b strings.Builder
	for _, k := range tasks.Kinds() {
		fmt.Fprintf(&b, "  %-26s %s\n", k, strings.Join(providersOf([]string{k}), ", "))
	}
	return b.String()
}

// providersOf are the providers of the kind in args[0], or every
// provider.
func providersOf(args []string) []string {
	if len(args) == 0 {
		return tasks.Providers()
	}
	var out []string
	for _, s := range tasks.Specs() {
		if s.Kind == args[0] {
			out = append(out, s.Provider)
		}
	}
	return out
}
