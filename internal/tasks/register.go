package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/ops"
)

// Executor is a registered kind's executor, as the pipeline runs it: Register
// makes one from a KindExecutor. The pipeline decodes an operation's
// params once per task (params) and hands the value to each step.
type Executor interface {
	// params decodes op's params into the kind's type.
	params(op *opstore.Operation) (any, error)
	launch(ctx context.Context, op *opstore.Operation, p any, opts LaunchOptions) (string, error)
	poll(ctx context.Context, op *opstore.Operation, p any) (PollResult, error)
	// lockKey is the resource the operation needs to itself ("" none).
	lockKey(op *opstore.Operation, p any) string
	// slots are the provider's outstanding-work slots it takes (n 0: none).
	slots(op *opstore.Operation, p any) (key string, n, limit int)
	// preflight checks the provider before a launch; before is the state
	// the result keeps from before the change.
	preflight(ctx context.Context, op *opstore.Operation, p any) (before json.RawMessage, err error)
	reconciles() bool
	reconcile(ctx context.Context, op *opstore.Operation, p any, since time.Time) (string, bool, error)
	cancels() bool
	cancel(ctx context.Context, op *opstore.Operation, p any, expire bool) error
	// batchKey groups operations polled together ("" polls alone).
	batchKey(op *opstore.Operation, p any) string
	pollBatch(ctx context.Context, account string, handles []string) (map[string]PollResult, error)
	// useStore lets the executor's operations read other operations
	// (Op.Lookup); NewWorker calls it.
	useStore(s *opstore.Store)
}

// Register makes the Executor of a typed KindExecutor, with the optional
// capabilities it implements.
func Register[T any, P interface {
	*T
	ops.Params
}](e KindExecutor[P]) Executor {
	r := &registered[P]{e: e, newP: func() P { return P(new(T)) }}
	r.lk, _ = e.(Locking[P])
	r.su, _ = e.(SlotUsing[P])
	r.pf, _ = e.(Preflighting[P])
	r.rpf, _ = e.(ResultPreflighting[P])
	r.rc, _ = e.(Reconciling[P])
	r.cn, _ = e.(Canceling[P])
	r.bp, _ = e.(BatchPolling[P])
	return r
}

type registered[P ops.Params] struct {
	e    KindExecutor[P]
	newP func() P
	lk   Locking[P]
	su   SlotUsing[P]
	pf   Preflighting[P]
	rpf  ResultPreflighting[P]
	rc   Reconciling[P]
	cn   Canceling[P]
	bp   BatchPolling[P]
	// store is where Op.Lookup reads (nil: lookups fail).
	store *opstore.Store
}

func (r *registered[P]) useStore(s *opstore.Store) { r.store = s }

// params decodes strictly. A record whose params the kind's type no
// longer accepts (written by an earlier version) is read leniently once
// its launch is behind it, so a running operation is still followed.
func (r *registered[P]) params(op *opstore.Operation) (any, error) {
	p := r.newP()
	err := decodeParams(op.Params, p)
	if err != nil && op.State != opstore.StateQueued && op.State != opstore.StateLaunching {
		p = r.newP()
		if json.Unmarshal(op.Params, p) == nil {
			return p, nil
		}
	}
	if err != nil {
		return nil, Permanent(fmt.Errorf("params of operation %s: %w", op.ID, err))
	}
	return p, nil
}

func (r *registered[P]) op(op *opstore.Operation, p any) Op[P] {
	tp, _ := p.(P)
	return Op[P]{Operation: op, Params: tp, store: r.store}
}

func (r *registered[P]) launch(ctx context.Context, op *opstore.Operation, p any, opts LaunchOptions) (string, error) {
	return r.e.Launch(ctx, r.op(op, p), opts)
}

func (r *registered[P]) poll(ctx context.Context, op *opstore.Operation, p any) (PollResult, error) {
	return r.e.Poll(ctx, r.op(op, p))
}

func (r *registered[P]) lockKey(op *opstore.Operation, p any) string {
	if r.lk == nil {
		return ""
	}
	return r.lk.LockKey(r.op(op, p))
}

func (r *registered[P]) slots(op *opstore.Operation, p any) (string, int, int) {
	if r.su == nil {
		return "", 0, 0
	}
	o := r.op(op, p)
	return r.su.SlotKey(o), r.su.Slots(o), r.su.SlotLimit()
}

func (r *registered[P]) preflight(ctx context.Context, op *opstore.Operation, p any) (json.RawMessage, error) {
	switch {
	case r.rpf != nil:
		return r.rpf.PreflightResult(ctx, r.op(op, p))
	case r.pf != nil:
		return nil, r.pf.Preflight(ctx, r.op(op, p))
	}
	return nil, nil
}

func (r *registered[P]) reconciles() bool { return r.rc != nil }

func (r *registered[P]) reconcile(ctx context.Context, op *opstore.Operation, p any, since time.Time) (string, bool, error) {
	if r.rc == nil {
		return "", false, nil
	}
	return r.rc.Reconcile(ctx, r.op(op, p), since)
}

func (r *registered[P]) cancels() bool { return r.cn != nil }

func (r *registered[P]) cancel(ctx context.Context, op *opstore.Operation, p any, expire bool) error {
	if r.cn == nil {
		return Permanent(fmt.Errorf("%s on %s cannot be canceled", op.Kind, op.Provider))
	}
	return r.cn.Cancel(ctx, r.op(op, p), expire)
}

func (r *registered[P]) batchKey(op *opstore.Operation, p any) string {
	if r.bp == nil {
		return ""
	}
	return r.bp.BatchKey(r.op(op, p))
}

func (r *registered[P]) pollBatch(ctx context.Context, account string, handles []string) (map[string]PollResult, error) {
	if r.bp == nil {
		return nil, nil
	}
	return r.bp.PollBatch(ctx, account, handles)
}
