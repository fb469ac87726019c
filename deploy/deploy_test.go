package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/opsworker/opsworker/internal/config"
	"github.com/opsworker/opsworker/internal/metrics"
	"github.com/opsworker/opsworker/internal/opstore"
)

func docs(t *testing.T, path string) map[string]map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	out := map[string]map[string]any{}
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		out[d["kind"].(string)] = d
	}
	return out
}

func dig(m any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m = m.(map[string]any)[k]
		case int:
			m = m.([]any)[k]
		}
	}
	return m
}

func TestKubernetesManifests(t *testing.T) {
	k := docs(t, "kubernetes/opsworker.yaml")
	for _, kind := range []string{"ConfigMap", "Secret", "Deployment", "PodDisruptionBudget", "Service"} {
		require.Contains(t, k, kind)
	}
	dep := k["Deployment"]
	assert.GreaterOrEqual(t, dig(dep, "spec", "replicas"), 2, "several replicas")
	c := dig(dep, "spec", "template", "spec", "containers", 0)
	assert.Equal(t, "/healthz", dig(c, "livenessProbe", "httpGet", "path"))
	assert.Equal(t, "/readyz", dig(c, "readinessProbe", "httpGet", "path"))
	assert.NotNil(t, dig(c, "resources", "requests", "cpu"))
	assert.NotNil(t, dig(c, "resources", "requests", "memory"))
	assert.Equal(t, false, dig(c, "securityContext", "allowPrivilegeEscalation"))

	// The shipped config is valid, and the grace period outlasts its
	// shutdown bound.
	env := map[string]string{"OPSWORKER_REDIS_URL": "redis://r:6379/0", "UCDN_TOKEN": "t",
		"OPSWORKER_WEBHOOK_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "OPSWORKER_API_TOKEN": "api-token-0123456789"}
	cfg, err := config.Parse([]byte(dig(k["ConfigMap"], "data", "config.yaml").(string)), func(n string) (string, bool) { v, ok := env[n]; return v, ok })
	require.NoError(t, err)
	grace := time.Duration(dig(dep, "spec", "template", "spec", "terminationGracePeriodSeconds").(int)) * time.Second
	assert.Greater(t, grace, cfg.Worker.ShutdownTimeout)
	for name := range dig(k["Secret"], "stringData").(map[string]any) {
		assert.Contains(t, env, name, "every secret is used by the config")
	}
}

func TestDockerfileAndUnit(t *testing.T) {
	df, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	assert.Contains(t, string(df), "CGO_ENABLED=0", "static binary")
	assert.Regexp(t, `(?m)^USER nonroot`, string(df))
	assert.Equal(t, 2, strings.Count(string(df), "FROM "), "multi-stage")
	assert.Equal(t, 2, strings.Count(string(df), "-X github.com/opsworker/opsworker/internal/buildinfo.version=${VERSION}"),
		"both binaries carry the version (--version, opsworker_build_info)")
	for _, label := range []string{"title", "version", "revision", "licenses", "source"} {
		assert.Contains(t, string(df), "org.opencontainers.image."+label+"=", "OCI label %s", label)
	}
	ignore, err := os.ReadFile("../.dockerignore")
	require.NoError(t, err)
	for _, want := range []string{".git", "bin"} {
		assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(want)+`$`, string(ignore), "the build context leaves out %s", want)
	}

	unit, err := os.ReadFile("opsworker.service")
	require.NoError(t, err)
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=", "EnvironmentFile="} {
		assert.Contains(t, string(unit), want)
	}
	m := regexp.MustCompile(`TimeoutStopSec=(\d+)s`).FindStringSubmatch(string(unit))
	require.NotNil(t, m)
	def := config.Default()
	stop, _ := time.ParseDuration(m[1] + "s")
	assert.Greater(t, stop, def.Worker.ShutdownTimeout)
}

// inFlightStub answers as a store with nothing in flight.
type inFlightStub struct{}

func (inFlightStub) InFlight(_ context.Context, kinds []string) ([]opstore.KindInFlight, error) {
	out := make([]opstore.KindInFlight, len(kinds))
	for i, k := range kinds {
		out[i] = opstore.KindInFlight{Kind: k}
	}
	return out, nil
}

// clusterGauges are gauges read from Redis that are not named by the
// opsworker_queue_ or opsworker_provider_account_ prefixes: every replica
// exports the same values.
var clusterGauges = map[string]bool{"opsworker_operations_in_flight": true, "opsworker_operation_oldest_running_seconds": true}

// exportedMetrics names every metric family the worker exports.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	mx := metrics.New(nil)
	// Labelled metrics appear once used.
	op := &opstore.Operation{Kind: "cdn:purge", Provider: "ucdn", State: opstore.StateSucceeded, CreatedAt: time.Now()}
	mx.OperationStarted(op)
	mx.OperationFinished(op)
	mx.ProviderCall("ucdn", "purge", 200, time.Millisecond)
	mx.WebhookAttempt("delivered", 1)
	mx.ProviderHeld("ucdn", "default", "rate_limit")
	// The operations in flight are read from Redis: a stand-in store.
	mx.WatchOperations(inFlightStub{})
	families, err := mx.Registry.Gather()
	require.NoError(t, err)
	// The queue collector needs an Inspector; its names are fixed.
	known := map[string]bool{"opsworker_queue_tasks": true, "opsworker_queue_latency_seconds": true, "opsworker_queue_scrape_ok": true}
	// So does the account collector (it reads Redis).
	for _, g := range []string{"circuit_open", "paused", "in_flight", "max_in_flight"} {
		known["opsworker_provider_account_"+g] = true
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "opsworker_") {
			known[f.GetName()] = true
		}
	}
	return known
}

// Every metric the worker exports is in the README's metrics table, and
// the build is named by opsworker_build_info.
func TestMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	for name := range exportedMetrics(t) {
		short := strings.TrimPrefix(name, "opsworker_provider_account_")
		assert.True(t, strings.Contains(string(readme), "`"+name+"`") || strings.Contains(string(readme), "`…_"+short+"`"),
			"%s is not in the README's metrics table", name)
	}
	families, err := metrics.New(nil).Registry.Gather()
	require.NoError(t, err)
	found := false
	for _, f := range families {
		if f.GetName() == "opsworker_build_info" {
			found = true
			require.Len(t, f.GetMetric(), 1)
			assert.Equal(t, 1.0, f.GetMetric()[0].GetGauge().GetValue())
			labels := map[string]string{}
			for _, l := range f.GetMetric()[0].GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			assert.NotEmpty(t, labels["version"])
			assert.NotEmpty(t, labels["goversion"])
		}
	}
	assert.True(t, found, "opsworker_build_info is exported")
}

// Every metric the dashboard queries exists in the worker's registry.
func TestGrafanaDashboardUsesRealMetrics(t *testing.T) {
	data, err := os.ReadFile("grafana/opsworker-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(data, &dash))
	require.NotEmpty(t, dash.Panels)
	known := exportedMetrics(t)
	re := regexp.MustCompile(`opsworker_[a-z_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			// Every replica exports the cluster's queues, accounts and
			// operations in flight: a sum of them counts each task once per
			// replica.
			// (The held calls are each replica's own counter: they add up.)
			for _, name := range re.FindAllString(tg.Expr, -1) {
				if (strings.HasPrefix(name, "opsworker_queue_") || strings.HasPrefix(name, "opsworker_provider_account_") || clusterGauges[name]) && !strings.HasSuffix(name, "_total") {
					assert.NotContains(t, tg.Expr, "sum", "panel %q adds up a gauge every replica exports alike: use max", p.Title)
					assert.Contains(t, tg.Expr, "max", "panel %q: aggregate %s with max", p.Title, name)
				}
				base := strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count")
				assert.True(t, known[base], "panel %q: unknown metric %s", p.Title, name)
			}
		}
	}
}
