package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/ops"
)

// writeContexts writes $XDG_CONFIG_HOME/opsworker/cli.yaml with mode.
func writeContexts(t *testing.T, dir, body string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, "opsworker", "cli.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(body), mode))
	require.NoError(t, os.Chmod(path, mode))
	return path
}

func cliRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// Contexts: flags > env > context; the token comes from the context's
// token_env or token_file; a token in the file itself needs mode 0600;
// use-context writes the file 0600.
func TestContexts(t *testing.T) {
	r := startAPI(t)
	dir := os.Getenv("XDG_CONFIG_HOME")
	tokenFile := filepath.Join(t.TempDir(), "ro.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(readSecret+"\n"), 0o600))
	path := writeContexts(t, dir, `current-context: prod
contexts:
  prod:
    api: `+r.url+`
    token_env: OPSWORKER_OPS_TOKEN
  readonly:
    api: `+r.url+`
    token_file: `+tokenFile+`
  local:
    redis: `+r.redis+`
  dead:
    api: http://127.0.0.1:1
    token_env: OPSWORKER_OPS_TOKEN
`, 0o644)
	t.Setenv("OPSWORKER_OPS_TOKEN", writeSecret)
	submit := []string{"submit", "cdn:purge", "--provider", "ucdn", "--params", purgeParams}

	// The current context: the API, with the token from token_env.
	code, out, errOut := cliRun(t, submit...)
	require.Equal(t, 0, code, errOut)
	op, err := r.store.Get(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err)
	assert.Equal(t, "ci", op.SubmittedBy.Name)

	// --context and OPSWORKER_CONTEXT pick another; its token_file is a
	// read token.
	code, _, errOut = cliRun(t, append([]string{"--context", "readonly"}, submit...)...)
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "lacks scope write")
	t.Setenv("OPSWORKER_CONTEXT", "readonly")
	code, _, errOut = cliRun(t, "list")
	assert.Equal(t, 0, code, errOut)
	// OPSWORKER_TOKEN beats the context's token.
	t.Setenv("OPSWORKER_TOKEN", writeSecret)
	code, _, errOut = cliRun(t, submit...)
	assert.Equal(t, 0, code, errOut)
	t.Setenv("OPSWORKER_TOKEN", "")
	t.Setenv("OPSWORKER_CONTEXT", "")

	// Env beats the context, flags beat env.
	t.Setenv("OPSWORKER_API_URL", "http://127.0.0.1:1")
	code, _, errOut = cliRun(t, "list")
	assert.Equal(t, exitNoRedis, code, "the env's API, unreachable: %s", errOut)
	assert.Contains(t, errOut, "cannot reach the API at http://127.0.0.1:1")
	code, _, errOut = cliRun(t, "--api", r.url, "list")
	assert.Equal(t, 0, code, errOut)
	t.Setenv("OPSWORKER_API_URL", "")

	// A context with Redis only: Redis mode, as before.
	code, out, errOut = cliRun(t, append([]string{"--context", "local", "--as", "bob"}, submit...)...)
	require.Equal(t, 0, code, errOut)
	op, err = r.store.Get(t.Context(), strings.TrimSpace(out))
	require.NoError(t, err)
	assert.Equal(t, &ops.Actor{Name: "bob", Via: ops.ViaCLI}, op.SubmittedBy)
	code, _, errOut = cliRun(t, "--context", "nosuch", "list")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, `no context "nosuch"`)

	// get-contexts names where tokens come from, never a token.
	code, out, _ = cliRun(t, "config", "get-contexts")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "*        prod")
	assert.Contains(t, out, "$OPSWORKER_OPS_TOKEN")
	assert.Contains(t, out, "file "+tokenFile)
	assert.NotContains(t, out, writeSecret)
	code, out, _ = cliRun(t, "-o", "jsonl", "config", "get-contexts")
	require.Equal(t, 0, code)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var row map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &row), line)
	}

	// use-context switches, and writes the file 0600.
	code, out, errOut = cliRun(t, "config", "use-context", "dead")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "current context: dead\n", out)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	code, _, _ = cliRun(t, "list")
	assert.Equal(t, exitNoRedis, code)
	code, _, errOut = cliRun(t, "config", "use-context", "nosuch")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "contexts: dead, local, prod, readonly")
	code, out, _ = cliRun(t, "__complete", "config", "use-context", "")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "readonly\n")

	// A token in the file itself: refused unless the file is 0600.
	path = writeContexts(t, dir, "current-context: inline\ncontexts:\n  inline:\n    api: "+r.url+"\n    token: "+writeSecret+"\n", 0o644)
	code, out, errOut = cliRun(t, "list")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "stores a token")
	assert.Contains(t, errOut, "chmod 600 "+path)
	assert.NotContains(t, out+errOut, writeSecret)
	require.NoError(t, os.Chmod(path, 0o600))
	code, _, errOut = cliRun(t, "list")
	assert.Equal(t, 0, code, errOut)

	// A file that does not parse says where.
	writeContexts(t, dir, "contexts:\n  x:\n    apii: http://x\n", 0o600)
	code, _, errOut = cliRun(t, "list")
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, errOut, "cli.yaml")
	assert.Contains(t, errOut, "apii")
}
