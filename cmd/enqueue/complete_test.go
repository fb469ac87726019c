package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/opsworker/opsworker/internal/tasks"
)

// Help and shell completion list what the registry holds.
func TestHelpAndCompletionFollowTheRegistry(t *testing.T) {
	sh := func(args ...string) string {
		var out, errOut bytes.Buffer
		run(t.Context(), args, strings.NewReader(""), &out, &errOut)
		return out.String()
	}
	help := sh("submit", "--help")
	for _, s := range tasks.Specs() {
		assert.Contains(t, help, s.Kind)
		assert.Contains(t, help, s.Provider)
	}
	kinds := sh("__complete", "submit", "")
	for _, k := range tasks.Kinds() {
		assert.Contains(t, kinds, k+"\n")
	}
	assert.Equal(t, []string{"edgio", "leaseweb", "ucdn", ":4"}, strings.Fields(sh("__complete", "submit", "cdn:purge", "--provider", "")))
	states := sh("__complete", "list", "--state", "")
	assert.Contains(t, states, "timed_out\n")
	assert.Contains(t, sh("__complete", "list", "--kind", ""), "server:install\n")
}
