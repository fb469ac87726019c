// Package tasks defines the operation kinds (one asynq task type each), the
// payload envelope they share, and the handlers of the pipeline:
//
//	<kind> (e.g. cdn:purge)  validate, create the record if missing, launch at
//	                          the provider, save the handle, schedule op:poll
//	op:poll                   check the provider's status once; not done:
//	                          schedule the next poll; done: record the outcome
//	webhook:deliver           POST the completion event, retried by asynq
//
// Every handler is idempotent: asynq delivers at least once, so each step
// reads the operation record first and does only what is still missing.
// A saved handle means the launch already happened and is never repeated.
// Polls are fenced by a sequence number kept on the record, so a stale or
// duplicated poll task cannot fork a second poll chain.
package tasks
