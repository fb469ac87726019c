package ops

// State is an operation's lifecycle state.
type State string

// The states, in order: queued → launching → running → one final state.
// An operation whose kind needs an approval waits in pending_approval
// first, and goes on to queued once approved (or ends canceled).
const (
	StatePendingApproval State = "pending_approval"
	StateQueued          State = "queued"
	StateLaunching       State = "launching"
	StateRunning         State = "running"
	StateSucceeded       State = "succeeded"
	StateFailed          State = "failed"
	StateCanceled        State = "canceled"
	StateTimedOut        State = "timed_out"
)

// States lists every state.
var States = []State{StatePendingApproval, StateQueued, StateLaunching, StateRunning, StateSucceeded, StateFailed, StateCanceled, StateTimedOut}

// Terminal reports whether s is a final state.
func (s State) Terminal() bool {
	switch s {
	case StateSucceeded, StateFailed, StateCanceled, StateTimedOut:
		return true
	}
	return false
}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, v := range States {
		if v == s {
			return true
		}
	}
	return false
}
