package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opsworker/opsworker/internal/providers/edgio"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	registerKind(Kind{Kind: TypeCDNPurge, Provider: ops.ProviderEdgio, Policy: purgePolicy,
		New: func(c Clients) Executor {
			return when(c.Edgio != nil, func() Executor { return NewEdgioPurge(c.Edgio) })
		}})
}

// EdgioAccount is one Edgio account: its client and account number.
type EdgioAccount struct {
	Client        *edgio.Client
	AccountNumber string
}

// EdgioPurge runs cdn:purge on Edgio: one PUT per media path, then GETs
// until every one has a CompleteDate. An account has at most 50
// outstanding purges: operations beyond wait for room (SlotUser).
type EdgioPurge struct{ accounts map[string]EdgioAccount }

// NewEdgioPurge returns the executor.
func NewEdgioPurge(accounts map[string]EdgioAccount) Executor {
	return Register[ops.EdgioPurgeParams](&EdgioPurge{accounts: accounts})
}

func (e *EdgioPurge) account(name string) (EdgioAccount, error) {
	a, ok := e.accounts[name]
	if !ok {
		return a, Permanent(fmt.Errorf("account %q is not configured for provider edgio (providers.edgio.accounts)", name))
	}
	return a, nil
}

// mediaType is the purge's media type, http_large when not given.
func mediaType(p *ops.EdgioPurgeParams) string {
	if p.MediaType == "" {
		return "http_large"
	}
	return p.MediaType
}

// SlotKey is the account; Slots the number of paths; SlotLimit Edgio's 50.
func (e *EdgioPurge) SlotKey(op Op[*ops.EdgioPurgeParams]) string { return "edgio:" + op.Account }

// Slots is how many purge requests the operation makes.
func (e *EdgioPurge) Slots(op Op[*ops.EdgioPurgeParams]) int { return len(op.Params.MediaPath) }

// SlotLimit is Edgio's outstanding limit.
func (e *EdgioPurge) SlotLimit() int { return edgio.MaxOutstanding }

// Launch submits one purge per path; the handle lists their ids.
func (e *EdgioPurge) Launch(ctx context.Context, op Op[*ops.EdgioPurgeParams], _ LaunchOptions) (string, error) {
	p := op.Params
	a, err := e.account(op.Account)
	if err != nil {
		return "", err
	}
	ids := make([]string, 0, len(p.MediaPath))
	for _, path := range p.MediaPath {
		pr, err := a.Client.CreatePurge(ctx, a.AccountNumber, &edgio.PurgeRequest{MediaPath: path, MediaType: edgio.MediaTypes[mediaType(p)]})
		if err != nil {
			// Purges are harmless to repeat: a retry submits them all again.
			return "", err
		}
		ids = append(ids, pr.ID)
	}
	return strings.Join(ids, ","), nil
}

// Poll reads every purge of the operation; done when all completed.
func (e *EdgioPurge) Poll(ctx context.Context, op Op[*ops.EdgioPurgeParams]) (PollResult, error) {
	a, err := e.account(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	ids := strings.Split(op.Handle, ",")
	done := 0
	var purges []ops.EdgioPurge
	for _, id := range ids {
		pr, err := a.Client.GetPurge(ctx, a.AccountNumber, id)
		if err != nil {
			return PollResult{}, err
		}
		purges = append(purges, ops.EdgioPurge(*pr))
		if pr.Done() {
			done++
		}
	}
	res := PollResult{Status: fmt.Sprintf("%d/%d complete", done, len(ids))}
	res.Progress, _ = json.Marshal(ops.Progress{Percentage: done * 100 / len(ids), Task: res.Status})
	res.Result, _ = json.Marshal(ops.EdgioPurgeResult{Purges: purges})
	if done == len(ids) {
		res.Done, res.Succeeded = true, true
	}
	return res, nil
}
