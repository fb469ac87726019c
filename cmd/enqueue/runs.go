package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/opsworker/opsworker/client"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// The CLI has no runbook definitions: it asks a worker (a task in the
// general queue) to start a run, continue or abort a gate, or cancel a
// run, and reads runs from Redis.

func newRunCmd(g *globals) *cobra.Command {
	var inputs, labels []string
	var wait bool
	var timeout time.Duration
	var file, callback string
	cmd := &cobra.Command{
		Use:   "run (<runbook> | --file runbook.yaml) [--input k=v]... [--label k=v]... [--wait]",
		Short: "Start a run of a runbook the workers' config defines, or of one in a file; prints its id (with --wait, follows its steps)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := runbook.StartRequest{CallbackURL: callback}
			switch {
			case (len(args) == 1) == (file != ""):
				return fail(exitBadInput, "name a runbook of the config, or give --file with a runbook's definition, not both")
			case file != "":
				def, err := readDefinition(file)
				if err != nil {
					return fail(exitBadInput, "--file %s: %v", file, err)
				}
				// Checked here too, so that a bad file is refused before
				// a worker sees it.
				rb, err := runbook.Compile(*def)
				if err == nil {
					err = rb.NoLiteralSecrets()
				}
				if err != nil {
					return fail(exitBadInput, "--file %s: %v", file, err)
				}
				req.Definition = def
			default:
				req.Runbook = args[0]
			}
			if err := ops.ValidateCallbackURL(callback); err != nil {
				return fail(exitBadInput, "--callback-url: %v", err)
			}
			in := map[string]any{}
			for _, kv := range inputs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fail(exitBadInput, "--input %q: want name=value", kv)
				}
				in[k] = v
			}
			lab := map[string]string{}
			for _, kv := range labels {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fail(exitBadInput, "--label %q: want key=value", kv)
				}
				lab[k] = v
			}
			if err := ops.ValidateLabels(lab); err != nil {
				return fail(exitBadInput, "%v", err)
			}
			ctx := cmd.Context()
			req.Inputs, req.Labels = in, lab
			if c, err := g.api(cmd); err != nil {
				return err
			} else if c != nil {
				o := client.RunOptions{Inputs: in, Labels: lab, CallbackURL: callback}
				var r *client.Run
				if req.Definition != nil {
					def, err := json.Marshal(req.Definition)
					if err != nil {
						return fail(exitBadInput, "--file %s: %v", file, err)
					}
					r, _, err = c.StartInlineRun(ctx, def, o)
					if err != nil {
						return g.apiFail("run", err)
					}
				} else if r, _, err = c.StartRun(ctx, req.Runbook, o); err != nil {
					return g.apiFail("run "+req.Runbook, err)
				}
				run, err := decodeRun(r)
				if err != nil {
					return err
				}
				if !wait {
					if g.jsonOut() {
						return g.printJSON(run)
					}
					fmt.Fprintln(g.stdout, run.ID)
					return nil
				}
				return g.followRun(ctx, g.apiRuns(c), run.ID, timeout)
			}
			rdb, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer rdb.Close()
			id, err := runbook.RequestStart(ctx, rdb, g.keyPrefix, asynq.NewClientFromRedisClient(rdb), g.queue, req, tasks.Declared(ops.ViaCLI, g.as))
			if err != nil {
				return fail(exitNoRedis, "start: %v", err)
			}
			run, err := g.waitRun(ctx, g.redisRuns(rdb), id, 30*time.Second, func(r *runbook.Run) bool { return true })
			if err != nil {
				return err
			}
			if run.Refused {
				return fail(exitBadInput, "%s", run.Error)
			}
			if !wait {
				if g.jsonOut() {
					return g.printJSON(run)
				}
				fmt.Fprintln(g.stdout, id)
				return nil
			}
			return g.followRun(ctx, g.redisRuns(rdb), id, timeout)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&inputs, "input", nil, "an input name=value (repeat for more)")
	f.StringArrayVar(&labels, "label", nil, "a label key=value for the run and its operations (repeat for more)")
	f.BoolVar(&wait, "wait", false, "follow the run's steps until it ends; exit 0 if it succeeded, 1 otherwise")
	f.DurationVar(&timeout, "timeout", time.Hour, "with --wait: how long to wait")
	f.StringVar(&file, "file", "", "a runbook's definition (YAML or JSON, as under runbooks: in the config) to run instead of a configured one")
	f.StringVar(&callback, "callback-url", "", "a URL that receives the run's runbook.* webhooks")
	return cmd
}

// readDefinition reads a runbook's definition from a YAML (or JSON) file,
// refusing keys it does not know.
func readDefinition(path string) (*runbook.Definition, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var def runbook.Definition
	if err := dec.Decode(&def); err != nil {
		return nil, err
	}
	return &def, nil
}

// runReader reads a run: opstore.ErrNotFound when there is none (yet);
// an *exitError stops the caller as it says.
type runReader func(ctx context.Context, id string) (*runbook.Run, error)

func (g *globals) redisRuns(rdb redis.UniversalClient) runReader {
	return func(ctx context.Context, id string) (*runbook.Run, error) {
		return runbook.ReadRun(ctx, rdb, g.keyPrefix, id)
	}
}

func (g *globals) apiRuns(c *client.Client) runReader {
	return func(ctx context.Context, id string) (*runbook.Run, error) {
		r, _, err := c.GetRun(ctx, id)
		switch {
		case isNotFound(err):
			return nil, opstore.ErrNotFound
		case err != nil:
			return nil, g.apiFail("run "+id, err)
		}
		return decodeRun(r)
	}
}

// decodeRun reads a run the API answered as the worker keeps it.
func decodeRun(r *client.Run) (*runbook.Run, error) {
	var run runbook.Run
	if err := json.Unmarshal(r.Raw, &run); err != nil {
		return nil, fail(exitNoRedis, "the API's run: %v", err)
	}
	return &run, nil
}

// waitRun waits until a worker has taken the run and ok(run) holds.
func (g *globals) waitRun(ctx context.Context, read runReader, id string, within time.Duration, ok func(*runbook.Run) bool) (*runbook.Run, error) {
	deadline := time.Now().Add(within)
	for {
		run, err := read(ctx, id)
		var ee *exitError
		switch {
		case err == nil && ok(run):
			return run, nil
		case errors.As(err, &ee):
			return nil, err
		case err != nil && !errors.Is(err, opstore.ErrNotFound):
			return nil, fail(exitNoRedis, "%v", err)
		}
		if time.Now().After(deadline) {
			return nil, fail(exitTimeout, "run %s: no worker answered within %s (is one running, with this runbook in its config?)", id, within)
		}
		select {
		case <-ctx.Done():
			return nil, fail(exitTimeout, "interrupted")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// followRun prints each step change until the run ends.
func (g *globals) followRun(ctx context.Context, read runReader, id string, timeout time.Duration) error {
	seen := map[string]string{}
	run, err := g.waitRun(ctx, read, id, timeout, func(r *runbook.Run) bool {
		for _, s := range r.Steps {
			if seen[s.ID] != s.State {
				seen[s.ID] = s.State
				line := fmt.Sprintf("%s %s: %s", s.Phase, s.ID, s.State)
				if s.Gate != "" && s.State == runbook.StepWaiting {
					line += " — " + s.Gate + " (enqueue gate " + id + " " + s.ID + " continue|abort)"
				}
				fmt.Fprintln(g.stderr, line)
			}
		}
		return !runbook.Active(r.State)
	})
	if err != nil {
		return err
	}
	if g.jsonOut() {
		_ = g.printJSON(run)
	} else {
		_ = g.printRun(run)
	}
	if run.State != runbook.RunSucceeded {
		return fail(exitOpFailed, "run %s %s: %s", id, run.State, run.Error)
	}
	return nil
}

func (g *globals) printRun(r *runbook.Run) error {
	fmt.Fprintf(g.stdout, "run %s of %s: %s\n", r.ID, r.Runbook, r.State)
	if r.Error != "" {
		fmt.Fprintf(g.stdout, "error: %s\n", r.Error)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tPHASE\tSTATE\tOPERATION\tDETAIL")
	for _, s := range r.Steps {
		detail := s.Error
		if s.Gate != "" && s.State == runbook.StepWaiting {
			detail = s.Gate
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Phase, s.State, s.OperationID, oneLine(detail, 120))
	}
	return tw.Flush()
}

func newRunsCmd(g *globals) *cobra.Command {
	var events bool
	cmd := &cobra.Command{
		Use:   "runs [<run-id> [--events]]",
		Short: "List runbook runs, newest first, or show one and its steps (with --events, its timeline)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.api(cmd)
			if err != nil {
				return err
			}
			var rdb redis.UniversalClient
			if c == nil {
				if rdb, err = g.connect(ctx); err != nil {
					return err
				}
				defer rdb.Close()
			}
			if len(args) == 0 {
				var runs []*runbook.Run
				if c != nil {
					got, _, err := c.ListRuns(ctx, 50)
					if err != nil {
						return g.apiFail("runs", err)
					}
					for _, r := range got {
						run, err := decodeRun(r)
						if err != nil {
							return err
						}
						runs = append(runs, run)
					}
				} else if runs, err = runbook.ListRuns(ctx, rdb, g.keyPrefix, 50); err != nil {
					return fail(exitNoRedis, "%v", err)
				}
				if g.jsonOut() {
					return g.printList(runs)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RUN\tRUNBOOK\tSTATE\tCREATED\tERROR")
				for _, r := range runs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Runbook, r.State, r.CreatedAt.Format(time.RFC3339), oneLine(r.Error, 80))
				}
				return tw.Flush()
			}
			read := g.redisRuns(rdb)
			if c != nil {
				read = g.apiRuns(c)
			}
			run, err := read(ctx, args[0])
			var ee *exitError
			switch {
			case errors.Is(err, opstore.ErrNotFound):
				return fail(exitBadInput, "run %s: not found", args[0])
			case errors.As(err, &ee):
				return err
			case err != nil:
				return fail(exitNoRedis, "%v", err)
			}
			if events {
				var timeline []runbook.RunEvent
				if c != nil {
					evs, _, err := c.RunEvents(ctx, run.ID)
					if err != nil {
						return g.apiFail("run events", err)
					}
					for _, e := range evs {
						timeline = append(timeline, runbook.RunEvent(e))
					}
				} else if timeline, err = runbook.ReadTimeline(ctx, rdb, g.keyPrefix, run.ID); err != nil {
					return fail(exitNoRedis, "%v", err)
				}
				if g.jsonOut() {
					return g.printList(timeline)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "AT	EVENT	STEP	STATE	BY	DETAIL")
				for _, e := range timeline {
					by := ""
					if e.Actor != nil {
						by = e.Actor.String()
					}
					detail := e.Message
					if e.OperationID != "" {
						detail = strings.TrimSpace("operation " + e.OperationID + " " + detail)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format("15:04:05.000"), e.Type, e.Step, e.State, by, oneLine(detail, 120))
				}
				return tw.Flush()
			}
			if g.jsonOut() {
				return g.printJSON(run)
			}
			return g.printRun(run)
		},
	}
	cmd.Flags().BoolVar(&events, "events", false, "with a run id: show its timeline (what changed, when, by whom) instead")
	return cmd
}

func newGateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "gate <run-id> <step> continue|abort",
		Short: "Continue or abort a run waiting at a gate",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			action := args[2]
			if action != "continue" && action != "abort" {
				return fail(exitBadInput, "want continue or abort, got %q", action)
			}
			if c, err := g.api(cmd); err != nil {
				return err
			} else if c != nil {
				r, _, err := c.DecideGate(cmd.Context(), args[0], args[1], action == "continue")
				return g.ranCommand(r, err, args[0])
			}
			return g.runCommand(cmd.Context(), runbook.Command{RunID: args[0], Action: action, Step: args[1], By: tasks.Declared(ops.ViaCLI, g.as)},
				func(r *runbook.Run) bool {
					for _, s := range r.Steps {
						if s.ID == args[1] {
							return s.State != runbook.StepWaiting
						}
					}
					return true
				})
		},
	}
}

func newCancelRunCmd(g *globals) *cobra.Command {
	var noCompensate bool
	cmd := &cobra.Command{
		Use:   "cancel-run <run-id> [--no-compensate]",
		Short: "Cancel a run: its running steps are canceled, then its on_failure and finally steps run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c, err := g.api(cmd); err != nil {
				return err
			} else if c != nil {
				r, _, err := c.CancelRun(cmd.Context(), args[0], !noCompensate)
				return g.ranCommand(r, err, args[0])
			}
			return g.runCommand(cmd.Context(), runbook.Command{RunID: args[0], Action: "cancel", Compensate: !noCompensate, By: tasks.Declared(ops.ViaCLI, g.as)},
				func(r *runbook.Run) bool { return r.CancelRequested || !runbook.Active(r.State) })
		},
	}
	cmd.Flags().BoolVar(&noCompensate, "no-compensate", false, "skip the on_failure and finally steps")
	return cmd
}

// runCommand sends a command for a run to the workers and waits until
// done(run) shows it took effect.
func (g *globals) runCommand(ctx context.Context, c runbook.Command, done func(*runbook.Run) bool) error {
	rdb, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	run, err := runbook.ReadRun(ctx, rdb, g.keyPrefix, c.RunID)
	if errors.Is(err, opstore.ErrNotFound) {
		return fail(exitBadInput, "run %s: not found", c.RunID)
	}
	if err != nil {
		return fail(exitNoRedis, "%v", err)
	}
	if !runbook.Active(run.State) {
		return fail(exitBadInput, "run %s already ended %s", c.RunID, run.State)
	}
	if err := runbook.RequestCommand(ctx, asynq.NewClientFromRedisClient(rdb), g.queue, c); err != nil {
		return fail(exitNoRedis, "%v", err)
	}
	run, err = g.waitRun(ctx, g.redisRuns(rdb), c.RunID, 30*time.Second, done)
	if err != nil {
		return err
	}
	return g.printRun(run)
}

// ranCommand shows the run the API answered a gate's decision or a
// cancel with.
func (g *globals) ranCommand(r *client.Run, err error, id string) error {
	if isNotFound(err) {
		return fail(exitBadInput, "run %s: not found", id)
	}
	if err != nil {
		return g.apiFail("run "+id, err)
	}
	run, err := decodeRun(r)
	if err != nil {
		return err
	}
	if g.jsonOut() {
		return g.printJSON(run)
	}
	return g.printRun(run)
}
