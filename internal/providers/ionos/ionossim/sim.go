// Package ionossim simulates the IONOS CDN distributions API: ensure
// (PUT), get, list (paged, filtered by state and domain) and delete, with metadata.state BUSY for Config.Duration after a
// change and then AVAILABLE (or FAILED when the domain starts with "fail-"
// or FailNext asked), Bearer auth, and the IONOS error body. Faults and
// the call log come from simkit.
//
// IONOS CDN API docs: https://api.ionos.com/docs/cdn/v1/
package ionossim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opsworker/opsworker/internal/providers/simkit"
)

// Config sets the simulator's behaviour.
type Config struct {
	// Token is the Bearer token required ("" accepts any).
	Token    string
	Duration time.Duration
	Now      func() time.Time
}

type dist struct {
	props   json.RawMessage
	domain  string
	changed time.Time
	fail    bool
	created time.Time
	// deleted is when a DELETE arrived (zero: none); GET answers 404 one
	// Duration later.
	deleted time.Time
}

// Server is the simulator.
type Server struct {
	*simkit.Kit
	cfg      Config
	mu       sync.Mutex
	dists    map[string]*dist
	failNext int
}

// New returns a simulator.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{Kit: simkit.New(cfg.Now), cfg: cfg, dists: map[string]*dist{}}
}

// FailNext makes the next n changes end FAILED.
func (s *Server) FailNext(n int) { s.mu.Lock(); s.failNext += n; s.mu.Unlock() }

var pathRe = regexp.MustCompile(`^/distributions/([0-9a-fA-F-]{36})$`)

func ionosError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"httpStatus": status, "messages": []map[string]string{{"errorCode": code, "message": msg}}})
	w.Header().Set("X-Request-Id", fmt.Sprintf("req-%d", time.Now().UnixNano()))
	simkit.WriteRaw(w, status, string(b))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Kit.Serve(w, r, r.URL.Path, s.route)
}

func (s *Server) route(w *simkit.Recorder, r *http.Request, path string, body []byte) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" || (s.cfg.Token != "" && tok != s.cfg.Token) {
		ionosError(w, 401, "paas-auth-1", "Unauthorized")
		return
	}
	if path == "/distributions" && r.Method == http.MethodGet {
		s.list(w, r)
		return
	}
	m := pathRe.FindStringSubmatch(path)
	if m == nil {
		ionosError(w, 404, "paas-resource-1", "Resource not found")
		return
	}
	id := m[1]
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		var req struct {
			Properties *struct {
				Domain       string            `json:"domain"`
				RoutingRules []json.RawMessage `json:"routingRules"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Properties == nil {
			ionosError(w, 400, "paas-validation-1", "properties are required")
			return
		}
		if req.Properties.Domain == "" {
			ionosError(w, 400, "paas-validation-1", "properties.domain is required")
			return
		}
		if len(req.Properties.RoutingRules) == 0 {
			ionosError(w, 400, "paas-validation-1", "properties.routingRules must not be empty")
			return
		}
		props, _ := json.Marshal(req.Properties)
		d, ok := s.dists[id]
		if !ok {
			d = &dist{created: now}
			s.dists[id] = d
		}
		d.props, d.domain, d.changed, d.deleted = props, req.Properties.Domain, now, time.Time{}
		d.fail = strings.HasPrefix(d.domain, "fail-")
		if s.failNext > 0 {
			s.failNext--
			d.fail = true
		}
		writeDist(w, id, d, s.state(d, now))
	case http.MethodGet:
		d, ok := s.dists[id]
		if ok && !d.deleted.IsZero() && !now.Before(d.deleted.Add(s.cfg.Duration)) {
			delete(s.dists, id)
			ok = false
		}
		if !ok {
			ionosError(w, 404, "paas-resource-1", "Distribution not found")
			return
		}
		writeDist(w, id, d, s.state(d, now))
	case http.MethodDelete:
		d, ok := s.dists[id]
		if !ok || (!d.deleted.IsZero() && !now.Before(d.deleted.Add(s.cfg.Duration))) {
			delete(s.dists, id)
			ionosError(w, 404, "paas-resource-1", "Distribution not found")
			return
		}
		if d.deleted.IsZero() {
			d.deleted = now
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		ionosError(w, 405, "paas-method-1", "Method not allowed")
	}
}

// list answers GET /distributions: offset (default 0), limit (1 to
// 1000, default 100), filter.state and filter.domain, ordered by
// creation, as a collection with _links.next while more remain.
func (s *Server) list(w *simkit.Recorder, r *http.Request) {
	q := r.URL.Query()
	offset, limit := 0, 100
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			ionosError(w, 400, "paas-validation-1", "offset must be an integer >= 0")
			return
		}
		offset = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			ionosError(w, 400, "paas-validation-1", "limit must be an integer from 1 to 1000")
			return
		}
		limit = n
	}
	now := s.cfg.Now()
	s.mu.Lock()
	type item struct {
		id string
		d  *dist
	}
	var all []item
	for id, d := range s.dists {
		if !d.deleted.IsZero() && !now.Before(d.deleted.Add(s.cfg.Duration)) {
			continue
		}
		st := s.state(d, now)
		if (q.Get("filter.state") != "" && st != q.Get("filter.state")) || (q.Get("filter.domain") != "" && d.domain != q.Get("filter.domain")) {
			continue
		}
		all = append(all, item{id, d})
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].d.created.Equal(all[j].d.created) {
			return all[i].d.created.Before(all[j].d.created)
		}
		return all[i].id < all[j].id
	})
	items := []json.RawMessage{}
	for i := offset; i < len(all) && i < offset+limit; i++ {
		items = append(items, distJSON(all[i].id, all[i].d, s.state(all[i].d, now)))
	}
	s.mu.Unlock()
	links := map[string]string{"self": fmt.Sprintf("/distributions?offset=%d&limit=%d", offset, limit)}
	if offset+limit < len(all) {
		links["next"] = fmt.Sprintf("/distributions?offset=%d&limit=%d", offset+limit, limit)
	}
	b, _ := json.Marshal(map[string]any{"id": "distributions", "type": "collection", "href": "/distributions",
		"items": items, "offset": offset, "limit": limit, "_links": links})
	simkit.WriteRaw(w, 200, string(b))
}

func (s *Server) state(d *dist, now time.Time) string {
	switch {
	case !d.deleted.IsZero(), now.Before(d.changed.Add(s.cfg.Duration)):
		return "BUSY"
	case d.fail:
		return "FAILED"
	}
	return "AVAILABLE"
}

func writeDist(w http.ResponseWriter, id string, d *dist, state string) {
	simkit.WriteRaw(w, 200, string(distJSON(id, d, state)))
}

func distJSON(id string, d *dist, state string) json.RawMessage {
	msg := "In progress."
	if state == "AVAILABLE" {
		msg = "Ready."
	} else if state == "FAILED" {
		msg = "Provisioning the certificate failed."
	}
	b, _ := json.Marshal(map[string]any{"id": id, "type": "distribution", "href": "/distributions/" + id,
		"metadata": map[string]any{"createdDate": d.created.UTC().Format(time.RFC3339), "lastModifiedDate": d.changed.UTC().Format(time.RFC3339),
			"state": state, "message": msg, "publicEndpointIpv4": "127.0.0.1", "resourceURN": "ionos:cdn:de/fra:distribution/" + id},
		"properties": d.props})
	return b
}
