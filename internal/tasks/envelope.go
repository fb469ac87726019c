package tasks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Fingerprint identifies the request (kind, provider, account, params,
// callback) independent of JSON formatting and key order. Secret params
// are left out: an idempotency key answered differently for a different
// password would tell whoever can reuse the key whether a guess is right.
func Fingerprint(e *Envelope, kind string) string {
	raw := e.Params
	if spec, err := LookupSpec(kind, e.Provider); err == nil {
		if c, err := spec.canonicalParams(raw); err == nil {
			raw = withoutKeys(c, spec.SecretParams())
		}
	}
	return fingerprint(e, kind, raw)
}

// fingerprint is Fingerprint over params already re-encoded and without
// their secrets.
func fingerprint(e *Envelope, kind string, raw json.RawMessage) string {
	var params any
	canon := []byte(raw)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&params) == nil {
		canon, _ = json.Marshal(params) // map keys come out sorted
	}
	h := sha256.New()
	for _, s := range []string{kind, e.Provider, e.Account, string(canon), e.CallbackURL} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// prepare validates the envelope for kind and returns its params encoded
// again from the kind's params type, and the kind's secret params keys.
func prepare(e *Envelope, kind string) (json.RawMessage, []string, error) {
	if err := e.Validate(kind); err != nil {
		return nil, nil, err
	}
	spec, err := LookupSpec(kind, e.Provider)
	if err != nil {
		return nil, nil, err
	}
	params, err := spec.canonicalParams(e.Params)
	if err != nil {
		return nil, nil, err
	}
	return params, spec.SecretParams(), nil
}
