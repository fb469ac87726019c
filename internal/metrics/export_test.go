package metrics

import "time"

// SetOperationsTimeout sets the bound of a scrape's read of the
// operations in flight until the returned func restores it.
func SetOperationsTimeout(d time.Duration) (restore func()) {
	prev := operationsTimeout
	operationsTimeout = d
	return func() { operationsTimeout = prev }
}
