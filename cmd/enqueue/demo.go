package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// newDemoCmd submits the documented example of every kind on every
// provider to a development worker (make run: embedded Redis, simulated
// providers) and shows how each ended.
func newDemoCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	var force bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Submit one operation of every kind to the development worker (make run) and show how each ended",
		Long: `Submit the documented example of every kind on every provider (the
examples of the kinds reference) to the worker behind --redis, then wait
for them and print how each ended. Meant for the development worker of
make run, whose providers are simulators: some examples name resources the
simulators do not have, and end failed, as they would at the provider.

It refuses any Redis but the development default (` + defaultRedisURL + `),
unless --not-production-i-am-sure: the examples install servers and
delete snapshots.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rdb, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer rdb.Close()
			if g.redisURL != defaultRedisURL && !force {
				return fail(exitBadInput, "--redis %s is not the development worker's Redis (%s): the demo's operations would reach whatever providers that worker serves; add --not-production-i-am-sure if it runs simulators only",
					safeURL(g.redisURL), defaultRedisURL)
			}
			store := g.store(rdb)
			sub := tasks.NewSubmitter(store, asynq.NewClientFromRedisClient(rdb), tasks.SubmitOptions{})
			type row struct{ kind, provider, id string }
			var rows []row
			for _, pt := range ops.ParamsTypes() {
				env := tasks.Envelope{Provider: pt.Provider, Params: pt.Examples[0], SubmittedBy: g.as,
					Labels: map[string]string{"demo": "true"}}
				env.Normalize()
				op, _, err := sub.Submit(ctx, pt.Kind, env)
				if err != nil {
					return fail(exitNoRedis, "submit %s on %s: %v", pt.Kind, pt.Provider, err)
				}
				rows = append(rows, row{pt.Kind, pt.Provider, op.ID})
			}
			fmt.Fprintf(g.stderr, "submitted %d operations (label demo=true); waiting up to %s for them to end\n", len(rows), timeout)
			deadline := time.Now().Add(timeout)
			var final []*opstore.Operation
			for {
				ids := make([]string, len(rows))
				for i, r := range rows {
					ids[i] = r.id
				}
				final, err = store.GetMany(ctx, ids)
				if err != nil {
					return fail(exitNoRedis, "%v", err)
				}
				done := 0
				for _, op := range final {
					if op.State.Terminal() {
						done++
					}
				}
				if done == len(rows) || time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tPROVIDER\tSTATE\tOPERATION\tERROR")
			for _, op := range final {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", op.Kind, op.Provider, op.State, op.ID, oneLine(op.LastError, 80))
			}
			_ = tw.Flush()
			fmt.Fprintf(g.stdout, `
Where to look (make run prints the token to sign in with):
  the operations console   http://127.0.0.1:8080/console/
  one operation            enqueue status <operation> ; enqueue events <operation>
  all of them              enqueue list --label demo=true
`)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for the operations to end")
	cmd.Flags().BoolVar(&force, "not-production-i-am-sure", false, "allow a Redis other than the development default")
	return cmd
}
