package ops

// The power kinds act on a dedicated server's power through Leaseweb's
// remote management. Leaving rescue mode is a power cycle.
const (
	// KindServerPowerCycle reboots a dedicated server (power off, then
	// on).
	KindServerPowerCycle = "server:power_cycle"
	// KindServerPowerOn powers a dedicated server on.
	KindServerPowerOn = "server:power_on"
	// KindServerPowerOff powers a dedicated server off.
	KindServerPowerOff = "server:power_off"
)

func init() {
	registerParams[ServerPowerCycleParams](`{"server_id":"12345"}`)
	registerParams[ServerPowerOnParams](`{"server_id":"12345"}`)
	registerParams[ServerPowerOffParams](`{"server_id":"12345"}`)
}

// ServerPowerCycleParams are the params of server:power_cycle on
// leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Power cycle a server")
type ServerPowerCycleParams struct {
	ServerID string `json:"server_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
}

// ServerPowerOnParams are the params of server:power_on on leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Power on server")
type ServerPowerOnParams struct {
	ServerID string `json:"server_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
}

// ServerPowerOffParams are the params of server:power_off on leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Power off server")
type ServerPowerOffParams struct {
	ServerID string `json:"server_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
}

// PowerResult is the result of the server power kinds: the server's power
// as Leaseweb last reported it.
type PowerResult struct {
	ServerID string `json:"server_id"`
	// Action is the call made: powerCycle, powerOn or powerOff.
	Action string `json:"action"`
	// IPMI is the power the server's remote management reports (on, off):
	// what the operation waits for.
	IPMI string `json:"ipmi"`
	// PDU is the power distribution unit's view; it reads on while any
	// port has power, even for a server shut down through IPMI.
	PDU string `json:"pdu"`
	// OffSeen says whether a power cycle was seen off before it read on
	// again (a quick reboot may not be).
	OffSeen *bool `json:"off_seen,omitempty"`
}

// Validate checks the server id.
func (p *ServerPowerCycleParams) Validate() error { return validServerID(p.ServerID) }

// Validate checks the server id.
func (p *ServerPowerOnParams) Validate() error { return validServerID(p.ServerID) }

// Validate checks the server id.
func (p *ServerPowerOffParams) Validate() error { return validServerID(p.ServerID) }

// Kind is KindServerPowerCycle.
func (*ServerPowerCycleParams) Kind() string { return KindServerPowerCycle }

// Kind is KindServerPowerOn.
func (*ServerPowerOnParams) Kind() string { return KindServerPowerOn }

// Kind is KindServerPowerOff.
func (*ServerPowerOffParams) Kind() string { return KindServerPowerOff }

// Provider is ProviderLeaseweb.
func (*ServerPowerCycleParams) Provider() string { return ProviderLeaseweb }

// Provider is ProviderLeaseweb.
func (*ServerPowerOnParams) Provider() string { return ProviderLeaseweb }

// Provider is ProviderLeaseweb.
func (*ServerPowerOffParams) Provider() string { return ProviderLeaseweb }

// Server is the dedicated server's id.
func (p *ServerPowerCycleParams) Server() string { return p.ServerID }

// Server is the dedicated server's id.
func (p *ServerPowerOnParams) Server() string { return p.ServerID }

// Server is the dedicated server's id.
func (p *ServerPowerOffParams) Server() string { return p.ServerID }

// NewResult returns a new *PowerResult.
func (*ServerPowerCycleParams) NewResult() any { return new(PowerResult) }

// NewResult returns a new *PowerResult.
func (*ServerPowerOnParams) NewResult() any { return new(PowerResult) }

// NewResult returns a new *PowerResult.
func (*ServerPowerOffParams) NewResult() any { return new(PowerResult) }
