// Package configfiles embeds the worker's default configuration
// (dev.yaml), so `go run ./cmd/worker` works with no file at hand.
// example.yaml beside it documents every key.
package configfiles

import _ "embed"

// Dev is config/dev.yaml: embedded Redis and simulated providers.
//
//go:embed dev.yaml
var Dev []byte
