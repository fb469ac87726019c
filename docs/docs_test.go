// Package docs_test checks the documentation: links resolve, the README
// stays short, and every example in the kinds reference is valid input.
package docs_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// pages are the Markdown files the project ships, relative to this
// directory.
func pages(t *testing.T) []string {
	t.Helper()
	out := []string{"../README.md", "../CHANGELOG.md", "../deploy/README.md"}
	more, err := filepath.Glob("*.md")
	require.NoError(t, err)
	return append(out, more...)
}

var (
	linkRe    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRe = regexp.MustCompile("(?m)^#{1,6} (.+)$")
	fenceRe   = regexp.MustCompile("(?s)```.*?```")
)

// anchors are the GitHub anchors of a page's headings.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range headingRe.FindAllStringSubmatch(fenceRe.ReplaceAllString(text, ""), -1) {
		h := strings.ToLower(strings.TrimSpace(m[1]))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r > 127:
				b.WriteRune(r)
			}
		}
		a := b.String()
		for i := 0; ; i++ { // repeated headings get -1, -2…
			key := a
			if i > 0 {
				key = a + "-" + string(rune('0'+i))
			}
			if !out[key] {
				out[key] = true
				break
			}
		}
	}
	return out
}

// Every relative link of every page names a file that exists, and an
// anchor that one of its headings makes.
func TestLinksResolve(t *testing.T) {
	for _, page := range pages(t) {
		data, err := os.ReadFile(page)
		require.NoError(t, err)
		text := fenceRe.ReplaceAllString(string(data), "")
		for _, m := range linkRe.FindAllStringSubmatch(text, -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(link, "#")
			target := page
			if file != "" {
				target = filepath.Join(filepath.Dir(page), file)
			}
			st, err := os.Stat(target)
			if !assert.NoError(t, err, "%s links to %s", page, link) {
				continue
			}
			if anchor != "" && !st.IsDir() {
				body, err := os.ReadFile(target)
				require.NoError(t, err)
				assert.True(t, anchors(string(body))[anchor], "%s links to %s: no heading makes #%s", page, link, anchor)
			}
		}
	}
}

// The README is the front page: short enough to read at once.
func TestReadmeIsShort(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	n := strings.Count(string(data), "\n")
	assert.LessOrEqual(t, n, 250, "README.md has %d lines; move detail to docs/", n)
}

var (
	cliExampleRe  = regexp.MustCompile(`enqueue submit ([a-z_:]+) --provider ([a-z]+)(?:[^\n]|\\\n)*?--params '([^']+)'`)
	curlExampleRe = regexp.MustCompile(`-d '(\{"task_type"[^']+)'`)
)

// Every kind on every provider has a CLI and a curl example in the kinds
// reference, and every example there is valid input: the kind and
// provider exist and the params pass the kind's own checks.
func TestKindExamplesAreValid(t *testing.T) {
	data, err := os.ReadFile("kinds.md")
	require.NoError(t, err)
	text := string(data)
	cli, curl := map[string]bool{}, map[string]bool{}
	check := func(where, kind, provider string, params json.RawMessage) {
		if strings.ContainsAny(string(params), "<…") { // a placeholder: "<id of the failed install>", "…"
			return
		}
		spec, err := tasks.LookupSpec(kind, provider)
		if !assert.NoError(t, err, "%s: %s on %s", where, kind, provider) {
			return
		}
		p := spec.Params()
		if assert.NoError(t, ops.DecodeParams(params, p), "%s: %s on %s: %s", where, kind, provider, params) {
			assert.NoError(t, p.(ops.Params).Validate(), "%s: %s on %s: %s", where, kind, provider, params)
		}
	}
	for _, m := range cliExampleRe.FindAllStringSubmatch(text, -1) {
		cli[m[1]+" "+m[2]] = true
		check("CLI example", m[1], m[2], json.RawMessage(m[3]))
	}
	for _, m := range curlExampleRe.FindAllStringSubmatch(text, -1) {
		var req struct {
			TaskType string          `json:"task_type"`
			Provider string          `json:"provider"`
			Params   json.RawMessage `json:"params"`
		}
		if !assert.NoError(t, json.Unmarshal([]byte(m[1]), &req), "curl example: %s", m[1]) {
			continue
		}
		curl[req.TaskType+" "+req.Provider] = true
		check("curl example", req.TaskType, req.Provider, req.Params)
	}
	for _, s := range tasks.Specs() {
		key := s.Kind + " " + s.Provider
		assert.True(t, cli[key], "kinds.md has no CLI example (enqueue submit %s --provider %s … --params '…') ", s.Kind, s.Provider)
		assert.True(t, curl[key], "kinds.md has no curl example for %s on %s", s.Kind, s.Provider)
	}
}
