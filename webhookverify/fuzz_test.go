package webhookverify_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/opsworker/opsworker/webhookverify"
)

// FuzzVerify: Verify never panics on hostile headers, and what Sign makes
// always verifies.
func FuzzVerify(f *testing.F) {
	f.Add("evt_1", int64(1795394688), "v1,abc v2,def", []byte(`{}`))
	f.Add("", int64(0), "", []byte(nil))
	f.Add("evt", int64(-1), "v1,", []byte("\xff"))
	secret := webhookverify.Secret([]byte("0123456789abcdef0123456789abcdef"))
	f.Fuzz(func(t *testing.T, id string, ts int64, sig string, body []byte) {
		h := http.Header{}
		h.Set(webhookverify.HeaderID, id)
		h.Set(webhookverify.HeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(webhookverify.HeaderSignature, sig)
		_ = webhookverify.Verify(h, body, time.Minute, time.Unix(ts, 0), secret)

		if id == "" {
			return
		}
		now := time.Unix(1_800_000_000, 0)
		h.Set(webhookverify.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		h.Set(webhookverify.HeaderSignature, webhookverify.Sign(id, now, body, secret))
		if http.Header(h).Get(webhookverify.HeaderID) != id {
			return // header canonicalisation changed the id (e.g. newlines)
		}
		if err := webhookverify.Verify(h, body, time.Minute, now, secret); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
	})
}
