package providers_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// outsideCitations match references to documents that are not part of
// the repository: numbered extracts of the providers' documentation, cited
// by number, line or section, and their index. Comments and docs cite the
// providers' public pages instead. Each pattern is written so that it does
// not match its own source text.
var outsideCitations = []*regexp.Regexp{
	regexp.MustCompile(`PROVIDER_API_MA[P]`),
	regexp.MustCompile(`(?i)\bsee[d]s?\s+0\d\d\b`),
	regexp.MustCompile(`(?i)\bthe\s+see[d]s?\b`),
	regexp.MustCompile(`(?i)\bsee[d]s?('s)?\s*:`),
	regexp.MustCompile(`(?i)\bsee[d]s?('s)?\s+(quirks?|examples?|samples?|tables?|lists?|docs?|documents?)\b`),
	regexp.MustCompile(`\b00[0-4]:\d+(-\d+)?\b`),
	regexp.MustCompile(`§\s*\d`),
	regexp.MustCompile(`/work/share[d]|shared/see[d]s`),
}

// TestNoCitationsOutsideTheRepository reads every .go and .md file of the
// module and fails on each line
// that cites a document a reader of the repository cannot open.
func TestNoCitationsOutsideTheRepository(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	var hits []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(must(filepath.Rel(root, path)))
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(path); ext != ".go" && ext != ".md" {
			return nil
		}
		found, err := citationsIn(path)
		for _, f := range found {
			hits = append(hits, rel+":"+f)
		}
		return err
	})
	require.NoError(t, err)
	if len(hits) > 0 {
		t.Errorf("%d lines cite documents outside the repository; cite the provider's public documentation page instead:\n%s", len(hits), strings.Join(hits, "\n"))
	}
}

// rfcSection is a section of an RFC ("RFC 9110 §15.6.2"), which anyone
// can open.
var rfcSection = regexp.MustCompile(`RFC\s*\d+\s*§\s*[\d.]+`)

// citationsIn returns "line: text" for each line of the file that matches
// one of outsideCitations.
func citationsIn(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := rfcSection.ReplaceAllString(sc.Text(), "")
		for _, re := range outsideCitations {
			if re.MatchString(line) {
				out = append(out, fmt.Sprintf("%d: %s", n, strings.TrimSpace(line)))
				break
			}
		}
	}
	return out, sc.Err()
}

// moduleRoot is the nearest directory above the working directory that
// holds go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir := must(os.Getwd())
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the working directory")
		dir = parent
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
