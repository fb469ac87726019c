package ops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
	Account string `json:"account,omitempty" jsonschema:"pattern=^[A-Za-z0-9][A-Za-z0-9_.-]{0\\,63}$"`
	// Params are the kind's parameters (see each kind's Params type).
	Params json.RawMessage `json:"params"`
	// CallbackURL receives the completion webhook. Optional.
	CallbackURL string `json:"callback_url,omitempty" jsonschema:"format=uri,maxLength=2048"`
	// IdempotencyKey maps to exactly one operation: a second submit with
	// the same key returns the first operation and launches nothing.
	IdempotencyKey string `json:"idempotency_key,omitempty" jsonschema:"pattern=^[!-~]{1\\,200}$,maxLength=200"`
	// Labels are free-form key/value pairs kept on the operation and
	// searchable (change=CHG-1234, release=2026.12.1): at most 16; keys
	// 1-63 of a-z, 0-9, '.', '_', '/', '-', starting with a letter or
	// digit; values up to 200 printable characters.
	Labels map[string]string `json:"labels,omitempty" jsonschema:"maxProperties=16"`
	// SubmittedBy declares who asks, for the CLI and raw asynq tasks
	// (1-100 printable characters); the operation records it as
	// unauthenticated. The HTTP API records the token's name instead and
	// refuses this field.
	SubmittedBy string `json:"submitted_by,omitempty" jsonschema:"maxLength=100"`
}

// Label limits.
const (
	MaxLabels        = 16
	MaxLabelValueLen = 200
	MaxSubmittedBy   = 100
)

var labelKeyRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]{0,62}$`)

// ValidateLabels checks labels (nil is none), naming the bad one.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return invalid("labels", "at most %d labels, got %d", MaxLabels, len(labels))
	}
	for _, k := range sortedLabelKeys(labels) {
		if !labelKeyRe.MatchString(k) {
			return invalid("labels", "key %q: 1-63 of a-z, 0-9, '.', '_', '/', '-', starting with a letter or digit", k)
		}
		v := labels[k]
		if len(v) > MaxLabelValueLen || !printable(v) {
			return invalid("labels."+k, "up to %d printable characters", MaxLabelValueLen)
		}
	}
	return nil
}

func sortedLabelKeys(labels map[string]string) []string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ValidSubmittedBy reports whether s may be recorded as a declared
// submitter ("" is none).
func ValidSubmittedBy(s string) bool { return len(s) <= MaxSubmittedBy && printable(s) }

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Idempotency keys opsworker makes itself: a schedule's runs
// (sched:<name>:<unix>[:<item>]) and raw tasks without a key
// (asynq-task:<TaskID>). A submitted key may not use these prefixes, or it
// could take a scheduled run's place before it fires.
const (
	ScheduledKeyPrefix = "sched:"
	RawTaskKeyPrefix   = "asynq-task:"
)

var reservedKeyPrefixes = []string{ScheduledKeyPrefix, RawTaskKeyPrefix}

// MaxCallbackURLLen bounds callback_url.
const MaxCallbackURLLen = 2048

var (
	accountRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	idemKeyRe = regexp.MustCompile(`^[\x21-\x7e]{1,200}$`)
)

// DecodeEnvelope decodes a task payload strictly: unknown fields (a typo
// such as "callbackUrl", or "Params" for "params") are errors, not
// silently ignored or matched case-insensitively; so are duplicate keys,
// invalid UTF-8 and trailing data.
func DecodeEnvelope(payload []byte) (Envelope, error) {
	var env Envelope
	if err := jsonv2.Unmarshal(payload, &env, jsonv2.RejectUnknownMembers(true)); err != nil {
		var se *jsonv2.SemanticError
		if errors.As(err, &se) && errors.Is(se.Err, jsonv2.ErrUnknownName) {
			return Envelope{}, fmt.Errorf("malformed payload: unknown field %q", se.JSONPointer.LastToken())
		}
		if errors.As(err, &se) && se.JSONPointer != "" {
			return Envelope{}, fmt.Errorf("malformed payload: %s: invalid value", pointerField("", se.JSONPointer))
		}
		var syn *jsontext.SyntacticError
		if errors.As(err, &syn) {
			if f := pointerField("", syn.JSONPointer); f != "" {
				return Envelope{}, fmt.Errorf("malformed payload: %s: %s", f, syntaxReason(syn.Err))
			}
			return Envelope{}, fmt.Errorf("malformed payload: %s at byte %d", syntaxReason(syn.Err), syn.ByteOffset)
		}
		return Envelope{}, errors.New("malformed payload: not a JSON object")
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
	p, err := NewParams(kind, e.Provider)
	if err != nil {
		return err
	}
	if !accountRe.MatchString(e.Account) {
		return invalid("account", "must be 1-64 letters, digits, '_', '.', '-'")
	}
	if err := ValidateCallbackURL(e.CallbackURL); err != nil {
		return err
	}
	if err := ValidateIdempotencyKey(e.IdempotencyKey); err != nil {
		return err
	}
	if err := ValidateLabels(e.Labels); err != nil {
		return err
	}
	if !ValidSubmittedBy(e.SubmittedBy) {
		return invalid("submitted_by", "up to %d printable characters", MaxSubmittedBy)
	}
	if len(bytes.TrimSpace(e.Params)) == 0 || string(bytes.TrimSpace(e.Params)) == "null" {
		return invalid("params", "required")
	}
	if err := DecodeParams(e.Params, p); err != nil {
		return err
	}
	return p.Validate()
}

// ValidateIdempotencyKey checks an idempotency_key ("" is none): 1-200
// printable ASCII characters, none of the prefixes opsworker keeps for
// the keys it makes itself.
func ValidateIdempotencyKey(key string) error {
	if key != "" && !idemKeyRe.MatchString(key) {
		return invalid("idempotency_key", "must be 1-200 printable ASCII characters without spaces")
	}
	for _, p := range reservedKeyPrefixes {
		if strings.HasPrefix(key, p) {
			return invalid("idempotency_key", "the prefix %q is reserved for keys opsworker makes itself", p)
		}
	}
	return nil
}

// ValidateCallbackURL checks a callback_url ("" is none).
func ValidateCallbackURL(cb string) error {
	if cb == "" {
		return nil
	}
	if len(cb) > MaxCallbackURLLen {
		return invalid("callback_url", "longer than %d bytes", MaxCallbackURLLen)
	}
	if !utf8.ValidString(cb) {
		return invalid("callback_url", "not valid UTF-8")
	}
	u, err := url.Parse(cb)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("callback_url", "must be an absolute http or https URL")
	}
	return nil
}

// resourceFields map a params field to the type of resource it names, in
// the order they are looked for.
var resourceFields = []struct{ field, kind string }{
	{"server_id", "server"}, {"instance_id", "instance"}, {"vps_id", "vps"}, {"asg_id", "asg"},
	{"distribution_id", "distribution"}, {"zone_name", "zone"},
}

// ResourceOf names what params act on at provider, as provider:type:id
// (leaseweb:server:12345, ionos:instance:<uuid>, ucdn:zone:shop). Kinds
// that act on the whole account (a Leaseweb or Edgio purge by URL) name
// it: edgio:account:default.
func ResourceOf(provider, account string, params json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(params, &m) == nil {
		for _, f := range resourceFields {
			if v, ok := m[f.field].(string); ok && v != "" {
				return provider + ":" + f.kind + ":" + v
			}
		}
	}
	if account == "" {
		account = DefaultAccount
	}
	return provider + ":account:" + account
}
