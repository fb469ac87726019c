package tasks

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/opsworker/opsworker/internal/opstore"
)

// canonicalParams decodes raw into a new value of the spec's params type
// and encodes that value again: what is stored and sent is exactly what
// the type holds, with the documented keys only.
func (s Spec) canonicalParams(raw json.RawMessage) (json.RawMessage, error) {
	if s.Params == nil {
		return nil, fmt.Errorf("%s on %s: no params type", s.Kind, s.Provider)
	}
	v := s.Params()
	if err := decodeParams(raw, v); err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, invalid("params", "cannot be encoded: %v", err)
	}
	return b, nil
}

// SecretParams lists the params keys of the spec's type whose values are
// secret: the top-level fields tagged `secret:"true"`.
func (s Spec) SecretParams() []string {
	if s.Params == nil {
		return nil
	}
	return secretKeys(reflect.TypeOf(s.Params()))
}

// secretKeys returns the JSON names of t's fields tagged secret:"true".
func secretKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("secret") != "true" {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// secretValues returns the values of the params' secret keys; a list
// contributes each item.
func secretValues(params json.RawMessage, keys []string) []string {
	if len(keys) == 0 || len(params) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(params, &m) != nil {
		return nil
	}
	var out []string
	for _, k := range keys {
		raw, ok := m[k]
		if !ok {
			continue
		}
		var one string
		var list []string
		switch {
		case json.Unmarshal(raw, &one) == nil:
			list = []string{one}
		case json.Unmarshal(raw, &list) == nil:
		default:
			continue
		}
		for _, v := range list {
			if v != "" && v != opstore.Removed {
				out = append(out, v)
			}
		}
	}
	return out
}

// secretForms are the spellings of a secret value a provider could echo:
// as is; JSON-escaped as Go, JavaScript or PHP write it; URL-escaped;
// base64-encoded (standard or URL alphabet, padded or not); and the parts
// a provider may quote alone: each line of a multi-line value (a script)
// and each long word (the key material of an SSH public key).
func secretForms(v string) []string {
	forms := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	forms = append(forms, base64Forms(v)...)
	for _, esc := range jsonEscapes(v) {
		forms = append(forms, esc, strings.ReplaceAll(esc, "/", `\/`))
	}
	if strings.ContainsAny(v, " \t\r\n") {
		for _, line := range strings.Split(v, "\n") {
			if line = strings.TrimSpace(line); len(line) >= 8 && line != v {
				forms = append(forms, line)
				forms = append(forms, jsonEscapes(line)...)
			}
		}
		for _, word := range strings.Fields(v) {
			if len(word) >= 16 {
				forms = append(forms, word)
			}
		}
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// jsonEscapes is v inside a JSON string, with and without HTML escaping
// and with non-ASCII letters as \uXXXX (Python's ensure_ascii).
func jsonEscapes(v string) []string {
	var out []string
	for _, html := range []bool{true, false} {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(v) == nil {
			s := strings.TrimSuffix(b.String(), "\n")
			out = append(out, s[1:len(s)-1])
		}
	}
	var ascii strings.Builder
	for _, r := range out[len(out)-1] {
		if r < 0x80 {
			ascii.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&ascii, "\\u%04x", u)
		}
	}
	return append(out, ascii.String())
}

// minSecretLen is the shortest value a redactor removes: shorter strings
// would cut ordinary words out of messages (passwords have at least 8
// characters, provider tokens far more).
const minSecretLen = 6

// redactedError is an error whose text had secrets removed; it unwraps to
// the original so its class (permanent, Retry-After, busy) still counts.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactError returns err with secrets removed from its text (err itself
// when its text holds none).
func redactError(err error, r *redactor) error {
	if err == nil || r == nil {
		return err
	}
	msg := err.Error()
	if clean := r.redact(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

// withoutKeys returns the JSON object params without the top-level keys.
func withoutKeys(params json.RawMessage, keys []string) json.RawMessage {
	if len(keys) == 0 {
		return params
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(params, &m) != nil {
		return params
	}
	for _, k := range keys {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return params
	}
	return b
}
