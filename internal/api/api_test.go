package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/api"
	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

const (
	readTok  = "read-token-0123456789"
	writeTok = "write-token-0123456789"
)

func setup(t *testing.T) (*httptest.Server, *opstore.Store) {
	t.Helper()
	srv, store, _ := setupRedis(t)
	return srv, store
}

func setupRedis(t *testing.T) (*httptest.Server, *opstore.Store, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	a := api.New(api.Config{Store: store, Submitter: tasks.NewSubmitter(store, client, tasks.SubmitOptions{}), Enqueuer: client,
		Tokens: []api.Token{{Name: "ro", Secret: readTok, Scope: api.ScopeRead}, {Name: "ci", Secret: writeTok, Scope: api.ScopeWrite}}, MaxBody: 4096,
		Pauses: flow.NewPauses(rdb, "ow")})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, store, rdb
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
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
	// A purge on Edgio cannot be canceled (Edgio has no call for it).
	edgioPurge := `{"task_type":"cdn:purge","provider":"edgio","params":{"media_path":["/a.png"]}}`
	_, _, purgeOp := call(t, srv, "POST", "/v1/operations", writeTok, edgioPurge)
	code, _, p := call(t, srv, "POST", "/v1/operations/"+purgeOp["id"].(string)+"/cancel", writeTok, "")
	assert.Equal(t, 400, code)
	assert.Contains(t, p["detail"], "cannot be canceled")
	// Finished or not: a purge is never cancelable.
	done, err := store.Get(t.Context(), purgeOp["id"].(string))
	require.NoError(t, err)
	_, err = store.Update(t.Context(), done, opstore.Change{To: opstore.StateSucceeded})
	require.NoError(t, err)
	code, _, p = call(t, srv, "POST", "/v1/operations/"+purgeOp["id"].(string)+"/cancel", writeTok, "")
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

// The auth scheme is case-insensitive (RFC 9110 section 11.1).
func TestAuthSchemeCaseInsensitive(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		code, _, _ := call(t, srv, "GET", "/v1/operations", "", "", "Authorization", scheme+" "+readTok)
		assert.Equal(t, 200, code, scheme)
	}
	code, hdr, _ := call(t, srv, "GET", "/v1/operations", "", "", "Authorization", "Token "+readTok)
	assert.Equal(t, 401, code, "another scheme")
	assert.NotContains(t, hdr.Values("WWW-Authenticate"), `Basic realm="opsworker"`, "no Basic challenge: browsers must not cache credentials")
}

// Writes take JSON only: a body of another type is a 415 problem, so an
// HTML form on another site cannot submit one.
func TestWritesNeedJSON(t *testing.T) {
	t.Parallel()
	srv, store := setup(t)
	for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1", "application/jsonx"} {
		code, hdr, p := call(t, srv, "POST", "/v1/operations", writeTok, purge, "Content-Type", ct)
		assert.Equal(t, 415, code, ct)
		assert.Equal(t, "application/problem+json", hdr.Get("Content-Type"), ct)
		assert.Equal(t, float64(415), p["status"], ct)
		assert.Contains(t, p["detail"], "application/json", ct)
	}
	ops, _, err := store.ListPage(t.Context(), opstore.Filter{Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, ops, "nothing was submitted")
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"} {
		code, _, _ := call(t, srv, "POST", "/v1/operations", writeTok, purge, "Content-Type", ct)
		assert.Equal(t, 202, code, ct)
	}

	_, _, inst := call(t, srv, "POST", "/v1/operations", writeTok, `{"task_type":"server:rescue","provider":"leaseweb","params":{"server_id":"1"}}`)
	cancel := "/v1/operations/" + inst["id"].(string) + "/cancel"
	code, _, _ := call(t, srv, "POST", cancel, writeTok, `{"expire":true}`, "Content-Type", "text/plain")
	assert.Equal(t, 415, code, "a cancel body is JSON")
	code, _, _ = call(t, srv, "POST", cancel, writeTok, "", "Content-Type", "application/x-www-form-urlencoded")
	assert.Equal(t, 415, code, "an empty form is not a bodyless cancel")
	code, _, _ = call(t, srv, "POST", cancel, writeTok, "")
	assert.Equal(t, 202, code, "a bodyless cancel needs no Content-Type")
}

// Anything after the JSON value but whitespace is a 400, for every body.
func TestTrailingData(t *testing.T) {
	t.Parallel()
	srv, store := setup(t)
	for _, tail := range []string{"}", "]", " }", "{}", `{"task_type":"x"}`, "x", "\n]"} {
		code, _, p := call(t, srv, "POST", "/v1/operations", writeTok, purge+tail)
		assert.Equal(t, 400, code, tail)
		assert.Contains(t, p["detail"], "trailing data", tail)
	}
	ops, _, err := store.ListPage(t.Context(), opstore.Filter{Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, ops, "nothing was submitted")
	code, _, _ := call(t, srv, "POST", "/v1/operations", writeTok, purge+" \r\n\t")
	assert.Equal(t, 202, code, "trailing whitespace is fine")

	_, _, inst := call(t, srv, "POST", "/v1/operations", writeTok, `{"task_type":"server:rescue","provider":"leaseweb","params":{"server_id":"1"}}`)
	cancel := "/v1/operations/" + inst["id"].(string) + "/cancel"
	code, _, p := call(t, srv, "POST", cancel, writeTok, `{"expire":true}}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, p["detail"], "trailing data")
}

func TestCallbackURLChecked(t *testing.T) {
	t.Parallel()
	srv, store := setup(t)
	withCallback := func(u string) string {
		return strings.Replace(purge, `"params"`, `"callback_url":"`+u+`","params"`, 1)
	}
	code, _, p := call(t, srv, "POST", "/v1/operations", writeTok, withCallback("https://hooks.example.com/\xff\xfe"))
	assert.Equal(t, 400, code, "invalid UTF-8 is not replaced with U+FFFD")
	assert.Equal(t, "callback_url", p["field"])
	assert.Contains(t, p["detail"], "UTF-8")

	long := "https://hooks.example.com/" + strings.Repeat("a", 2049-len("https://hooks.example.com/"))
	code, _, p = call(t, srv, "POST", "/v1/operations", writeTok, withCallback(long))
	assert.Equal(t, 400, code, "2,049 bytes")
	assert.Equal(t, "callback_url", p["field"])
	assert.Contains(t, p["detail"], "2048")
	ops, _, err := store.ListPage(t.Context(), opstore.Filter{Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, ops, "nothing was submitted")

	code, _, _ = call(t, srv, "POST", "/v1/operations", writeTok, withCallback(long[:2048]))
	assert.Equal(t, 202, code, "2,048 bytes is fine")

	code, _, p = call(t, srv, "POST", "/v1/operations", writeTok, "{\"task_type\":\"cdn:purge\",\"provider\":\"ucdn\xc3\",\"params\":{}}")
	assert.Equal(t, 400, code)
	assert.Equal(t, "provider", p["field"], "the field holding the bad bytes")
}

func TestListFiltersChecked(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	for _, tc := range []struct{ query, field string }{
		{"kind=cdn:nuke", "kind"},
		{"kind=CDN:PURGE", "kind"},
		{"provider=acme", "provider"},
		{"kind=cdn:purge&provider=acme", "provider"},
	} {
		code, hdr, p := call(t, srv, "GET", "/v1/operations?"+tc.query, readTok, "")
		assert.Equal(t, 400, code, tc.query)
		assert.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
		assert.Equal(t, tc.field, p["field"], tc.query)
	}
	for _, q := range []string{"kind=cdn:purge", "provider=leaseweb", "kind=server:install&provider=leaseweb", "kind=&provider="} {
		code, _, _ := call(t, srv, "GET", "/v1/operations?"+q, readTok, "")
		assert.Equal(t, 200, code, q)
	}
}

// The mux's own 404 and 405 answers are problem JSON too.
func TestMuxErrorsAreProblems(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"DELETE", "/v1/operations", 405, "GET, HEAD, POST"},
		{"PUT", "/v1/operations/x", 405, "GET, HEAD"},
		{"GET", "/v1/operations/x/cancel", 405, "POST"},
		{"POST", "/v1/openapi.json", 405, "GET, HEAD"},
		{"GET", "/v1/nope", 404, ""},
		{"GET", "/v1/operations/x/y", 404, ""},
		{"POST", "/v1/", 404, ""},
	} {
		code, hdr, p := call(t, srv, tc.method, tc.path, writeTok, "")
		assert.Equal(t, tc.status, code, tc)
		assert.Equal(t, "application/problem+json", hdr.Get("Content-Type"), tc)
		assert.Equal(t, float64(tc.status), p["status"], tc)
		assert.Equal(t, tc.allow, hdr.Get("Allow"), tc)
	}
}

// Problems say the field and the JSON type, never a Go type.
func TestProblemsNameJSONTypes(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	for _, tc := range []struct{ path, body, field, detail string }{
		{"/v1/operations", `{"task_type":"cdn:purge","provider":5,"params":{}}`, "provider", "provider: must be a string"},
		{"/v1/operations", `{"task_type":["cdn:purge"]}`, "task_type", "task_type: must be a string"},
		{"/v1/operations", `[]`, "", "must be a JSON object"},
		{"/v1/operations", `5`, "", "must be a JSON object"},
		{"/v1/operations", `"x"`, "", "must be a JSON object"},
		{"/v1/operations/x/cancel", `{"expire":"yes"}`, "expire", "expire: must be a boolean"},
		{"/v1/operations/x/cancel", `{"expire":1}`, "expire", "expire: must be a boolean"},
	} {
		code, _, p := call(t, srv, "POST", tc.path, writeTok, tc.body)
		require.Equal(t, 400, code, tc.body)
		detail, _ := p["detail"].(string)
		field, _ := p["field"].(string)
		assert.Contains(t, detail, tc.detail, tc.body)
		assert.Equal(t, tc.field, field, tc.body)
		for _, goish := range []string{"Go ", "api.", "SubmitRequest", "CancelRequest", "struct", "bool "} {
			assert.NotContains(t, detail, goish, tc.body)
		}
	}
}

// The document's kind and provider lists are the supported ones, and
// every route with a body documents the 415.
func TestOpenAPIListsKindsProvidersAnd415(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths      map[string]map[string]struct{ Responses map[string]any } `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(api.OpenAPI, &doc))
	assert.ElementsMatch(t, tasks.Kinds(), doc.Components.Schemas["Kind"].Enum)
	var providers []string
	for _, s := range tasks.Specs() {
		if !slices.Contains(providers, s.Provider) {
			providers = append(providers, s.Provider)
		}
	}
	assert.ElementsMatch(t, providers, doc.Components.Schemas["Provider"].Enum)
	for _, r := range api.Routes() {
		op := doc.Paths[r.Path][strings.ToLower(r.Method)]
		assert.Contains(t, op.Responses, "default", r)
		if r.Method == "POST" {
			assert.Contains(t, op.Responses, "415", r)
		}
	}
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

// A write token pauses and resumes a provider account; the answer says
// the state now and before, and the pause records who asked. Bad names
// are refused naming the field.
func TestPauseAndResumeAccount(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	path := "/v1/providers/leaseweb/accounts/default/"
	code, _, _ := call(t, srv, "POST", path+"pause", readTok, "")
	assert.Equal(t, 403, code, "a read token cannot pause")
	code, _, res := call(t, srv, "POST", path+"pause", writeTok, "")
	require.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"provider": "leaseweb", "account": "default", "paused": true, "was_paused": false}, res)
	_, _, res = call(t, srv, "POST", path+"pause", writeTok, "")
	assert.Equal(t, true, res["was_paused"])
	_, _, res = call(t, srv, "POST", path+"resume", writeTok, "")
	assert.Equal(t, map[string]any{"provider": "leaseweb", "account": "default", "paused": false, "was_paused": true}, res)
	code, _, p := call(t, srv, "POST", "/v1/providers/akamai/accounts/default/pause", writeTok, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "provider", p["field"])
	code, _, p = call(t, srv, "POST", "/v1/providers/ucdn/accounts/a%20b/pause", writeTok, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "account", p["field"])
}

// A submit for a provider account no running worker serves is refused,
// naming account and the accounts that are served; a served one goes
// through.
func TestSubmitRefusesAnUnservedAccount(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	served := flow.NewServed(rdb, "ow")
	require.NoError(t, served.Announce(t.Context(), "w1", [][2]string{{"ucdn", "default"}}, time.Minute))
	a := api.New(api.Config{Store: store, Submitter: tasks.NewSubmitter(store, client, tasks.SubmitOptions{}), Enqueuer: client,
		Tokens: []api.Token{{Name: "ci", Secret: writeTok, Scope: api.ScopeWrite}}, Served: served})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	code, _, _ := call(t, srv, "POST", "/v1/operations", writeTok, purge)
	assert.Equal(t, 202, code, "ucdn/default is served")
	code, _, p := call(t, srv, "POST", "/v1/operations", writeTok, strings.Replace(purge, `"provider":"ucdn"`, `"provider":"ucdn","account":"eu"`, 1))
	assert.Equal(t, 400, code)
	assert.Equal(t, "account", p["field"])
	assert.Contains(t, p["detail"], `no running worker serves account "eu" of ucdn (served now: ucdn/default)`)
	code, _, p = call(t, srv, "POST", "/v1/operations", writeTok, `{"task_type":"server:rescue","provider":"leaseweb","params":{"server_id":"1"}}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "account", p["field"])
	code, _, p = call(t, srv, "POST", "/v1/operations", writeTok, `{"task_type":"cdn:nuke","provider":"ucdn","params":{}}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "task_type", p["field"], "an unknown kind is the submit's own error")
}

// An operation queued for an account no running worker serves (its
// worker stopped after the submit) says why it waits, once it is older
// than the grace a starting worker gets; the record itself is unchanged.
func TestQueuedOperationSaysNoWorkerServesIt(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, "ow", time.Hour)
	served := flow.NewServed(rdb, "ow")
	require.NoError(t, served.Announce(t.Context(), "w1", [][2]string{{"ucdn", "default"}}, time.Minute))
	mk := func(provider string, age time.Duration) string {
		op, _, err := store.WithClock(func() time.Time { return time.Now().Add(-age) }).Create(t.Context(), &opstore.Operation{
			ID: uuid.NewString(), Kind: "server:rescue", Provider: provider, Account: "default", Params: []byte(`{"server_id":"1"}`), State: opstore.StateQueued})
		require.NoError(t, err)
		return op.ID
	}
	old, young, servedOp := mk("leaseweb", time.Minute), mk("leaseweb", time.Second), mk("ucdn", time.Minute)
	a := api.New(api.Config{Store: store, Tokens: []api.Token{{Name: "ro", Secret: readTok, Scope: api.ScopeRead}}, Served: served})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	_, _, got := call(t, srv, "GET", "/v1/operations/"+old, readTok, "")
	assert.Equal(t, `waiting: no running worker serves account "default" of leaseweb (served now: ucdn/default)`, got["last_error"])
	_, _, got = call(t, srv, "GET", "/v1/operations/"+young, readTok, "")
	assert.Nil(t, got["last_error"], "within the grace")
	_, _, got = call(t, srv, "GET", "/v1/operations/"+servedOp, readTok, "")
	assert.Nil(t, got["last_error"], "served")
	_, _, got = call(t, srv, "GET", "/v1/operations?state=queued", readTok, "")
	noted := 0
	for _, o := range got["operations"].([]any) {
		if strings.Contains(fmt.Sprint(o.(map[string]any)["last_error"]), "no running worker serves") {
			noted++
		}
	}
	assert.Equal(t, 1, noted)
	rec, err := store.Get(t.Context(), old)
	require.NoError(t, err)
	assert.Empty(t, rec.LastError, "the record is not changed")
}

// A submit records who asked (the token, authenticated), the labels and
// the resource; a declared submitted_by is refused, naming the field; a
// cancel request carries who asked for it.
func TestSubmitRecordsActorLabelsAndResource(t *testing.T) {
	t.Parallel()
	srv, store, rdb := setupRedis(t)
	withLabels := strings.Replace(purge, `"provider":"ucdn"`, `"provider":"ucdn","labels":{"change":"CHG-1234","release":"2026.12.1"}`, 1)
	code, _, op := call(t, srv, "POST", "/v1/operations", writeTok, withLabels)
	require.Equal(t, 202, code, op)
	assert.Equal(t, map[string]any{"name": "ci", "via": "api", "authenticated": true}, op["submitted_by"])
	assert.Equal(t, map[string]any{"change": "CHG-1234", "release": "2026.12.1"}, op["labels"])
	assert.Equal(t, "ucdn:zone:demo", op["resource"])
	_, _, got := call(t, srv, "GET", "/v1/operations/"+op["id"].(string), readTok, "")
	assert.Equal(t, op["submitted_by"], got["submitted_by"], "stored")
	assert.Equal(t, op["labels"], got["labels"])

	code, _, p := call(t, srv, "POST", "/v1/operations", writeTok, strings.Replace(purge, `"provider":"ucdn"`, `"provider":"ucdn","submitted_by":"someone-else"`, 1))
	assert.Equal(t, 400, code)
	assert.Equal(t, "submitted_by", p["field"])
	code, _, p = call(t, srv, "POST", "/v1/operations", writeTok, strings.Replace(purge, `"provider":"ucdn"`, `"provider":"ucdn","labels":{"Bad Key":"x"}`, 1))
	assert.Equal(t, 400, code)
	assert.Equal(t, "labels", p["field"])

	_, _, inst := call(t, srv, "POST", "/v1/operations", writeTok, `{"task_type":"server:rescue","provider":"leaseweb","params":{"server_id":"1"}}`)
	assert.Equal(t, "leaseweb:server:1", inst["resource"])
	code, _, _ = call(t, srv, "POST", "/v1/operations/"+inst["id"].(string)+"/cancel", writeTok, "")
	require.Equal(t, 202, code)
	rec, err := store.Get(t.Context(), inst["id"].(string))
	require.NoError(t, err)
	assert.Equal(t, &ops.Actor{Name: "ci", Via: "api", Authenticated: true}, rec.SubmittedBy)
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo("default", tasks.CancelTaskID(rec.ID))
	require.NoError(t, err)
	var cp tasks.CancelPayload
	require.NoError(t, json.Unmarshal(info.Payload, &cp))
	assert.Equal(t, &ops.Actor{Name: "ci", Via: "api", Authenticated: true}, cp.By)
}

// GET /v1/operations/{id}/events is the operation's timeline, read scope;
// an unknown id is a 404.
func TestOperationEvents(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	_, _, op := call(t, srv, "POST", "/v1/operations", writeTok, purge)
	code, _, got := call(t, srv, "GET", "/v1/operations/"+op["id"].(string)+"/events", readTok, "")
	require.Equal(t, 200, code, got)
	assert.Equal(t, op["id"], got["operation_id"])
	evs := got["events"].([]any)
	require.Len(t, evs, 1)
	first := evs[0].(map[string]any)
	assert.Equal(t, "submitted", first["type"])
	assert.Equal(t, "queued", first["state"])
	assert.Equal(t, map[string]any{"name": "ci", "via": "api", "authenticated": true}, first["actor"])
	assert.Contains(t, first["message"], "ucdn:zone:demo")
	code, _, _ = call(t, srv, "GET", "/v1/operations/nope/events", readTok, "")
	assert.Equal(t, 404, code)
	code, _, _ = call(t, srv, "GET", "/v1/operations/"+op["id"].(string)+"/events", "", "")
	assert.Equal(t, 401, code)
}

// GET /v1/operations searches by label, resource, submitter and time, and
// names a bad search parameter.
func TestSearchOperations(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t)
	submit := func(zone, change string) string {
		body := strings.Replace(purge, `"zone_name":"demo"`, `"zone_name":"`+zone+`"`, 1)
		body = strings.Replace(body, `"provider":"ucdn"`, `"provider":"ucdn","labels":{"change":"`+change+`"}`, 1)
		code, _, op := call(t, srv, "POST", "/v1/operations", writeTok, body)
		require.Equal(t, 202, code, op)
		return op["id"].(string)
	}
	a := submit("shop", "CHG-1")
	b := submit("blog", "CHG-2")
	c := submit("shop", "CHG-2")
	ids := func(path string) []string {
		code, _, got := call(t, srv, "GET", path, readTok, "")
		require.Equal(t, 200, code, got)
		out := []string{}
		for _, o := range got["operations"].([]any) {
			out = append(out, o.(map[string]any)["id"].(string))
		}
		return out
	}
	assert.Equal(t, []string{c, b}, ids("/v1/operations?label=change%3DCHG-2"))
	assert.Equal(t, []string{c, a}, ids("/v1/operations?resource=ucdn:zone:shop"))
	assert.Equal(t, []string{c}, ids("/v1/operations?resource=ucdn:zone:shop&label=change%3DCHG-2"))
	assert.Equal(t, []string{c, b, a}, ids("/v1/operations?actor=ci"))
	assert.Empty(t, ids("/v1/operations?actor=ro"))
	assert.Empty(t, ids("/v1/operations?since=2099-01-01T00:00:00Z"))
	assert.Equal(t, []string{c, b, a}, ids("/v1/operations?since=2020-01-01T00:00:00Z&until=2099-01-01T00:00:00Z"))
	for q, field := range map[string]string{
		"label=nokey":         "label",
		"label=Bad%20Key%3Dx": "label",
		"since=yesterday":     "since",
		"since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z": "until",
		"actor=" + strings.Repeat("a", 101):                     "actor",
	} {
		code, _, p := call(t, srv, "GET", "/v1/operations?"+q, readTok, "")
		assert.Equal(t, 400, code, q)
		assert.Equal(t, field, p["field"], q)
	}
}

// Approving takes a write token other than the submitter's; an operation
// that does not wait for an approval is a 409; a reject is queued for
// the worker, naming the token.
func TestApproveAndReject(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := opstore.New(rdb, "ow", time.Hour)
	client := asynq.NewClientFromRedisClient(rdb)
	t.Cleanup(func() { client.Close() })
	const otherTok = "other-write-token-0123456789"
	a := api.New(api.Config{Store: store, Submitter: tasks.NewSubmitter(store, client, tasks.SubmitOptions{}), Enqueuer: client,
		Tokens: []api.Token{{Name: "ro", Secret: readTok, Scope: api.ScopeRead}, {Name: "ci", Secret: writeTok, Scope: api.ScopeWrite},
			{Name: "lead", Secret: otherTok, Scope: api.ScopeWrite}}})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	pending := func() string {
		op, _, err := store.Create(t.Context(), &opstore.Operation{ID: uuid.NewString(), Kind: "server:install", Provider: "leaseweb", Account: "default",
			Params: []byte(`{"server_id":"1","operating_system_id":"DEBIAN_11_64BIT"}`), State: opstore.StatePendingApproval,
			SubmittedBy: &ops.Actor{Name: "ci", Via: ops.ViaAPI, Authenticated: true}})
		require.NoError(t, err)
		return op.ID
	}
	id := pending()
	code, _, p := call(t, srv, "POST", "/v1/operations/"+id+"/approve", writeTok, "")
	assert.Equal(t, 403, code, "the submitter's own token")
	assert.Contains(t, p["detail"], "another write token must")
	code, _, _ = call(t, srv, "POST", "/v1/operations/"+id+"/approve", readTok, "")
	assert.Equal(t, 403, code, "read scope")
	code, _, got := call(t, srv, "POST", "/v1/operations/"+id+"/approve", otherTok, "")
	require.Equal(t, 200, code, got)
	assert.Equal(t, "queued", got["state"])
	assert.Equal(t, map[string]any{"name": "lead", "via": "api", "authenticated": true}, got["approved_by"])
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo(tasks.ProviderQueue("leaseweb"), tasks.LaunchTaskID(id)+":approved")
	require.NoError(t, err, "its launch task")
	assert.Equal(t, "server:install", info.Type)
	code, _, _ = call(t, srv, "POST", "/v1/operations/"+id+"/approve", otherTok, "")
	assert.Equal(t, 409, code, "approved already")
	code, _, _ = call(t, srv, "POST", "/v1/operations/"+id+"/reject", otherTok, "")
	assert.Equal(t, 409, code, "not pending any more")

	id = pending()
	code, _, _ = call(t, srv, "POST", "/v1/operations/"+id+"/reject", writeTok, "")
	require.Equal(t, 202, code)
	info, err = asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo("default", tasks.CancelTaskID(id))
	require.NoError(t, err)
	var cp tasks.CancelPayload
	require.NoError(t, json.Unmarshal(info.Payload, &cp))
	assert.True(t, cp.Reject)
	assert.Equal(t, &ops.Actor{Name: "ci", Via: ops.ViaAPI, Authenticated: true}, cp.By)
	code, _, _ = call(t, srv, "POST", "/v1/operations/nope/approve", otherTok, "")
	assert.Equal(t, 404, code)
}
