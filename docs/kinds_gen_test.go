package docs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/ops"
)

const (
	examplesBegin = "<!-- examples: generated from the registry by docs/kinds_gen_test.go; UPDATE_DOCS=1 go test ./docs rewrites it -->"
	examplesEnd   = "<!-- examples: end -->"
)

// examples renders one CLI and one curl example per kind and provider,
// from each params type's first example.
func examples(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(examplesBegin + "\n")
	for _, pt := range ops.ParamsTypes() {
		var compact bytes.Buffer
		require.NoError(t, json.Compact(&compact, pt.Examples[0]))
		params := compact.String()
		require.NotContains(t, params, "'", "%s on %s: a single quote breaks the shell example", pt.Kind, pt.Provider)
		req, err := json.Marshal(struct {
			TaskType string          `json:"task_type"`
			Provider string          `json:"provider"`
			Params   json.RawMessage `json:"params"`
		}{pt.Kind, pt.Provider, compact.Bytes()})
		require.NoError(t, err)
		fmt.Fprintf(&b, "\n### `%s` on `%s`\n\n```sh\nenqueue submit %s --provider %s --wait \\\n  --params '%s'\n\ncurl -sS -H \"Authorization: Bearer $OPSWORKER_TOKEN\" -H 'Content-Type: application/json' \\\n  -d '%s' \\\n  http://127.0.0.1:8080/v1/operations\n```\n",
			pt.Kind, pt.Provider, pt.Kind, pt.Provider, params, req)
	}
	b.WriteString("\n" + examplesEnd)
	return b.String()
}

// The examples section of kinds.md is what the registry says.
func TestKindExamplesGenerated(t *testing.T) {
	data, err := os.ReadFile("kinds.md")
	require.NoError(t, err)
	text := string(data)
	i, j := strings.Index(text, examplesBegin), strings.Index(text, examplesEnd)
	require.True(t, i >= 0 && j > i, "kinds.md has no generated examples section")
	want := examples(t)
	got := text[i : j+len(examplesEnd)]
	if got == want {
		return
	}
	if os.Getenv("UPDATE_DOCS") == "1" {
		require.NoError(t, os.WriteFile("kinds.md", []byte(text[:i]+want+text[j+len(examplesEnd):]), 0o644))
		return
	}
	t.Fatal("kinds.md's examples are not the registry's: run UPDATE_DOCS=1 go test ./docs")
}
