// Command openapigen writes the HTTP API's OpenAPI 3.1 document
// (internal/api/openapi.json) from the Go types: the ops params types,
// the operation view, the webhook event, and the API's own request and
// response types. Run it with go generate ./internal/api.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("o", "openapi.json", "the file to write")
	flag.Parse()
	c, err := newComments(".")
	if err == nil {
		var doc []byte
		if doc, err = build(c); err == nil {
			err = os.WriteFile(*out, doc, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapigen:", err)
		os.Exit(1)
	}
}
