package ops

// KindServerJobRetry runs a dedicated server's failed, canceled or
// expired job again (an install that failed on a disk, say).
const KindServerJobRetry = "server:job_retry"

func init() {
	registerParams[ServerJobRetryParams](`{"server_id":"12345","job_id":"3a867358-5b4b-44ee-88ac-4274603ef641"}`)
}

// ServerJobRetryParams are the params of server:job_retry on leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Retry a job")
type ServerJobRetryParams struct {
	ServerID string `json:"server_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
	// JobID is the job's uuid: the handle (or result job_uuid) of the
	// opsworker operation that ran it.
	JobID string `json:"job_id" jsonschema:"format=uuid"`
}

// Validate checks the ids.
func (p *ServerJobRetryParams) Validate() error {
	if err := validServerID(p.ServerID); err != nil {
		return err
	}
	switch {
	case p.JobID == "":
		return invalid("params.job_id", "required")
	case !uuidRe.MatchString(p.JobID):
		return invalid("params.job_id", "must be a job UUID, got %q", p.JobID)
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
