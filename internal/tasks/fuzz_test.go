package tasks_test

import (
	"encoding/json"
	"testing"

	"github.com/opsworker/opsworker/internal/tasks"
)

// FuzzEnvelope: any payload a raw asynq client may send is decoded and
// validated for every kind without panicking, and a valid one has a
// stable fingerprint.
func FuzzEnvelope(f *testing.F) {
	f.Add([]byte(`{"provider":"ucdn","params":{"zone_name":"demo","zone_type":"objects","files":["/a.png"]}}`))
	f.Add([]byte(`{"provider":"leaseweb","params":{"server_id":"1","operating_system_id":"UBUNTU_22_04_64BIT","partitions":[{"filesystem":"ext4","mountpoint":"/","size":"*"}]}}`))
	f.Add([]byte(`{"provider":"ionos","params":{"distribution_id":"9ba15778-16c4-543c-8775-e52acf4853f5","domain":"a.example.com","routing_rules":[{"scheme":"https","prefix":"/","upstream":{"host":"o.example.com"}}]}}`))
	f.Add([]byte(`{"provider":"edgio","params":{"media_path":["/a","/b/*"],"media_type":"adn"}}`))
	f.Add([]byte(`{"provider":"leaseweb","params":{"asg_id":"fb769dab-3daa-47e4-89ed-06a4b6499176","starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-01-02T00:00:00Z"}}`))
	f.Add([]byte("{\"provider\":\"ucdn\",\"params\":\"\xff\xfe\"}"))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		env, err := tasks.DecodeEnvelope(payload)
		if err != nil {
			return
		}
		env.Normalize()
		for _, kind := range tasks.Kinds() {
			if env.Validate(kind) == nil {
				if tasks.Fingerprint(&env, kind) != tasks.Fingerprint(&env, kind) {
					t.Fatalf("unstable fingerprint for %s", kind)
				}
				var v any
				if json.Unmarshal(env.Params, &v) != nil {
					t.Fatalf("valid %s envelope with params that are not JSON", kind)
				}
			}
		}
	})
}

// FuzzParams: every kind's params validation survives any JSON.
func FuzzParams(f *testing.F) {
	for _, s := range []string{`{}`, `{"files":["/a"]}`, `{"partitions":[{"size":"*"},{"size":-1}]}`, `{"raid":{"level":10,"numberOfDisks":3}}`,
		`{"routing_rules":[{"upstream":{"geo_restrictions":{"block_list":["x"],"allow_list":["DE"]}}}]}`, `{"ssh_keys":"ssh-ed25519 AAAA a\nb"}`, `null`, `1e999`} {
		f.Add(s)
	}
	specs := tasks.Specs()
	f.Fuzz(func(t *testing.T, params string) {
		for _, sp := range specs {
			_ = sp.Validate(json.RawMessage(params))
		}
	})
}
