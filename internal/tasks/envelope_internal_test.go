package tasks

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDecodeEnvelopeNamesTheField(t *testing.T) {
	for payload, want := range map[string]string{
		"{\"provider\":\"ucdn\",\"params\":{\"zone_name\":\"\xff\"}}": "malformed payload: params.zone_name: invalid UTF-8",
		`{"provider":"ucdn","Provider":"x"}`:                          `malformed payload: unknown field "Provider"`,
		`{"provider":"ucdn","provider":"x"}`:                          "malformed payload: provider: duplicate key",
		`{"provider":7}`:                                              "malformed payload: provider: invalid value",
		`{"provider":"ucdn"}}`:                                        "malformed payload",
		`[1]`:                                                         "malformed payload",
		"{\"provider\":\"ucdn\",\"callback_url\":\"https://h/\xff\"}": "malformed payload: callback_url: invalid UTF-8",
	} {
		_, err := DecodeEnvelope([]byte(payload))
		if assert.Error(t, err, payload) {
			assert.Contains(t, err.Error(), want, payload)
		}
	}
}

// FuzzCanonicalParams: params that validate are stored as their type
// encodes them; that encoding validates too and is a fixed point, and its
// secret values are all removed by RemoveSecrets-style replacement.
func FuzzCanonicalParams(f *testing.F) {
	for _, s := range []string{`{"zone_name":"demo","zone_type":"objects","files":["/a"]}`,
		`{"server_id":"1","operating_system_id":"UBUNTU_22_04_64BIT","password":"abcdefgh","ssh_keys":"ssh-ed25519 AAAA a"}`,
		`{"server_id":"1","post_install_script":"#!/bin/sh\necho"}`, `{"media_path":"/a\n/b"}`, `{"PASSWORD":"x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, params string) {
		for _, sp := range Specs() {
			if sp.Validate(json.RawMessage(params)) != nil {
				continue
			}
			c, err := sp.canonicalParams(json.RawMessage(params))
			if err != nil {
				t.Fatalf("%s/%s: valid params do not re-encode: %v", sp.Kind, sp.Provider, err)
			}
			if err := sp.Validate(c); err != nil {
				t.Fatalf("%s/%s: re-encoded params %s do not validate: %v", sp.Kind, sp.Provider, c, err)
			}
			c2, err := sp.canonicalParams(c)
			if err != nil || string(c2) != string(c) {
				t.Fatalf("%s/%s: re-encoding is not stable: %s then %s (%v)", sp.Kind, sp.Provider, c, c2, err)
			}
		}
	})
}
