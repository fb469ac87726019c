package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/flow"
	"github.com/opsworker/opsworker/internal/opstore"
)

// `list` with filters that match few of many records still shows every
// match up to --limit, newest first, though each store page examines a
// bounded number of records.
func TestListFollowsPagesToTheLimit(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := opstore.New(rdb, "opsworker", time.Hour).WithClock(func() time.Time { clock = clock.Add(time.Millisecond); return clock })
	create := func(id, kind string, st opstore.State) {
		_, _, err := store.Create(t.Context(), &opstore.Operation{ID: id, Kind: kind, Provider: "ucdn", Account: "default", Params: []byte(`{}`), State: st})
		require.NoError(t, err)
	}
	for i := range 4 {
		create(fmt.Sprintf("match%d", i), "cdn:purge", opstore.StateFailed)
	}
	for i := range 1500 {
		create(fmt.Sprintf("purge%04d", i), "cdn:purge", opstore.StateSucceeded)
		create(fmt.Sprintf("install%04d", i), "server:install", opstore.StateFailed)
	}
	list := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(t.Context(), append([]string{"--redis", "redis://" + mr.Addr() + "/0", "list"}, args...), strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := list("--state", "failed", "--kind", "cdn:purge", "--limit", "3", "--output", "json")
	require.Equal(t, 0, code, errOut)
	var ops []opstore.Operation
	require.NoError(t, json.Unmarshal([]byte(out), &ops))
	ids := []string{}
	for _, op := range ops {
		ids = append(ids, op.ID)
	}
	assert.Equal(t, []string{"match3", "match2", "match1"}, ids)
	assert.NotContains(t, errOut, "100 pages", "the limit was reached: no warning")
	// The next page's cursor goes to stderr: -o json stays an array.
	require.True(t, strings.HasPrefix(errOut, "next_cursor: "), errOut)
	cursor := strings.Fields(errOut)[1]
	code, out, errOut = list("--state", "failed", "--kind", "cdn:purge", "--limit", "3", "--output", "jsonl", "--cursor", cursor)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, 1, strings.Count(out, "\n"), out)
	assert.Contains(t, out, `"id":"match0"`)
	assert.Empty(t, errOut, "the last page has no next cursor")

	code, out, errOut = list("--kind", "cdn:purge", "--all", "--output", "jsonl")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, 1504, strings.Count(out, "\n"), "every purge, one a line")
	code, _, errOut = list("--cursor", "nonsense")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--cursor")

	code, out, _ = list("--state", "failed", "--kind", "cdn:purge", "--limit", "20")
	require.Equal(t, 0, code)
	assert.Equal(t, 5, strings.Count(out, "\n"), "a header and the four matches:\n%s", out)
}

// `account pause` and `resume` hold an account on every worker through
// Redis; an unknown provider exits 2 naming it.
func TestAccountPauseAndResume(t *testing.T) {
	mr := miniredis.RunT(t)
	sh := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(t.Context(), append([]string{"--redis", "redis://" + mr.Addr() + "/0", "--output", "json"}, args...), strings.NewReader(""), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := sh("account", "pause", "leaseweb", "default")
	require.Equal(t, 0, code, out)
	assert.JSONEq(t, `{"provider":"leaseweb","account":"default","paused":true,"was_paused":false}`, out)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	by, paused, err := flow.NewPauses(rdb, "opsworker").PausedBy(t.Context(), "leaseweb", "default")
	require.NoError(t, err)
	assert.True(t, paused)
	assert.Contains(t, by, "the CLI")
	code, out = sh("account", "resume", "leaseweb", "default")
	require.Equal(t, 0, code, out)
	assert.JSONEq(t, `{"provider":"leaseweb","account":"default","paused":false,"was_paused":true}`, out)
	code, out = sh("account", "pause", "akamai", "default")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, `provider: unknown "akamai"`)
}
