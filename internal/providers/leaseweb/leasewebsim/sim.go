// Package leasewebsim simulates the Leaseweb API. Its public cloud part
// (cloud.go) has instances, VPS, snapshots and auto scaling groups. Its
// bareMetals v2 part has servers, operating systems, rescue images, and
// the jobs that install, rescue mode, hardware scan and IPMI reset launch
// (https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html).
//
// A job moves through its tasks on a clock (Config.TaskDuration per
// task), reporting progress; it ends FINISHED, or FAILED with the failing
// task's errorMessage when asked (FailNextJobs, FailServer), or CANCELED /
// EXPIRED through cancelActiveJob / expireActiveJob. A server runs one
// active job at a time: a second launch is refused with 409 (Leaseweb does
// not document the real answer). When a job ends and it was given a
// callbackUrl, the job is POSTed there.
//
// Faults and the call log come from simkit. Call Close when done.
package leasewebsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsworker/opsworker/internal/providers/simkit"
)

// Config sets the simulator's behaviour. Zero values are usable.
type Config struct {
	// APIKey is the X-LSW-Auth value required; "" accepts any non-empty key.
	APIKey string
	// Servers lists the server ids that exist; empty means every numeric id.
	Servers []string
	// TaskDuration is how long each task of a job takes (0: jobs finish at
	// the next read).
	TaskDuration time.Duration
	// CloudStep is how long each public-cloud change step takes (a
	// snapshot is READY after 3 steps, a type change after 2, a group
	// moves one instance per step). 0: done at the next read.
	CloudStep time.Duration
	// CDNDuration is how long an invalidation stays PENDING (0: done at
	// the next read).
	CDNDuration time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Fault is one injected misbehaviour; Call a logged request (simkit).
type (
	Fault = simkit.Fault
	Call  = simkit.Call
)

// FailHostPrefix starts the hostname of an install that fails (a retry of
// its job succeeds): a fixture for trying server:job_retry.
const FailHostPrefix = "fail-"

var jobTasks = map[string][]string{
	"install":      {"Power cycle server", "Boot installer (PXE)", "Prepare disks and partitions", "Install operating system", "Configure network", "Run post-install script", "Reboot into the installed system"},
	"rescueMode":   {"Power cycle server", "Boot rescue image", "Configure SSH access"},
	"hardwareScan": {"Power cycle server", "Boot scan image", "Scan hardware", "Store hardware information", "Reboot into the original system"},
	"ipmiReset":    {"Reset IPMI", "Verify IPMI"},
}

// The operating systems and rescue images the simulator offers: a subset
// of the documented samples of "List Operating Systems" and "Rescue
// Images" in https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html.
var (
	OperatingSystems = []string{"ALMALINUX_8_64BIT", "CENTOS_7_64BIT", "DEBIAN_11_64BIT", "DEBIAN_10_64BIT", "ROCKY_LINUX_8_64BIT",
		"UBUNTU_22_04_64BIT", "UBUNTU_20_04_64BIT", "WINDOWS_SERVER_2019_STANDARD_64BIT", "FREEBSD_13_64BIT", "ESXI_7_0_64BIT"}
	RescueImages = []string{"GRML", "CENTOS_7", "FREEBSD"}
)

type job struct {
	uuid, typ, server string
	created           time.Time
	payload           map[string]any
	fail              bool
	final             string // CANCELED / EXPIRED set by the API consumer
	finalAt           time.Time
	finalTask         int
	callback          string
	calledBack        bool
}

// Server is the simulator. Use it as an http.Handler.
type Server struct {
	*simkit.Kit
	cfg Config

	mu          sync.Mutex
	jobs        map[string]*job
	order       []*job
	failNext    int
	failServers map[string]bool
	callbacks   []string
	stop        chan struct{}
	stopOnce    sync.Once
	hc          *http.Client

	machines    map[string]*cloudMachine
	groups      map[string]*cloudGroup
	failSnaps   int
	failResizes int

	actions  []*cdnAction // oldest first
	actionBy map[string]*cdnAction
	failInv  int

	powers map[string]*power
}

// New returns a simulator and starts its callback loop.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{Kit: simkit.New(cfg.Now), cfg: cfg, jobs: map[string]*job{}, failServers: map[string]bool{},
		stop: make(chan struct{}), hc: &http.Client{Timeout: 5 * time.Second}}
	go s.callbackLoop()
	return s
}

// Close stops the callback loop and releases held requests.
func (s *Server) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.ReleaseHangs()
}

// FailNextJobs makes the next n launched jobs end FAILED.
func (s *Server) FailNextJobs(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext += n
}

// FailServer makes every job launched on serverID end FAILED.
func (s *Server) FailServer(serverID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failServers[serverID] = true
}

// Launches counts accepted launches of jobType on serverID.
func (s *Server) Launches(serverID, jobType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, j := range s.order {
		if j.server == serverID && j.typ == jobType {
			n++
		}
	}
	return n
}

// JobStatus reports a job's current status.
func (s *Server) JobStatus(uuid string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[uuid]
	if !ok {
		return "", false
	}
	return s.viewLocked(j)["status"].(string), true
}

// Callbacks returns the job uuids POSTed to callback URLs so far.
func (s *Server) Callbacks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.callbacks...)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/cdn/v2/") {
		s.Kit.Serve(w, r, r.URL.Path, s.cdnRoute)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/publicCloud/v1/") {
		s.Kit.Serve(w, r, r.URL.Path, s.cloudRoute)
		return
	}
	s.Kit.Serve(w, r, strings.TrimPrefix(r.URL.Path, "/bareMetals/v2"), s.route)
}

var (
	serverPathRe = regexp.MustCompile(`^/servers/([^/]+)(/.*)?$`)
	numericRe    = regexp.MustCompile(`^[0-9]+$`)
)

func lswError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"correlationId": newUUID(), "errorCode": code, "errorMessage": msg})
	simkit.WriteRaw(w, status, string(b))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	simkit.WriteRaw(w, status, string(b))
}

func (s *Server) route(w *simkit.Recorder, r *http.Request, path string, body []byte) {
	key := r.Header.Get("X-LSW-Auth")
	if key == "" || (s.cfg.APIKey != "" && key != s.cfg.APIKey) {
		lswError(w, http.StatusUnauthorized, "401", "You are not authorized to view this resource.")
		return
	}
	switch {
	case path == "/operatingSystems" && r.Method == http.MethodGet:
		list := []map[string]string{}
		for _, os := range OperatingSystems {
			list = append(list, map[string]string{"id": os, "name": os})
		}
		writeJSON(w, 200, map[string]any{"operatingSystems": list, "_metadata": map[string]int{"totalCount": len(list), "limit": len(list), "offset": 0}})
		return
	case path == "/rescueImages" && r.Method == http.MethodGet:
		list := []map[string]string{}
		for _, img := range RescueImages {
			list = append(list, map[string]string{"id": img, "name": img})
		}
		writeJSON(w, 200, map[string]any{"rescueImages": list, "_metadata": map[string]int{"totalCount": len(list), "limit": len(list), "offset": 0}})
		return
	}
	m := serverPathRe.FindStringSubmatch(path)
	if m == nil {
		lswError(w, 404, "404", "Resource not found")
		return
	}
	server, rest := m[1], m[2]
	if !s.serverExists(server) {
		lswError(w, 404, "404", "Resource not found")
		return
	}
	switch {
	case rest == "" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"id": server, "contract": map[string]string{"reference": "sim-" + server}})
	case r.Method == http.MethodPost && (rest == "/install" || rest == "/rescueMode" || rest == "/hardwareScan" || rest == "/ipmiReset"):
		s.launch(w, server, strings.TrimPrefix(rest, "/"), body)
	case r.Method == http.MethodPost && (rest == "/powerOn" || rest == "/powerOff" || rest == "/powerCycle"),
		r.Method == http.MethodGet && rest == "/powerInfo":
		s.powerRoute(w, r, server, strings.TrimPrefix(rest, "/"))
	case rest == "/jobs" && r.Method == http.MethodGet:
		s.list(w, r, server)
	case strings.HasPrefix(rest, "/jobs/") && strings.HasSuffix(rest, "/retry") && r.Method == http.MethodPost:
		s.retry(w, server, strings.TrimSuffix(strings.TrimPrefix(rest, "/jobs/"), "/retry"))
	case strings.HasPrefix(rest, "/jobs/") && r.Method == http.MethodGet:
		s.show(w, server, strings.TrimPrefix(rest, "/jobs/"))
	case (rest == "/cancelActiveJob" || rest == "/expireActiveJob") && r.Method == http.MethodPost:
		final := "CANCELED"
		if rest == "/expireActiveJob" {
			final = "EXPIRED"
		}
		s.endActive(w, server, final)
	default:
		lswError(w, 404, "404", "Resource not found")
	}
}

func (s *Server) serverExists(id string) bool {
	if len(s.cfg.Servers) > 0 {
		return slices.Contains(s.cfg.Servers, id)
	}
	return numericRe.MatchString(id)
}

func (s *Server) launch(w http.ResponseWriter, server, typ string, body []byte) {
	var req map[string]any
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			lswError(w, 400, "400", "The API could not interpret your request correctly.")
			return
		}
	}
	if req == nil {
		req = map[string]any{}
	}
	details := map[string]string{}
	str := func(k string) string { v, _ := req[k].(string); return v }
	switch typ {
	case "install":
		if os := str("operatingSystemId"); os == "" {
			details["operatingSystemId"] = "This value should not be blank."
		} else if !slices.Contains(OperatingSystems, os) {
			details["operatingSystemId"] = "Unknown operating system " + os
		}
		if sc := str("postInstallScript"); sc != "" {
			if _, err := base64.StdEncoding.DecodeString(sc); err != nil {
				details["postInstallScript"] = "Must be a base64 encoded string."
			}
		}
	case "rescueMode":
		img := str("rescueImageId")
		if img == "" {
			img = "GRML"
		}
		if !slices.Contains(RescueImages, img) {
			details["rescueImageId"] = "Unknown rescue image " + img
		}
		if sc := str("postInstallScript"); sc != "" {
			dec, err := base64.StdEncoding.DecodeString(sc)
			if err != nil || !strings.HasPrefix(string(dec), "#!") {
				details["postInstallScript"] = "Must be a base64 encoded script starting with a shebang."
			}
		}
	}
	if len(details) > 0 {
		b, _ := json.Marshal(map[string]any{"correlationId": newUUID(), "errorCode": "400", "errorMessage": "Validation Failed", "errorDetails": details})
		simkit.WriteRaw(w, 400, string(b))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.order {
		if j.server == server && s.viewLocked(j)["isRunning"] == true {
			lswError(w, http.StatusConflict, "409", fmt.Sprintf("Server %s already has an active job (%s %s)", server, j.typ, j.uuid))
			return
		}
	}
	payload := map[string]any{"jobType": typ, "serverId": server, "pop": "AMS-01", "powerCycle": req["powerCycle"] != false}
	if typ == "ipmiReset" {
		payload["hasPublicIpmiIp"] = false
	}
	for _, k := range []string{"operatingSystemId", "device", "partitions", "timezone", "rescueImageId", "controlPanelId", "hostname"} {
		if v, ok := req[k]; ok {
			payload[k] = v
		}
	}
	j := &job{uuid: newUUID(), typ: typ, server: server, created: s.cfg.Now(), payload: payload, callback: str("callbackUrl")}
	if h, _ := req["hostname"].(string); strings.HasPrefix(h, FailHostPrefix) {
		// A fixture for make run and the e2e tests: this job fails (and a
		// retry of it succeeds).
		j.fail = true
	}
	if s.failNext > 0 || s.failServers[server] {
		j.fail = true
		if s.failNext > 0 {
			s.failNext--
		}
	}
	s.jobs[j.uuid] = j
	s.order = append(s.order, j)
	writeJSON(w, http.StatusAccepted, s.viewLocked(j))
}

// viewLocked renders a job as the API does, its state computed from time.
func (s *Server) viewLocked(j *job) map[string]any {
	names := jobTasks[j.typ]
	total := len(names)
	now := s.cfg.Now()
	if j.final != "" {
		now = j.finalAt
	}
	done := total
	if s.cfg.TaskDuration > 0 {
		done = int(now.Sub(j.created) / s.cfg.TaskDuration)
	}
	failAt := total / 2
	status := "ACTIVE"
	switch {
	case j.final != "":
		status = j.final
		done = j.finalTask
	case j.fail && done > failAt:
		status, done = "FAILED", failAt
	case done >= total:
		status, done = "FINISHED", total
	}
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }
	var tasks []map[string]any
	prog := map[string]int{"canceled": 0, "expired": 0, "failed": 0, "finished": 0, "inprogress": 0, "pending": 0, "waiting": 0, "total": total}
	for i, name := range names {
		st, msg := "WAITING", any(nil)
		switch {
		case i < done:
			st = "FINISHED"
		case i == done && status == "ACTIVE":
			st = "PENDING"
		case i == done && status == "FAILED":
			st, msg = "FAILED", "Disk /dev/sda reported I/O errors while preparing partitions"
		case i == done && (status == "CANCELED" || status == "EXPIRED"):
			st = status
			msg = "The job was " + strings.ToLower(status) + " by the api consumer"
		}
		key := map[string]string{"FINISHED": "finished", "PENDING": "inprogress", "WAITING": "waiting", "FAILED": "failed", "CANCELED": "canceled", "EXPIRED": "expired"}[st]
		prog[key]++
		tasks = append(tasks, map[string]any{"uuid": fmt.Sprintf("%s-t%d", j.uuid[:8], i), "description": name, "errorMessage": msg,
			"flow": "tasks", "onError": "break", "status": st, "statusTimestamps": map[string]string{st: ts(j.created.Add(time.Duration(i) * s.cfg.TaskDuration))}})
	}
	prog["percentage"] = prog["finished"] * 100 / max(total, 1)
	updated := j.created.Add(time.Duration(done) * s.cfg.TaskDuration)
	if j.final != "" {
		updated = j.finalAt
	}
	return map[string]any{
		"uuid": j.uuid, "type": j.typ, "status": status, "isRunning": status == "ACTIVE", "serverId": j.server,
		"createdAt": ts(j.created), "updatedAt": ts(updated), "flow": "tasks", "node": "80:18:44:E0:AF:C4!SIM" + j.server,
		"payload": j.payload, "progress": prog, "tasks": tasks,
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, server string) {
	q := r.URL.Query()
	limit, offset := 20, 0
	if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
		limit = v
	}
	if v, err := strconv.Atoi(q.Get("offset")); err == nil && v >= 0 {
		offset = v
	}
	s.mu.Lock()
	var all []map[string]any
	for i := len(s.order) - 1; i >= 0; i-- {
		j := s.order[i]
		if j.server != server || (q.Get("type") != "" && q.Get("type") != j.typ) {
			continue
		}
		v := s.viewLocked(j)
		if (q.Get("status") != "" && q.Get("status") != v["status"]) || (q.Get("isRunning") != "" && q.Get("isRunning") != strconv.FormatBool(v["isRunning"].(bool))) {
			continue
		}
		delete(v, "tasks") // list items carry no tasks ("List jobs" sample)
		all = append(all, v)
	}
	s.mu.Unlock()
	page := []map[string]any{}
	if offset < len(all) {
		page = all[offset:min(len(all), offset+limit)]
	}
	writeJSON(w, 200, map[string]any{"jobs": page, "_metadata": map[string]int{"totalCount": len(all), "limit": limit, "offset": offset}})
}

func (s *Server) show(w http.ResponseWriter, server, id string) {
	s.mu.Lock()
	j, ok := s.jobs[id]
	var v map[string]any
	if ok && j.server == server {
		v = s.viewLocked(j)
	}
	s.mu.Unlock()
	if v == nil {
		lswError(w, 404, "404", "Resource not found")
		return
	}
	writeJSON(w, 200, v)
}

func (s *Server) retry(w http.ResponseWriter, server, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok || j.server != server {
		lswError(w, 404, "404", "Resource not found")
		return
	}
	if s.viewLocked(j)["isRunning"] == true {
		lswError(w, 400, "400", "The job is still running")
		return
	}
	j.created, j.final, j.fail, j.calledBack = s.cfg.Now(), "", false, false
	writeJSON(w, 200, s.viewLocked(j))
}

func (s *Server) endActive(w http.ResponseWriter, server, final string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.order {
		v := s.viewLocked(j)
		if j.server == server && v["isRunning"] == true {
			done := 0
			for _, t := range v["tasks"].([]map[string]any) {
				if t["status"] == "FINISHED" {
					done++
				}
			}
			j.final, j.finalAt, j.finalTask = final, s.cfg.Now(), done
			writeJSON(w, 200, s.viewLocked(j))
			return
		}
	}
	lswError(w, 404, "404", "Server "+server+" has no active job")
}

// callbackLoop POSTs finished jobs to their callbackUrl.
func (s *Server) callbackLoop() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		type due struct {
			url  string
			body []byte
			id   string
		}
		var todo []due
		s.mu.Lock()
		for _, j := range s.order {
			if j.callback == "" || j.calledBack {
				continue
			}
			if v := s.viewLocked(j); v["isRunning"] == false {
				j.calledBack = true
				b, _ := json.Marshal(v)
				todo = append(todo, due{j.callback, b, j.uuid})
			}
		}
		s.mu.Unlock()
		for _, d := range todo {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
				if resp, err := s.hc.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			cancel()
			s.mu.Lock()
			s.callbacks = append(s.callbacks, d.id)
			s.mu.Unlock()
		}
	}
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
