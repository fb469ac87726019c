// Command enqueue is the opsworker CLI: submit operations, show their
// status, wait for them and list them.
//
// Exit codes: 0 success (with --wait: the operation succeeded); 1 the
// operation ended failed, timed_out or canceled; 2 bad input (the message
// names the field; nothing was enqueued; in API mode also a token that is
// missing, not valid or lacks the scope); 3 Redis cannot be reached (in
// API mode: the API cannot be reached, or answered 5xx); 4 a wait timed
// out before the operation ended (it goes on running).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // schedules name IANA zones
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK       = 0
	exitOpFailed = 1
	exitBadInput = 2
	exitNoRedis  = 3
	exitTimeout  = 4
)

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := newRootCmd(stdin, stdout, stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "enqueue:", ee.err)
		}
		return ee.code
	}
	// cobra's own errors: unknown command or flag, missing argument.
	fmt.Fprintln(stderr, "enqueue:", err)
	return exitBadInput
}
