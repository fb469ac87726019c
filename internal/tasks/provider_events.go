package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/ops"
)

// isProviderEvent reports whether event belongs to no operation: a
// provider's (provider.*) or a runbook run's (runbook.*).
func isProviderEvent(event string) bool {
	return strings.HasPrefix(event, "provider.") || strings.HasPrefix(event, "runbook.")
}

// ProviderEventID is the webhook-id of a provider.* event: one per
// account, outage (the moment its breaker opened) and event type, so the
// replica that saw the change and any retry agree on it.
func ProviderEventID(event, provider, account string, openedAt time.Time) string {
	return fmt.Sprintf("evt_%s_%s_%s_%d", strings.ReplaceAll(event, ".", "_"), provider, account, openedAt.UnixMilli())
}

// matchesProvider reports whether the subscription asked for event of
// provider: provider.* events go only to subscriptions that name them.
func (s Subscription) matchesProvider(provider, event string) bool {
	return slices.Contains(s.Events, event) && (provider == "" || len(s.Providers) == 0 || slices.Contains(s.Providers, provider))
}

// ProviderChanged sends provider.degraded when a provider account's
// breaker opens from closed, and provider.recovered when it closes, to
// the subscriptions that ask for them. The breaker reports each change
// once, from the replica that made it, so each event is sent once; the
// event id and the tasks' ids make a repeat a no-op.
func (w *Worker) ProviderChanged(ch flow.Change) {
	var event string
	data := ops.ProviderHealth{Provider: ch.Provider, Account: ch.Account, DegradedAt: ch.OpenedAt.UTC()}
	now := w.p.cfg.Now().UTC()
	switch {
	case ch.Degraded():
		event, data.Breaker = ops.EventProviderDegraded, flow.Open
		data.Reason = "retryable failures (5xx, timeouts, connection errors) reached the breaker's threshold; calls wait until a probe succeeds"
	case ch.Recovered():
		event, data.Breaker = ops.EventProviderRecovered, flow.Closed
		data.Reason = "a probe call succeeded"
		data.RecoveredAt = &now
	default:
		return
	}
	if ch.OpenedAt.IsZero() || ch.OpenedAt.UnixMilli() <= 0 {
		data.DegradedAt = now
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.p.enqueueProviderEvent(ctx, event, data, now); err != nil {
		w.p.log.Error("send "+event, zap.String("provider", ch.Provider), zap.String("account", ch.Account), zap.Error(err))
	}
}

func (pl *pipeline) enqueueProviderEvent(ctx context.Context, event string, data ops.ProviderHealth, ts time.Time) error {
	id := ProviderEventID(event, data.Provider, data.Account, data.DegradedAt)
	return pl.enqueueSubscriptionEvent(ctx, event, id, data.Provider, data.Account, data, ts, "")
}

// enqueueSubscriptionEvent sends an event that belongs to no operation
// (provider.*, runbook.*) to the subscriptions that name it: its body is
// kept for the webhook retention, each delivery is its own task, and id
// makes a repeat a no-op. provider ("" for runbook events) is matched
// against a subscription's providers filter. callback ("" none) is a
// runbook run's callback URL, which gets the event too.
func (pl *pipeline) enqueueSubscriptionEvent(ctx context.Context, event, id, provider, account string, data any, ts time.Time, callback string) error {
	var dests []string
	for _, s := range pl.cfg.Webhooks.Subscriptions {
		if s.matchesProvider(provider, event) {
			dests = append(dests, destSub(s.Name))
		}
	}
	if callback != "" {
		dests = append(dests, destCallback)
	}
	if len(dests) == 0 {
		return nil
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	body, err := json.Marshal(ops.Event{ID: id, Type: event, Timestamp: ts.UTC(), Data: raw})
	if err != nil {
		return err
	}
	if err := pl.cfg.Store.SaveProviderEvent(ctx, id, body, pl.cfg.Webhooks.Retention); err != nil {
		return err
	}
	if callback != "" {
		if err := pl.cfg.Store.SaveEventCallback(ctx, id, callback, pl.cfg.Webhooks.Retention); err != nil {
			return err
		}
	}
	for _, dest := range dests {
		host := opstore.CallbackOrigin(callback)
		for _, s := range pl.cfg.Webhooks.Subscriptions {
			if destSub(s.Name) == dest {
				host = opstore.CallbackOrigin(s.URL)
			}
		}
		payload, _ := json.Marshal(WebhookPayload{Provider: provider, Account: account, EventID: id, EventType: event,
			Destination: dest, Host: host})
		_, err := pl.cfg.Enqueuer.EnqueueContext(ctx, asynq.NewTask(TypeWebhookDeliver, payload),
			asynq.TaskID(id+":wh:"+shortHash(dest)),
			asynq.Queue(pl.cfg.Webhooks.Queue),
			asynq.MaxRetry(len(pl.cfg.Webhooks.Schedule)),
			asynq.Timeout(pl.cfg.Webhooks.Timeout+5*time.Second),
			asynq.Retention(pl.cfg.Webhooks.Retention),
		)
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("enqueue %s to %s: %w", id, dest, err)
		}
	}
	pl.log.Info("event queued", zap.String("event", event), zap.String("event_id", id), zap.String("provider", provider), zap.Int("destinations", len(dests)))
	return nil
}

// SendEvent sends a runbook.* event (data: the run) to the subscriptions
// that name it.
func (w *Worker) SendEvent(ctx context.Context, event, id string, data any) error {
	return w.p.enqueueSubscriptionEvent(ctx, event, id, "", "", data, w.p.cfg.Now(), "")
}

// SendRunEvent is SendEvent that also sends the event to callbackURL (a
// run's; "" none), signed with the webhook secrets.
func (w *Worker) SendRunEvent(ctx context.Context, event, id string, data any, callbackURL string) error {
	return w.p.enqueueSubscriptionEvent(ctx, event, id, "", "", data, w.p.cfg.Now(), callbackURL)
}

// deliverProviderEvent delivers one provider.* event to one subscription.
func (ds *deliverStep) deliverProviderEvent(ctx context.Context, p WebhookPayload) error {
	runEvent := strings.HasPrefix(p.EventType, "runbook.")
	if p.EventID == "" || (p.Provider == "" && !runEvent) || (!strings.HasPrefix(p.Destination, "sub:") && !(runEvent && p.Destination == destCallback)) {
		return fmt.Errorf("decode %s: a provider or runbook event needs event_id, a subscription destination or a run's callback (and a provider event its provider): %w", TypeWebhookDeliver, asynq.SkipRetry)
	}
	log := ds.log.With(zap.String("event", p.EventType), zap.String("provider", p.Provider), zap.String("account", p.Account), zap.String("destination", p.Destination))
	body, err := ds.cfg.Store.ProviderEvent(ctx, p.EventID)
	if errors.Is(err, opstore.ErrNotFound) {
		return fmt.Errorf("deliver %s: the event expired (webhooks.retention): %w", p.EventID, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if p.Destination == destCallback {
		url, err := ds.cfg.Store.EventCallback(ctx, p.EventID)
		if errors.Is(err, opstore.ErrNotFound) {
			return fmt.Errorf("deliver %s: the event has no callback URL (or it expired): %w", p.EventID, asynq.SkipRetry)
		}
		if err != nil {
			return err
		}
		return ds.send(ctx, log, p, url, body, ds.cfg.Webhooks.Secrets)
	}
	for _, s := range ds.cfg.Webhooks.Subscriptions {
		if destSub(s.Name) != p.Destination || !s.matchesProvider(p.Provider, p.EventType) {
			continue
		}
		if err := ds.checkEnabled(ctx, p); err != nil {
			return err
		}
		secrets := s.Secrets
		if secrets == nil {
			secrets = ds.cfg.Webhooks.Secrets
		}
		return ds.send(ctx, log, p, s.URL, body, secrets)
	}
	return fmt.Errorf("deliver %s: destination %s is not configured for this event: %w", p.EventID, p.Destination, asynq.SkipRetry)
}
