package main

import (
	"fmt"

	"github.com/invopop/jsonschema"

	"github.com/opsworker/opsworker/ops"
)

// obj is a JSON object of the document; encoding/json writes its keys
// sorted.
type obj = map[string]any

func problems(codes ...string) obj {
	out := obj{"default": obj{"$ref": "#/components/responses/Problem"}}
	for _, c := range codes {
		if c == "415" {
			out[c] = obj{"$ref": "#/components/responses/UnsupportedMediaType"}
			continue
		}
		out[c] = obj{"$ref": "#/components/responses/Problem"}
	}
	return out
}

func jsonContent(schema string) obj {
	return obj{"application/json": obj{"schema": obj{"$ref": "#/components/schemas/" + schema}}}
}

func accountParams() []any {
	return []any{
		obj{"name": "provider", "in": "path", "required": true, "schema": obj{"$ref": "#/components/schemas/Provider"}},
		obj{"name": "account", "in": "path", "required": true, "schema": obj{"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}},
	}
}

func pauseResponses() obj {
	out := problems("400", "401", "403", "413", "415", "503")
	out["200"] = obj{"description": "The account's pause state now", "content": jsonContent("AccountPause")}
	return out
}

func idParam() obj {
	return obj{"name": "id", "in": "path", "required": true, "schema": obj{"type": "string"}}
}

// openAPI is the document's top level, in the order a reader expects.
type openAPI struct {
	OpenAPI    string `json:"openapi"`
	Info       obj    `json:"info"`
	Servers    []any  `json:"servers"`
	Security   []any  `json:"security"`
	Paths      obj    `json:"paths"`
	Webhooks   obj    `json:"webhooks"`
	Components obj    `json:"components"`
}

// document is the OpenAPI document around the component schemas.
func document(schemas map[string]*jsonschema.Schema) openAPI {
	submitResponses := problems("400", "401", "403", "409", "413", "415", "503")
	submitResponses["200"] = obj{"description": "A dry run (dry_run true): what the submit would do now; nothing was stored, enqueued or launched", "content": jsonContent("Plan")}
	submitResponses["202"] = obj{
		"description": "Accepted (or, with Idempotent-Replayed: true, the operation the key already named)",
		"headers": obj{
			"Location":            obj{"$ref": "#/components/headers/Location"},
			"Idempotent-Replayed": obj{"$ref": "#/components/headers/Idempotent-Replayed"},
		},
		"content": jsonContent("Operation"),
	}
	listResponses := problems("400", "401", "503")
	listResponses["200"] = obj{"description": "A page", "content": jsonContent("ListResponse")}
	getResponses := problems("401", "404", "503")
	getResponses["200"] = obj{"description": "The operation", "content": jsonContent("Operation")}
	approveResponses := problems("401", "403", "404", "409", "413", "415", "503")
	approveResponses["200"] = obj{"description": "Approved: the operation, now queued", "content": jsonContent("Operation")}
	rejectResponses := problems("401", "403", "404", "409", "413", "415", "503")
	rejectResponses["202"] = obj{"description": "Rejection queued: the operation ends canceled", "content": jsonContent("Operation")}
	startRunResponses := problems("400", "401", "403", "404", "409", "413", "415", "503")
	startRunResponses["200"] = obj{"description": "A dry run (dry_run true): the inputs checked and what the first steps would do; nothing started. Or, for a repeated Idempotency-Key, the run it already named (a Run)",
		"content": obj{"application/json": obj{"schema": obj{"oneOf": []any{obj{"$ref": "#/components/schemas/RunPlan"}, obj{"$ref": "#/components/schemas/Run"}}}}}}
	startRunResponses["202"] = obj{"description": "The run, started", "headers": obj{"Location": obj{"$ref": "#/components/headers/Location"}}, "content": jsonContent("Run")}
	runResponses := problems("401", "404", "503")
	runsResponses := problems("400", "401", "503")
	runsResponses["200"] = obj{"description": "Runs, newest first", "content": jsonContent("RunsResponse")}
	runChangeResponses := problems("401", "403", "404", "409", "413", "415", "503")
	runChangeResponses["200"] = obj{"description": "The run, changed (its steps go on as the change says)", "content": jsonContent("Run")}
	runResponses["200"] = obj{"description": "The run and its steps", "content": jsonContent("Run")}
	runEventsResponses := problems("401", "404", "503")
	runEventsResponses["200"] = obj{"description": "The run's timeline, oldest first", "content": jsonContent("RunEventsResponse")}
	eventsResponses := problems("401", "404", "503")
	eventsResponses["200"] = obj{"description": "The operation's timeline, oldest step first", "content": jsonContent("EventsResponse")}
	cancelResponses := problems("400", "401", "403", "404", "409", "413", "415", "503")
	cancelResponses["202"] = obj{"description": "Cancellation requested (the cancellation is queued: the operation may still read running)", "content": jsonContent("Operation")}

	return openAPI{
		OpenAPI: "3.1.0",
		Info: obj{
			"title":   "opsworker API",
			"version": "1",
			"description": "Submit, read, list and cancel infrastructure operations; pause and resume provider accounts. Every route but this document needs a token: Authorization: Bearer <token> (the scheme in any case), or Basic auth with the token as password. Read scope reads; write scope also submits and cancels. " +
				"Request bodies are JSON: a write with another Content-Type gets 415. A request with an unsafe method sent by a browser page of another origin (Sec-Fetch-Site, else Origin against Host) gets 403. " +
				"Every error, including 404 for an unknown path and 405 (with Allow) for another method, is an RFC 9457 problem (application/problem+json). " +
				"The webhooks section describes the events the worker POSTs to callback_url and to subscriptions (Standard Webhooks v1). " +
				"This document is generated from the Go types (go generate ./internal/api).",
		},
		Servers:  []any{obj{"url": "/"}},
		Security: []any{obj{"bearer": []any{}}, obj{"basic": []any{}}},
		Paths: obj{
			"/v1/operations": obj{
				"post": obj{
					"summary":     "Submit an operation",
					"operationId": "submitOperation",
					"parameters": []any{obj{"name": "Idempotency-Key", "in": "header", "required": false,
						"schema":      obj{"type": "string", "maxLength": 200},
						"description": "One key, one operation: a retry returns the first operation and launches nothing. If the body also has idempotency_key, both must be equal."}},
					"requestBody": obj{"required": true, "content": jsonContent("SubmitRequest")},
					"responses":   submitResponses,
				},
				"get": obj{
					"summary":     "List operations, newest first",
					"description": "A page costs in proportion to limit, not to the number of stored operations: every filter but since and until has its own index. A filter combining several examines at most 1,000 entries of the smallest index (or limit+1) per page, so a page may hold fewer than limit operations while next_cursor continues.",
					"operationId": "listOperations",
					"parameters": []any{
						obj{"name": "state", "in": "query", "schema": obj{"$ref": "#/components/schemas/State"}, "description": "An unknown state is a 400 naming state"},
						obj{"name": "kind", "in": "query", "schema": obj{"$ref": "#/components/schemas/Kind"}, "description": "An unknown kind is a 400 naming kind"},
						obj{"name": "provider", "in": "query", "schema": obj{"$ref": "#/components/schemas/Provider"}, "description": "An unknown provider is a 400 naming provider"},
						obj{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": 500, "default": 20}},
						obj{"name": "label", "in": "query", "schema": obj{"type": "array", "items": obj{"type": "string", "pattern": "^[a-z0-9][a-z0-9._/-]{0,62}=.{0,200}$"}}, "style": "form", "explode": true,
							"description": "key=value; repeat for several (an operation must carry all). A malformed one is a 400 naming label"},
						obj{"name": "resource", "in": "query", "schema": obj{"type": "string", "maxLength": 300}, "description": "The operation's resource, provider:type:id (leaseweb:server:12345)"},
						obj{"name": "actor", "in": "query", "schema": obj{"type": "string", "maxLength": 100}, "description": "The name of who submitted it: a token's name, a schedule's, or a declared one"},
						obj{"name": "since", "in": "query", "schema": obj{"type": "string", "format": "date-time"}, "description": "Created at or after (RFC 3339)"},
						obj{"name": "until", "in": "query", "schema": obj{"type": "string", "format": "date-time"}, "description": "Created at or before (RFC 3339); before since is a 400 naming until"},
						obj{"name": "cursor", "in": "query", "schema": obj{"type": "string"}, "description": "next_cursor of the previous page; any other value is a 400 problem with field cursor"},
					},
					"responses": listResponses,
				},
			},
			"/v1/operations/{id}": obj{
				"get": obj{
					"summary":     "Read an operation",
					"operationId": "getOperation",
					"parameters":  []any{idParam()},
					"responses":   getResponses,
				},
			},
			"/v1/operations/{id}/events": obj{
				"get": obj{
					"summary":     "Read an operation's timeline",
					"description": "Every step, oldest first: submitted (by whom), waits with their reason, launch attempts and failures (error class, the provider's request id), launched, each poll that changed the status or progress, provider callbacks, cancel requests, the final state, and every webhook attempt per destination. At most 500 steps (the oldest after the first are dropped); kept as long as the operation. No secret appears in it.",
					"operationId": "getOperationEvents",
					"parameters":  []any{idParam()},
					"responses":   eventsResponses,
				},
			},
			"/v1/runbooks/{name}/runs": obj{
				"post": obj{
					"summary":     "Start a run of a configured runbook",
					"description": "Its inputs are checked (a 400 names inputs.<name>); each step is an ordinary operation whose idempotency key is the run and the step. 404 for a runbook the config does not define.",
					"operationId": "startRun",
					"parameters":  []any{obj{"name": "name", "in": "path", "required": true, "schema": obj{"type": "string"}}, runKeyParam()},
					"requestBody": obj{"required": true, "content": jsonContent("StartRunRequest")},
					"responses":   startRunResponses,
				},
			},
			"/v1/runs": obj{
				"post": obj{
					"summary":     "Start a run of a runbook given in the request",
					"description": "The definition (runbook) is checked as a configured one is: a 400 names the field, as runbook.steps[<id>].params.<name> for a step's. It is kept with the run, which follows it. At most 50 steps, on_failure and finally included.",
					"operationId": "startInlineRun",
					"parameters":  []any{runKeyParam()},
					"requestBody": obj{"required": true, "content": jsonContent("StartInlineRunRequest")},
					"responses":   startRunResponses,
				},
				"get": obj{
					"summary":     "List runbook runs, newest first",
					"operationId": "listRuns",
					"parameters":  []any{obj{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": 200, "default": 20}}},
					"responses":   runsResponses,
				},
			},
			"/v1/runs/{id}": obj{
				"get": obj{
					"summary":     "Read a runbook run",
					"operationId": "getRun",
					"parameters":  []any{idParam()},
					"responses":   runResponses,
				},
			},
			"/v1/runs/{id}/events": obj{
				"get": obj{
					"summary":     "Read a run's timeline",
					"description": "What changed, oldest first: started (by whom), each step's operation started and ended, gates waiting and decided (by whom), a cancel request (by whom), the end. At most 1,000 entries (the oldest after the first are dropped); kept as long as the run. No input value appears in it.",
					"operationId": "getRunEvents",
					"parameters":  []any{idParam()},
					"responses":   runEventsResponses,
				},
			},
			"/v1/runs/{id}/cancel": obj{
				"post": obj{
					"summary":     "Cancel a run",
					"description": "Its running steps are canceled where their kind can be, a waiting gate aborts, steps not started are skipped; once nothing runs, the on_failure and finally steps run (unless compensate is false) and the run ends canceled. 409 when it already ended.",
					"operationId": "cancelRun",
					"parameters":  []any{idParam()},
					"requestBody": obj{"required": false, "content": jsonContent("CancelRunRequest")},
					"responses":   runChangeResponses,
				},
			},
			"/v1/runs/{id}/gates/{step}/continue": obj{
				"post": obj{
					"summary":     "Continue a run at its gate",
					"description": "409 when that step is not a gate waiting for a decision. No body.",
					"operationId": "continueGate",
					"parameters":  []any{idParam(), obj{"name": "step", "in": "path", "required": true, "schema": obj{"type": "string"}}},
					"responses":   runChangeResponses,
				},
			},
			"/v1/runs/{id}/gates/{step}/abort": obj{
				"post": obj{
					"summary":     "Abort a run at its gate",
					"description": "The gate fails: the failed step's on_failure steps and the finally steps run, and the run ends failed. 409 when that step is not a gate waiting for a decision. No body.",
					"operationId": "abortGate",
					"parameters":  []any{idParam(), obj{"name": "step", "in": "path", "required": true, "schema": obj{"type": "string"}}},
					"responses":   runChangeResponses,
				},
			},
			"/v1/operations/{id}/approve": obj{
				"post": obj{
					"summary":     "Approve an operation waiting for its approval",
					"description": "It goes on to queued and launches; approved_by records the token. 403 for the token that submitted it; 409 when it does not wait for an approval. No body.",
					"operationId": "approveOperation",
					"parameters":  []any{idParam()},
					"responses":   approveResponses,
				},
			},
			"/v1/operations/{id}/reject": obj{
				"post": obj{
					"summary":     "Reject an operation waiting for its approval",
					"description": "It ends canceled, its last_error and canceled_by naming the token. The rejection is queued (202). 409 when it does not wait for an approval. No body.",
					"operationId": "rejectOperation",
					"parameters":  []any{idParam()},
					"responses":   rejectResponses,
				},
			},
			"/v1/operations/{id}/cancel": obj{
				"post": obj{
					"summary":     "Cancel an operation",
					"description": "409 when the operation already ended; 400 for a kind that cannot be canceled.",
					"operationId": "cancelOperation",
					"parameters":  []any{idParam()},
					"requestBody": obj{"required": false,
						"description": "Optional. A request without a body may leave out Content-Type; one that sends a Content-Type must send application/json.",
						"content":     jsonContent("CancelRequest")},
					"responses": cancelResponses,
				},
			},
			"/v1/providers/{provider}/accounts/{account}/pause": obj{
				"post": obj{
					"summary":     "Pause a provider account",
					"description": "On every replica: the account's provider calls are held back, and its operations wait (launches in queued, polls later) without using attempts, until it is resumed. Its circuit breaker's state is kept.",
					"operationId": "pauseAccount",
					"parameters":  accountParams(),
					"responses":   pauseResponses(),
				},
			},
			"/v1/providers/{provider}/accounts/{account}/resume": obj{
				"post": obj{
					"summary":     "Resume a paused provider account",
					"operationId": "resumeAccount",
					"parameters":  accountParams(),
					"responses":   pauseResponses(),
				},
			},
			"/v1/openapi.json": obj{
				"get": obj{
					"summary":     "This document",
					"operationId": "openapi",
					"security":    []any{},
					"responses": obj{
						"200":     obj{"description": "OpenAPI 3.1 document", "content": obj{"application/json": obj{"schema": obj{"type": "object"}}}},
						"default": obj{"$ref": "#/components/responses/Problem"},
					},
				},
			},
		},
		Webhooks: webhooks(),
		Components: obj{
			"securitySchemes": obj{
				"bearer": obj{"type": "http", "scheme": "bearer"},
				"basic":  obj{"type": "http", "scheme": "basic", "description": "The token as password; never offered in WWW-Authenticate, so browsers do not cache it"},
			},
			"responses": obj{
				"Problem": obj{"description": "An RFC 9457 problem; field names the bad input. 405 answers carry an Allow header.",
					"content": obj{"application/problem+json": obj{"schema": obj{"$ref": "#/components/schemas/Problem"}}}},
				"UnsupportedMediaType": obj{"description": "The body is not application/json (a charset, if given, must be UTF-8)",
					"content": obj{"application/problem+json": obj{"schema": obj{"$ref": "#/components/schemas/Problem"}}}},
			},
			"headers": obj{
				"Location": obj{"description": "The operation's URL: /v1/operations/{id}", "required": true,
					"schema": obj{"type": "string"}},
				"Idempotent-Replayed": obj{"description": "true when the Idempotency-Key already named this operation: nothing new was launched. Absent otherwise.",
					"schema": obj{"type": "string", "enum": []any{"true"}}},
			},
			"schemas": schemas,
		},
	}
}

// webhooks describes one POST per event type.
func webhooks() obj {
	header := func(name, description string) obj {
		return obj{"name": name, "in": "header", "required": true, "description": description, "schema": obj{"type": "string"}}
	}
	when := map[string]string{
		"operation.pending_approval": "The operation waits for an approval (its kind needs one); data.approval_deadline says until when.",
		"operation.running":          "The operation launched at the provider; data.handle holds the provider's job id.",
		"operation.succeeded":        "The operation ended succeeded.",
		"operation.failed":           "The operation ended failed.",
		"operation.timed_out":        "The operation ended timed_out.",
		"operation.canceled":         "The operation ended canceled.",
	}
	post := func(ev, description string, schema obj) obj {
		return obj{"post": obj{
			"summary":     fmt.Sprintf("The %s event", ev),
			"description": description,
			"operationId": "webhook_" + ev,
			"parameters": []any{
				header("webhook-id", "The event's id, the same on every retry and replay; deduplicate on it."),
				header("webhook-timestamp", "Unix seconds of this attempt."),
				header("webhook-signature", `v1,<base64 HMAC-SHA256 of "id.timestamp.body">, one per configured secret, space-separated.`),
			},
			"requestBody": obj{"required": true, "content": obj{"application/json": obj{"schema": schema}}},
			"responses": obj{
				"2XX":     obj{"description": "Delivered."},
				"410":     obj{"description": "Gone: no more deliveries go to this destination."},
				"default": obj{"description": "408, 429, 5xx (and network errors, timeouts) are retried on the schedule; another 4xx or a 3xx is permanent."},
			},
		}}
	}
	out := obj{}
	for _, ev := range eventTypes {
		out[ev] = post(ev, when[ev]+" Delivered at least once to the operation's callback_url and to each matching subscription; data is the operation with secret params REDACTED and callback_url cut to its origin.",
			obj{"allOf": []any{
				obj{"$ref": "#/components/schemas/Event"},
				obj{"type": "object", "properties": obj{"type": obj{"type": "string", "enum": []any{ev}}}},
			}})
	}
	health := map[string]string{
		ops.EventProviderDegraded:  "A provider account's circuit breaker opened: its calls wait (operations are held, not failed) until a probe call succeeds.",
		ops.EventProviderRecovered: "A probe call succeeded and the account's circuit breaker closed; data.degraded_at names the outage's start, as in its provider.degraded.",
	}
	for _, ev := range []string{ops.EventProviderDegraded, ops.EventProviderRecovered} {
		out[ev] = post(ev, health[ev]+" Sent once per change, by the replica that made it, to each subscription that names the event in its events (and matches its providers filter); never to an operation's callback_url.",
			obj{"type": "object", "required": []any{"id", "type", "timestamp", "data"}, "additionalProperties": false, "properties": obj{
				"id":        obj{"type": "string", "description": "Stable for one event: the same on every retry (webhook-id)."},
				"type":      obj{"type": "string", "enum": []any{ev}},
				"timestamp": obj{"type": "string", "format": "date-time", "description": "When the change happened."},
				"data":      obj{"$ref": "#/components/schemas/ProviderHealth"},
			}})
	}
	return out
}

// runKeyParam is the Idempotency-Key header of a run's start.
func runKeyParam() obj {
	return obj{"name": "Idempotency-Key", "in": "header", "required": false, "schema": obj{"type": "string", "maxLength": 200},
		"description": "One key (per token), one run: a retry answers 200 with the first run and starts nothing; with another runbook or other inputs, 409. If the body also has idempotency_key, both must be equal."}
}
