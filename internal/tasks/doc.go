// Package tasks defines the operation kinds (one asynq task type each), the
// payload envelope they share, and the handlers of the pipeline:
//
//	<kind> (e.g. cdn:purge)  validate, create the record if missing, launch at
//	                          the provider, save the handle, schedule op:poll
//	op:poll                   check the provider's status once; not done:
//	                          schedule the next poll; done: record the outcome
//	webhook:deliver           POST the completion event, retried by asynq
//	webhook:replay            enqueue an event's deliveries again
//	op:cancel                 ask the provider to stop a running operation
//
// Each step is its own handler type (launchStep, pollStep, deliverStep,
// cancelStep) over the shared pipeline (pipeline.go: the record, the
// registry, redaction and finish). Steps never call each other: a step
// hands the operation on by enqueuing the next task (handoff.go), and a
// kind's executor is reached only through the Executor interface, so no
// step knows which kinds exist.
//
// A handler ends a task in one of four ways: nil (done), a plain error
// (asynq retries it after RetryDelay), a Wait error (run again after a
// delay without using an attempt: a busy resource, taken slots) or an
// error wrapping asynq.SkipRetry (fail permanently; the record says why).
// An operation ends through finish with an Outcome: its final state
// (succeeded, failed, canceled, timed_out) and what the provider said.
//
// Every handler is idempotent: asynq delivers at least once, so each step
// reads the operation record first and does only what is still missing.
// A saved handle means the launch already happened and is never repeated.
// Polls are fenced by a sequence number kept on the record, so a stale or
// duplicated poll task cannot fork a second poll chain.
package tasks
