package providers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/edgio"
	"github.com/opsworker/opsworker/internal/providers/ionos"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
)

// FuzzProviderAnswers: every client survives any status, Retry-After and
// body its provider could send, and classifies every failure.
func FuzzProviderAnswers(f *testing.F) {
	f.Add(200, "", `{"job_id":"x","status":"running","files":[],"created_at":1}`)
	f.Add(532, "", `{"message":"Zone not found"}`)
	f.Add(400, "", `{"errorCode":400,"errorMessage":"Validation Failed","correlationId":"c","errorDetails":{"a":["b"]}}`)
	f.Add(429, "Wed, 21 Oct 2015 07:28:00 GMT", `{"httpStatus":429,"messages":[{"errorCode":"x","message":"y"}]}`)
	f.Add(503, "-5", "<html>")
	f.Add(200, "", "\xff\xfe")
	f.Fuzz(func(t *testing.T, status int, retryAfter, body string) {
		if status < 200 || status > 599 {
			return
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}))
		defer srv.Close()
		hc := &http.Client{Timeout: 2 * time.Second}
		uc, _ := ucdn.New(srv.URL, ucdn.WithHTTPClient(hc))
		lc, _ := leaseweb.New(srv.URL, leaseweb.WithHTTPClient(hc))
		ec, _ := edgio.New(srv.URL, edgio.WithHTTPClient(hc))
		ic, _ := ionos.New(srv.URL, ionos.WithHTTPClient(hc))
		ctx := t.Context()
		errs := []error{}
		_, err := uc.GetPurgeJob(ctx, "x")
		errs = append(errs, err)
		_, err = lc.BareMetal.GetJob(ctx, "1", "x")
		errs = append(errs, err)
		_, _, err = lc.CDN.ListActions(ctx, "INVALIDATION", 10, 0)
		errs = append(errs, err)
		_, err = ec.GetPurge(ctx, "0001", "x")
		errs = append(errs, err)
		_, err = ic.GetDistribution(ctx, "x")
		errs = append(errs, err)
		for _, err := range errs {
			if err == nil {
				continue
			}
			var pe *providers.Error
			if !errorsAs(err, &pe) {
				t.Fatalf("unclassified error %T: %v", err, err)
			}
			if pe.RetryAfter < 0 {
				t.Fatalf("negative Retry-After")
			}
		}
	})
}
