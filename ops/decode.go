package ops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ValidationError is bad input; Field names it as the user wrote it
// (e.g. "params.zone_name"), and Message never quotes a secret.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// isControlOrBreak reports a control character (C0, DEL, C1, which holds
// U+0085 NEXT LINE) or a Unicode line or paragraph separator: anything a
// reader of a line-based list could take for the end of a line.
func isControlOrBreak(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029'
}

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

// DecodeParams decodes params strictly into v, naming unknown or mistyped
// fields as params.<name> (nested: params.raid.level, params.files[2]).
func DecodeParams(params json.RawMessage, v any) error {
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
		var inner *ValidationError
		switch {
		case errors.Is(se.Err, jsonv2.ErrUnknownName):
			return invalid(field, "unknown field")
		case errors.As(se.Err, &inner):
			// A type's own UnmarshalJSON said what is wrong, relative to
			// where it sits.
			if inner.Field != "" {
				field += "." + inner.Field
			}
			return invalid(field, "%s", inner.Message)
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
