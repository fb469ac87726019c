package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/opsworker/opsworker/client"
	"github.com/opsworker/opsworker/ops"
)

// The examples run against a worker started in this process; use your
// worker's http.listen address and a token from its http.tokens.
func exampleWorker() (string, func()) {
	base, stop, err := runWorker()
	if err != nil {
		log.Fatal(err)
	}
	return base, stop
}

func ExampleClient_Submit() {
	base, stop := exampleWorker()
	defer stop()
	c, err := client.New(base, writeTok)
	if err != nil {
		log.Fatal(err)
	}
	p := &ops.UCDNPurgeParams{ZoneName: "shop", ZoneType: ops.ZoneTypeObjects, Files: []string{"/index.html"}}
	op, resp, err := c.Submit(context.Background(), p, client.IdempotencyKey("release-2026.12.1"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(op.Kind, op.State, resp.Replayed)
	// Output: cdn:purge queued false
}

func ExampleClient_Wait() {
	base, stop := exampleWorker()
	defer stop()
	c, _ := client.New(base, writeTok)
	ctx := context.Background()
	op, _, err := c.Submit(ctx, &ops.UCDNPurgeParams{ZoneName: "shop", ZoneType: ops.ZoneTypeObjects, Files: []string{"/a.css"}})
	if err != nil {
		log.Fatal(err)
	}
	done, err := c.Wait(ctx, op.ID, client.WaitOptions{Interval: 20 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(done.State)
	// Output: succeeded
}

func ExampleClient_Get() {
	base, stop := exampleWorker()
	defer stop()
	c, _ := client.New(base, writeTok)
	_, _, err := c.Get(context.Background(), "no-such-operation")
	fmt.Println(err)
	// Output: opsworker: 404 Not Found: no such operation (unknown id, or expired after its retention)
}

func ExampleClient_All() {
	base, stop := exampleWorker()
	defer stop()
	c, _ := client.New(base, writeTok)
	ctx := context.Background()
	for _, f := range []string{"/a", "/b", "/c"} {
		if _, _, err := c.Submit(ctx, &ops.UCDNPurgeParams{ZoneName: "shop", ZoneType: ops.ZoneTypeObjects, Files: []string{f}}); err != nil {
			log.Fatal(err)
		}
	}
	n := 0
	for _, err := range c.All(ctx, client.ListOptions{Kind: ops.KindCDNPurge, Limit: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Println(n, "operations")
	// Output: 3 operations
}

func ExampleClient_Cancel() {
	base, stop := exampleWorker()
	defer stop()
	c, _ := client.New(base, writeTok)
	// Server jobs, and UCDN purges that have not started, can be
	// canceled; an Edgio purge cannot.
	op, _, _ := c.Submit(context.Background(), &ops.EdgioPurgeParams{MediaPath: ops.StringList{"/a.png"}})
	_, _, err := c.Cancel(context.Background(), op.ID, false)
	fmt.Println(err)
	// Output: opsworker: 400 Bad Request: cdn:purge on edgio cannot be canceled
}
