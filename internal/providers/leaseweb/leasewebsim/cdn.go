package leasewebsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opsworker/opsworker/internal/providers/simkit"
)

// The CDN v2 part: invalidations become actions that go PENDING →
// FINISHED after Config.CDNDuration, each URL PENDING → SUCCESS (or
// FAILED when it contains FailMarker, or for FailNextInvalidations).

// FailMarker in an invalidated URL makes that URL's status FAILED.
const FailMarker = "__fail__"

type cdnAction struct {
	id, invID string
	files     []string
	created   time.Time
	fail      bool
	forced    bool
}

// FailNextInvalidations makes every URL of the next n invalidations fail.
func (s *Server) FailNextInvalidations(n int) { s.mu.Lock(); s.failInv += n; s.mu.Unlock() }

// FinishAction makes an action FINISHED now; it returns when that happened.
func (s *Server) FinishAction(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.actionBy[id]; a != nil {
		a.forced = true
		return s.cfg.Now(), true
	}
	return time.Time{}, false
}

// FinishAllActions makes every action FINISHED now; it returns when.
func (s *Server) FinishAllActions() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.actions {
		a.forced = true
	}
	return s.cfg.Now()
}

// ActionIDs lists the simulator's action ids, oldest first.
func (s *Server) ActionIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, a := range s.actions {
		ids = append(ids, a.id)
	}
	return ids
}

func (s *Server) cdnRoute(w *simkit.Recorder, r *http.Request, path string, body []byte) {
	key := r.Header.Get("X-LSW-Auth")
	if key == "" || (s.cfg.APIKey != "" && key != s.cfg.APIKey) {
		lswError(w, http.StatusUnauthorized, "401", "You are not authorized to view this resource.")
		return
	}
	now := s.cfg.Now()
	switch {
	case path == "/cdn/v2/invalidations" && r.Method == http.MethodPost:
		var req struct {
			Files []string `json:"files"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			lswError(w, 400, "400", "The API could not interpret your request correctly.")
			return
		}
		if len(req.Files) == 0 {
			// 422 is listed for the CDN endpoints in https://developer.leaseweb.com/api-docs/cdn_v2.html.
			b, _ := json.Marshal(map[string]any{"correlationId": newUUID(), "errorCode": "422", "errorMessage": "Unprocessable Entity", "errorDetails": map[string]string{"files": "This value should not be blank."}})
			simkit.WriteRaw(w, 422, string(b))
			return
		}
		s.mu.Lock()
		a := &cdnAction{id: newUUID(), invID: "in-" + newUUID()[:8], files: req.Files, created: now}
		if s.failInv > 0 {
			s.failInv--
			a.fail = true
		}
		s.actions = append(s.actions, a)
		if s.actionBy == nil {
			s.actionBy = map[string]*cdnAction{}
		}
		s.actionBy[a.id] = a
		v := s.actionJSONLocked(a, now, true)
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, v)
	case path == "/cdn/v2/actions" && r.Method == http.MethodGet:
		q := r.URL.Query()
		limit, offset := 100, 0
		if v, err := strconv.Atoi(q.Get("limit")); err == nil && v > 0 {
			limit = min(v, 1000)
		}
		if v, err := strconv.Atoi(q.Get("offset")); err == nil && v >= 0 {
			offset = v
		}
		filter := q.Get("filters")
		page := []map[string]any{}
		s.mu.Lock()
		total := len(s.actions) // every action is an INVALIDATION
		if filter != "" && filter != "INVALIDATION" {
			total = 0
		}
		for i := offset; i < min(total, offset+limit); i++ { // newest first
			page = append(page, s.actionJSONLocked(s.actions[total-1-i], now, true))
		}
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"actions": page, "_metadata": map[string]int{"totalCount": total, "limit": limit, "offset": offset}})
	case strings.HasPrefix(path, "/cdn/v2/actions/") && r.Method == http.MethodGet:
		id := strings.TrimPrefix(path, "/cdn/v2/actions/")
		s.mu.Lock()
		var v map[string]any
		if a := s.actionBy[id]; a != nil {
			v = s.actionJSONLocked(a, now, true)
		}
		s.mu.Unlock()
		if v == nil {
			lswError(w, 404, "404", "Resource not found")
			return
		}
		writeJSON(w, 200, v)
	default:
		lswError(w, 404, "404", "Resource not found")
	}
}

func (s *Server) actionJSONLocked(a *cdnAction, now time.Time, withResource bool) map[string]any {
	done := a.forced || !now.Before(a.created.Add(s.cfg.CDNDuration))
	status := "PENDING"
	if done {
		status = "FINISHED"
	}
	var urls []map[string]any
	for _, f := range a.files {
		st, msg := "PENDING", ""
		if done {
			st = "SUCCESS"
			if a.fail || strings.Contains(f, FailMarker) {
				st, msg = "FAILED", "Purge failed at the CDN provider"
			}
		}
		urls = append(urls, map[string]any{"distribution_group_id": "", "url": f, "status": st, "message": msg})
	}
	v := map[string]any{"type": "INVALIDATION", "status": status, "id": a.id, "customerId": "47927462",
		"created": a.created.UTC().Format("2006-01-02T15:04:05Z"), "updated": ""}
	if done {
		v["updated"] = now.UTC().Format("2006-01-02T15:04:05Z")
	}
	if withResource {
		v["resource"] = map[string]any{"invalidation_id": a.invID, "status": status, "url_status": urls,
			"submitted": a.created.UTC().Format("2006-01-02T15:04:05"), "completed": nil}
	}
	return v
}
