package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/ops"
)

// Op is an operation with its params decoded, once, into the kind's
// params type P (a pointer type such as *ops.ServerInstallParams). The
// record's fields are the embedded Operation's; Params is the typed value.
type Op[P ops.Params] struct {
	*opstore.Operation
	Params P
	store  *opstore.Store
}

// Lookup reads another operation, for params that name one
// (operation_id). An unknown id is a *ValidationError naming field.
func (o Op[P]) Lookup(ctx context.Context, field, id string) (*opstore.Operation, error) {
	if o.store == nil {
		return nil, errors.New("tasks: no operation store to look operations up in")
	}
	ref, err := o.store.Get(ctx, id)
	if errors.Is(err, opstore.ErrNotFound) {
		return nil, &ValidationError{Field: field, Message: "no operation " + id + " (unknown, or past its retention)"}
	}
	return ref, err
}

// KindExecutor runs one (kind, provider) against the provider API with
// typed params. It makes one provider call per method; the handlers own
// retries. Optional capabilities are the interfaces below (Locking,
// Preflighting, …); Register detects them.
type KindExecutor[P ops.Params] interface {
	// Launch starts the operation and returns the provider's handle. An
	// error that is a *providers.Error whose NotProcessed is true (429,
	// 503, no connection) tells the worker the provider changed nothing,
	// so the retry launches without reconciling: a Launch that changed
	// something before such an error must not return it unwrapped.
	Launch(ctx context.Context, op Op[P], opts LaunchOptions) (handle string, err error)
	// Poll checks the operation's status at the provider once.
	Poll(ctx context.Context, op Op[P]) (PollResult, error)
}

// LaunchOptions carries what the pipeline offers a launch.
type LaunchOptions struct {
	// CallbackURL is where the provider may report completion (Leaseweb's
	// callbackUrl); "" when callbacks are not configured. A callback only
	// triggers an early poll.
	CallbackURL string
}

// PollResult is one status check.
type PollResult struct {
	// Status is the provider's status value, stored on the record.
	Status string
	// Done is true for a terminal status; Succeeded tells which outcome.
	Done, Succeeded bool
	// Unknown is true when the status value is not one the provider
	// documents; it is treated as still running.
	Unknown bool
	// Result is stored on the record (and sent in the webhook).
	Result json.RawMessage
	// Error explains a failed outcome.
	Error string
	// Canceled marks a failed outcome that was a cancellation at the
	// provider (it ends the operation canceled when one was requested).
	Canceled bool
	// Progress is stored on the record while running (shown by `enqueue
	// wait`).
	Progress json.RawMessage
}

// ResultPreflighting is Preflighting whose checks also read what the
// operation's result reports from before the change (an auto scaling
// group's amounts). The worker stores it on the record with the launch
// attempt, before the launch call, so a retry that adopts an interrupted
// launch still has it. An executor implements this or Preflighting.
type ResultPreflighting[P ops.Params] interface {
	PreflightResult(ctx context.Context, op Op[P]) (json.RawMessage, error)
}

// Wait asks the worker to run the launch again after d without counting
// a failure: the provider is busy with a step the launch waits for (an
// old snapshot being deleted).
func Wait(d time.Duration, reason error) error { return &waitError{Delay: d, Err: reason} }

// BatchPolling is an executor whose provider lists many jobs in one
// call: operations with the same BatchKey (provider and account) are
// polled together (see poller.Batcher).
type BatchPolling[P ops.Params] interface {
	BatchKey(op Op[P]) string
	// PollBatch returns the results of the handles it found, by handle.
	// A handle it does not return falls back to Poll.
	PollBatch(ctx context.Context, account string, handles []string) (map[string]PollResult, error)
}

// wanted is the set of handles a batch looks for.
func wanted(handles []string) map[string]bool {
	want := make(map[string]bool, len(handles))
	for _, h := range handles {
		want[h] = true
	}
	return want
}

// listBatch is PollBatch over a paged list: it reads pages of page items
// from offset 0 until every handle is found, the list ends (list says no
// more follow), or maxPages were read, and maps every handle it finds
// (handle names an item's handle, result says what the item means).
// After the first page it reads up to listParallel pages at a time (the
// provider client's rate limit still applies to each).
func listBatch[T any](handles []string, page, maxPages int, list func(offset int) (items []T, more bool, err error),
	handle func(*T) string, result func(*T) PollResult) (map[string]PollResult, error) {
	want := wanted(handles)
	out := map[string]PollResult{}
	type answer struct {
		items []T
		more  bool
		err   error
	}
	next, wave := 0, 1
	for next < maxPages && len(out) < len(want) {
		n := min(wave, maxPages-next)
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := &answers[i]
				a.items, a.more, a.err = list((next + i) * page)
			}()
		}
		wg.Wait()
		next += n
		end := false
		for _, a := range answers {
			if a.err != nil {
				return nil, a.err
			}
			for i := range a.items {
				if h := handle(&a.items[i]); want[h] {
					out[h] = result(&a.items[i])
				}
			}
			end = end || !a.more
		}
		if end {
			break
		}
		wave = listParallel
	}
	return out, nil
}

// listParallel is how many pages of a batch list are read at a time.
const listParallel = 4

// SlotUsing is an executor whose provider caps outstanding work per
// account (Edgio: 50 purge requests): an operation needs Slots(op) of
// SlotLimit slots of SlotKey(op) from launch to its final state, and
// waits (it never fails for it) while they are taken.
type SlotUsing[P ops.Params] interface {
	SlotKey(op Op[P]) string
	Slots(op Op[P]) int
	SlotLimit() int
}

// Locking is an executor whose operations need a resource to themselves
// (a server): the worker holds LockKey across replicas from launch to the
// final state.
type Locking[P ops.Params] interface {
	LockKey(op Op[P]) string
}

// Preflighting checks the provider before a launch; it returns a
// *BusyError when the resource is busy.
type Preflighting[P ops.Params] interface {
	Preflight(ctx context.Context, op Op[P]) error
}

// Reconciling finds what an interrupted launch attempt (begun at since)
// created at the provider, so the launch is adopted, never repeated.
type Reconciling[P ops.Params] interface {
	Reconcile(ctx context.Context, op Op[P], since time.Time) (handle string, found bool, err error)
}

// Canceling stops a running operation at the provider.
type Canceling[P ops.Params] interface {
	Cancel(ctx context.Context, op Op[P], expire bool) error
}

// BusyError says the resource an operation needs is taken.
type BusyError struct {
	Resource string
	Holder   string
}

func (e *BusyError) Error() string { return e.Resource + " busy with " + e.Holder }

// ExecutorKey selects an Executor: a (kind, provider).
type ExecutorKey struct{ Kind, Provider string }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return &permanentError{err} }

// IsPermanent reports whether err will fail again if retried: validation
// errors, errors marked Permanent and non-retryable provider errors.
func IsPermanent(err error) bool {
	var pe *permanentError
	var ve *ValidationError
	if errors.As(err, &pe) || errors.As(err, &ve) {
		return true
	}
	var perr *providers.Error
	if errors.As(err, &perr) {
		return !perr.Retryable()
	}
	return false
}
