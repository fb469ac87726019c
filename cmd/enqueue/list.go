package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/opsworker/opsworker/client"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/ops"
)

// listPages bounds the pages one list follows without --all.
const listPages = 100

// listOps lists the operations matching f from f.After on, newest first:
// up to bound (0: no bound, with all). Without all it stops after
// listPages pages (short: fewer than bound were found). next continues
// the list ("" at its end).
func (g *globals) listOps(ctx context.Context, cmd *cobra.Command, f opstore.Filter, bound int, all bool) (out []ops.Operation, next string, short bool, err error) {
	pageSize := func(max int) int {
		if bound > 0 {
			return min(bound-len(out), max)
		}
		return max
	}
	c, err := g.api(cmd)
	if err != nil {
		return nil, "", false, err
	}
	if c != nil {
		o := client.ListOptions{State: f.State, Kind: f.Kind, Provider: f.Provider, Labels: f.Labels, Resource: f.Resource, Actor: f.Actor,
			Since: f.Since, Until: f.Until, Cursor: f.After}
		for pages := 1; ; pages++ {
			o.Limit = pageSize(500)
			page, resp, err := c.List(ctx, o)
			if err != nil {
				return nil, "", false, g.apiFail("list", err)
			}
			out = append(out, page...)
			next = resp.NextCursor
			if next == "" || (bound > 0 && len(out) >= bound) {
				return out, next, false, nil
			}
			if !all && pages >= listPages {
				return out, next, true, nil
			}
			o.Cursor = next
		}
	}
	rdb, err := g.connect(ctx)
	if err != nil {
		return nil, "", false, err
	}
	defer rdb.Close()
	store := g.store(rdb)
	for {
		f.Limit = pageSize(1000)
		got, nxt, err := store.ListUpTo(ctx, f)
		if errors.Is(err, opstore.ErrBadCursor) {
			return nil, "", false, fail(exitBadInput, "--cursor: not a cursor of this store's list")
		}
		if err != nil {
			return nil, "", false, fail(exitNoRedis, "%v", err)
		}
		for _, op := range got {
			out = append(out, op.View())
		}
		if nxt == "" || (bound > 0 && len(out) >= bound) {
			return out, nxt, false, nil
		}
		if !all {
			// ListUpTo stopped at its 100 pages.
			return out, nxt, true, nil
		}
		f.After = nxt
	}
}
