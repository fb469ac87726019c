package tasks

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/ops"
	"github.com/opsworker/opsworker/webhookverify"
)

// Sender delivers one signed event once (*webhooks.Sender).
type Sender interface {
	Send(ctx context.Context, target, id string, body []byte, secrets []webhookverify.Secret) error
}

// DefaultWebhookSchedule is the wait before each retry after the first,
// immediate attempt, close to Svix's schedule.
var DefaultWebhookSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// WebhookConfig configures event delivery.
type WebhookConfig struct {
	// Queue receives webhook tasks. Default "default".
	Queue string
	// Timeout bounds one attempt. Default 15s.
	Timeout time.Duration
	// Schedule is the wait before each retry; len(Schedule) retries.
	// Default DefaultWebhookSchedule.
	Schedule []time.Duration
	// Jitter spreads each wait by ±Jitter×wait.
	Jitter float64
	// Retention keeps finished deliveries listable. Default 72h.
	Retention time.Duration
	// Secrets sign deliveries to callback URLs and to subscriptions
	// without their own; AccountSecrets replace them per account for
	// callback URLs.
	Secrets        []webhookverify.Secret
	AccountSecrets map[string][]webhookverify.Secret
	Subscriptions  []Subscription
}

func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.Queue == "" {
		c.Queue = "default"
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.Schedule == nil {
		c.Schedule = DefaultWebhookSchedule
	}
	if c.Retention == 0 {
		c.Retention = 72 * time.Hour
	}
	return c
}

// Subscription is a configured destination for the events of every
// matching operation.
type Subscription struct {
	Name string
	URL  string
	// Secrets sign its deliveries; nil means WebhookConfig.Secrets.
	Secrets []webhookverify.Secret
	// Events, Kinds and Providers filter; empty means all.
	Events, Kinds, Providers []string
}

func (s Subscription) matches(op *opstore.Operation, event string) bool {
	return (len(s.Events) == 0 || slices.Contains(s.Events, event)) &&
		(len(s.Kinds) == 0 || slices.Contains(s.Kinds, op.Kind)) &&
		(len(s.Providers) == 0 || slices.Contains(s.Providers, op.Provider))
}

// DestinationCallback is the destination id of an operation's callback_url.
const DestinationCallback = "callback"

const destCallback = DestinationCallback

// SubscriptionDestination is the destination id of a subscription.
func SubscriptionDestination(name string) string { return "sub:" + name }

func destSub(name string) string { return SubscriptionDestination(name) }

// DeliveryTaskID is the asynq TaskID of the first attempt series of one
// event to one destination.
func DeliveryTaskID(opID, event, destination string) string {
	return "op:" + opID + ":wh:" + event + ":" + shortHash(destination)
}

// EventType maps a terminal state to its webhook event type.
func EventType(s opstore.State) string {
	switch s {
	case opstore.StateSucceeded:
		return webhooks.EventSucceeded
	case opstore.StateTimedOut:
		return webhooks.EventTimedOut
	case opstore.StateCanceled:
		return webhooks.EventCanceled
	}
	return webhooks.EventFailed
}

// EventID is the stable webhook-id of one event of one operation.
func EventID(opID, event string) string { return "evt_" + opID + "_" + event[len("operation."):] }

// WebhookPayload is the payload of webhook:deliver: one event to one
// destination. It holds no secret and nothing a reader of the queue could
// use: no URL (a callback URL may carry a token), no body. The worker
// reads the URL from the record (callback) or the config (subscription),
// the event body from the record, and the signing secrets from the config.
type WebhookPayload struct {
	// OperationID is empty for a provider.* event.
	OperationID string `json:"operation_id"`
	// Provider is set for a provider.* event.
	Provider  string `json:"provider,omitempty"`
	Account   string `json:"account"`
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	// Destination is "callback" or "sub:<name>".
	Destination string `json:"destination"`
	// Host is the destination's scheme and host, for display.
	Host string `json:"host,omitempty"`
}

// eventBody builds the JSON body of one event of op: the record, whose
// MarshalJSON redacts secret params and cuts the callback URL to its
// origin (subscriptions see the event too).
func eventBody(op *opstore.Operation, event string, ts time.Time) ([]byte, error) {
	data, err := json.Marshal(op)
	if err != nil {
		return nil, err
	}
	return json.Marshal(webhooks.Event{ID: EventID(op.ID, event), Type: event, Timestamp: ts.UTC(), Data: data})
}

// destination returns the URL and signing secrets of a delivery's
// destination, as the operation's record (d) and the config say: false
// when the destination no longer exists in the config, or never was one
// of this operation's (its filters do not take it).
func (ds *deliverStep) destination(p WebhookPayload, d opstore.Delivery) (string, []webhookverify.Secret, bool) {
	if p.Destination == destCallback {
		if s, ok := ds.cfg.Webhooks.AccountSecrets[d.Account]; ok {
			return d.CallbackURL, s, true
		}
		return d.CallbackURL, ds.cfg.Webhooks.Secrets, true
	}
	op := &opstore.Operation{Kind: d.Kind, Provider: d.Provider}
	for _, s := range ds.cfg.Webhooks.Subscriptions {
		if destSub(s.Name) == p.Destination && s.matches(op, p.EventType) {
			if s.Secrets != nil {
				return s.URL, s.Secrets, true
			}
			return s.URL, ds.cfg.Webhooks.Secrets, true
		}
	}
	return "", nil, false
}

// ProcessWebhook delivers one event to one destination, once per attempt.
// Retryable failures return an error so asynq retries on the schedule
// (RetryDelay); permanent ones are archived at once, with the reason.
// 410 Gone stops deliveries to that destination: the operation's
// callback_url gets nothing more, a subscription is disabled until
// `enqueue webhooks enable`.
func (ds *deliverStep) ProcessWebhook(ctx context.Context, t *asynq.Task) error {
	var p WebhookPayload
	err := json.Unmarshal(t.Payload(), &p)
	if err == nil && isProviderEvent(p.EventType) {
		return ds.deliverProviderEvent(ctx, p)
	}
	if err != nil || p.OperationID == "" || p.EventID == "" || p.Destination == "" || p.EventType == "" {
		// A delivery never carries its URL or body: one that does (queued
		// by an earlier version, or forged) is refused rather than signed.
		return fmt.Errorf("decode %s: payload needs operation_id, event_id, event_type and destination (`enqueue webhooks replay` re-queues an operation's events): %w", TypeWebhookDeliver, asynq.SkipRetry)
	}
	log := ds.log.With(zap.String("operation_id", p.OperationID), zap.String("event", p.EventType), zap.String("destination", p.Destination))
	d, err := ds.cfg.Store.EventDelivery(ctx, p.OperationID, p.EventType)
	if errors.Is(err, opstore.ErrNotFound) {
		return fmt.Errorf("deliver %s: the operation record expired (operations.retention): %w", p.EventID, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if len(d.Body) == 0 {
		return fmt.Errorf("deliver %s: operation %s has no %s event: %w", p.EventID, p.OperationID, p.EventType, asynq.SkipRetry)
	}
	if p.EventID != EventID(p.OperationID, p.EventType) {
		return fmt.Errorf("deliver %s: not the id of %s of operation %s: %w", p.EventID, p.EventType, p.OperationID, asynq.SkipRetry)
	}
	body := d.Body
	url, secrets, ok := ds.destination(p, d)
	if !ok {
		return fmt.Errorf("deliver %s: destination %s is not configured for this event: %w", p.EventID, p.Destination, asynq.SkipRetry)
	}
	if url == "" {
		return fmt.Errorf("deliver %s: the operation has no callback_url: %w", p.EventID, asynq.SkipRetry)
	}
	if p.Destination != destCallback {
		if err := ds.checkEnabled(ctx, p); err != nil {
			return err
		}
	}
	return ds.send(ctx, log, p, url, body, secrets)
}

// checkEnabled refuses a delivery to a subscription that a 410 Gone
// disabled.
func (ds *deliverStep) checkEnabled(ctx context.Context, p WebhookPayload) error {
	disabled, err := ds.cfg.Store.DisabledSubscriptions(ctx)
	if err != nil {
		return err
	}
	if reason, off := disabled[p.Destination[len("sub:"):]]; off {
		return fmt.Errorf("deliver %s: subscription disabled (%s); `enqueue webhooks enable` re-enables it: %w", p.EventID, reason, asynq.SkipRetry)
	}
	return nil
}

// send makes one delivery attempt of p's event to url, signed with
// secrets, and says what asynq should do next.
func (ds *deliverStep) send(ctx context.Context, log *zap.Logger, p WebhookPayload, url string, body []byte, secrets []webhookverify.Secret) error {
	sctx, cancel := context.WithTimeout(ctx, ds.cfg.Webhooks.Timeout)
	defer cancel()
	n, _ := asynq.GetRetryCount(ctx)
	err := ds.cfg.Sender.Send(sctx, url, p.EventID, body, secrets)
	if ds.cfg.Observer != nil {
		outcome := "delivered"
		var de *webhooks.DeliveryError
		switch {
		case err == nil:
		case errors.As(err, &de) && !de.Retryable, n >= len(ds.cfg.Webhooks.Schedule):
			outcome = "failed"
		default:
			outcome = "retry"
		}
		ds.cfg.Observer.WebhookAttempt(outcome, n+1)
	}
	if p.OperationID != "" {
		ds.noteDelivery(ctx, p, n+1, err)
	}
	if err == nil {
		log.Info("webhook delivered", zap.String("event_id", p.EventID), zap.Int("attempt", n+1))
		return nil
	}
	var de *webhooks.DeliveryError
	if errors.As(err, &de) && de.Gone {
		if p.Destination == destCallback {
			if p.OperationID != "" { // a run's callback: this event only
				err = errors.Join(err, ds.cfg.Store.MarkCallbackGone(ctx, p.OperationID))
			}
		} else {
			name := p.Destination[len("sub:"):]
			err = errors.Join(err, ds.cfg.Store.DisableSubscription(ctx, name, "410 Gone at "+ds.cfg.Now().UTC().Format(time.RFC3339)))
		}
		log.Warn("receiver answered 410 Gone: no more deliveries to this destination")
		return fmt.Errorf("deliver %s: %w: %w", p.EventID, err, asynq.SkipRetry)
	}
	if errors.As(err, &de) && !de.Retryable {
		return fmt.Errorf("deliver %s: %w: %w", p.EventID, err, asynq.SkipRetry)
	}
	return fmt.Errorf("deliver %s (attempt %d of %d): %w", p.EventID, n+1, len(ds.cfg.Webhooks.Schedule)+1, err)
}

// ReplayPayload is the payload of webhook:replay.
type ReplayPayload struct {
	OperationID string `json:"operation_id"`
	// Destination limits the replay to one destination: "callback",
	// "sub:<name>", or a URL's origin (scheme://host[:port]).
	Destination string `json:"destination,omitempty"`
	// DestinationSHA256 limits the replay to the destination whose full
	// URL has this SHA-256 (hex; see DestinationHash): the URL itself may
	// carry a token, so the task does not.
	DestinationSHA256 string `json:"destination_sha256,omitempty"`
	// Nonce makes each replay a new attempt series.
	Nonce string `json:"nonce"`
	// All replays to destinations that already answered 2xx too; without
	// it, an event goes again only where it was not delivered.
	All bool `json:"all,omitempty"`
}

// DestinationHash is the SHA-256 (hex) of a destination URL, as
// ReplayPayload.DestinationSHA256 names it.
func DestinationHash(url string) string {
	h := sha256.Sum256([]byte(url))
	return hex.EncodeToString(h[:])
}

// ProcessReplay re-sends every event the operation has produced so far
// (running, and its final one) to its destinations, as a new attempt
// series with the same webhook-ids.
func (ds *deliverStep) ProcessReplay(ctx context.Context, t *asynq.Task) error {
	var p ReplayPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.OperationID == "" || p.Nonce == "" {
		return fmt.Errorf("decode %s: %w", TypeWebhookReplay, asynq.SkipRetry)
	}
	op, err := ds.cfg.Store.Get(ctx, p.OperationID)
	if errors.Is(err, opstore.ErrNotFound) {
		return fmt.Errorf("replay: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	var events []string
	if op.Handle != "" {
		events = append(events, webhooks.EventRunning)
	}
	if op.State.Terminal() {
		events = append(events, EventType(op.State))
	}
	var only func(string, string) bool
	matched := 0
	if p.Destination != "" || p.DestinationSHA256 != "" {
		only = func(id, url string) bool {
			ok := (p.Destination != "" && (id == p.Destination || opstore.CallbackOrigin(url) == p.Destination)) ||
				(p.DestinationSHA256 != "" && DestinationHash(url) == p.DestinationSHA256)
			if ok {
				matched++
			}
			return ok
		}
	}
	var delivered map[[2]string]bool
	if !p.All {
		delivered = ds.delivered(ctx, op.ID)
	}
	skipped := 0
	for _, ev := range events {
		filter := func(id, url string) bool {
			if only != nil && !only(id, url) {
				return false
			}
			if delivered[[2]string{ev, id}] {
				skipped++
				return false
			}
			return true
		}
		if err := ds.enqueueEventTo(ctx, op, ev, p.Nonce, filter); err != nil {
			return err
		}
	}
	if only != nil && matched == 0 && len(events) > 0 {
		return fmt.Errorf("replay of %s: no destination of the operation matches %s (use callback, sub:<name>, the destination's origin or its full URL): %w",
			op.ID, cmp.Or(p.Destination, "the given URL"), asynq.SkipRetry)
	}
	ds.log.Info("webhooks replayed", zap.String("operation_id", op.ID), zap.Strings("events", events),
		zap.Int("skipped_delivered", skipped))
	return nil
}

// delivered returns the (event, destination) pairs of operation id whose
// delivery was answered 2xx, as its timeline recorded them.
func (ds *deliverStep) delivered(ctx context.Context, id string) map[[2]string]bool {
	steps, err := ds.cfg.Store.Timeline(ctx, id)
	if err != nil {
		return nil // unknown: replay everywhere
	}
	out := map[[2]string]bool{}
	for _, st := range steps {
		if st.Type == ops.TimelineWebhook && st.ErrorClass == "" && st.Message == deliveredNote {
			out[[2]string{st.Event, st.Destination}] = true
		}
	}
	return out
}

// deliveredNote is a delivery's timeline message when it was answered 2xx.
const deliveredNote = "delivered (2xx)"

// noteDelivery records a delivery attempt on its operation's timeline:
// the destination (callback or sub:<name>, never the URL), the answer's
// status and the error, which names the host only.
func (ds *deliverStep) noteDelivery(ctx context.Context, p WebhookPayload, attempt int, err error) {
	ev := ops.TimelineEvent{At: ds.cfg.Now().UTC(), Type: ops.TimelineWebhook, Event: p.EventType, Destination: p.Destination, Attempt: attempt}
	var de *webhooks.DeliveryError
	switch {
	case errors.As(err, &de):
		ev.StatusCode, ev.ErrorClass, ev.Message = de.StatusCode, de.Class.String(), de.Error()
	case err != nil:
		ev.Message = err.Error()
	default:
		ev.Message = deliveredNote
	}
	if aerr := ds.cfg.Store.AppendTimeline(ctx, p.OperationID, ev); aerr != nil {
		ds.log.Warn("record a delivery on the timeline", zap.String("operation_id", p.OperationID), zap.Error(aerr))
	}
}
