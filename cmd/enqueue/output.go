package main

import (
	"encoding/json"
	"reflect"
)

// jsonOut reports -o json or -o jsonl.
func (g *globals) jsonOut() bool { return g.output == "json" || g.output == "jsonl" }

// printJSON writes v: indented with -o json, on one line with -o jsonl.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	if g.output != "jsonl" {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

// printList writes a slice: a JSON array with -o json (never null), one
// object a line with -o jsonl.
func (g *globals) printList(list any) error {
	rv := reflect.ValueOf(list)
	if g.output != "jsonl" {
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return g.printJSON([]struct{}{})
		}
		return g.printJSON(list)
	}
	enc := json.NewEncoder(g.stdout)
	for i := range rv.Len() {
		if err := enc.Encode(rv.Index(i).Interface()); err != nil {
			return err
		}
	}
	return nil
}
