package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// maxCallbackBody bounds how much of a provider callback is read. The body
// is never trusted: the provider's own status API is the truth.
const maxCallbackBody = 64 << 10

// CallbackPath is the route pattern of provider callbacks.
const CallbackPath = "POST /v1/callbacks/{provider}/{operation}/{token}"

// CallbackToken is the unguessable part of an operation's callback URL:
// an HMAC-SHA256 of the operation id under the server secret.
func CallbackToken(secret []byte, operationID string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("opsworker-callback:" + operationID))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// CallbackURL is the URL a provider is given for one operation.
func CallbackURL(publicBase string, secret []byte, provider, operationID string) string {
	return strings.TrimRight(publicBase, "/") + "/v1/callbacks/" + url.PathEscape(provider) + "/" +
		url.PathEscape(operationID) + "/" + CallbackToken(secret, operationID)
}

// Poller triggers an immediate status check of an operation. It returns
// false when no such operation exists for that provider.
type Poller interface {
	PollNow(ctx context.Context, provider, operationID string) (bool, error)
}

// CallbackHandler serves CallbackPath. A valid callback only makes the
// operation's next poll run now; it cannot change any state itself, so a
// forged or replayed callback achieves nothing but an early poll, and
// duplicates collapse into the one pending poll. Unknown operations and
// bad tokens get 404 with no detail.
type CallbackHandler struct {
	secret []byte
	poller Poller
	log    *zap.Logger
}

// NewCallbackHandler returns the handler.
func NewCallbackHandler(secret []byte, p Poller, log *zap.Logger) *CallbackHandler {
	return &CallbackHandler{secret: secret, poller: p, log: log}
}

func (h *CallbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	provider, opID, token := r.PathValue("provider"), r.PathValue("operation"), r.PathValue("token")
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxCallbackBody))
	want := CallbackToken(h.secret, opID)
	if !hmac.Equal([]byte(token), []byte(want)) {
		http.NotFound(w, r)
		return
	}
	found, err := h.poller.PollNow(r.Context(), provider, opID)
	if err != nil {
		h.log.Error("callback: trigger poll", zap.String("provider", provider), zap.String("operation_id", opID), zap.Error(err))
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if !found {
		http.NotFound(w, r)
		return
	}
	h.log.Info("callback received, polling now", zap.String("provider", provider), zap.String("operation_id", opID))
	w.WriteHeader(http.StatusAccepted)
}
