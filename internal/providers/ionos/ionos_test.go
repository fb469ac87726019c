package ionos_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/ionos"
	"github.com/opsworker/opsworker/internal/providers/ionos/ionossim"
	"github.com/opsworker/opsworker/internal/testutil"
)

const id = "9ba15778-16c4-543c-8775-e52acf4853f5"

var props = ionos.Properties{Domain: "example.com", CertificateID: "5a029f4a-72e5-11ec-90d6-0242ac120003", RoutingRules: []ionos.RoutingRule{{
	Scheme: "http/https", Prefix: "/api", Upstream: ionos.Upstream{Host: "server.example.com", Caching: true, WAF: true,
		GeoRestrictions: &ionos.GeoRestrictions{BlockList: []string{"CN", "RU"}}, RateLimitClass: "R1", SNIMode: "distribution"}}}}

func TestEnsureRequestShape(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /distributions/"+id, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "Bearer jwt", r.Header.Get("Authorization"))
		var body map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		// The request sample of "Create Distribution" in https://api.ionos.com/docs/cdn/v1/.
		want := `{"properties":{"domain":"example.com","certificateId":"5a029f4a-72e5-11ec-90d6-0242ac120003","routingRules":[{"scheme":"http/https","prefix":"/api","upstream":{"host":"server.example.com","caching":true,"waf":true,"geoRestrictions":{"blockList":["CN","RU"]},"rateLimitClass":"R1","sniMode":"distribution"}}]}}`
		got, _ := json.Marshal(body)
		assert.JSONEq(t, want, string(got))
		io.WriteString(w, `{"id":"`+id+`","type":"distribution","metadata":{"state":"BUSY"},"properties":{}}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := ionos.New(srv.URL, ionos.WithToken("jwt"))
	require.NoError(t, err)
	d, err := c.EnsureDistribution(t.Context(), id, props)
	require.NoError(t, err)
	assert.Equal(t, "BUSY", d.Metadata.State)
}

func TestErrorEnvelope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status    int
		retryable bool
	}{{400, false}, {401, false}, {403, false}, {404, false}, {409, false}, {422, false}, {429, true}, {500, true}, {503, true}} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-Id", "req-7")
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"httpStatus":`+fmt.Sprint(tc.status)+`,"messages":[{"errorCode":"paas-x","message":"bad thing"}]}`)
			}))
			t.Cleanup(srv.Close)
			c, _ := ionos.New(srv.URL, ionos.WithToken("jwt-secret"))
			_, err := c.GetDistribution(t.Context(), id)
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.retryable, pe.Retryable())
			assert.Equal(t, "paas-x", pe.Code)
			assert.Equal(t, "bad thing", pe.Message)
			assert.Equal(t, "req-7", pe.RequestID)
			assert.NotContains(t, err.Error(), "jwt-secret")
		})
	}
}

func TestSimulatorStates(t *testing.T) {
	t.Parallel()
	clock := testutil.NewClock(time.Now())
	sim := ionossim.New(ionossim.Config{Token: "jwt", Duration: time.Minute, Now: clock.Now})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, _ := ionos.New(srv.URL, ionos.WithToken("jwt"))
	d, err := c.EnsureDistribution(t.Context(), id, props)
	require.NoError(t, err)
	assert.Equal(t, "BUSY", d.Metadata.State)
	clock.Add(time.Minute)
	d, err = c.GetDistribution(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, "AVAILABLE", d.Metadata.State)
	assert.Equal(t, "example.com", d.Properties.Domain)
	bad, _ := ionos.New(srv.URL, ionos.WithToken("other"))
	_, err = bad.GetDistribution(t.Context(), id)
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 401, pe.StatusCode)
}
