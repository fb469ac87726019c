package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Params of a kind are decoded into the kind's Go type with exact key
// matching: encoding/json would take "PASSWORD", "Password" or "paſſword"
// for "password" (it folds case and some Unicode letters), so a key that
// is not spelled exactly as documented would reach the provider as the
// real field while escaping every check that compares names. Here any
// other spelling is an unknown field, as are duplicate keys and invalid
// UTF-8.
//
// A params field whose value must never leave the worker (a password, an
// SSH key, a script) carries the struct tag `secret:"true"`. What is secret
// is derived from the types (SecretParams), never from a list of names.

// decodeParams decodes params strictly into v, naming unknown or mistyped
// fields as params.<name> (nested: params.raid.level, params.files[2]).
func decodeParams(params json.RawMessage, v any) error {
	err := jsonv2.Unmarshal(params, v, jsonv2.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	var se *jsonv2.SemanticError
	if errors.As(err, &se) {
		field := paramsField(se.JSONPointer)
		switch {
		case errors.Is(se.Err, jsonv2.ErrUnknownName):
			return invalid(field, "unknown field")
		case se.GoType != nil:
			return invalid(field, "must be %s", JSONType(se.GoType))
		}
		return invalid(field, "invalid value")
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		field := paramsField(syn.JSONPointer)
		if errors.Is(syn.Err, jsontext.ErrDuplicateName) {
			return invalid(field, "given more than once")
		}
		if field != "params" {
			// Invalid UTF-8 and the like inside a value: name the field,
			// never echo the value (it may be a secret).
			return invalid(field, "not valid JSON text (%s)", syntaxReason(syn.Err))
		}
		return invalid("params", "not valid JSON (%s at byte %d)", syntaxReason(syn.Err), syn.ByteOffset)
	}
	return invalid("params", "not valid JSON")
}

// DecodeObject decodes data, one JSON object and nothing after it but
// white space, into v as strictly as params: keys match exactly, unknown
// and duplicate keys, invalid UTF-8 and trailing data are errors. An error
// is a *ValidationError naming the field ("" for the body as a whole),
// whose message never quotes a value.
func DecodeObject(data []byte, v any) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	err := jsonv2.UnmarshalDecode(dec, v, jsonv2.RejectUnknownMembers(true))
	if err == nil {
		if rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
			return invalid("", "trailing data after the JSON object")
		}
		return nil
	}
	var se *jsonv2.SemanticError
	if errors.As(err, &se) {
		field := pointerField("", se.JSONPointer)
		switch {
		case errors.Is(se.Err, jsonv2.ErrUnknownName):
			return invalid(field, "unknown field")
		case field == "":
			return invalid("", "the body must be a JSON object")
		case se.GoType != nil:
			return invalid(field, "must be %s", JSONType(se.GoType))
		}
		return invalid(field, "invalid value")
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		field := pointerField("", syn.JSONPointer)
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return invalid(field, "given more than once")
		case field != "":
			return invalid(field, "%s", syntaxReason(syn.Err))
		}
		return invalid("", "%s at byte %d", syntaxReason(syn.Err), syn.ByteOffset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return invalid("", "unexpected end of the body")
	}
	return invalid("", "not valid JSON")
}

// syntaxReason is a short description of a syntax error that never quotes
// the input.
func syntaxReason(err error) string {
	switch {
	case err == nil:
		return "syntax error"
	case errors.Is(err, jsontext.ErrDuplicateName):
		return "duplicate key"
	}
	msg := err.Error()
	if strings.Contains(msg, "UTF-8") {
		return "invalid UTF-8"
	}
	if i := strings.IndexAny(msg, "'\"`"); i >= 0 {
		msg = strings.TrimSpace(msg[:i])
	}
	return strings.TrimPrefix(msg, "jsontext: ")
}

// paramsField turns a JSON pointer (/raid/level, /files/2) into the
// field name the API reports (params.raid.level, params.files[2]).
func paramsField(p jsontext.Pointer) string { return pointerField("params", p) }

// pointerField turns a JSON pointer into a field name under root ("" for
// none).
func pointerField(root string, p jsontext.Pointer) string {
	var b strings.Builder
	b.WriteString(root)
	for tok := range p.Tokens() {
		if _, err := strconv.ParseUint(tok, 10, 32); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if !utf8.ValidString(tok) {
			tok = strings.ToValidUTF8(tok, "\uFFFD")
		}
		if b.Len() > 0 {
			b.WriteString(".")
		}
		b.WriteString(tok)
	}
	return b.String()
}

// JSONType names the JSON type a Go type decodes from, for messages such
// as "provider: must be a string" that never name a Go type.
func JSONType(t reflect.Type) string {
	if t == reflect.TypeFor[StringList]() {
		return "a string or a list of strings"
	}
	if t == reflect.TypeFor[json.RawMessage]() {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return JSONType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a JSON value of another type"
}

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
			if v != "" && v != removedValue {
				out = append(out, v)
			}
		}
	}
	return out
}

// removedValue replaces a secret param in the stored record once it is no
// longer needed.
const removedValue = "REMOVED"

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
