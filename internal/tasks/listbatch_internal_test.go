package tasks

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listBatch reads the first page alone, then up to listParallel pages at
// a time, until every handle is found, the list ends or maxPages.
func TestListBatchPages(t *testing.T) {
	const page = 10
	items := make([]string, 95) // ten pages, the last one short
	for i := range items {
		items[i] = fmt.Sprintf("h%d", i)
	}
	run := func(handles []string, maxPages int, fail int) (map[string]PollResult, []int, error) {
		var mu sync.Mutex
		var offsets []int
		res, err := listBatch(handles, page, maxPages, func(offset int) ([]string, bool, error) {
			mu.Lock()
			offsets = append(offsets, offset)
			mu.Unlock()
			if offset == fail {
				return nil, false, errors.New("503")
			}
			end := min(offset+page, len(items))
			if offset >= len(items) {
				return nil, false, nil
			}
			return items[offset:end], end < len(items), nil
		}, func(s *string) string { return *s }, func(s *string) PollResult { return PollResult{Status: *s} })
		sort.Ints(offsets)
		return res, offsets, err
	}

	res, offsets, err := run([]string{"h1", "h3"}, 100, -1)
	require.NoError(t, err)
	assert.Equal(t, []int{0}, offsets, "all found on the first page")
	assert.Equal(t, map[string]PollResult{"h1": {Status: "h1"}, "h3": {Status: "h3"}}, res)

	res, offsets, err = run([]string{"h1", "h42", "nosuch"}, 100, -1)
	require.NoError(t, err)
	assert.Equal(t, []int{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}, offsets,
		"waves of four after the first page, until a page says the list ended")
	assert.Len(t, res, 2)

	_, offsets, err = run([]string{"nosuch"}, 3, -1)
	require.NoError(t, err)
	assert.Equal(t, []int{0, 10, 20}, offsets, "never past maxPages")

	_, _, err = run([]string{"nosuch"}, 100, 30)
	assert.ErrorContains(t, err, "503")
}
