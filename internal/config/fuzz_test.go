package config_test

import (
	"os"
	"testing"

	"github.com/opsworker/opsworker/internal/config"
)

// FuzzParse: config loading never panics; what it accepts validates.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../../config/dev.yaml", "../../config/example.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("redis:\n  embedded: true\nworker:\n  queues: [1, 2]\n"))
	f.Add([]byte("schedules:\n  - {name: a, spec: '@every 1s', task_type: cdn:purge, params: {}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	env := func(string) (string, bool) { return "value-0123456789abcdef", true }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, env)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config Validate rejects: %v", verr)
			}
		}
	})
}
