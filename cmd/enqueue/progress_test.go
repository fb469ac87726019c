package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/opsworker/opsworker/internal/opstore"
)

func TestProgressBar(t *testing.T) {
	assert.Equal(t, "  [########------------]  42% Install operating system", progressBar([]byte(`{"percentage":42,"task":"Install operating system"}`)))
	assert.Equal(t, "  [####################] 100%", progressBar([]byte(`{"percentage":100}`)))
	assert.Equal(t, "", progressBar(nil))
	assert.Equal(t, "", progressBar([]byte(`not json`)))
}

func TestPrintOpRedactsSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var out bytes.Buffer
		g := &globals{output: format, stdout: &out}
		op := &opstore.Operation{ID: "x", Kind: "server:install", State: opstore.StateQueued,
			CallbackURL:  "https://user:pw-Secret@hooks.example.com/x/tok-Secret?token=q-Secret",
			Params:       []byte(`{"server_id":"1","password":"Hunter2-Secret","ssh_keys":["ssh-ed25519 AAAA k"]}`),
			SecretParams: []string{"password", "ssh_keys", "post_install_script"}}
		assert.NoError(t, g.printOp(op))
		assert.NotContains(t, out.String(), "Hunter2-Secret", format)
		assert.NotContains(t, out.String(), "AAAA", format)
		assert.Contains(t, out.String(), "REDACTED", format)
		assert.NotContains(t, out.String(), "Secret", format)
		assert.Contains(t, out.String(), "https://hooks.example.com", format)
	}
}
