package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	registerKind(Kind{Kind: TypeCDNInvalidate, Provider: ops.ProviderLeaseweb,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor { return NewLeasewebInvalidate(c.Leaseweb) })
		},
		Policy: poller.Policy{Initial: 5 * time.Second, Multiplier: 1.5, Max: 30 * time.Second, Jitter: 0.1, Deadline: 30 * time.Minute}})
}

// LeasewebInvalidate runs cdn:invalidate, and cdn:purge on leaseweb
// (Leaseweb's purge is its invalidation), on Leaseweb CDN v2: POST
// /cdn/v2/invalidations, then the action until FINISHED. It polls in
// batches (see BatchPoll) when many are in flight; both kinds share an
// account's batch.
type LeasewebInvalidate[P FilesParams] struct{ clients lwClients }

// FilesParams are the params of a kind that names CDN URLs.
type FilesParams interface {
	ops.Params
	URLs() []string
}

// NewLeasewebInvalidate returns the cdn:invalidate executor.
func NewLeasewebInvalidate(clients map[string]*leaseweb.Client) Executor {
	return Register[ops.InvalidateParams](&LeasewebInvalidate[*ops.InvalidateParams]{clients: clients})
}

// Launch submits the invalidation; the handle is the action id.
func (l *LeasewebInvalidate[P]) Launch(ctx context.Context, op Op[P], _ LaunchOptions) (string, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return "", err
	}
	a, err := c.CDN.Invalidate(ctx, op.Params.URLs())
	if err != nil {
		return "", err
	}
	if a.ID == "" {
		return "", fmt.Errorf("leaseweb: invalidation answered without an action id")
	}
	return a.ID, nil
}

// Poll reads the action once.
func (l *LeasewebInvalidate[P]) Poll(ctx context.Context, op Op[P]) (PollResult, error) {
	c, err := l.clients.get(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	a, err := c.CDN.GetAction(ctx, op.Handle)
	if err != nil {
		return PollResult{}, err
	}
	return actionResult(a), nil
}

// actionResult maps an action to a poll result. FINISHED with any URL not
// SUCCESS fails, naming the URLs; an unknown status is never success.
func actionResult(a *leaseweb.Action) PollResult {
	res := PollResult{Status: a.Status}
	var urls []ops.InvalidationURLStatus
	invID := ""
	if a.Resource != nil {
		if a.Resource.URLStatus != nil {
			urls = make([]ops.InvalidationURLStatus, 0, len(a.Resource.URLStatus))
		}
		for _, u := range a.Resource.URLStatus {
			urls = append(urls, ops.InvalidationURLStatus(u))
		}
		invID = a.Resource.InvalidationID
	}
	res.Result, _ = json.Marshal(ops.InvalidateResult{ActionID: a.ID, InvalidationID: invID, Status: a.Status, URLStatus: urls})
	switch a.Status {
	case leaseweb.ActionPending:
	case leaseweb.ActionFinished:
		res.Done = true
		var failed []string
		for _, u := range urls {
			if u.Status != "SUCCESS" {
				name := u.URL
				if name == "" {
					name = u.DistributionGroupID
				}
				failed = append(failed, fmt.Sprintf("%s (%s: %s)", name, u.Status, u.Message))
			}
		}
		if len(failed) > 0 {
			res.Error = "invalidation finished with failed URLs: " + strings.Join(failed, ", ")
		} else {
			res.Succeeded = true
		}
	default:
		res.Unknown = true
	}
	return res
}

// BatchKey groups invalidations by account.
func (l *LeasewebInvalidate[P]) BatchKey(op Op[P]) string {
	return "leaseweb-cdn:" + op.Account
}

// PollBatch lists the account's INVALIDATION actions, newest first, in
// pages of 500 until every handle is found or the list ends (at most as
// many pages as the handles need, plus ten), and maps every handle it
// finds.
func (l *LeasewebInvalidate[P]) PollBatch(ctx context.Context, account string, handles []string) (map[string]PollResult, error) {
	c, err := l.clients.get(account)
	if err != nil {
		return nil, err
	}
	const page = 500
	return listBatch(handles, page, len(handles)/page+10, func(offset int) ([]leaseweb.Action, bool, error) {
		actions, total, err := c.CDN.ListActions(ctx, "INVALIDATION", page, offset)
		return actions, len(actions) == page && offset+page < total, err
	}, func(a *leaseweb.Action) string { return a.ID }, actionResult)
}
