package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/opsworker/opsworker/webhookverify"
)

func request(secret webhookverify.Secret, id string, ts time.Time, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	r.Header.Set("webhook-id", id)
	r.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set("webhook-signature", webhookverify.Sign(id, ts, []byte(body), secret))
	return r
}

func TestReceiverVerifiesAndDeduplicates(t *testing.T) {
	secret := webhookverify.NewSecret()
	var out bytes.Buffer
	h := newHandler([]webhookverify.Secret{secret}, &out)
	body := `{"type":"operation.succeeded","data":{"id":"op1","kind":"cdn:purge","provider":"ucdn","state":"succeeded"}}`

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request(secret, "evt_1", time.Now(), body))
	assert.Equal(t, http.StatusNoContent, rec.Code)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, request(secret, "evt_1", time.Now(), body))
	assert.Equal(t, http.StatusOK, rec.Code, "a retry of a handled event is acknowledged")
	assert.Equal(t, 1, strings.Count(out.String(), "operation.succeeded"))

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, request(webhookverify.NewSecret(), "evt_2", time.Now(), body))
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "wrong secret")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, request(secret, "evt_3", time.Now().Add(-10*time.Minute), body))
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "outside the 5 min tolerance")
}
