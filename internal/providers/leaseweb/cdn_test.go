package leaseweb_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers"
)

func TestInvalidateRequestShape(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("POST /cdn/v2/invalidations", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, key, r.Header.Get("X-LSW-Auth"))
		b, _ := io.ReadAll(r.Body)
		assert.JSONEq(t, `{"files":["https://cdn.example.com/a.png"]}`, string(b))
		w.WriteHeader(http.StatusCreated)
		// The 201 sample of "Do Invalidation" in https://developer.leaseweb.com/api-docs/cdn_v2.html.
		io.WriteString(w, `{"type":"INVALIDATION","resource":{"invalidation_id":"in-f141ghed5","status":"PENDING","url_status":[{"distribution_group_id":"","status":"PENDING","message":""}],"submitted":"2024-07-11T12:14:41","completed":""},"status":"PENDING","id":"0533396e-e5c6-4de2-bd08-06dfa91a3ab6","customerId":"47927462","created":"2024-07-11T12:14:43Z","updated":""}`)
	})
	a, err := c.CDN.Invalidate(t.Context(), []string{"https://cdn.example.com/a.png"})
	require.NoError(t, err)
	assert.Equal(t, "0533396e-e5c6-4de2-bd08-06dfa91a3ab6", a.ID)
	assert.Equal(t, "in-f141ghed5", a.Resource.InvalidationID)
}

func TestActionsAgainstSimulator(t *testing.T) {
	t.Parallel()
	c := simClient(t)
	var ids []string
	for i := 0; i < 3; i++ {
		a, err := c.CDN.Invalidate(t.Context(), []string{"/x"})
		require.NoError(t, err)
		ids = append(ids, a.ID)
	}
	list, total, err := c.CDN.ListActions(t.Context(), "INVALIDATION", 2, 0)
	require.NoError(t, err)
	assert.Equal(t, 3, total)
	require.Len(t, list, 2)
	assert.Equal(t, ids[2], list[0].ID, "newest first")
	page2, _, err := c.CDN.ListActions(t.Context(), "INVALIDATION", 2, 2)
	require.NoError(t, err)
	assert.Equal(t, ids[0], page2[0].ID)
	a, err := c.CDN.GetAction(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, "FINISHED", a.Status)
	_, err = c.CDN.Invalidate(t.Context(), nil)
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 422, pe.StatusCode)
	assert.NotEmpty(t, pe.RequestID)
}
