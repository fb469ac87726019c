package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/webhookverify"
)

func newWebhooksCmd(g *globals) *cobra.Command {
	var queue string
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "List, replay and verify webhook deliveries",
	}
	cmd.PersistentFlags().StringVar(&queue, "webhook-queue", envOr("OPSWORKER_WEBHOOK_QUEUE", "default"), "queue of webhook tasks, as webhooks.queue (env OPSWORKER_WEBHOOK_QUEUE)")
	cmd.AddCommand(newWebhooksListCmd(g, &queue), newWebhooksReplayCmd(g, &queue), newWebhooksVerifyCmd(g), newWebhooksEnableCmd(g))
	return cmd
}

// delivery is one row of `webhooks list`.
type delivery struct {
	TaskID      string `json:"task_id"`
	OperationID string `json:"operation_id"`
	// Provider and Account name the account of a provider.* event.
	Provider    string    `json:"provider,omitempty"`
	Account     string    `json:"account,omitempty"`
	Event       string    `json:"event"`
	EventID     string    `json:"event_id"`
	Destination string    `json:"destination"`
	Host        string    `json:"host"`
	State       string    `json:"state"`
	Attempts    int       `json:"attempts"`
	MaxAttempts int       `json:"max_attempts"`
	LastError   string    `json:"last_error,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastFailed  time.Time `json:"last_failed,omitzero"`
	Completed   time.Time `json:"completed,omitzero"`
}

func newWebhooksListCmd(g *globals, queue *string) *cobra.Command {
	var failed bool
	var opID string
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--failed] [--operation ID]",
		Short: "Show webhook deliveries: pending, retrying, delivered and dead-lettered",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 10000 {
				return fail(exitBadInput, "--limit: must be 1..10000")
			}
			rdb, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer rdb.Close()
			insp := asynq.NewInspectorFromRedisClient(rdb)
			type lister func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error)
			listers := []lister{insp.ListRetryTasks, insp.ListArchivedTasks}
			if !failed {
				listers = append([]lister{insp.ListPendingTasks, insp.ListActiveTasks, insp.ListScheduledTasks}, append(listers, insp.ListCompletedTasks)...)
			}
			var rows []delivery
			for _, list := range listers {
				infos, err := list(*queue, asynq.PageSize(limit))
				if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
					return fail(exitNoRedis, "list deliveries: %v", err)
				}
				for _, ti := range infos {
					if ti.Type != tasks.TypeWebhookDeliver {
						continue
					}
					var p tasks.WebhookPayload
					if json.Unmarshal(ti.Payload, &p) != nil || (opID != "" && p.OperationID != opID) {
						continue
					}
					host := p.Host
					if u, err := url.Parse(host); err == nil && u.Host != "" {
						host = u.Host
					}
					d := delivery{
						TaskID: ti.ID, OperationID: p.OperationID, Event: p.EventType, EventID: p.EventID,
						Provider:    p.Provider,
						Destination: p.Destination, Host: host, State: ti.State.String(),
						Attempts: ti.Retried + 1, MaxAttempts: ti.MaxRetry + 1, LastError: ti.LastErr,
						LastFailed: ti.LastFailedAt, Completed: ti.CompletedAt,
					}
					if p.Provider != "" {
						d.Account = p.Account
					}
					switch ti.State {
					case asynq.TaskStatePending, asynq.TaskStateActive, asynq.TaskStateRetry:
						// asynq counts a failed attempt in Retried as it
						// schedules the retry.
						d.Attempts = ti.Retried
					}
					if ti.State == asynq.TaskStateScheduled || ti.State == asynq.TaskStateRetry {
						d.NextAttempt = ti.NextProcessAt
					}
					rows = append(rows, d)
				}
			}
			sort.SliceStable(rows, func(i, j int) bool { return rows[i].OperationID < rows[j].OperationID })
			if len(rows) > limit {
				rows = rows[:limit]
			}
			if g.jsonOut() {
				return g.printList(rows)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "OPERATION\tEVENT\tDESTINATION\tHOST\tSTATE\tATTEMPTS\tNEXT/LAST ERROR")
			for _, d := range rows {
				extra := d.LastError
				if !d.NextAttempt.IsZero() {
					extra = "next " + d.NextAttempt.Format(time.RFC3339) + " " + extra
				}
				what := d.OperationID
				if what == "" {
					what = d.Provider + "/" + d.Account // a provider.* event
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", what, d.Event, d.Destination, d.Host, d.State, d.Attempts, d.MaxAttempts, oneLine(extra, 100))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&failed, "failed", false, "only deliveries that are retrying or dead-lettered (archived)")
	f.StringVar(&opID, "operation", "", "only this operation's deliveries")
	f.IntVar(&limit, "limit", 100, "at most this many per state")
	return cmd
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

func newWebhooksReplayCmd(g *globals, queue *string) *cobra.Command {
	var dest string
	var all bool
	cmd := &cobra.Command{
		Use:               "replay <operation-id> [--destination callback|sub:<name>|URL] [--all]",
		Short:             "Send an operation's events again where they were not delivered (--all: everywhere): a new attempt series with the same webhook-id",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeOpIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var byURL *url.URL
			if dest != "" && dest != tasks.DestinationCallback && !strings.HasPrefix(dest, "sub:") {
				u, err := url.Parse(dest)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return fail(exitBadInput, "--destination: must be callback, sub:<name>, or an absolute http(s) URL (the full URL or its origin)")
				}
				byURL = u
			}
			rdb, op, err := g.loadOp(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer rdb.Close()
			if op.Handle == "" && !op.State.Terminal() {
				return fail(exitBadInput, "operation %s has no events yet (state %s)", op.ID, op.State)
			}
			nonce := uuid.NewString()
			rp := tasks.ReplayPayload{OperationID: op.ID, Nonce: nonce, Destination: dest, All: all}
			if byURL != nil && opstore.CallbackOrigin(dest) != strings.TrimSuffix(dest, "/") {
				// A full URL may carry a token: the task names its hash.
				rp.Destination, rp.DestinationSHA256 = "", tasks.DestinationHash(dest)
			} else if byURL != nil {
				rp.Destination = opstore.CallbackOrigin(dest)
			}
			if dest == tasks.DestinationCallback && op.CallbackURL == "" {
				return fail(exitBadInput, "--destination callback: operation %s has no callback_url", op.ID)
			}
			b, _ := json.Marshal(rp)
			client := asynq.NewClientFromRedisClient(rdb)
			if _, err := client.EnqueueContext(cmd.Context(), asynq.NewTask(tasks.TypeWebhookReplay, b), asynq.Queue(*queue), asynq.MaxRetry(5)); err != nil {
				return fail(exitNoRedis, "enqueue replay: %v", err)
			}
			fmt.Fprintf(g.stderr, "replay of %s queued (series %s); follow it with: enqueue webhooks list --operation %s\n", op.ID, nonce, op.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&dest, "destination", "", "only this destination: callback, sub:<name>, or a URL (the full URL, or its origin as status shows it)")
	cmd.Flags().BoolVar(&all, "all", false, "also to destinations that already answered 2xx (by default an event goes again only where it was not delivered)")
	return cmd
}

func newWebhooksEnableCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "enable <subscription-name>",
		Short: "Re-enable a subscription disabled after its receiver answered 410 Gone",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rdb, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer rdb.Close()
			was, err := g.store(rdb).EnableSubscription(cmd.Context(), args[0])
			if err != nil {
				return fail(exitNoRedis, "%v", err)
			}
			if !was {
				disabled, err := g.store(rdb).DisabledSubscriptions(cmd.Context())
				if err != nil {
					return fail(exitNoRedis, "%v", err)
				}
				list := "none"
				if len(disabled) > 0 {
					list = strings.Join(slices.Sorted(maps.Keys(disabled)), ", ")
				}
				return fail(exitBadInput, "no disabled subscription is named %q (disabled: %s; a subscription is disabled only after its receiver answered 410 Gone; names are the worker's webhooks.subscriptions)", args[0], list)
			}
			fmt.Fprintf(g.stderr, "subscription %s enabled\n", args[0])
			return nil
		},
	}
}

func newWebhooksVerifyCmd(g *globals) *cobra.Command {
	var secrets, headers []string
	var bodyFile string
	var tolerance time.Duration
	cmd := &cobra.Command{
		Use:   "verify --secret whsec_... --header 'webhook-id: ...' ... --body-file F",
		Short: "Check a received webhook's signature (exit 0 valid, 1 invalid)",
		Example: `  enqueue webhooks verify --secret "$OPSWORKER_WEBHOOK_SECRET" \
    --header "webhook-id: evt_..." --header "webhook-timestamp: 1795394688" \
    --header "webhook-signature: v1,..." --body-file body.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(secrets) == 0 {
				return fail(exitBadInput, "--secret: required")
			}
			var keys []webhookverify.Secret
			for i, s := range secrets {
				k, err := webhookverify.ParseSecret(s)
				if err != nil {
					return fail(exitBadInput, "--secret #%d: %v", i+1, err)
				}
				keys = append(keys, k)
			}
			h := http.Header{}
			for _, line := range headers {
				name, value, ok := strings.Cut(line, ":")
				if !ok {
					return fail(exitBadInput, "--header %q: want 'name: value'", line)
				}
				h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
			if bodyFile == "" {
				return fail(exitBadInput, "--body-file: required (- for stdin)")
			}
			var body []byte
			var err error
			if bodyFile == "-" {
				body, err = io.ReadAll(io.LimitReader(g.stdin, 10<<20))
			} else {
				body, err = os.ReadFile(bodyFile)
			}
			if err != nil {
				return fail(exitBadInput, "--body-file: %v", err)
			}
			verr := webhookverify.Verify(h, body, tolerance, time.Now(), keys...)
			if g.jsonOut() {
				out := struct {
					Valid     bool   `json:"valid"`
					WebhookID string `json:"webhook_id"`
					Error     string `json:"error,omitempty"`
				}{Valid: verr == nil, WebhookID: h.Get(webhookverify.HeaderID)}
				if verr != nil {
					out.Error = verr.Error()
				}
				if err := json.NewEncoder(g.stdout).Encode(out); err != nil {
					return err
				}
				if verr != nil {
					return &exitError{code: exitOpFailed} // said in the JSON
				}
				return nil
			}
			if verr != nil {
				return &exitError{code: exitOpFailed, err: verr}
			}
			fmt.Fprintf(g.stdout, "valid: %s\n", h.Get(webhookverify.HeaderID))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&secrets, "secret", nil, "signing secret (whsec_...); repeat while rotating")
	f.StringArrayVar(&headers, "header", nil, "a received header, 'name: value'; repeat")
	f.StringVar(&bodyFile, "body-file", "", "the exact received body (- for stdin)")
	f.DurationVar(&tolerance, "tolerance", webhookverify.DefaultTolerance, "accepted clock difference")
	return cmd
}
