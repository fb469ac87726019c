package leasewebsim

import (
	"net/http"
	"time"

	"github.com/opsworker/opsworker/internal/providers/simkit"
)

// power is a server's power as the simulator models it: a change takes
// one TaskDuration to show in powerInfo; a power cycle reads off for one
// TaskDuration and then on. The PDU reads on throughout, as it does for a
// server shut down through IPMI.
type power struct {
	on       bool      // the state before the last change
	target   bool      // the state the last change leads to
	changeAt time.Time // when the target state shows
	cycle    bool      // the last change is a cycle (off until changeAt)
}

// ipmiOn is the server's power at now.
func (p *power) ipmiOn(now time.Time) bool {
	if now.Before(p.changeAt) {
		if p.cycle {
			return false
		}
		return p.on
	}
	return p.target
}

// powerLocked returns serverID's power, on by default.
func (s *Server) powerLocked(serverID string) *power {
	if s.powers == nil {
		s.powers = map[string]*power{}
	}
	p, ok := s.powers[serverID]
	if !ok {
		p = &power{on: true, target: true}
		s.powers[serverID] = p
	}
	return p
}

// SetPower sets a server's power at once (a fixture: a server that is
// off).
func (s *Server) SetPower(serverID string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.powerLocked(serverID) = power{on: on, target: on}
}

// PowerOn reports whether a server reads on now.
func (s *Server) PowerOn(serverID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.powerLocked(serverID).ipmiOn(s.cfg.Now())
}

// powerRoute serves POST …/powerOn, powerOff and powerCycle (202, no
// body: Leaseweb documents none) and GET …/powerInfo.
func (s *Server) powerRoute(w *simkit.Recorder, r *http.Request, server, action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	p := s.powerLocked(server)
	if action == "powerInfo" {
		ipmi := "off"
		if p.ipmiOn(now) {
			ipmi = "on"
		}
		writeJSON(w, http.StatusOK, map[string]any{"ipmi": map[string]string{"status": ipmi}, "pdu": map[string]string{"status": "on"}})
		return
	}
	cur := p.ipmiOn(now)
	*p = power{on: cur, target: action != "powerOff", changeAt: now.Add(s.cfg.TaskDuration), cycle: action == "powerCycle"}
	w.WriteHeader(http.StatusAccepted)
}
