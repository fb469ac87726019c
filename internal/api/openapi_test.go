package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/api"
)

// documented compiles the schema of a component of the served document.
func documented(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	require.NoError(t, c.AddResource("openapi.json", doc))
	s, err := c.Compile("openapi.json#/components/schemas/" + name)
	require.NoError(t, err, name)
	return s
}

// raw sends a request and returns the status, headers and decoded body.
func raw(t *testing.T, method, url, token, contentType, body string, hdr ...string) (int, http.Header, any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err, string(b))
	return resp.StatusCode, resp.Header, v
}

// What the API answers is what the document says it answers: the
// operation of a submit (secret params redacted), a read, a page, a
// cancel, and problems of each kind validate against their schemas, and
// a submit carries the documented headers.
func TestResponsesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	operation, page, problem := documented(t, "Operation"), documented(t, "ListResponse"), documented(t, "Problem")
	const ops = "/v1/operations"
	install := `{"task_type":"server:install","provider":"leaseweb","params":{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT",` +
		`"password":"Hunter2-Secret-Pw","ssh_keys":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops@example.com",` +
		`"partitions":[{"filesystem":"ext4","mountpoint":"/","size":"*"}],"raid":{"level":1,"numberOfDisks":2,"type":"SW"}},"callback_url":"https://hooks.example.com/x?token=t"}`

	var ids []string // the install's first: it can be canceled
	for _, tc := range []struct{ key, body string }{{"install-1", install}, {"purge-1", purge}} {
		key, body := tc.key, tc.body
		code, hdr, op := raw(t, "POST", srv.URL+ops, writeTok, "application/json", body, "Idempotency-Key", key)
		require.Equal(t, 202, code, op)
		require.NoError(t, operation.Validate(op), body)
		id := op.(map[string]any)["id"].(string)
		ids = append(ids, id)
		assert.Equal(t, "/v1/operations/"+id, hdr.Get("Location"))
		code, hdr, again := raw(t, "POST", srv.URL+ops, writeTok, "application/json", body, "Idempotency-Key", key)
		require.Equal(t, 202, code)
		require.NoError(t, operation.Validate(again))
		assert.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	}
	for _, id := range ids {
		code, _, op := raw(t, "GET", srv.URL+ops+"/"+id, readTok, "", "")
		require.Equal(t, 200, code)
		require.NoError(t, operation.Validate(op))
	}
	code, _, list := raw(t, "GET", srv.URL+ops+"?limit=1", readTok, "", "")
	require.Equal(t, 200, code)
	require.NoError(t, page.Validate(list))
	require.NotEmpty(t, list.(map[string]any)["next_cursor"])
	code, _, op := raw(t, "POST", srv.URL+ops+"/"+ids[0]+"/cancel", writeTok, "application/json", `{"expire":true}`)
	require.Equal(t, 202, code, op)
	require.NoError(t, operation.Validate(op))

	for _, tc := range []struct {
		method, path, token, contentType, body string
		status                                 int
	}{
		{"POST", ops, writeTok, "application/json", `{"task_type":"cdn:purge","provider":"ucdn","params":{}}`, 400},
		{"POST", ops, "", "application/json", purge, 401},
		{"POST", ops, readTok, "application/json", purge, 403},
		{"POST", ops, writeTok, "text/plain", purge, 415},
		{"GET", ops + "/nope", readTok, "", "", 404},
		{"DELETE", ops, writeTok, "", "", 405},
	} {
		code, _, p := raw(t, tc.method, srv.URL+tc.path, tc.token, tc.contentType, tc.body)
		require.Equal(t, tc.status, code, tc)
		assert.NoError(t, problem.Validate(p), tc)
	}
}
