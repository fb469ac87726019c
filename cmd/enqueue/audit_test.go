package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/ops"
)

// The CLI records who submits (--as, unauthenticated) and the labels;
// `status` shows them, `events` (alias history) shows the timeline, and
// `status --events -o json` carries both; a bad label names the field.
func TestCLIRecordsSubmitterLabelsAndShowsTimeline(t *testing.T) {
	mr := miniredis.RunT(t)
	sh := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(t.Context(), append([]string{"--redis", "redis://" + mr.Addr() + "/0"}, args...), strings.NewReader(""), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := sh("--as", "alice", "submit", "cdn:purge", "--provider", "ucdn", "--label", "change=CHG-1234", "--label", "release=2026.12.1",
		"--params", `{"zone_name":"shop","zone_type":"objects","files":["/a.png"]}`)
	require.Equal(t, 0, code, out)
	id := strings.TrimSpace(out)

	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	op, err := opstore.New(rdb, "opsworker", 0).Get(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, &ops.Actor{Name: "alice", Via: ops.ViaCLI}, op.SubmittedBy)
	assert.Equal(t, map[string]string{"change": "CHG-1234", "release": "2026.12.1"}, op.Labels)

	code, out = sh("status", id)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "submitted_by:  cli alice (unauthenticated)")
	assert.Contains(t, out, "labels:        change=CHG-1234, release=2026.12.1")
	assert.Contains(t, out, "resource:      ucdn:zone:shop")

	code, out = sh("history", id)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "submitted")
	assert.Contains(t, out, "by cli alice (unauthenticated)")

	code, out = sh("--output", "json", "status", "--events", id)
	require.Equal(t, 0, code, out)
	var got struct {
		ID     string              `json:"id"`
		Labels map[string]string   `json:"labels"`
		Events []ops.TimelineEvent `json:"events"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Equal(t, id, got.ID)
	assert.Equal(t, "CHG-1234", got.Labels["change"])
	require.Len(t, got.Events, 1)
	assert.Equal(t, ops.TimelineSubmitted, got.Events[0].Type)

	code, out = sh("submit", "cdn:purge", "--provider", "ucdn", "--label", "Bad Key=x", "--params", `{"zone_name":"shop","zone_type":"objects","files":["/a.png"]}`)
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "labels")
	code, out = sh("submit", "cdn:purge", "--provider", "ucdn", "--label", "novalue", "--params", `{"zone_name":"shop","zone_type":"objects","files":["/a.png"]}`)
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, `--label "novalue": want key=value`)
}

// `list` searches by label, resource, submitter and time, naming a bad
// flag.
func TestCLIListSearches(t *testing.T) {
	mr := miniredis.RunT(t)
	sh := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(t.Context(), append([]string{"--redis", "redis://" + mr.Addr() + "/0"}, args...), strings.NewReader(""), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	submit := func(as, zone, change string) string {
		code, out := sh("--as", as, "submit", "cdn:purge", "--provider", "ucdn", "--label", "change="+change,
			"--params", `{"zone_name":"`+zone+`","zone_type":"objects","files":["/a.png"]}`)
		require.Equal(t, 0, code, out)
		return strings.TrimSpace(out)
	}
	a, b := submit("alice", "shop", "CHG-1"), submit("bob", "blog", "CHG-2")
	for args, want := range map[string][]string{
		"--label change=CHG-1":         {a},
		"--resource ucdn:zone:blog":    {b},
		"--actor bob":                  {b},
		"--since 2099-01-01T00:00:00Z": {},
	} {
		code, out := sh(append([]string{"--output", "json", "list"}, strings.Fields(args)...)...)
		require.Equal(t, 0, code, out)
		var got []struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &got))
		ids := []string{}
		for _, o := range got {
			ids = append(ids, o.ID)
		}
		assert.Equal(t, want, ids, args)
	}
	code, out := sh("list", "--since", "yesterday")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "--since: want an RFC 3339 time")
}
