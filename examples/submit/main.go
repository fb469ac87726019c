// Command submit purges files from a UCDN zone through a worker's HTTP
// API and waits for the purge to end, as another Go service would: it
// imports only opsworker's public packages, client and ops.
//
//	OPSWORKER_TOKEN=... go run ./examples/submit -url http://127.0.0.1:8080 -zone demo /a.png /b.css
//
// The token is a write token from the worker's http.tokens. It exits 0
// when the purge succeeded, 1 when it ended otherwise, 2 on bad input.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/opsworker/opsworker/client"
	"github.com/opsworker/opsworker/ops"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "the worker's HTTP API (http.listen)")
	zone := flag.String("zone", "demo", "the UCDN zone")
	key := flag.String("key", "", "idempotency key: the same key submits once")
	timeout := flag.Duration("timeout", 10*time.Minute, "how long to wait")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	c, err := client.New(*url, os.Getenv("OPSWORKER_TOKEN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "submit:", err, "(set OPSWORKER_TOKEN)")
		os.Exit(2)
	}
	p := &ops.UCDNPurgeParams{ZoneName: *zone, ZoneType: ops.ZoneTypeObjects, Files: flag.Args()}
	var opts []client.SubmitOption
	if *key != "" {
		opts = append(opts, client.IdempotencyKey(*key))
	}
	op, resp, err := c.Submit(ctx, p, opts...)
	var ve *ops.ValidationError
	var prob *client.Problem
	switch {
	case errors.As(err, &ve), errors.As(err, &prob) && prob.Status == 400:
		fmt.Fprintln(os.Stderr, "submit:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "submit:", err)
		os.Exit(1)
	}
	if resp.Replayed {
		fmt.Fprintln(os.Stderr, "submit: the key names an earlier operation; following it")
	}
	op, err = c.Wait(ctx, op.ID, client.WaitOptions{OnChange: func(o *ops.Operation) {
		fmt.Fprintf(os.Stderr, "%s  %s %s\n", time.Now().Format("15:04:05"), o.ID, o.State)
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "submit:", err)
		os.Exit(1)
	}
	fmt.Println(op.ID, op.State)
	if op.State != ops.StateSucceeded {
		os.Exit(1)
	}
}
