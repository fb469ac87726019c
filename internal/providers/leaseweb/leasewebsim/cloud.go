package leasewebsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opsworker/opsworker/internal/providers/simkit"
)

// The public cloud part: instances with a type and state, one snapshot
// per instance or VPS, and auto scaling groups of the three types whose
// instance count converges to desiredAmount. Every change takes
// Config.CloudStep (0: done at the next read).

// Machine is a simulated instance or VPS.
type Machine struct {
	ID, Type, State string
	// Allowed are the types it may change to (instanceTypesUpdate).
	Allowed []string
}

// Group is a simulated auto scaling group.
type Group struct {
	ID, Type                                 string
	Desired, Min, Max, CPU, Warmup, Cooldown *int
	StartsAt, EndsAt                         *string
	Instances                                int
}

type cloudMachine struct {
	Machine
	vps        bool
	snap       *cloudSnap
	target     string
	changeAt   time.Time
	failResize bool
	// image is what the machine runs (DefaultImage unless reinstalled);
	// newImage is the one a running reinstall puts on.
	image, newImage string
}

// DefaultImage is the image every simulated machine starts with.
const DefaultImage = "UBUNTU_22_04_64BIT"

// Images are the images a simulated machine may be reinstalled with (a
// subset of "List images" in the public cloud API docs).
var Images = []string{"UBUNTU_22_04_64BIT", "UBUNTU_24_04_64BIT", "DEBIAN_12_64BIT", "ALMALINUX_9_64BIT", "WINDOWS_SERVER_2022_64BIT"}

type cloudSnap struct {
	id, name         string
	created, readyAt time.Time
	deleting         bool
	gone             time.Time
	fail             bool
}

type cloudGroup struct {
	Group
	from     int
	changeAt time.Time
	scaling  bool
	// reference is the create call's; createdAt+CloudStep ends CREATING;
	// a non-zero deleted starts DESTROYING, and one CloudStep later the
	// group is gone (404).
	reference          string
	creating           bool
	createdAt, deleted time.Time
}

// DefaultMachines and DefaultGroups fill a simulator that was given none,
// so `make run` has something to work on. The first instance, VPS and
// group ids are those of the samples in
// https://developer.leaseweb.com/api-docs/publiccloud_v1.html and
// https://developer.leaseweb.com/api-docs/vps_v1.html.
var (
	DefaultMachines = []Machine{
		{ID: "ace712e9-a166-47f1-9065-4af0f7e7fce1", Type: "lsw.m3.large", State: "RUNNING", Allowed: []string{"lsw.m3.xlarge", "lsw.m3.2xlarge", "lsw.m4.large"}},
		{ID: "5d7f8262-d77f-4476-8da8-6a84f8f2ae8d", Type: "lsw.c3.large", State: "STOPPED", Allowed: []string{"lsw.c3.xlarge"}},
	}
	DefaultVPS    = []Machine{{ID: "999999999", Type: "vps.s1", State: "RUNNING"}}
	DefaultGroups = []Group{
		{ID: "fb769dab-3daa-47e4-89ed-06a4b6499176", Type: "MANUAL", Desired: ptr(2), Instances: 2},
		{ID: "3b5b5e4a-5c0c-4c8f-9cf6-0d8a9b5ad2c1", Type: "CPU_BASED", Min: ptr(1), Max: ptr(4), CPU: ptr(70), Warmup: ptr(300), Cooldown: ptr(400), Instances: 1},
		{ID: "7a4c2f10-1d2e-4f3a-8b9c-0e1f2a3b4c5d", Type: "SCHEDULED", Desired: ptr(3), StartsAt: sptr("2026-12-01T08:00:00Z"), EndsAt: sptr("2026-12-01T20:00:00Z"), Instances: 0},
	}
)

func ptr(i int) *int        { return &i }
func sptr(s string) *string { return &s }

// AddMachine adds (or replaces) an instance; vps marks a VPS.
func (s *Server) AddMachine(m Machine, vps bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initCloudLocked()
	s.machines[m.ID] = &cloudMachine{Machine: m, vps: vps}
}

// AddGroup adds (or replaces) an auto scaling group.
func (s *Server) AddGroup(g Group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initCloudLocked()
	s.groups[g.ID] = &cloudGroup{Group: g}
}

// FailNextSnapshots and FailNextResizes make the next n end failed.
func (s *Server) FailNextSnapshots(n int) { s.mu.Lock(); s.failSnaps += n; s.mu.Unlock() }

// FailNextResizes makes the next n type changes end with state FAILED.
func (s *Server) FailNextResizes(n int) { s.mu.Lock(); s.failResizes += n; s.mu.Unlock() }

func (s *Server) initCloudLocked() {
	if s.machines != nil {
		return
	}
	s.machines, s.groups = map[string]*cloudMachine{}, map[string]*cloudGroup{}
	for _, m := range DefaultMachines {
		s.machines[m.ID] = &cloudMachine{Machine: m}
	}
	for _, m := range DefaultVPS {
		s.machines[m.ID] = &cloudMachine{Machine: m, vps: true}
	}
	for _, g := range DefaultGroups {
		s.groups[g.ID] = &cloudGroup{Group: g}
	}
}

var cloudPathRe = regexp.MustCompile(`^/publicCloud/v1/(instances|vps|autoScalingGroups)/([^/]+)(/.*)?$`)

func (s *Server) cloudRoute(w *simkit.Recorder, r *http.Request, path string, body []byte) {
	key := r.Header.Get("X-LSW-Auth")
	if key == "" || (s.cfg.APIKey != "" && key != s.cfg.APIKey) {
		lswError(w, http.StatusUnauthorized, "401", "You are not authorized to view this resource.")
		return
	}
	if path == "/publicCloud/v1/autoScalingGroups" {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.initCloudLocked()
		s.groupsRoute(w, r, body, s.cfg.Now())
		return
	}
	m := cloudPathRe.FindStringSubmatch(path)
	if m == nil {
		lswError(w, 404, "404", "Resource not found")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initCloudLocked()
	now := s.cfg.Now()
	if m[1] == "autoScalingGroups" {
		s.groupRoute(w, r, m[2], m[3], body, now)
		return
	}
	mc, ok := s.machines[m[2]]
	if !ok || mc.vps != (m[1] == "vps") {
		lswError(w, 404, "404", "Resource not found")
		return
	}
	s.settleMachine(mc, now)
	rest := m[3]
	switch {
	case rest == "" && r.Method == http.MethodGet:
		writeJSON(w, 200, machineJSON(mc))
	case rest == "" && r.Method == http.MethodPut && !mc.vps:
		var req struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(body, &req) != nil || req.Type == "" {
			validationFailed(w, map[string]string{"type": "This value should not be blank."})
			return
		}
		if !slices.Contains(mc.Allowed, req.Type) && req.Type != mc.Type {
			validationFailed(w, map[string]string{"type": "The instance type " + req.Type + " is not available for this instance."})
			return
		}
		if req.Type != mc.Type {
			mc.target, mc.changeAt = req.Type, now.Add(2*s.cfg.CloudStep)
			mc.State = "STOPPING"
			if s.failResizes > 0 {
				s.failResizes--
				mc.failResize = true
			}
		}
		writeJSON(w, 200, machineJSON(mc))
	case rest == "/reinstall" && r.Method == http.MethodPut:
		var req struct {
			ImageID     string `json:"imageId"`
			MarketAppID string `json:"marketAppId"`
		}
		if json.Unmarshal(body, &req) != nil || req.ImageID == "" {
			validationFailed(w, map[string]string{"imageId": "This value should not be blank."})
			return
		}
		if !slices.Contains(Images, req.ImageID) {
			validationFailed(w, map[string]string{"imageId": "The image " + req.ImageID + " is not available."})
			return
		}
		what := map[bool]string{false: "instance", true: "VPS"}[mc.vps]
		if mc.snap != nil {
			lswError(w, 400, "400", fmt.Sprintf("Cannot be performed when the %s has snapshots.", what))
			return
		}
		if mc.target != "" {
			lswError(w, 400, "400", "The machine is changing; try again when it is RUNNING or STOPPED.")
			return
		}
		mc.target, mc.newImage, mc.changeAt, mc.State = mc.Type, req.ImageID, now.Add(2*s.cfg.CloudStep), "STOPPING"
		w.WriteHeader(http.StatusAccepted)
	case rest == "/instanceTypesUpdate" && r.Method == http.MethodGet:
		types := []map[string]any{}
		for _, t := range mc.Allowed {
			types = append(types, map[string]any{"name": t, "resources": map[string]any{}, "prices": map[string]any{}, "storageTypes": []string{"LOCAL", "CENTRAL"}})
		}
		writeJSON(w, 200, map[string]any{"instanceTypes": types, "_metadata": map[string]int{"totalCount": len(types), "limit": 50, "offset": 0}})
	case rest == "/snapshots" && r.Method == http.MethodGet:
		list := []map[string]any{}
		if mc.snap != nil {
			list = append(list, snapJSON(mc.snap, now))
		}
		writeJSON(w, 200, map[string]any{"snapshots": list, "_metadata": map[string]int{"totalCount": len(list), "limit": 50, "offset": 0}})
	case rest == "/snapshots" && r.Method == http.MethodPost:
		var req struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(body, &req) != nil || req.Name == "" {
			validationFailed(w, map[string]string{"name": "This value should not be blank."})
			return
		}
		what := map[bool]string{false: "instance", true: "VPS"}[mc.vps]
		if mc.State != "RUNNING" {
			lswError(w, 400, "400", fmt.Sprintf("The %s must be running before the execution.", what))
			return
		}
		if mc.snap != nil {
			lswError(w, 400, "400", fmt.Sprintf("Allowed only one snapshot per %s.", what))
			return
		}
		sn := &cloudSnap{id: newUUID(), name: req.Name, created: now, readyAt: now.Add(3 * s.cfg.CloudStep)}
		if s.failSnaps > 0 {
			s.failSnaps--
			sn.fail = true
		}
		mc.snap = sn
		w.WriteHeader(http.StatusAccepted)
	case strings.HasPrefix(rest, "/snapshots/"):
		id := strings.TrimPrefix(rest, "/snapshots/")
		if mc.snap == nil || mc.snap.id != id {
			lswError(w, 404, "404", "Resource not found")
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, 200, snapJSON(mc.snap, now))
		case http.MethodDelete:
			if !mc.snap.deleting {
				mc.snap.deleting, mc.snap.gone = true, now.Add(s.cfg.CloudStep)
			}
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPut:
			// Restore: the machine stops, is rewritten and starts again
			// over two steps, like a type change.
			if st := snapJSON(mc.snap, now)["state"]; st != "READY" {
				lswError(w, 400, "400", fmt.Sprintf("The snapshot is %s; only a READY snapshot can be restored.", st))
				return
			}
			if mc.target != "" {
				lswError(w, 400, "400", "The machine is changing; try again when it is RUNNING or STOPPED.")
				return
			}
			mc.target, mc.changeAt, mc.State = mc.Type, now.Add(2*s.cfg.CloudStep), "STOPPING"
			w.WriteHeader(http.StatusAccepted)
		default:
			lswError(w, 405, "405", "Method not allowed")
		}
	default:
		lswError(w, 404, "404", "Resource not found")
	}
}

// settleMachine applies the passage of time to a machine.
func (s *Server) settleMachine(mc *cloudMachine, now time.Time) {
	if mc.snap != nil && mc.snap.deleting && !now.Before(mc.snap.gone) {
		mc.snap = nil
	}
	if mc.target != "" {
		switch {
		case !now.Before(mc.changeAt) && mc.failResize:
			mc.State, mc.target, mc.failResize = "FAILED", "", false
		case !now.Before(mc.changeAt):
			mc.Type, mc.State, mc.target = mc.target, "RUNNING", ""
			if mc.newImage != "" {
				mc.image, mc.newImage = mc.newImage, ""
			}
		case !now.Before(mc.changeAt.Add(-s.cfg.CloudStep)):
			mc.State = "STARTING"
		}
	}
}

func machineJSON(mc *cloudMachine) map[string]any {
	product := "INSTANCE"
	if mc.vps {
		product = "VPS"
	}
	image := mc.image
	if image == "" {
		image = DefaultImage
	}
	return map[string]any{"id": mc.ID, "type": mc.Type, "state": mc.State, "region": "eu-west-3", "reference": "sim", "productType": product,
		"image": map[string]string{"id": image, "name": image}}
}

func snapJSON(sn *cloudSnap, now time.Time) map[string]any {
	state := "CREATING"
	switch {
	case sn.deleting:
		state = "DESTROYING"
	case !now.Before(sn.readyAt) && sn.fail:
		state = "FAILED"
	case !now.Before(sn.readyAt):
		state = "READY"
	}
	return map[string]any{"id": sn.id, "displayName": sn.name, "state": state, "created": sn.created.UTC().Format("2006-01-02T15:04:05+0000")}
}

func validationFailed(w http.ResponseWriter, details map[string]string) {
	b, _ := json.Marshal(map[string]any{"correlationId": newUUID(), "errorCode": "400", "errorMessage": "Validation Failed", "errorDetails": details})
	simkit.WriteRaw(w, 400, string(b))
}

func (s *Server) groupRoute(w http.ResponseWriter, r *http.Request, id, rest string, body []byte, now time.Time) {
	g, ok := s.groups[id]
	if ok && !g.deleted.IsZero() && !now.Before(g.deleted.Add(s.cfg.CloudStep)) {
		delete(s.groups, id)
		ok = false
	}
	if !ok {
		lswError(w, 404, "404", "Resource not found")
		return
	}
	s.settleGroup(g, now)
	switch {
	case rest == "" && r.Method == http.MethodDelete:
		if g.deleted.IsZero() {
			g.deleted = now
		}
		w.WriteHeader(http.StatusNoContent)
	case rest == "" && r.Method == http.MethodGet:
		writeJSON(w, 200, groupJSON(g))
	case rest == "/instances" && r.Method == http.MethodGet:
		list := []map[string]any{}
		for i := 0; i < g.Instances; i++ {
			list = append(list, map[string]any{"id": fmt.Sprintf("%s-i%d", g.ID[:8], i), "type": "lsw.m3.large", "state": "RUNNING"})
		}
		writeJSON(w, 200, map[string]any{"instances": list, "_metadata": map[string]int{"totalCount": len(list), "limit": 100, "offset": 0}})
	case rest == "" && r.Method == http.MethodPut:
		var req struct {
			DesiredAmount, MinimumAmount, MaximumAmount, CPUThreshold, WarmupTime, CooldownTime *int
			StartsAt, EndsAt                                                                    *string
			Reference                                                                           *string
		}
		if err := json.Unmarshal(body, &req); err != nil {
			lswError(w, 400, "400", "The API could not interpret your request correctly.")
			return
		}
		details := map[string]string{}
		inRange := func(name string, v *int, lo, hi int) {
			if v != nil && (*v < lo || *v > hi) {
				details[name] = fmt.Sprintf("This value should be between %d and %d.", lo, hi)
			}
		}
		if g.Type != "CPU_BASED" {
			for name, v := range map[string]*int{"maximumAmount": req.MaximumAmount, "cpuThreshold": req.CPUThreshold, "warmupTime": req.WarmupTime, "cooldownTime": req.CooldownTime} {
				if v != nil {
					details[name] = "Only for CPU_BASED auto scaling groups."
				}
			}
		}
		if g.Type != "SCHEDULED" && (req.StartsAt != nil || req.EndsAt != nil) {
			details["startsAt"] = "Only for SCHEDULED auto scaling groups."
		}
		if (req.StartsAt == nil) != (req.EndsAt == nil) {
			details["endsAt"] = "startsAt and endsAt must be changed together."
		}
		inRange("desiredAmount", req.DesiredAmount, 1, 1000)
		inRange("minimumAmount", req.MinimumAmount, 1, 1000)
		inRange("cpuThreshold", req.CPUThreshold, 1, 100)
		inRange("warmupTime", req.WarmupTime, 60, 900)
		inRange("cooldownTime", req.CooldownTime, 300, 900)
		if len(details) > 0 {
			validationFailed(w, details)
			return
		}
		set := func(dst **int, v *int) {
			if v != nil {
				*dst = v
			}
		}
		set(&g.Desired, req.DesiredAmount)
		set(&g.Min, req.MinimumAmount)
		set(&g.Max, req.MaximumAmount)
		set(&g.CPU, req.CPUThreshold)
		set(&g.Warmup, req.WarmupTime)
		set(&g.Cooldown, req.CooldownTime)
		if req.StartsAt != nil {
			g.StartsAt, g.EndsAt = req.StartsAt, req.EndsAt
		}
		g.from, g.changeAt, g.scaling = g.Instances, now, true
		writeJSON(w, 200, groupJSON(g))
	default:
		lswError(w, 404, "404", "Resource not found")
	}
}

// target is the instance count a group converges to.
func (g *cloudGroup) target() int {
	switch g.Type {
	case "MANUAL":
		return deref(g.Desired)
	case "CPU_BASED":
		return max(g.Instances, deref(g.Min))
	}
	return g.Instances // SCHEDULED: changes at startsAt, not simulated
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// settleGroup moves a scaling group's instance count one step per
// CloudStep toward its target.
func (s *Server) settleGroup(g *cloudGroup, now time.Time) {
	if g.creating && !now.Before(g.createdAt.Add(s.cfg.CloudStep)) {
		// Created: it launches its instances one step at a time.
		g.creating = false
		g.from, g.changeAt, g.scaling = 0, g.createdAt.Add(s.cfg.CloudStep), true
	}
	if !g.scaling {
		return
	}
	target := g.target()
	steps := 1 << 20
	if s.cfg.CloudStep > 0 {
		steps = int(now.Sub(g.changeAt) / s.cfg.CloudStep)
	}
	diff := target - g.from
	moved := min(steps, abs(diff))
	if diff < 0 {
		moved = -moved
	}
	g.Instances = g.from + moved
	if g.Instances == target && steps >= 1 {
		g.scaling = false
	}
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

func groupJSON(g *cloudGroup) map[string]any {
	state := "ACTIVE"
	switch {
	case !g.deleted.IsZero():
		state = "DESTROYING"
	case g.creating:
		state = "CREATING"
	case g.scaling:
		state = "SCALING"
		if g.Instances == g.target() {
			state = "UPDATING"
		}
	}
	ref := g.reference
	if ref == "" {
		ref = "sim"
	}
	return map[string]any{"id": g.ID, "type": g.Type, "state": state, "desiredAmount": g.Desired, "minimumAmount": g.Min,
		"maximumAmount": g.Max, "cpuThreshold": g.CPU, "warmupTime": g.Warmup, "cooldownTime": g.Cooldown,
		"startsAt": g.StartsAt, "endsAt": g.EndsAt, "region": "eu-west-3", "reference": ref, "targetGroups": []any{}}
}

// groupsRoute serves the collection: GET lists groups (filtered by
// reference), POST creates one (201, CREATING for one CloudStep, then
// scaling to its amount like an update).
func (s *Server) groupsRoute(w http.ResponseWriter, r *http.Request, body []byte, now time.Time) {
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		ref := q.Get("reference")
		limit, offset := 50, 0
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				lswError(w, 400, "400", "limit must be a positive integer")
				return
			}
			limit = n
		}
		if v := q.Get("offset"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				lswError(w, 400, "400", "offset must be an integer >= 0")
				return
			}
			offset = n
		}
		ids := make([]string, 0, len(s.groups))
		for id := range s.groups {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var all []*cloudGroup
		for _, id := range ids {
			g := s.groups[id]
			if !g.deleted.IsZero() && !now.Before(g.deleted.Add(s.cfg.CloudStep)) {
				continue
			}
			if ref == "" || g.reference == ref {
				all = append(all, g)
			}
		}
		list := []map[string]any{}
		for i := offset; i < len(all) && i < offset+limit; i++ {
			s.settleGroup(all[i], now)
			list = append(list, groupJSON(all[i]))
		}
		writeJSON(w, 200, map[string]any{"autoScalingGroups": list, "_metadata": map[string]int{"totalCount": len(all), "limit": limit, "offset": offset}})
	case http.MethodPost:
		var req struct {
			Type, InstanceID, Reference                                                         string
			DesiredAmount, MinimumAmount, MaximumAmount, CPUThreshold, WarmupTime, CooldownTime *int
			StartsAt, EndsAt                                                                    *string
		}
		if err := json.Unmarshal(body, &req); err != nil {
			lswError(w, 400, "400", "The API could not interpret your request correctly.")
			return
		}
		details := map[string]string{}
		if req.Reference == "" || len(req.Reference) > 255 {
			details["reference"] = "This value should not be blank."
		}
		mc, ok := s.machines[req.InstanceID]
		if !ok || mc.vps || (mc.State != "RUNNING" && mc.State != "STOPPED") {
			details["instanceId"] = "The instance must exist and be running or stopped."
		}
		switch req.Type {
		case "MANUAL", "SCHEDULED":
			if req.DesiredAmount == nil {
				details["desiredAmount"] = "This value should not be blank."
			}
			if req.Type == "SCHEDULED" && (req.StartsAt == nil || req.EndsAt == nil) {
				details["startsAt"] = "This value should not be blank."
			}
		case "CPU_BASED":
			for name, v := range map[string]*int{"minimumAmount": req.MinimumAmount, "maximumAmount": req.MaximumAmount, "cpuThreshold": req.CPUThreshold, "warmupTime": req.WarmupTime, "cooldownTime": req.CooldownTime} {
				if v == nil {
					details[name] = "This value should not be blank."
				}
			}
		default:
			details["type"] = "The value you selected is not a valid choice."
		}
		if len(details) > 0 {
			validationFailed(w, details)
			return
		}
		g := &cloudGroup{Group: Group{ID: newUUID(), Type: req.Type, Desired: req.DesiredAmount, Min: req.MinimumAmount, Max: req.MaximumAmount,
			CPU: req.CPUThreshold, Warmup: req.WarmupTime, Cooldown: req.CooldownTime, StartsAt: req.StartsAt, EndsAt: req.EndsAt},
			reference: req.Reference, creating: true, createdAt: now}
		s.groups[g.ID] = g
		writeJSON(w, http.StatusCreated, groupJSON(g))
	default:
		lswError(w, 405, "405", "Method not allowed")
	}
}

// GroupExists reports whether a group exists (not deleted).
func (s *Server) GroupExists(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initCloudLocked()
	g, ok := s.groups[id]
	return ok && g.deleted.IsZero()
}

// AddSnapshot gives a machine a READY snapshot (a fixture) and returns
// its id.
func (s *Server) AddSnapshot(machineID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initCloudLocked()
	mc, ok := s.machines[machineID]
	if !ok {
		return "", false
	}
	now := s.cfg.Now()
	mc.snap = &cloudSnap{id: newUUID(), name: "fixture", created: now, readyAt: now}
	return mc.snap.id, true
}

// GroupsWithReference counts the groups (not deleted) with a reference.
func (s *Server) GroupsWithReference(ref string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initCloudLocked()
	n := 0
	for _, g := range s.groups {
		if g.reference == ref && g.deleted.IsZero() {
			n++
		}
	}
	return n
}
