package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opsworker/opsworker/client"
	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/ops"
)

// newAccountCmd pauses and resumes provider accounts: while an account is
// paused, every worker holds its provider calls back and its operations
// wait, without using attempts.
func newAccountCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Pause or resume a provider account on every worker",
	}
	state := func(pause bool) *cobra.Command {
		verb := map[bool]string{true: "pause", false: "resume"}[pause]
		return &cobra.Command{
			Use:       verb + " <provider> <account>",
			Short:     map[bool]string{true: "Hold an account's provider calls back until it is resumed", false: "Let a paused account's calls go out again"}[pause],
			Args:      cobra.ExactArgs(2),
			ValidArgs: ops.Providers(),
			RunE: func(cmd *cobra.Command, args []string) error {
				provider, account := args[0], args[1]
				if !slices.Contains(ops.Providers(), provider) {
					return fail(exitBadInput, "provider: unknown %q (known: %s)", provider, strings.Join(ops.Providers(), ", "))
				}
				if c, err := g.api(cmd); err != nil {
					return err
				} else if c != nil {
					call := c.ResumeAccount
					if pause {
						call = c.PauseAccount
					}
					res, _, err := call(cmd.Context(), provider, account)
					if err != nil {
						return g.apiFail(verb, err)
					}
					return g.printPause(*res)
				}
				rdb, err := g.connect(cmd.Context())
				if err != nil {
					return err
				}
				defer rdb.Close()
				p := flow.NewPauses(rdb, g.keyPrefix)
				_, was, err := p.PausedBy(cmd.Context(), provider, account)
				if err != nil {
					return fail(exitNoRedis, "redis: %v", err)
				}
				if pause {
					who := "the CLI"
					if u := os.Getenv("USER"); u != "" {
						who = "the CLI (" + u + ", unauthenticated)"
					}
					err = p.Pause(cmd.Context(), provider, account, who)
				} else {
					_, err = p.Resume(cmd.Context(), provider, account)
				}
				if err != nil {
					return fail(exitNoRedis, "redis: %v", err)
				}
				return g.printPause(client.AccountPause{Provider: provider, Account: account, Paused: pause, WasPaused: was})
			},
		}
	}
	cmd.AddCommand(state(true), state(false))
	return cmd
}

func (g *globals) printPause(p client.AccountPause) error {
	if g.jsonOut() {
		return g.printJSON(p)
	}
	word := map[bool]string{true: "paused", false: "running"}
	fmt.Fprintf(g.stdout, "%s on %s: %s (was %s)\n", p.Account, p.Provider, word[p.Paused], word[p.WasPaused])
	return nil
}
