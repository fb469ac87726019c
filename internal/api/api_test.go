package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
)

const (
	readTok  = "read-token-0123456789"
	writeTok = "write-token-0123456789"
)

func setup(t *testing.T) (*httptest.Server, *opstore.Store) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	a := api.New(api.Config{Store: store, Submitter: tasks.NewSubmitter(store, client, tasks.SubmitOptions{}), Enqueuer: client,
		Tokens: []api.Token{{Name: "ro", Secret: readTok, Scope: api.ScopeRead}, {Name: "ci", Secret: writeTok, Scope: api.ScopeWrite}}, MaxBody: 4096})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, store
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, resp.Header, m
}

const purge = `{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}}`

// Every registered route is in the OpenAPI document, and every documented
// operation is served.
func TestRoutesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	code, _, doc := call(t, srv, "GET", "/v1/openapi.json", "", "")
	require.Equal(t, 200, code)
	documented := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, r := range api.Routes() {
		served[r.Method+" "+r.Path] = true
		// Served: an unauthenticated call is answered by our handler
		// (401 problem or 200), never by the mux's 404/405.
		p := strings.ReplaceAll(r.Path, "{id}", "x")
		code, hdr, _ := call(t, srv, r.Method, p, "", "")
		assert.Contains(t, []int{200, 401}, code, r)
		if code == 401 {
			assert.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
		}
	}
	assert.Equal(t, documented, served)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	code, hdr, p := call(t, srv, "GET", "/v1/operations", "", "")
	assert.Equal(t, 401, code)
	assert.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")
	assert.Equal(t, float64(401), p["status"])
	code, _, _ = call(t, srv, "GET", "/v1/operations", "wrong", "")
	assert.Equal(t, 401, code)
	code, _, _ = call(t, srv, "GET", "/v1/operations", readTok, "")
	assert.Equal(t, 200, code)
	code, _, p = call(t, srv, "POST", "/v1/operations", readTok, purge)
	assert.Equal(t, 403, code, "read scope cannot submit")
	assert.Contains(t, p["detail"], `token "ro" has scope read`)
}

func TestSubmitGetList(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	code, hdr, op := call(t, srv, "POST", "/v1/operations", writeTok, purge, "Idempotency-Key", "deploy-1")
	require.Equal(t, 202, code)
	id := op["id"].(string)
	assert.Equal(t, "/v1/operations/"+id, hdr.Get("Location"))
	assert.Equal(t, "queued", op["state"])

	code, hdr, again := call(t, srv, "POST", "/v1/operations", writeTok, purge, "Idempotency-Key", "deploy-1")
	assert.Equal(t, 202, code)
	assert.Equal(t, id, again["id"])
	assert.Equal(t, "true", hdr.Get("Idempotent-Replayed"))

	other := strings.Replace(purge, "/a.png", "/b.png", 1)
	code, _, p := call(t, srv, "POST", "/v1/operations", writeTok, other, "Idempotency-Key", "deploy-1")
	assert.Equal(t, 409, code, "same key, different payload")
	assert.Equal(t, "idempotency_key", p["field"])

	code, _, got := call(t, srv, "GET", "/v1/operations/"+id, readTok, "")
	assert.Equal(t, 200, code)
	assert.Equal(t, id, got["id"])
	code, _, _ = call(t, srv, "GET", "/v1/operations/nope", readTok, "")
	assert.Equal(t, 404, code)

	for i := 0; i < 4; i++ {
		c, _, _ := call(t, srv, "POST", "/v1/operations", writeTok, purge)
		require.Equal(t, 202, c)
	}
	var all []string
	cursor := ""
	for i := 0; i < 5; i++ {
		q := "/v1/operations?limit=2&kind=cdn:purge&provider=ucdn"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		code, _, page := call(t, srv, "GET", q, readTok, "")
		require.Equal(t, 200, code)
		for _, o := range page["operations"].([]any) {
			all = append(all, o.(map[string]any)["id"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Len(t, all, 5, "every operation once across pages")
	code, _, p = call(t, srv, "GET", "/v1/operations?state=done", readTok, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "state", p["field"])
	code, _, _ = call(t, srv, "GET", "/v1/operations?cursor=zzz", readTok, "")
	assert.Equal(t, 400, code)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	for _, tc := range []struct{ body, field string }{
		{`{"task_type":"cdn:purge","provider":"ucdn","params":{"zone_type":"objects","files":["/a"]}}`, "params.zone_name"},
		{`{"task_type":"cdn:nuke","provider":"ucdn","params":{}}`, "task_type"},
		{`{"provider":"ucdn","params":{}}`, "task_type"},
		{`{"task_type":"cdn:purge","provider":"ucdn","params":{},"callbackUrl":"x"}`, "callbackUrl"},
		{`{"task_type":5}`, "task_type"},
	} {
		code, hdr, p := call(t, srv, "POST", "/v1/operations", writeTok, tc.body)
		assert.Equal(t, 400, code, tc.body)
		assert.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
		assert.Equal(t, tc.field, p["field"], tc.body)
	}
	code, _, _ := call(t, srv, "POST", "/v1/operations", writeTok, `{"task_type":"`+strings.Repeat("x", 5000)+`"}`)
	assert.Equal(t, 413, code, "body capped")
	code, _, p := call(t, srv, "POST", "/v1/operations", writeTok, purge, "Idempotency-Key", "a")
	require.Equal(t, 202, code)
	_ = p
	code, _, p = call(t, srv, "POST", "/v1/operations", writeTok, strings.Replace(purge, `"params"`, `"idempotency_key":"b","params"`, 1), "Idempotency-Key", "a")
	assert.Equal(t, 400, code)
	assert.Equal(t, "idempotency_key", p["field"])
}

func TestCancel(t *testing.T) {
	t.Parallel()
	srv, store := setup(t)
	_, _, purgeOp := call(t, srv, "POST", "/v1/operations", writeTok, purge)
	code, _, p := call(t, srv, "POST", "/v1/operations/"+purgeOp["id"].(string)+"/cancel", writeTok, "")
	assert.Equal(t, 400, code)
	assert.Contains(t, p["detail"], "cannot be canceled")

	_, _, inst := call(t, srv, "POST", "/v1/operations", writeTok, `{"task_type":"server:rescue","provider":"leaseweb","params":{"server_id":"1"}}`)
	id := inst["id"].(string)
	code, _, _ = call(t, srv, "POST", "/v1/operations/"+id+"/cancel", readTok, `{"expire":true}`)
	assert.Equal(t, 403, code)
	code, _, _ = call(t, srv, "POST", "/v1/operations/"+id+"/cancel", writeTok, `{"expire":true}`)
	assert.Equal(t, 202, code)

	op, err := store.Get(t.Context(), id)
	require.NoError(t, err)
	_, err = store.Update(t.Context(), op, opstore.Change{To: opstore.StateFailed})
	require.NoError(t, err)
	code, _, _ = call(t, srv, "POST", "/v1/operations/"+id+"/cancel", writeTok, "")
	assert.Equal(t, 409, code, "already ended")
}

// A cursor that is not one the API handed out is refused, naming the
// field; "-1" and other negative positions included.
func TestListRejectsBadCursor(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	code, _, _ := call(t, srv, "POST", "/v1/operations", writeTok, purge)
	require.Equal(t, 202, code)
	for _, c := range []string{"-1", "-1:abc", "-1%3Aabc", "zzz", "abc:x", "5:", "1.5:x"} {
		for _, q := range []string{"?cursor=" + c, "?kind=cdn:purge&state=queued&cursor=" + c} {
			code, hdr, p := call(t, srv, "GET", "/v1/operations"+q, readTok, "")
			assert.Equal(t, 400, code, q)
			assert.Equal(t, "application/problem+json", hdr.Get("Content-Type"), q)
			assert.Equal(t, "cursor", p["field"], q)
			assert.Contains(t, p["detail"], "cursor: ", q)
		}
	}
}
