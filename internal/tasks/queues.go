package tasks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/opstore"
)

// providerQueuePrefix starts the name of every provider's queue.
const providerQueuePrefix = "ops:"

// ProviderQueue is the asynq queue of provider's operation tasks
// (launches and polls): only workers that serve provider listen on it,
// so a worker never takes work it cannot do.
func ProviderQueue(provider string) string { return providerQueuePrefix + provider }

// IsProviderQueue reports whether name is a provider's queue (such names
// are reserved: worker.queues cannot list them).
func IsProviderQueue(name string) bool { return strings.HasPrefix(name, providerQueuePrefix) }

// ProviderQueues maps the queue of each provider in weights to its
// weight (at least 1), for asynq's server config.
func ProviderQueues(providers []string, weights map[string]int) map[string]int {
	out := make(map[string]int, len(providers))
	for _, p := range providers {
		w := weights[p]
		if w < 1 {
			w = 1
		}
		out[ProviderQueue(p)] = w
	}
	return out
}

// ServedRegister says whether a running worker serves a provider account
// (flow.Served).
type ServedRegister interface {
	Serves(ctx context.Context, provider, account string) (bool, []string, error)
}

// UnservedGrace is how long a queued operation waits before the API and
// the CLI say that no running worker serves its account: a worker that
// just started may not have announced itself yet.
const UnservedGrace = 10 * time.Second

// NoteUnserved makes a queued operation's last_error say why it waits
// when no running worker serves its provider account: its tasks sit in
// the provider's queue, where nobody takes them, until one does. The
// record is not changed; op is, for display.
func NoteUnserved(ctx context.Context, served ServedRegister, op *opstore.Operation, now time.Time) {
	if served == nil || op.State != opstore.StateQueued || now.Sub(op.CreatedAt) < UnservedGrace {
		return
	}
	ok, pairs, err := served.Serves(ctx, op.Provider, op.Account)
	if err != nil || ok {
		return
	}
	op.LastError = fmt.Sprintf("waiting: no running worker serves account %q of %s (served now: %s)", op.Account, op.Provider, flow.Join(pairs))
}
