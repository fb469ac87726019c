package tasks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
)

// DefaultAccount is the account used when the envelope names none.
const DefaultAccount = "default"

// Envelope is the payload of every operation kind's task. Other systems may
// enqueue it directly as an asynq task of the kind's type (operation_id
// omitted); the worker then creates the operation record itself.
type Envelope struct {
	// OperationID is set by the opsworker client; raw tasks leave it empty.
	OperationID string `json:"operation_id,omitempty"`
	// Provider names the provider API, e.g. "ucdn". Required.
	Provider string `json:"provider"`
	// Account selects the provider account from config. Default "default".
	Account string `json:"account,omitempty"`
	// Params are the kind's parameters (see each kind's Params type).
	Params json.RawMessage `json:"params"`
	// CallbackURL receives the completion webhook. Optional.
	CallbackURL string `json:"callback_url,omitempty"`
	// IdempotencyKey maps to exactly one operation: a second submit with
	// the same key returns the first operation and launches nothing.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// ValidationError is bad input; Field names it as the user wrote it
// (e.g. "params.zone_name").
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

var (
	accountRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	idemKeyRe = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)
)

// DecodeEnvelope decodes a task payload strictly: unknown fields (a typo
// such as "callbackUrl") are errors, not silently ignored.
func DecodeEnvelope(payload []byte) (Envelope, error) {
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return Envelope{}, fmt.Errorf("malformed payload: %w", err)
	}
	if dec.More() {
		return Envelope{}, errors.New("malformed payload: trailing data after JSON object")
	}
	return env, nil
}

// Normalize fills defaults.
func (e *Envelope) Normalize() {
	if e.Account == "" {
		e.Account = DefaultAccount
	}
}

// Validate checks the envelope for kind and the kind's params. It returns a
// *ValidationError naming the first bad field.
func (e *Envelope) Validate(kind string) error {
	spec, err := LookupSpec(kind, e.Provider)
	if err != nil {
		return err
	}
	if !accountRe.MatchString(e.Account) {
		return invalid("account", "must be 1-64 letters, digits, '_', '.', '-'")
	}
	if e.CallbackURL != "" {
		u, err := url.Parse(e.CallbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("callback_url", "must be an absolute http or https URL")
		}
	}
	if e.IdempotencyKey != "" && !idemKeyRe.MatchString(e.IdempotencyKey) {
		return invalid("idempotency_key", "must be 1-200 printable ASCII characters without spaces")
	}
	if len(bytes.TrimSpace(e.Params)) == 0 || string(bytes.TrimSpace(e.Params)) == "null" {
		return invalid("params", "required")
	}
	return spec.Validate(e.Params)
}

// Fingerprint identifies the request (kind, provider, account, params,
// callback) independent of JSON formatting and key order.
func (e *Envelope) Fingerprint(kind string) string {
	var params any
	canon := []byte(e.Params)
	dec := json.NewDecoder(bytes.NewReader(e.Params))
	dec.UseNumber()
	if dec.Decode(&params) == nil {
		canon, _ = json.Marshal(params) // map keys come out sorted
	}
	h := sha256.New()
	for _, s := range []string{kind, e.Provider, e.Account, string(canon), e.CallbackURL} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// decodeParams decodes params strictly into v, naming unknown or mistyped
// fields as params.<name>.
func decodeParams(params json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return invalid("params."+ute.Field, "must be a %s", ute.Type.String())
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return invalid("params", "not valid JSON: %v", err)
		}
		if msg := err.Error(); len(msg) > len(`json: unknown field "`) && msg[:len(`json: unknown field "`)] == `json: unknown field "` {
			field := msg[len(`json: unknown field "`) : len(msg)-1]
			return invalid("params."+field, "unknown field")
		}
		return invalid("params", "%v", err)
	}
	return nil
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
