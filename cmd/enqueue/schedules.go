package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsworker/opsworker/internal/config"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/schedule"
)

type scheduleRow struct {
	schedule.Definition
	Next        []time.Time `json:"next"`
	LastTick    *time.Time  `json:"last_tick,omitempty"`
	LastSkipped *time.Time  `json:"last_skipped,omitempty"`
	LastRun     []opBrief   `json:"last_run"`
	Interrupted *time.Time  `json:"interrupted_tick,omitempty"`
	InvalidSpec string      `json:"invalid_spec,omitempty"`
}

type opBrief struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

func newSchedulesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "schedules",
		Short: "List the workers' schedules: next 3 fire times and the last run's operations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rdb, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer rdb.Close()
			st := schedule.NewStore(rdb, g.keyPrefix)
			defs, err := st.Definitions(ctx)
			if err != nil {
				return fail(exitNoRedis, "%v", err)
			}
			sort.Slice(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
			store := g.store(rdb)
			now := time.Now()
			rows := make([]scheduleRow, 0, len(defs))
			for _, d := range defs {
				row := scheduleRow{Definition: d, LastRun: []opBrief{}}
				tz := d.Timezone
				if tz == "UTC" {
					tz = ""
				}
				if sc, err := config.ParseCron(d.Spec, tz); err != nil {
					row.InvalidSpec = err.Error()
				} else {
					t := now
					for i := 0; i < 3; i++ {
						t = sc.Next(t)
						row.Next = append(row.Next, t)
					}
				}
				state, err := st.Load(ctx, d.Name)
				if err != nil {
					return fail(exitNoRedis, "%v", err)
				}
				if !state.Completed.IsZero() {
					c := state.Completed
					row.LastTick = &c
				}
				if state.Skipped.After(state.Completed) {
					s := state.Skipped
					row.LastSkipped = &s
				}
				if state.Started.After(state.Completed) {
					s := state.Started
					row.Interrupted = &s
				}
				for _, id := range state.Operations {
					b := opBrief{ID: id, State: "expired"}
					if d.Runbook != "" { // the ids are runs'
						if run, err := runbook.ReadRun(ctx, rdb, g.keyPrefix, id); err == nil {
							b.State = run.State
						}
					} else if op, err := store.Get(ctx, id); err == nil {
						b.State = string(op.State)
					}
					row.LastRun = append(row.LastRun, b)
				}
				rows = append(rows, row)
			}
			if g.jsonOut() {
				return g.printList(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(g.stderr, "no schedules published (a worker publishes its config's schedules when it starts)")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			for _, r := range rows {
				what := fmt.Sprintf("%s on %s, %d item(s)", r.TaskType, r.Provider, r.Items)
				if r.Runbook != "" {
					what = "runbook " + r.Runbook
				}
				fmt.Fprintf(tw, "%s\t%s (%s)\t%s, misfire %s, overlap %s\n", r.Name, r.Spec, r.Timezone, what, r.Misfire, r.Overlap)
				var next []string
				for _, t := range r.Next {
					next = append(next, t.Format(time.RFC3339))
				}
				fmt.Fprintf(tw, "\tnext\t%s\n", strings.Join(next, ", "))
				last := "never"
				if r.LastTick != nil {
					var ops []string
					for _, o := range r.LastRun {
						ops = append(ops, o.ID+" "+o.State)
					}
					last = r.LastTick.Format(time.RFC3339) + ": " + strings.Join(ops, ", ")
				}
				fmt.Fprintf(tw, "\tlast run\t%s\n", last)
				if r.LastSkipped != nil {
					fmt.Fprintf(tw, "\tlast skipped\t%s (previous run still going)\n", r.LastSkipped.Format(time.RFC3339))
				}
				if r.Interrupted != nil {
					fmt.Fprintf(tw, "\tinterrupted\t%s (completed at the next worker start)\n", r.Interrupted.Format(time.RFC3339))
				}
			}
			return tw.Flush()
		},
	}
}
