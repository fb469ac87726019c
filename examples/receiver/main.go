// Command receiver is a minimal opsworker webhook receiver: it verifies
// each request's Standard Webhooks signature and timestamp (5 min
// tolerance), drops duplicates by webhook-id (opsworker delivers at least
// once), and prints the events.
//
//	OPSWORKER_WEBHOOK_SECRET=whsec_... go run ./examples/receiver -listen 127.0.0.1:9000
//
// Point a subscription or a --callback at http://127.0.0.1:9000/hook (and
// allow loopback in webhooks.ssrf.allow_cidrs, as config/dev.yaml does).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opsworker/opsworker/webhookverify"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	flag.Parse()
	var secrets []webhookverify.Secret
	for _, s := range strings.Fields(os.Getenv("OPSWORKER_WEBHOOK_SECRET")) {
		k, err := webhookverify.ParseSecret(s)
		if err != nil {
			log.Fatalf("OPSWORKER_WEBHOOK_SECRET: %v", err)
		}
		secrets = append(secrets, k)
	}
	if len(secrets) == 0 {
		log.Fatal("set OPSWORKER_WEBHOOK_SECRET to the worker's webhooks.secrets value(s), space-separated")
	}
	http.Handle("POST /hook", newHandler(secrets, os.Stdout))
	log.Printf("listening on http://%s/hook", *listen)
	srv := &http.Server{Addr: *listen, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

type handler struct {
	secrets []webhookverify.Secret
	out     io.Writer
	mu      sync.Mutex
	seen    map[string]time.Time
}

func newHandler(secrets []webhookverify.Secret, out io.Writer) *handler {
	return &handler{secrets: secrets, out: out, seen: map[string]time.Time{}}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	if err := webhookverify.Verify(r.Header, body, webhookverify.DefaultTolerance, time.Now(), h.secrets...); err != nil {
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	id := r.Header.Get(webhookverify.HeaderID)
	h.mu.Lock()
	_, dup := h.seen[id]
	h.seen[id] = time.Now()
	for k, t := range h.seen { // forget ids older than the tolerance window allows replays
		if time.Since(t) > time.Hour {
			delete(h.seen, k)
		}
	}
	h.mu.Unlock()
	if dup {
		w.WriteHeader(http.StatusOK) // already handled: acknowledge, do nothing
		return
	}
	var ev struct {
		Type string `json:"type"`
		Data struct {
			ID, Kind, Provider, State, Handle string
			LastError                         string `json:"last_error"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(h.out, "%s %s %s on %s: %s %s %s\n", time.Now().Format(time.RFC3339), ev.Type, ev.Data.Kind, ev.Data.Provider, ev.Data.ID, ev.Data.Handle, ev.Data.LastError)
	w.WriteHeader(http.StatusNoContent)
}
