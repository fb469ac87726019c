package ops_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opsworker/opsworker/ops"
)

// A typed params value says what it runs, checks itself, and goes into
// the envelope every kind shares.
func ExampleParams() {
	p := &ops.UCDNPurgeParams{ZoneName: "shop", ZoneType: ops.ZoneTypeObjects, Files: []string{"/index.html"}}
	if err := p.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	raw, _ := json.Marshal(p)
	env := ops.Envelope{Provider: p.Provider(), Params: raw, IdempotencyKey: "deploy-2026-12-01"}
	env.Normalize()
	fmt.Println(p.Kind(), env.Validate(p.Kind()))
	// Output: cdn:purge <nil>
}

// A bad value is refused naming the field, never quoting a secret.
func ExampleValidationError() {
	p := &ops.ServerInstallParams{ServerID: "web01", OperatingSystemID: "UBUNTU_22_04_64BIT"}
	var ve *ops.ValidationError
	if err := p.Validate(); errors.As(err, &ve) {
		fmt.Println(ve.Field)
	}
	// Output: params.server_id
}

// Keys are matched exactly: another spelling of a documented key is an
// unknown field.
func ExampleDecodeParams() {
	var p ops.ServerInstallParams
	err := ops.DecodeParams(json.RawMessage(`{"server_id":"1","PASSWORD":"x"}`), &p)
	fmt.Println(err)
	// Output: params.PASSWORD: unknown field
}

// An operation's result decodes into its kind's result type.
func ExampleOperation_DecodeResult() {
	op := ops.Operation{Kind: ops.KindInstanceSnapshot, Provider: ops.ProviderLeaseweb,
		Result: json.RawMessage(`{"snapshot_id":"95b0ae2e","name":"before-upgrade","state":"READY","created":"2026-12-01T10:00:00Z"}`)}
	res, err := op.DecodeResult()
	if err != nil {
		fmt.Println(err)
		return
	}
	snap := res.(*ops.SnapshotResult)
	fmt.Println(snap.SnapshotID, snap.State)
	// Output: 95b0ae2e READY
}
