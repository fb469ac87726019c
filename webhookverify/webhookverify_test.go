package webhookverify_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/webhookverify"
)

func headers(id string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(webhookverify.HeaderID, id)
	h.Set(webhookverify.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhookverify.HeaderSignature, sig)
	return h
}

// The independent Standard Webhooks library accepts what we sign, and we
// accept what it signs.
func TestInteropWithStandardWebhooksLibrary(t *testing.T) {
	t.Parallel()
	secret := webhookverify.NewSecret()
	body := []byte(`{"type":"operation.succeeded","data":{"id":"x"}}`)
	now := time.Now()

	lib, err := standardwebhooks.NewWebhook(secret.String())
	require.NoError(t, err)
	require.NoError(t, lib.Verify(body, headers("evt_1", now, webhookverify.Sign("evt_1", now, body, secret))))

	libSig, err := lib.Sign("evt_2", now, body)
	require.NoError(t, err)
	require.NoError(t, webhookverify.Verify(headers("evt_2", now, libSig), body, webhookverify.DefaultTolerance, now, secret))

	// Tampered body: both refuse.
	bad := []byte(`{"type":"operation.failed"}`)
	assert.Error(t, lib.Verify(bad, headers("evt_1", now, webhookverify.Sign("evt_1", now, body, secret))))
	assert.ErrorIs(t, webhookverify.Verify(headers("evt_2", now, libSig), bad, time.Minute, now, secret), webhookverify.ErrNoMatch)
}

func TestRotationSignsWithEverySecret(t *testing.T) {
	t.Parallel()
	oldS, newS := webhookverify.NewSecret(), webhookverify.NewSecret()
	body := []byte(`{}`)
	now := time.Now()
	sig := webhookverify.Sign("evt", now, body, newS, oldS)
	for _, s := range []webhookverify.Secret{oldS, newS} {
		lib, err := standardwebhooks.NewWebhook(s.String())
		require.NoError(t, err)
		assert.NoError(t, lib.Verify(body, headers("evt", now, sig)), "a receiver on either secret verifies")
	}
	assert.ErrorIs(t, webhookverify.Verify(headers("evt", now, sig), body, time.Minute, now, webhookverify.NewSecret()), webhookverify.ErrNoMatch)
}

func TestVerifyTimestampAndHeaders(t *testing.T) {
	t.Parallel()
	s := webhookverify.NewSecret()
	body := []byte(`{}`)
	now := time.Now()
	old := now.Add(-6 * time.Minute)
	assert.ErrorIs(t, webhookverify.Verify(headers("e", old, webhookverify.Sign("e", old, body, s)), body, webhookverify.DefaultTolerance, now, s), webhookverify.ErrBadTimestamp)
	future := now.Add(6 * time.Minute)
	assert.ErrorIs(t, webhookverify.Verify(headers("e", future, webhookverify.Sign("e", future, body, s)), body, webhookverify.DefaultTolerance, now, s), webhookverify.ErrBadTimestamp)
	assert.ErrorIs(t, webhookverify.Verify(http.Header{}, body, time.Minute, now, s), webhookverify.ErrMissingHeaders)
	h := headers("e", now, "v2,abc v1,!!!")
	assert.ErrorIs(t, webhookverify.Verify(h, body, time.Minute, now, s), webhookverify.ErrNoMatch)
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	s := webhookverify.NewSecret()
	got, err := webhookverify.ParseSecret(s.String())
	require.NoError(t, err)
	assert.Equal(t, s, got)
	for _, bad := range []string{"", "whsec_***", "whsec_YWJj"} {
		_, err := webhookverify.ParseSecret(bad)
		assert.Error(t, err, bad)
	}
}
