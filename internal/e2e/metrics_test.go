package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/testutil"
)

// operationSeries matches the exposed series of the operation metrics.
var operationSeries = regexp.MustCompile(`(?m)^opsworker_(operations_started_total|operations_finished_total|operation_duration_seconds_count|operation_polls_count)\{.*$`)

// Raw tasks naming made-up providers each fail, and /metrics counts them
// under provider="unknown": the number of series stays the same however
// many names are made up.
func TestMetricsLabelsBoundedForRawTasks(t *testing.T) {
	base, w, _ := startHTTPWorkerProc(t)
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: testutil.RedisAddr(t), DB: testutil.DBCLI})
	t.Cleanup(func() { client.Close() })
	send := func(from, to int) {
		for i := from; i < to; i++ {
			payload := fmt.Sprintf(`{"provider":"made-up-%d","params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}}`, i)
			_, err := client.Enqueue(asynq.NewTask("cdn:purge", []byte(payload)), asynq.MaxRetry(0))
			require.NoError(t, err)
		}
		testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d raw operations failed", to), func() bool {
			_, body := get(t, base+"/v1/operations?state=failed&limit=500", "Bearer "+roTok)
			return strings.Count(body, `"state":"failed"`) == to
		})
	}
	scrape := func(want string) string {
		var text string
		testutil.WaitFor(t, 10*time.Second, want, func() bool {
			_, text = get(t, base+"/metrics", "")
			return strings.Contains(text, want)
		})
		return text
	}

	send(0, 10)
	first := scrape(`opsworker_operations_finished_total{kind="cdn:purge",provider="unknown",state="failed"} 10`)
	assert.NotContains(t, first, "made-up", "no made-up name is a label")
	send(10, 40)
	again := scrape(`opsworker_operations_finished_total{kind="cdn:purge",provider="unknown",state="failed"} 40`)
	assert.NotContains(t, again, "made-up")
	require.NotEmpty(t, operationSeries.FindAllString(first, -1))
	assert.Len(t, operationSeries.FindAllString(again, -1), len(operationSeries.FindAllString(first, -1)), "30 more made-up providers add no series")
	assert.Contains(t, w.out.String(), "made-up-39", "the worker did see the made-up provider")
}
