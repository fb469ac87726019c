package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/ops"
)

// The demo refuses a Redis other than the development worker's unless
// told, and submits the example of every kind on every provider.
func TestDemo(t *testing.T) {
	mr := miniredis.RunT(t)
	url := "redis://:" + "s3cret-pass@" + mr.Addr() + "/0"
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"--redis", url, "demo"}, strings.NewReader(""), &out, &errOut)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut.String(), "is not the development worker's Redis")
	assert.NotContains(t, errOut.String(), "s3cret-pass", "the password is not shown")

	out.Reset()
	errOut.Reset()
	code = run(t.Context(), []string{"--redis", url, "demo", "--not-production-i-am-sure", "--timeout", "1s"}, strings.NewReader(""), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	for _, pt := range ops.ParamsTypes() {
		assert.Regexp(t, `(?m)^`+pt.Kind+` +`+pt.Provider+` +queued `, out.String(), "one %s on %s, waiting for a worker", pt.Kind, pt.Provider)
	}
	assert.Contains(t, out.String(), "http://127.0.0.1:8080/console/")
}
