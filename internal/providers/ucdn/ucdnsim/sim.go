// Package ucdnsim is an in-memory UCDN API v4 simulator for the purge
// endpoints. It follows the shapes of the UCDN API docs
// (https://api.ucdn.com/docs/, "Purge files" to "Delete a purge job")
// including their quirks: purge answers 200 with a body although the
// status table says 204, paths come back as absolute CDN URLs, trailing
// slashes are optional, the token may come as X-UCDN-Token or ?token=, and
// refusals use the non-standard status 532.
//
// Jobs move waiting → running → finished on a clock (Config.WaitingFor,
// Config.RunningFor), or at once with Advance. A job ends failed when
// FailNextJobs asked for it or when one of its files contains "__fail__".
// Faults (status codes with Retry-After, slow, hanging, malformed or dropped
// responses) are injected with Inject. Every request is recorded (Calls).
//
// It serves tests (on httptest), `make run` and benchmarks; it is not a test
// double of our own code. A Server is safe for concurrent use.
package ucdnsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsworker/opsworker/internal/providers/simkit"
)

// StatusFail is UCDN's "Fail message" status.
const StatusFail = 532

// FailMarker in a purged file's path makes that job end "failed".
const FailMarker = "__fail__"

// Config sets the simulator's behaviour. Zero values are usable.
type Config struct {
	// Token is the API token requests must carry; "" accepts any token
	// but still requires one.
	Token string
	// Zones lists the zone names that exist; empty means every name exists.
	Zones []string
	// WaitingFor and RunningFor are how long a job stays in each state
	// (0: it moves on at the next read).
	WaitingFor, RunningFor time.Duration
	// CDNDomain is the host files are reported under (default
	// "a1-121.so.clients.cdn13.com", the host in the UCDN API docs'
	// "View purge job" example).
	CDNDomain string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Call is one request the simulator received.
type Call = simkit.Call

// Fault is one injected misbehaviour; see simkit.
type Fault = simkit.Fault

// Fault kinds.
const (
	FaultStatus      = simkit.FaultStatus
	FaultSlow        = simkit.FaultSlow
	FaultHang        = simkit.FaultHang
	FaultBadJSON     = simkit.FaultBadJSON
	FaultDrop        = simkit.FaultDrop
	FaultAfterEffect = simkit.FaultAfterEffect
)

type job struct {
	id      string
	files   []string
	created time.Time
	zone    string
	fail    bool
	forced  string
	deleted bool
}

// Server is the simulator. Use it as an http.Handler.
type Server struct {
	*simkit.Kit
	cfg Config

	mu       sync.Mutex
	jobs     map[string]*job
	order    []string
	failNext int
}

// New returns a simulator.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CDNDomain == "" {
		cfg.CDNDomain = "a1-121.so.clients.cdn13.com"
	}
	return &Server{Kit: simkit.New(cfg.Now), cfg: cfg, jobs: map[string]*job{}}
}

// FailNextJobs makes the next n created jobs end "failed".
func (s *Server) FailNextJobs(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext += n
}

// Advance moves a job to its final state now.
func (s *Server) Advance(jobID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[jobID]
	if !ok {
		return false
	}
	j.forced = "finished"
	if j.fail {
		j.forced = "failed"
	}
	return true
}

// JobStatus reports a job's current status.
func (s *Server) JobStatus(jobID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[jobID]
	if !ok || j.deleted {
		return "", false
	}
	return s.statusLocked(j), true
}

func (s *Server) statusLocked(j *job) string {
	if j.forced != "" {
		return j.forced
	}
	el := s.cfg.Now().Sub(j.created)
	switch {
	case el < s.cfg.WaitingFor:
		return "waiting"
	case el < s.cfg.WaitingFor+s.cfg.RunningFor:
		return "running"
	case j.fail:
		return "failed"
	default:
		return "finished"
	}
}

// ListenAndServe serves the simulator on addr until ctx ends. It returns
// once the listener is bound, with the base URL of the API (…/v4) and a
// channel that yields the serve error.
func (s *Server) ListenAndServe(ctx context.Context, addr string) (string, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		err := hs.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	go func() {
		<-ctx.Done()
		s.ReleaseHangs()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	return "http://" + ln.Addr().String() + "/v4", errc, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/v4")
	s.Kit.Serve(w, r, path, s.route, "token")
}

func (s *Server) route(w *simkit.Recorder, r *http.Request, path string, body []byte) {
	q := r.URL.Query()
	token := r.Header.Get("X-UCDN-Token")
	if token == "" {
		token = q.Get("token")
	}
	if token == "" || (s.cfg.Token != "" && token != s.cfg.Token) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Authentication failed: invalid token"})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodDelete && r.Header.Get("Content-Type") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Content-Type header is required"})
		return
	}
	p := strings.TrimSuffix(path, "/")
	switch {
	case p == "/purge/zone" && r.Method == http.MethodPost:
		s.purge(w, r, q, body)
	case p == "/purge" && r.Method == http.MethodGet:
		s.list(w, q)
	case strings.HasPrefix(p, "/purge/job/") && r.Method == http.MethodGet:
		s.view(w, strings.TrimPrefix(p, "/purge/job/"))
	case strings.HasPrefix(p, "/purge/job/") && r.Method == http.MethodDelete:
		s.delete(w, strings.TrimPrefix(p, "/purge/job/"))
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not found"})
	}
}

func (s *Server) purge(w *simkit.Recorder, r *http.Request, q url.Values, body []byte) {
	zone, ztype := q.Get("zone_name"), q.Get("zone_type")
	var files string
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var b struct {
			Files *string `json:"files"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			writeJSON(w, StatusFail, map[string]string{"message": "Invalid request body: files must be a string of newline-separated files"})
			return
		}
		if b.Files != nil {
			files = *b.Files
		}
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			writeJSON(w, StatusFail, map[string]string{"message": "Invalid request body"})
			return
		}
		files = v.Get("files")
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Unsupported Content-Type"})
		return
	}
	if zone == "" || ztype == "" {
		writeJSON(w, StatusFail, map[string]string{"message": "zone_name and zone_type are required"})
		return
	}
	if ztype != "objects" && ztype != "livestream" {
		writeJSON(w, StatusFail, map[string]string{"message": "Invalid zone_type. Valid types: ['objects', 'livestream']"})
		return
	}
	if len(s.cfg.Zones) > 0 && !contains(s.cfg.Zones, zone) {
		writeJSON(w, StatusFail, map[string]string{"message": "Zone " + zone + " does not exist"})
		return
	}
	var list []string
	for _, f := range strings.Split(files, "\n") {
		if f = strings.TrimSpace(f); f != "" {
			list = append(list, f)
		}
	}
	if len(list) == 0 {
		writeJSON(w, StatusFail, map[string]string{"message": "No files given"})
		return
	}
	id := newJobID()
	j := &job{id: id, created: s.cfg.Now(), zone: zone}
	for _, f := range list {
		if strings.Contains(f, FailMarker) {
			j.fail = true
		}
		j.files = append(j.files, s.absolute(f))
	}
	s.mu.Lock()
	if s.failNext > 0 {
		s.failNext--
		j.fail = true
	}
	s.jobs[id] = j
	s.order = append(s.order, id)
	s.mu.Unlock()
	// The documented status table says 204 but the documented example is
	// 200 with this body.
	writeJSON(w, http.StatusOK, map[string]string{"message": "Purge request received", "job_id": id})
}

type jobJSON struct {
	JobID     string   `json:"job_id"`
	Files     []string `json:"files"`
	Status    string   `json:"status"`
	CreatedAt int64    `json:"created_at"`
}

func (s *Server) jobJSONLocked(j *job) jobJSON {
	return jobJSON{JobID: j.id, Files: j.files, Status: s.statusLocked(j), CreatedAt: j.created.Unix()}
}

func (s *Server) view(w *simkit.Recorder, id string) {
	s.mu.Lock()
	j, ok := s.jobs[id]
	var out jobJSON
	if ok && !j.deleted {
		out = s.jobJSONLocked(j)
	}
	s.mu.Unlock()
	if !ok || j.deleted {
		writeJSON(w, StatusFail, map[string]string{"message": "Purge job not found"})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) list(w *simkit.Recorder, q url.Values) {
	count := 20
	if c := q.Get("count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n <= 0 || n > 500 {
			writeJSON(w, StatusFail, map[string]string{"message": "count must be a positive integer less or equal to 500"})
			return
		}
		count = n
	}
	want := map[string]bool{"waiting": true, "running": true, "failed": true}
	if st := q.Get("status"); st != "" {
		switch st {
		case "waiting", "running", "finished", "failed":
			want = map[string]bool{st: true}
		default:
			writeJSON(w, StatusFail, map[string]string{"message": "Unsupported status"})
			return
		}
	}
	s.mu.Lock()
	var out []jobJSON
	for i := len(s.order) - 1; i >= 0 && len(out) < count; i-- {
		j := s.jobs[s.order[i]]
		if j.deleted {
			continue
		}
		if jj := s.jobJSONLocked(j); want[jj.Status] {
			out = append(out, jj)
		}
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(a, b int) bool { return out[a].CreatedAt > out[b].CreatedAt })
	if out == nil {
		out = []jobJSON{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) delete(w *simkit.Recorder, id string) {
	s.mu.Lock()
	j, ok := s.jobs[id]
	var st string
	if ok && !j.deleted {
		st = s.statusLocked(j)
		if st == "waiting" || st == "finished" {
			j.deleted = true
		}
	}
	s.mu.Unlock()
	switch {
	case !ok || (j.deleted && st == ""):
		writeJSON(w, StatusFail, map[string]string{"message": "Purge job not found"})
	case st != "waiting" && st != "finished":
		writeJSON(w, StatusFail, map[string]string{"message": "Only purge jobs which are waiting or finished can be deleted"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"message": "The purge job was removed"})
	}
}

func (s *Server) absolute(f string) string {
	if strings.HasPrefix(f, "http://") || strings.HasPrefix(f, "https://") {
		u, err := url.Parse(f)
		if err == nil {
			return "http://" + s.cfg.CDNDomain + u.RequestURI()
		}
		return f
	}
	if !strings.HasPrefix(f, "/") {
		f = "/" + f
	}
	return "http://" + s.cfg.CDNDomain + f
}

func newJobID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	simkit.WriteRaw(w, status, string(b))
}
