package main

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsworker/opsworker/internal/opstore"
)

// completionTimeout bounds the look-up of recent operations a completion
// makes: a slow or absent API or Redis completes nothing.
const completionTimeout = 2 * time.Second

// completeOpIDs completes an operation id from the 20 most recent
// operations, through the API or Redis, whichever mode is on. It never
// writes an error: a completion prints candidates only.
func (g *globals) completeOpIDs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return g.recentOpIDs(cmd, toComplete), cobra.ShellCompDirectiveNoFileComp
}

func (g *globals) recentOpIDs(cmd *cobra.Command, prefix string) []string {
	// Nothing from here goes to the terminal.
	stdout, stderr := g.stdout, g.stderr
	g.stdout, g.stderr = io.Discard, io.Discard
	defer func() { g.stdout, g.stderr = stdout, stderr }()
	g.cmd = cmd
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, completionTimeout)
	defer cancel()
	ops, _, _, err := g.listOps(ctx, cmd, opstore.Filter{}, 20, false)
	if err != nil {
		return nil
	}
	var out []string
	for _, op := range ops {
		if strings.HasPrefix(op.ID, prefix) {
			out = append(out, op.ID+"\t"+op.Kind+" "+string(op.State))
		}
	}
	return out
}
