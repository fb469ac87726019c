// Package webhookverify signs and verifies opsworker webhooks in the
// Standard Webhooks v1 format (https://www.standardwebhooks.com/), so a
// receiver written in Go can import it:
//
//	secret, _ := webhookverify.ParseSecret(os.Getenv("OPSWORKER_WEBHOOK_SECRET"))
//	if err := webhookverify.Verify(r.Header, body, webhookverify.DefaultTolerance, time.Now(), secret); err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
//
// A request carries webhook-id (stable per event, the same on every retry:
// deduplicate on it), webhook-timestamp (Unix seconds) and
// webhook-signature: one or more space-separated "v1,<base64>" values,
// each an HMAC-SHA256 of "id.timestamp.body" under one secret. Several
// appear while a secret is being rotated; one match is enough.
package webhookverify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is how far a timestamp may be from now (either way).
const DefaultTolerance = 5 * time.Minute

// SecretPrefix starts every secret's text form.
const SecretPrefix = "whsec_"

// Secret is a signing key.
type Secret []byte

// ParseSecret reads "whsec_<base64>" (the prefix is optional). The key
// must be 24 to 64 bytes.
func ParseSecret(s string) (Secret, error) {
	raw := strings.TrimPrefix(strings.TrimSpace(s), SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, errors.New("webhook secret: not whsec_<base64>")
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("webhook secret: key is %d bytes, want 24 to 64", len(key))
	}
	return key, nil
}

// NewSecret returns a random 32-byte secret.
func NewSecret() Secret {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// String returns the whsec_ form.
func (s Secret) String() string { return SecretPrefix + base64.StdEncoding.EncodeToString(s) }

// Sign returns the webhook-signature value for id, timestamp and body
// under every secret, space-separated, in the order given.
func Sign(id string, ts time.Time, body []byte, secrets ...Secret) string {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac(s, id, ts.Unix(), body)))
	}
	return strings.Join(sigs, " ")
}

func mac(secret Secret, id string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Errors returned by Verify.
var (
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrBadTimestamp   = errors.New("webhook: timestamp outside the tolerance")
	ErrNoMatch        = errors.New("webhook: no signature matches")
)

// Verify checks the headers of one request against its exact body: the
// timestamp must be within tolerance of now and at least one v1
// signature must match one of the secrets (constant-time compare).
func Verify(h http.Header, body []byte, tolerance time.Duration, now time.Time, secrets ...Secret) error {
	id, tsText, sigText := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigText == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrBadTimestamp
	}
	for _, s := range secrets {
		want := mac(s, id, ts, body)
		for _, sig := range strings.Fields(sigText) {
			version, b64, ok := strings.Cut(sig, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(b64)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrNoMatch
}
