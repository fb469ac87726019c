package ops

// KindServerJobRetry runs a dedicated server's failed, canceled or
// expired job again (an install that failed on a disk, say).
const KindServerJobRetry = "server:job_retry"

func init() {
	registerParams[ServerJobRetryParams](
		`{"server_id":"12345","job_id":"3a867358-5b4b-44ee-88ac-4274603ef641"}`,
		`{"server_id":"12345","operation_id":"01938f4e-7a2b-7c3d-9e4f-5a6b7c8d9e0f"}`,
	)
}

// ServerJobRetryParams are the params of server:job_retry on leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Retry a job")
type ServerJobRetryParams struct {
	ServerID string `json:"server_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
	// JobID is the job's uuid: the handle (or result job_uuid) of the
	// opsworker operation that ran it. Give it or OperationID.
	JobID string `json:"job_id,omitempty" jsonschema:"format=uuid"`
	// OperationID is the opsworker operation whose job to retry (a server
	// job on the same server). Give it or JobID.
	OperationID string `json:"operation_id,omitempty" jsonschema:"format=uuid"`
}

// Validate checks the ids.
func (p *ServerJobRetryParams) Validate() error {
	if err := validServerID(p.ServerID); err != nil {
		return err
	}
	return oneRef("params.job_id", p.JobID, "params.operation_id", p.OperationID)
}

// oneRef checks that exactly one of an id and an operation_id naming it
// is given, each a UUID.
func oneRef(idField, id, opField, opID string) error {
	switch {
	case id == "" && opID == "":
		return invalid(idField, "required (or %s)", opField[len("params."):])
	case id != "" && opID != "":
		return invalid(opField, "give %s or %s, not both", idField[len("params."):], opField[len("params."):])
	case id != "" && !uuidRe.MatchString(id):
		return invalid(idField, "must be a UUID, got %q", id)
	case opID != "" && !uuidRe.MatchString(opID):
		return invalid(opField, "must be an operation id (a UUID), got %q", opID)
	}
	return nil
}

// Kind is KindServerJobRetry.
func (*ServerJobRetryParams) Kind() string { return KindServerJobRetry }

// Provider is ProviderLeaseweb.
func (*ServerJobRetryParams) Provider() string { return ProviderLeaseweb }

// Server is the dedicated server's id.
func (p *ServerJobRetryParams) Server() string { return p.ServerID }

// NewResult returns a new *ServerJobResult.
func (*ServerJobRetryParams) NewResult() any { return new(ServerJobResult) }
