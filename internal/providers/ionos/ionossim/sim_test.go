package ionossim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers/ionos/ionossim"
)

// The list pages by offset and limit (1 to 1000), filters by state, and
// says when more remain, in the documented collection shape.
func TestListDistributions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sim := ionossim.New(ionossim.Config{Token: "tok", Duration: time.Minute, Now: func() time.Time { return now }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	for _, id := range []string{"9ba15778-16c4-543c-8775-e52acf4853f1", "9ba15778-16c4-543c-8775-e52acf4853f2", "9ba15778-16c4-543c-8775-e52acf4853f3"} {
		code, _ := call("PUT", "/distributions/"+id, `{"properties":{"domain":"cdn.example.com","routingRules":[{"scheme":"https","prefix":"/","upstream":{"host":"o.example.com"}}]}}`)
		require.Equal(t, 200, code)
	}
	code, page := call("GET", "/distributions?limit=2", "")
	require.Equal(t, 200, code)
	assert.Equal(t, "collection", page["type"])
	assert.Len(t, page["items"], 2)
	assert.NotEmpty(t, page["_links"].(map[string]any)["next"])
	item := page["items"].([]any)[0].(map[string]any)
	assert.Equal(t, "BUSY", item["metadata"].(map[string]any)["state"])

	_, page = call("GET", "/distributions?offset=2&limit=2", "")
	assert.Len(t, page["items"], 1)
	assert.Nil(t, page["_links"].(map[string]any)["next"], "the last page")

	_, page = call("GET", "/distributions?filter.state=AVAILABLE", "")
	assert.Empty(t, page["items"], "all three are BUSY")

	code, _ = call("GET", "/distributions?limit=1001", "")
	assert.Equal(t, 400, code)
}
