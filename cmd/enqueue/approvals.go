package main

import (
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// newApproveCmd and newRejectCmd decide an operation waiting for its
// approval. The CLI's name (--as) is recorded, unauthenticated: whoever
// can reach Redis can do anything, so the HTTP API's tokens are the
// approvals to rely on.
func newApproveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "approve <operation-id>",
		Short:             "Approve an operation waiting in pending_approval (not your own): it goes on to launch",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeOpIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if c, err := g.api(cmd); err != nil {
				return err
			} else if c != nil {
				op, _, err := c.Approve(cmd.Context(), args[0])
				if isNotFound(err) {
					return fail(exitBadInput, "operation %s: not found", args[0])
				}
				if err != nil {
					return g.apiFail("approve "+args[0], err)
				}
				return g.approved(*op)
			}
			rdb, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer rdb.Close()
			op, err := tasks.Approve(cmd.Context(), g.store(rdb), asynq.NewClientFromRedisClient(rdb), args[0], tasks.Declared(ops.ViaCLI, g.as))
			switch {
			case errors.Is(err, opstore.ErrNotFound):
				return fail(exitBadInput, "operation %s: not found", args[0])
			case errors.Is(err, tasks.ErrOwnApproval), errors.Is(err, tasks.ErrNotPending):
				return fail(exitBadInput, "approve %s: %v", args[0], err)
			case err != nil:
				return fail(exitNoRedis, "approve: %v", err)
			}
			return g.approved(op.View())
		},
	}
}

func (g *globals) approved(op ops.Operation) error {
	if g.jsonOut() {
		return g.printJSON(op)
	}
	fmt.Fprintf(g.stdout, "approved %s (%s on %s, %s); it is %s\n", op.ID, op.Kind, op.Provider, op.Resource, op.State)
	return nil
}

func newRejectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "reject <operation-id>",
		Short:             "Reject an operation waiting in pending_approval: it ends canceled, saying who rejected it",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeOpIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if c, err := g.api(cmd); err != nil {
				return err
			} else if c != nil {
				op, _, err := c.Reject(ctx, args[0])
				if isNotFound(err) {
					return fail(exitBadInput, "operation %s: not found", args[0])
				}
				if err != nil {
					return g.apiFail("reject "+args[0], err)
				}
				fmt.Fprintf(g.stderr, "rejection of %s queued\n", op.ID)
				return nil
			}
			rdb, op, err := g.loadOp(ctx, args[0])
			if err != nil {
				return err
			}
			defer rdb.Close()
			if op.State != opstore.StatePendingApproval {
				return fail(exitBadInput, "reject %s: %v (it is %s)", op.ID, tasks.ErrNotPending, op.State)
			}
			err = tasks.RequestCancel(ctx, asynq.NewClientFromRedisClient(rdb), g.queue,
				tasks.CancelPayload{OperationID: op.ID, Reject: true, By: tasks.Declared(ops.ViaCLI, g.as)})
			if err != nil {
				return fail(exitNoRedis, "enqueue reject: %v", err)
			}
			fmt.Fprintf(g.stderr, "rejection of %s queued\n", op.ID)
			return nil
		},
	}
}
