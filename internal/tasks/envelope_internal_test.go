package tasks

import (
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
