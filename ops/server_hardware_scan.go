package ops

// KindServerHardwareScan reboots a dedicated server into a scan image,
// records its hardware and boots it back into its own system; the disks
// are untouched.
const KindServerHardwareScan = "server:hardware_scan"

func init() {
	registerParams[ServerHardwareScanParams](
		`{"server_id":"12345"}`,
		`{"server_id":"12345","power_cycle":false}`,
	)
}

// ServerHardwareScanParams are the params of server:hardware_scan on
// leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Launch hardware scan")
type ServerHardwareScanParams struct {
	ServerID string `json:"server_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
	// PowerCycle reboots the server to start the scan (Leaseweb's default:
	// true). Without it the scan starts at the server's next reboot.
	PowerCycle *bool `json:"power_cycle,omitempty"`
}

// Validate checks the server id.
func (p *ServerHardwareScanParams) Validate() error { return validServerID(p.ServerID) }

// Kind is KindServerHardwareScan.
func (*ServerHardwareScanParams) Kind() string { return KindServerHardwareScan }

// Provider is ProviderLeaseweb.
func (*ServerHardwareScanParams) Provider() string { return ProviderLeaseweb }

// Server is the dedicated server's id.
func (p *ServerHardwareScanParams) Server() string { return p.ServerID }

// NewResult returns a new *ServerJobResult.
func (*ServerHardwareScanParams) NewResult() any { return new(ServerJobResult) }
