package ops

// KindServerIPMIReset resets a dedicated server's IPMI interface to the
// settings Leaseweb's automation expects (it needs a reboot).
const KindServerIPMIReset = "server:ipmi_reset"

func init() {
	registerParams[ServerIPMIResetParams](
		`{"server_id":"12345"}`,
	)
}

// ServerIPMIResetParams are the params of server:ipmi_reset on leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Launch IPMI reset")
type ServerIPMIResetParams struct {
	ServerID string `json:"server_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
	// PowerCycle reboots the server to run the reset (Leaseweb's default:
	// true). Without it the reset runs at the server's next reboot.
	PowerCycle *bool `json:"power_cycle,omitempty"`
}

// Validate checks the server id.
func (p *ServerIPMIResetParams) Validate() error { return validServerID(p.ServerID) }

// Kind is KindServerIPMIReset.
func (*ServerIPMIResetParams) Kind() string { return KindServerIPMIReset }

// Provider is ProviderLeaseweb.
func (*ServerIPMIResetParams) Provider() string { return ProviderLeaseweb }

// Server is the dedicated server's id.
func (p *ServerIPMIResetParams) Server() string { return p.ServerID }

// NewResult returns a new *ServerJobResult.
func (*ServerIPMIResetParams) NewResult() any { return new(ServerJobResult) }
