package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/runbook"
	"github.com/opsworker/opsworker/internal/tasks"
	"github.com/opsworker/opsworker/ops"
)

// The operations console: server-rendered pages over the same store,
// behind the same tokens and sessions as the queue UI (RegisterUI), with
// every asset embedded. Read tokens see; write tokens also get buttons
// to cancel, approve, reject, replay webhooks and pause accounts. Every
// write is a form POST from the console's own origin
// (CrossOriginProtection) carrying the session's CSRF token.

// AccountInfo is a provider account as the console's providers page shows
// it.
type AccountInfo struct {
	Provider, Account string
	// Breaker is closed, open or half_open; PausedBy says who paused it
	// ("" when not paused).
	Breaker, PausedBy string
	Paused            bool
	// RateLimit and Burst are its shared rate limit (0: none).
	RateLimit float64
	Burst     int
	// MaxInFlight is its cap (0: none); InFlight the slots in use.
	MaxInFlight, InFlight int
	// Served says whether a running worker serves it.
	Served bool
}

//go:embed console
var consoleFiles embed.FS

var consoleTmpl = template.Must(template.New("console").Funcs(template.FuncMap{
	"ago":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"agoPtr":   agoPtr,
	"percent":  progressPercent,
	"task":     progressTask,
	"pretty":   prettyJSON,
	"terminal": func(s ops.State) bool { return s.Terminal() },
	"labels":   labelText,
	"active":   runbook.Active,
	"query":    func(v url.Values) string { return v.Encode() },
	"add":      func(a, b int) int { return a + b },
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
}).ParseFS(consoleFiles, "console/*.tmpl"))

func agoPtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// progressPercent reads a provider's progress percentage (-1: none).
func progressPercent(raw json.RawMessage) int {
	var p struct {
		Percentage *int `json:"percentage"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &p) != nil || p.Percentage == nil {
		return -1
	}
	return min(max(*p.Percentage, 0), 100)
}

func progressTask(raw json.RawMessage) string {
	var p struct {
		Task string `json:"task"`
	}
	_ = json.Unmarshal(raw, &p)
	return p.Task
}

func prettyJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

func labelText(l map[string]string) []string {
	out := make([]string, 0, len(l))
	for k, v := range l {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// consoleCSRF is the CSRF token of the request's session: an HMAC of the
// session cookie under the token's key. A page of another site can
// neither read the cookie nor the page that carries this. Requests with
// the token in the Authorization header need none ("" then).
func consoleCSRF(r *http.Request, tok Token) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return ""
	}
	m := hmac.New(sha256.New, sessionKey(tok.Secret))
	m.Write([]byte("csrf\x00" + c.Value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ConsoleHandler serves the console below /console/; mount it with
// RegisterUI(mux, "/console", h, h).
func (a *API) ConsoleHandler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(consoleFiles, "console")
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /console/{$}", a.consoleList)
	mux.HandleFunc("GET /console/ops/{id}", a.consoleOp)
	mux.HandleFunc("GET /console/providers", a.consoleProviders)
	mux.HandleFunc("POST /console/ops/{id}/{action}", a.consoleAction)
	mux.HandleFunc("POST /console/providers/{provider}/{account}/{action}", a.consolePause)
	mux.HandleFunc("GET /console/runs", a.consoleRuns)
	mux.HandleFunc("GET /console/runs/{id}", a.consoleRun)
	mux.HandleFunc("POST /console/runs/{id}/cancel", a.consoleRunAction)
	mux.HandleFunc("POST /console/runs/{id}/gates/{step}/{action}", a.consoleRunAction)
	return mux
}

// page is what every console page renders with.
type page struct {
	Title  string
	Token  Token
	CanAct bool
	CSRF   string
	Flash  string
	Data   any
}

func (a *API) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	tok, _ := TokenFrom(r.Context())
	p := page{Title: title, Token: tok, CanAct: tok.Scope == ScopeWrite, CSRF: consoleCSRF(r, tok), Flash: r.URL.Query().Get("flash"), Data: data}
	var b bytes.Buffer
	if err := consoleTmpl.ExecuteTemplate(&b, name, p); err != nil {
		a.cfg.Logger.Error("console: render", zap.String("page", name), zap.Error(err))
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

// listData is the operations page.
type listData struct {
	Query   url.Values
	Ops     []*opstore.Operation
	Next    string
	Error   string
	States  []ops.State
	Kinds   []string
	Partial bool
}

func (a *API) consoleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := listData{Query: q, States: ops.States, Kinds: tasks.Kinds(), Partial: q.Get("partial") == "rows"}
	f := opstore.Filter{State: opstore.State(q.Get("state")), Kind: q.Get("kind"), Provider: q.Get("provider"), After: q.Get("cursor"), Limit: 50}
	var labels []string
	if l := strings.TrimSpace(q.Get("label")); l != "" {
		labels = strings.Fields(l)
	}
	since, until := q.Get("since"), q.Get("until")
	if field, err := f.SetSearch(labels, strings.TrimSpace(q.Get("resource")), strings.TrimSpace(q.Get("actor")), since, until); err != nil {
		d.Error = field + ": " + err.Error()
	} else if f.State != "" && !f.State.Valid() {
		d.Error = "state: unknown state"
	} else {
		opsList, next, err := a.cfg.Store.ListPage(r.Context(), f)
		if err != nil {
			d.Error = "the operation store is unavailable; try again"
		}
		for _, op := range opsList {
			tasks.NoteUnserved(r.Context(), a.cfg.Served, op, time.Now())
		}
		d.Ops, d.Next = opsList, next
	}
	name := "list.tmpl"
	if d.Partial {
		name = "rows"
	}
	a.render(w, r, name, "Operations", d)
}

// opData is an operation's page.
type opData struct {
	Op       *opstore.Operation
	View     ops.Operation
	Timeline []ops.TimelineEvent
	Webhooks []ops.TimelineEvent
	Cancel   bool
	Partial  bool
	// Own: the signed-in token submitted it (and cannot approve it).
	Own bool
}

func (a *API) consoleOp(w http.ResponseWriter, r *http.Request) {
	op, err := a.cfg.Store.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, opstore.ErrNotFound) {
		http.Error(w, "no such operation (unknown id, or expired after its retention)", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "the operation store is unavailable; try again", http.StatusServiceUnavailable)
		return
	}
	tasks.NoteUnserved(r.Context(), a.cfg.Served, op, time.Now())
	tl, _ := a.cfg.Store.Timeline(r.Context(), op.ID)
	d := opData{Op: op, View: op.View(), Timeline: tl, Partial: r.URL.Query().Get("partial") == "detail",
		Cancel: !op.State.Terminal() && (tasks.Cancelable(op.Kind, op.Provider) || op.State == opstore.StatePendingApproval)}
	if tok, ok := TokenFrom(r.Context()); ok && op.SubmittedBy != nil {
		d.Own = op.SubmittedBy.Via == ops.ViaAPI && op.SubmittedBy.Name == tok.Name
	}
	for _, ev := range tl {
		if ev.Type == ops.TimelineWebhook {
			d.Webhooks = append(d.Webhooks, ev)
		}
	}
	name := "op.tmpl"
	if d.Partial {
		name = "detail"
	}
	a.render(w, r, name, "Operation "+op.ID, d)
}

func (a *API) consoleProviders(w http.ResponseWriter, r *http.Request) {
	var accounts []AccountInfo
	if a.cfg.Accounts != nil {
		accounts = a.cfg.Accounts(r.Context())
	}
	a.render(w, r, "providers.tmpl", "Providers", accounts)
}

// checkForm reads a console form and checks its CSRF token. False means
// it answered.
func (a *API) checkForm(w http.ResponseWriter, r *http.Request) (Token, bool) {
	tok, _ := TokenFrom(r.Context())
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return tok, false
	}
	if want := consoleCSRF(r, tok); want != "" && !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(want)) {
		a.cfg.Logger.Warn("console: write refused: missing or wrong CSRF token", zap.String("token", tok.Name), zap.String("path", r.URL.Path))
		http.Error(w, "this form is stale or was not sent by the console; reload the page", http.StatusForbidden)
		return tok, false
	}
	return tok, true
}

func (a *API) consoleAction(w http.ResponseWriter, r *http.Request) {
	tok, ok := a.checkForm(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	by := &ops.Actor{Name: tok.Name, Via: ops.ViaAPI, Authenticated: true}
	op, err := a.cfg.Store.Get(ctx, r.PathValue("id"))
	if err != nil {
		http.Error(w, "no such operation", http.StatusNotFound)
		return
	}
	back := func(msg string) {
		http.Redirect(w, r, "/console/ops/"+url.PathEscape(op.ID)+"?flash="+url.QueryEscape(msg), http.StatusSeeOther)
	}
	log := a.cfg.Logger.With(zap.String("operation_id", op.ID), zap.String("kind", op.Kind), zap.String("resource", op.Resource), zap.Stringer("by", by))
	switch action := r.PathValue("action"); action {
	case "approve":
		_, err := tasks.Approve(ctx, a.cfg.Store, a.cfg.Enqueuer, op.ID, by)
		if err != nil {
			back("not approved: " + err.Error())
			return
		}
		log.Info("audit: operation approved (console)")
		back("approved: it launches now")
	case "reject", "cancel":
		if op.State.Terminal() {
			back("it already ended " + string(op.State))
			return
		}
		if action == "reject" && op.State != opstore.StatePendingApproval {
			back("not rejected: it does not wait for an approval")
			return
		}
		if action == "cancel" && !tasks.Cancelable(op.Kind, op.Provider) && op.State != opstore.StatePendingApproval {
			back(op.Kind + " on " + op.Provider + " cannot be canceled")
			return
		}
		if err := a.requestCancel(ctx, op, tasks.CancelPayload{OperationID: op.ID, Reject: action == "reject", By: by}); err != nil {
			back("the request could not be queued; try again")
			return
		}
		log.Info("audit: " + action + " requested (console)")
		back(action + " requested")
	case "replay":
		if op.Handle == "" && !op.State.Terminal() {
			back("it has no events yet")
			return
		}
		b, _ := json.Marshal(tasks.ReplayPayload{OperationID: op.ID, Nonce: uuid.NewString()})
		queue := a.cfg.WebhookQueue
		if queue == "" {
			queue = "default"
		}
		if _, err := a.cfg.Enqueuer.EnqueueContext(ctx, asynq.NewTask(tasks.TypeWebhookReplay, b), asynq.Queue(queue), asynq.MaxRetry(5)); err != nil {
			back("the replay could not be queued; try again")
			return
		}
		log.Info("audit: webhook replay requested (console)")
		back("its events are sent again where they were not delivered")
	default:
		http.NotFound(w, r)
	}
}

func (a *API) consolePause(w http.ResponseWriter, r *http.Request) {
	tok, ok := a.checkForm(w, r)
	if !ok {
		return
	}
	provider, account, action := r.PathValue("provider"), r.PathValue("account"), r.PathValue("action")
	if a.cfg.Pauses == nil || !slices.Contains(ops.Providers(), provider) || !accountNameRe.MatchString(account) || (action != "pause" && action != "resume") {
		http.NotFound(w, r)
		return
	}
	var err error
	if action == "pause" {
		err = a.cfg.Pauses.Pause(r.Context(), provider, account, "token "+tok.Name)
	} else {
		_, err = a.cfg.Pauses.Resume(r.Context(), provider, account)
	}
	msg := fmt.Sprintf("%s/%s: %sd", provider, account, action)
	if err != nil {
		msg = "the change could not be saved; try again"
	} else {
		a.cfg.Logger.Info("audit: provider account "+action+"d (console)", zap.String("provider", provider), zap.String("account", account), zap.String("by", tok.Name))
	}
	http.Redirect(w, r, "/console/providers?flash="+url.QueryEscape(msg), http.StatusSeeOther)
}

func (a *API) consoleRuns(w http.ResponseWriter, r *http.Request) {
	var runs []*runbook.Run
	if a.cfg.Runbooks != nil {
		got, err := a.cfg.Runbooks.List(r.Context(), 100)
		if err != nil {
			http.Error(w, "the store is unavailable; try again", http.StatusServiceUnavailable)
			return
		}
		runs = got
	}
	a.render(w, r, "runs.tmpl", "Runbook runs", runs)
}

func (a *API) consoleRun(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Runbooks == nil {
		http.NotFound(w, r)
		return
	}
	run, err := a.cfg.Runbooks.View(r.Context(), r.PathValue("id"))
	if errors.Is(err, opstore.ErrNotFound) {
		http.Error(w, "no such run (unknown id, or expired after its retention)", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "the store is unavailable; try again", http.StatusServiceUnavailable)
		return
	}
	name := "run.tmpl"
	if r.URL.Query().Get("partial") == "detail" {
		name = "rundetail"
	}
	page := runPage{Run: run}
	if g, err := a.cfg.Runbooks.Graph(run); err == nil {
		page.Graph = g // no graph for a run whose runbook is no longer configured
	}
	page.Timeline, _ = a.cfg.Runbooks.Timeline(r.Context(), run.ID)
	a.render(w, r, name, "Run "+run.ID, page)
}

// runPage is what the run page shows: the run and its step graph.
type runPage struct {
	*runbook.Run
	Graph    *runbook.Graph
	Timeline []runbook.RunEvent
}

func (a *API) consoleRunAction(w http.ResponseWriter, r *http.Request) {
	tok, ok := a.checkForm(w, r)
	if !ok {
		return
	}
	if a.cfg.Runbooks == nil {
		http.NotFound(w, r)
		return
	}
	id := r.PathValue("id")
	by := &ops.Actor{Name: tok.Name, Via: ops.ViaAPI, Authenticated: true}
	var err error
	msg := ""
	switch step, action := r.PathValue("step"), r.PathValue("action"); {
	case step == "":
		_, err = a.cfg.Runbooks.Cancel(r.Context(), id, r.PostForm.Get("compensate") != "false", by)
		msg = "cancel requested"
	case action == "continue" || action == "abort":
		_, err = a.cfg.Runbooks.Decide(r.Context(), id, step, action == "continue", by)
		msg = step + ": " + action
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		msg = "not done: " + err.Error()
	}
	http.Redirect(w, r, "/console/runs/"+url.PathEscape(id)+"?flash="+url.QueryEscape(msg), http.StatusSeeOther)
}
