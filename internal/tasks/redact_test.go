package tasks

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedactorForms(t *testing.T) {
	const pw = `Pa"ss&wörd/1x`
	r := newRedactor(newSalt(), "api-key-123456")
	r.add(pw)
	r.add("api-key-123456")
	for _, msg := range []string{
		"bad password " + pw,
		`{"errorMessage":"bad password Pa\"ss\u0026w\u00f6rd\/1x"}`,
		`{"errorMessage":"bad password Pa\"ss&wörd\/1x"}`,
		"password=" + strings.ReplaceAll(strings.ReplaceAll(pw, `"`, "%22"), "/", "%2F"),
		"echo " + base64.StdEncoding.EncodeToString([]byte(pw)),
		"echo " + base64.RawURLEncoding.EncodeToString([]byte(pw)),
		"token api-key-123456 refused",
	} {
		out := r.redact(msg)
		assert.NotContains(t, out, "ss&w", msg)
		assert.NotContains(t, out, "api-key-123456", msg)
		assert.NotContains(t, out, base64.StdEncoding.EncodeToString([]byte(pw))[:12], msg)
	}
	assert.Equal(t, "nothing to see here", r.redact("nothing to see here"))
	// Only decoded does the secret show: the message is withheld whole.
	esc := `\u0050\u0061"ss\u0026w\u00f6rd\/1x` // every letter escaped differently
	assert.Equal(t, withheld, r.redact(`{"errorMessage":"`+esc+`"}`))
}

func TestRedactorLongBase64CutShort(t *testing.T) {
	script := "#!/bin/sh\n" + strings.Repeat("export DB_PASSWORD=db-S3cret-Value-123456789\n", 6)
	r := newRedactor(newSalt(), "")
	r.add(script)
	b64 := base64.StdEncoding.EncodeToString([]byte(script))
	out := r.redact(`{"errorDetails":{"postInstallScript":["not valid: ` + b64[:150])
	assert.Equal(t, `{"errorDetails":{"postInstallScript":["not valid: [REDACTED]`, out)
	assert.Equal(t, "line [REDACTED] failed", r.redact("line export DB_PASSWORD=db-S3cret-Value-123456789 failed"))
}

// The digests a record keeps after the launch recognise the secret with
// the account's credential, and reveal nothing without it.
func TestRedactorDigestsRoundTrip(t *testing.T) {
	const pw = "Sup3r-S3cret-Pw"
	r := newRedactor(newSalt(), "account-token-xyz")
	r.add(pw)
	d := r.digests()
	assert.NotContains(t, d, pw)
	assert.NotContains(t, d, base64.RawStdEncoding.EncodeToString([]byte(pw))[:8])

	again, err := redactorFromDigests(d, "account-token-xyz")
	require.NoError(t, err)
	assert.Equal(t, "password [REDACTED] refused", again.redact("password "+pw+" refused"))

	other, err := redactorFromDigests(d, "another-token")
	require.NoError(t, err)
	assert.Equal(t, "password "+pw+" refused", other.redact("password "+pw+" refused"), "keyed by the credential")

	_, err = redactorFromDigests("garbage", "")
	assert.Error(t, err)
}
