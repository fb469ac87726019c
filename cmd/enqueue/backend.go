package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/opsworker/opsworker/client"
	"github.com/opsworker/opsworker/internal/buildinfo"
	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// The CLI reaches opsworker one of two ways:
//
//   - API mode: an API URL is set (--api, OPSWORKER_API_URL or the
//     context's api). Commands go through the HTTP API (package client)
//     with a bearer token, so the token's scope applies. The token comes
//     from OPSWORKER_TOKEN or the context (token_env, token_file, token),
//     never from the command line.
//   - Redis mode: no API is set. Commands read and write Redis directly
//     (--redis, OPSWORKER_REDIS_URL, the context's redis, or the dev
//     config's Redis), as whoever can reach it: full queue access.
//
// If both are set, the API wins (said once on stderr). A command the API
// does not cover (webhooks list/replay/enable, schedules) refuses in API
// mode unless --redis is given on its command line.

// Where a setting came from.
const (
	fromFlag    = "flag"
	fromEnv     = "env"
	fromContext = "context"
	fromDefault = "default"
)

// resolved is what the flags, the environment and the context file say.
type resolved struct {
	apiURL, apiFrom string
	redisFrom       string
	token           string // never printed
	tokenErr        error
	contextName     string
	noted           bool
	client          *client.Client
	cmdPath         string
}

// resolve works out the mode once per command: flags > env > context.
func (g *globals) resolve(cmd *cobra.Command) error {
	if g.res != nil {
		return nil
	}
	res := &resolved{cmdPath: strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")}
	cfg, path, err := loadCLIConfig()
	if err != nil {
		return err
	}
	name, ctx, err := cfg.pick(g.contextFlag, path)
	if err != nil {
		return err
	}
	res.contextName = name
	flags := cmd.Flags()
	switch {
	case flags.Changed("api"):
		res.apiURL, res.apiFrom = g.apiFlag, fromFlag
	case os.Getenv("OPSWORKER_API_URL") != "":
		res.apiURL, res.apiFrom = os.Getenv("OPSWORKER_API_URL"), fromEnv
	case ctx != nil && ctx.API != "":
		res.apiURL, res.apiFrom = ctx.API, fromContext
	}
	switch {
	case flags.Changed("redis"):
		res.redisFrom = fromFlag
	case os.Getenv("OPSWORKER_REDIS_URL") != "":
		g.redisURL, res.redisFrom = os.Getenv("OPSWORKER_REDIS_URL"), fromEnv
	case ctx != nil && ctx.Redis != "":
		g.redisURL, res.redisFrom = ctx.Redis, fromContext
	default:
		res.redisFrom = fromDefault
	}
	if res.apiURL != "" {
		res.token, res.tokenErr = tokenFor(name, ctx, path)
	}
	g.res = res
	return nil
}

// apiDesc names where the API setting came from, for messages.
func (r *resolved) apiDesc() string {
	switch r.apiFrom {
	case fromFlag:
		return "--api"
	case fromEnv:
		return "OPSWORKER_API_URL"
	}
	return fmt.Sprintf("context %q", r.contextName)
}

// tokenFor finds the API token: OPSWORKER_TOKEN, else the context's.
func tokenFor(name string, ctx *cliContext, path string) (string, error) {
	if t := strings.TrimSpace(os.Getenv("OPSWORKER_TOKEN")); t != "" {
		return t, nil
	}
	missing := errors.New("token missing: set OPSWORKER_TOKEN, or token_env or token_file in the context (the CLI takes no --token: a command line shows in ps and shell history)")
	if ctx == nil {
		return "", missing
	}
	switch {
	case ctx.Token != "":
		if err := privateFile(path); err != nil {
			return "", fmt.Errorf("context %q stores a token in %s, which is refused: %v", name, path, err)
		}
		return ctx.Token, nil
	case ctx.TokenEnv != "":
		if t := strings.TrimSpace(os.Getenv(ctx.TokenEnv)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("token missing: context %q reads it from $%s, which is empty", name, ctx.TokenEnv)
	case ctx.TokenFile != "":
		b, err := os.ReadFile(expandHome(ctx.TokenFile))
		if err != nil {
			return "", fmt.Errorf("token missing: context %q token_file: %v", name, err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("token missing: context %q token_file %s is empty", name, ctx.TokenFile)
	}
	return "", missing
}

// api returns the API client in API mode, nil in Redis mode.
func (g *globals) api(cmd *cobra.Command) (*client.Client, error) {
	if err := g.resolve(cmd); err != nil {
		return nil, err
	}
	r := g.res
	if r.apiURL == "" {
		return nil, nil
	}
	if r.client != nil {
		return r.client, nil
	}
	if r.tokenErr != nil {
		return nil, fail(exitBadInput, "API mode (%s): %v", r.apiDesc(), r.tokenErr)
	}
	c, err := client.New(r.apiURL, r.token, client.WithUserAgent("opsworker-enqueue/"+buildinfo.Get().Version),
		client.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	if err != nil {
		return nil, fail(exitBadInput, "%s: %v", r.apiDesc(), strings.TrimPrefix(err.Error(), "client: "))
	}
	if !r.noted && (r.redisFrom == fromFlag || r.redisFrom == fromEnv) {
		r.noted = true
		fmt.Fprintf(g.stderr, "enqueue: both the API (%s) and Redis (%s) are set; using the API\n", r.apiDesc(),
			map[string]string{fromFlag: "--redis", fromEnv: "OPSWORKER_REDIS_URL"}[r.redisFrom])
	}
	r.client = c
	return c, nil
}

// redisOnly refuses a command the API does not cover in API mode, unless
// --redis is on its command line.
func (g *globals) redisOnly() error {
	r := g.res
	if r == nil || r.apiURL == "" || r.redisFrom == fromFlag {
		return nil
	}
	return fail(exitBadInput, "%s is not covered by the HTTP API: it needs direct Redis; give --redis URL (API mode is on through %s)", r.cmdPath, r.apiDesc())
}

// safeURL is u without its password.
func safeURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "(the URL given)"
	}
	p.User = nil
	p.RawQuery = ""
	return p.String()
}

// errNotFound is an API 404.
var errNotFound = errors.New("not found")

// apiFail turns a client error into the CLI's exit codes: the API's
// message and field (2), a token without the scope (2), the API
// unavailable or unreachable (3).
func (g *globals) apiFail(what string, err error) error {
	var p *client.Problem
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return err
	case errors.As(err, &p):
		msg := p.Detail
		if msg == "" {
			msg = p.Title
		}
		if p.Field != "" {
			msg += " (field " + p.Field + ")"
		}
		switch {
		case p.Status == http.StatusUnauthorized:
			return fail(exitBadInput, "%s: token missing or not valid: the API refused it (401)", what)
		case p.Status == http.StatusForbidden && strings.Contains(p.Detail, "this needs "):
			_, scope, _ := strings.Cut(p.Detail, "this needs ")
			return fail(exitBadInput, "%s: the token lacks scope %s (403: %s)", what, scope, msg)
		case p.Status >= 500 || p.Status == http.StatusTooManyRequests:
			return fail(exitNoRedis, "%s: the API answered %d: %s", what, p.Status, msg)
		}
		return fail(exitBadInput, "%s: %s", what, msg)
	case errors.Is(err, context.Canceled):
		return fail(exitTimeout, "%s: interrupted", what)
	}
	return fail(exitNoRedis, "%s: cannot reach the API at %s: %v", what, safeURL(g.res.apiURL), err)
}

// isNotFound reports an API 404.
func isNotFound(err error) bool {
	var p *client.Problem
	return errors.As(err, &p) && p.Status == http.StatusNotFound
}

// apiOp reads one operation: exit 2 when it does not exist.
func (g *globals) apiOp(ctx context.Context, c *client.Client, id string) (*ops.Operation, error) {
	op, _, err := c.Get(ctx, id)
	if isNotFound(err) {
		return nil, fail(exitBadInput, "operation %s: not found (unknown id, or expired after its retention)", id)
	}
	if err != nil {
		return nil, g.apiFail("operation "+id, err)
	}
	return op, nil
}

// opGetter reads an operation for waitFor: opstore.ErrNotFound when it
// does not exist; an *exitError ends the wait as it says.
type opGetter func(ctx context.Context, id string) (*ops.Operation, error)

func (g *globals) redisGetter(rdb redis.UniversalClient) opGetter {
	store := g.store(rdb)
	served := flow.NewServed(rdb, g.keyPrefix)
	return func(ctx context.Context, id string) (*ops.Operation, error) {
		op, err := store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		tasks.NoteUnserved(ctx, served, op, time.Now())
		v := op.View()
		return &v, nil
	}
}

func (g *globals) apiGetter(c *client.Client) opGetter {
	return func(ctx context.Context, id string) (*ops.Operation, error) {
		op, _, err := c.Get(ctx, id)
		switch {
		case isNotFound(err):
			return nil, opstore.ErrNotFound
		case err != nil && ctx.Err() == nil:
			return nil, g.apiFail("operation "+id, err)
		}
		return op, err
	}
}

// submitAPI submits (or dry-runs) through the API.
func (g *globals) submitAPI(ctx context.Context, c *client.Client, kind string, env tasks.Envelope, dryRun, wait bool, timeout time.Duration) error {
	opts := []client.SubmitOption{client.Account(env.Account)}
	if env.CallbackURL != "" {
		opts = append(opts, client.CallbackURL(env.CallbackURL))
	}
	if env.IdempotencyKey != "" {
		opts = append(opts, client.IdempotencyKey(env.IdempotencyKey))
	}
	if len(env.Labels) > 0 {
		opts = append(opts, client.Labels(env.Labels))
	}
	if dryRun {
		plan, _, err := c.DryRunJSON(ctx, kind, env.Provider, env.Params, opts...)
		if err != nil {
			return g.apiFail("dry run", err)
		}
		if g.jsonOut() {
			return g.printJSON(plan)
		}
		return g.printPlan(plan)
	}
	op, resp, err := c.SubmitJSON(ctx, kind, env.Provider, env.Params, opts...)
	if err != nil {
		return g.apiFail("submit", err)
	}
	if resp.Replayed {
		fmt.Fprintf(g.stderr, "idempotency key %q already names operation %s (%s); nothing new was launched\n", env.IdempotencyKey, op.ID, op.State)
	}
	if wait {
		return g.waitFor(ctx, g.apiGetter(c), op.ID, timeout)
	}
	if g.jsonOut() {
		return g.printJSON(op)
	}
	fmt.Fprintln(g.stdout, op.ID)
	return nil
}
