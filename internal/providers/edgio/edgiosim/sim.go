// Package edgiosim simulates the EdgeCast purge API: PUT a purge, GET its
// status until CompleteDate is set (after Config.Duration), at most
// edgio.MaxOutstanding outstanding purges per account, and TOK auth with
// per-token method permissions: a token without PUT gets 403. Faults and
// the call log come from simkit.
//
// EdgeCast API docs: https://docs.edgecast.com/cdn/Content/User_Accounts/Web_Services_REST_API_Access.htm
package edgiosim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opsworker/opsworker/internal/providers/edgio"
	"github.com/opsworker/opsworker/internal/providers/simkit"
)

// Config sets the simulator's behaviour.
type Config struct {
	// Tokens maps token to the HTTP methods its user holds; empty means
	// any token may do anything.
	Tokens map[string][]string
	// Duration is how long a purge stays outstanding.
	Duration time.Duration
	Now      func() time.Time
}

type purge struct {
	id, account, path string
	mediaType         int
	in                time.Time
	forced            bool
}

// Server is the simulator.
type Server struct {
	*simkit.Kit
	cfg    Config
	mu     sync.Mutex
	purges map[string]*purge
	order  []*purge
}

// New returns a simulator.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{Kit: simkit.New(cfg.Now), cfg: cfg, purges: map[string]*purge{}}
}

// Complete finishes every outstanding purge now.
func (s *Server) Complete() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.order {
		p.forced = true
	}
}

// Outstanding counts an account's outstanding purges.
func (s *Server) Outstanding(account string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outstandingLocked(account, s.cfg.Now())
}

func (s *Server) done(p *purge, now time.Time) bool {
	return p.forced || !now.Before(p.in.Add(s.cfg.Duration))
}

func (s *Server) outstandingLocked(account string, now time.Time) int {
	n := 0
	for _, p := range s.order {
		if p.account == account && !s.done(p, now) {
			n++
		}
	}
	return n
}

var pathRe = regexp.MustCompile(`^/v2/mcc/customers/([A-Za-z0-9]+)/edge/purge(?:/([^/]+))?$`)

func msg(w http.ResponseWriter, status int, m string) {
	b, _ := json.Marshal(map[string]string{"Message": m})
	simkit.WriteRaw(w, status, string(b))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Kit.Serve(w, r, r.URL.Path, s.route)
}

func (s *Server) route(w *simkit.Recorder, r *http.Request, path string, body []byte) {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "TOK:")
	if !ok || token == "" {
		msg(w, 401, "Authorization header must be TOK:<token>")
		return
	}
	if len(s.cfg.Tokens) > 0 {
		methods, known := s.cfg.Tokens[token]
		if !known {
			msg(w, 401, "Invalid token")
			return
		}
		if !slices.Contains(methods, r.Method) {
			msg(w, 403, "Access Denied")
			return
		}
	}
	m := pathRe.FindStringSubmatch(path)
	if m == nil {
		msg(w, 404, "Not found")
		return
	}
	account, id := m[1], m[2]
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case id == "" && r.Method == http.MethodPut:
		var req edgio.PurgeRequest
		if err := json.Unmarshal(body, &req); err != nil || req.MediaPath == "" {
			msg(w, 400, "MediaPath is required")
			return
		}
		valid := false
		for _, v := range edgio.MediaTypes {
			valid = valid || v == req.MediaType
		}
		if !valid {
			msg(w, 400, "Invalid MediaType")
			return
		}
		if s.outstandingLocked(account, now) >= edgio.MaxOutstanding {
			msg(w, 400, "Exceeded the maximum number of outstanding purge requests (50)")
			return
		}
		var b [8]byte
		_, _ = rand.Read(b[:])
		p := &purge{id: hex.EncodeToString(b[:]), account: account, path: req.MediaPath, mediaType: req.MediaType, in: now}
		s.purges[p.id] = p
		s.order = append(s.order, p)
		b2, _ := json.Marshal(map[string]string{"Id": p.id})
		simkit.WriteRaw(w, 200, string(b2))
	case id != "" && r.Method == http.MethodGet:
		p, ok := s.purges[id]
		if !ok || p.account != account {
			msg(w, 404, "Purge request not found")
			return
		}
		var complete *string
		if s.done(p, now) {
			c := p.in.Add(s.cfg.Duration).UTC().Format("2006-01-02T15:04:05")
			complete = &c
		}
		b, _ := json.Marshal(map[string]any{"Id": p.id, "MediaPath": p.path, "MediaType": p.mediaType,
			"InDate": p.in.UTC().Format("2006-01-02T15:04:05"), "CompleteDate": complete})
		simkit.WriteRaw(w, 200, string(b))
	default:
		msg(w, 405, "Method not allowed")
	}
}
