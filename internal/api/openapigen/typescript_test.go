package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/ops"
)

// tsTools is where make test-deps installs openapi-typescript and tsc
// (npm ci from tools/ts/package-lock.json).
const tsTools = "../../../tools/ts/node_modules/.bin"

// nodeTool returns the path of an installed npm binary. Under CI=true a
// missing tool fails the test; elsewhere it skips.
func nodeTool(t *testing.T, name string) string {
	t.Helper()
	missing := func(what string) {
		msg := what + ": run `make test-deps` (npm ci in tools/ts; needs Node.js 18 or later)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node is not installed")
	}
	p, err := filepath.Abs(filepath.Join(tsTools, name))
	require.NoError(t, err)
	if _, err := os.Stat(p); err != nil {
		missing(name + " is not installed in tools/ts")
	}
	return p
}

func run(t *testing.T, dir, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// expectation reads the error a refused file names in its first line.
func expectation(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	s := bufio.NewScanner(f)
	require.True(t, s.Scan())
	want, ok := strings.CutPrefix(s.Text(), "// tsc must refuse this file with: ")
	require.True(t, ok, "%s must start with the error tsc gives", path)
	return want
}

// A TypeScript client generated from the committed document with
// openapi-typescript types requests and responses as the API takes and
// gives them: strict tsc accepts the valid submits and typed reads of
// testdata/ts/valid.ts, and refuses each invalid_*.ts with the error it
// names (a purge without zone_name, zone_type "video", UCDN params on
// edgio, a pair no provider runs, a partition size of the wrong type, a
// result read without narrowing).
func TestTypeScriptClientTypes(t *testing.T) {
	t.Parallel()
	gen := nodeTool(t, "openapi-typescript")
	tsc := nodeTool(t, "tsc")

	dir := t.TempDir()
	spec := filepath.Join(dir, "openapi.json")
	require.NoError(t, os.WriteFile(spec, api.OpenAPI, 0o644))
	out, err := run(t, dir, gen, spec, "-o", filepath.Join(dir, "api.d.ts"))
	require.NoError(t, err, out)
	types, err := os.ReadFile(filepath.Join(dir, "api.d.ts"))
	require.NoError(t, err)
	// The request body is the union of the submit branches, not a map.
	union := regexp.MustCompile(`SubmitRequest: (components\["schemas"\]\["Submit[A-Za-z]+"\]( \| )?)+;`).FindString(string(types))
	assert.Contains(t, union, `components["schemas"]["SubmitUCDNPurge"]`, "SubmitRequest is a union of the submit branches")
	assert.Equal(t, len(ops.ParamsTypes())-1, strings.Count(union, " | "), "one branch per (kind, provider)")
	assert.True(t, strings.Contains(string(types), `zone_type: "objects" | "livestream";`), "zone_type is a union of its values")

	files, err := filepath.Glob("testdata/ts/*.ts")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var valid, invalid int
	for _, src := range files {
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		name := filepath.Base(src)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
		tscArgs := []string{"--noEmit", "--strict", "--target", "es2022", "--module", "esnext", "--moduleResolution", "bundler", "api.d.ts", name}
		if strings.HasPrefix(name, "invalid_") {
			invalid++
			want := expectation(t, src)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				out, err := run(t, dir, tsc, tscArgs...)
				require.Error(t, err, "tsc accepted %s", name)
				var ee *exec.ExitError
				require.ErrorAs(t, err, &ee, out)
				assert.Contains(t, out, name+"(", "the error is in the file itself")
				assert.NotContains(t, out, "api.d.ts(", "the generated types compile")
				assert.Contains(t, out, want)
			})
			continue
		}
		valid++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := run(t, dir, tsc, tscArgs...)
			require.NoError(t, err, "tsc refused %s:\n%s", name, out)
		})
	}
	require.Positive(t, valid)
	require.Positive(t, invalid)
}
