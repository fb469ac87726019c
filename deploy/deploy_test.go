package deploy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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
	return parseDocs(t, data)
}

// parseDocs maps each document's kind to it; a kind appears once.
func parseDocs(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	out := map[string]map[string]any{}
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if d == nil {
			continue
		}
		kind, _ := d["kind"].(string) // "" for a rules file
		require.NotContains(t, out, kind, "one %s", kind)
		out[kind] = d
	}
	return out
}

// dig follows path (keys and indexes) into m; nil where it ends early.
func dig(m any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			mm, ok := m.(map[string]any)
			if !ok {
				return nil
			}
			m = mm[k]
		case int:
			s, ok := m.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			m = s[k]
		}
	}
	return m
}

const (
	kustomizeDir = "kubernetes"
	baseDir      = kustomizeDir + "/base"
	rulesFile    = "prometheus/opsworker-rules.yaml"
	rulesTests   = "prometheus/opsworker-rules.test.yaml"
)

var overlays = []string{"production", "dev"}

// secretEnv is the test's environment for the shipped config: valid
// values for the keys of the Secret opsworker-secrets.
var secretEnv = map[string]string{"OPSWORKER_REDIS_URL": "redis://r:6379/0", "UCDN_TOKEN": "t",
	"OPSWORKER_WEBHOOK_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "OPSWORKER_API_TOKEN": "api-token-0123456789"}

// exampleSecrets reads base/secret.example.env: key -> placeholder.
func exampleSecrets(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(baseDir + "/secret.example.env")
	require.NoError(t, err)
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "secret.example.env: %q is not KEY=value", line)
		out[k] = v
	}
	return out
}

// The base, read without kustomize: every resource the layout promises,
// the Deployment's probes, limits and security, the config it ships and
// the Secret it only names.
func TestKubernetesManifests(t *testing.T) {
	kz := docs(t, baseDir+"/kustomization.yaml")["Kustomization"]
	k := map[string]map[string]any{}
	for _, r := range dig(kz, "resources").([]any) {
		for kind, d := range docs(t, baseDir+"/"+r.(string)) {
			require.NotContains(t, k, kind)
			k[kind] = d
		}
	}
	for _, kind := range []string{"ServiceAccount", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"} {
		require.Contains(t, k, kind)
	}
	assert.NotContains(t, k, "Secret", "the base names the Secret; the overlays or a secret manager make it")
	labels := dig(kz, "labels", 0, "pairs").(map[string]any)
	assert.Equal(t, "opsworker", labels["app.kubernetes.io/name"])
	assert.Equal(t, "opsworker", labels["app.kubernetes.io/part-of"])

	dep := k["Deployment"]
	pod := dig(dep, "spec", "template", "spec")
	c := dig(pod, "containers", 0)
	assert.Equal(t, "/healthz", dig(c, "livenessProbe", "httpGet", "path"))
	assert.Equal(t, "/readyz", dig(c, "readinessProbe", "httpGet", "path"))
	assert.NotNil(t, dig(c, "resources", "requests", "cpu"))
	assert.NotNil(t, dig(c, "resources", "requests", "memory"))
	assert.NotNil(t, dig(c, "resources", "limits", "memory"))
	assert.Equal(t, false, dig(c, "securityContext", "allowPrivilegeEscalation"))
	assert.Equal(t, true, dig(c, "securityContext", "readOnlyRootFilesystem"))
	assert.Equal(t, true, dig(pod, "securityContext", "runAsNonRoot"))
	assert.Equal(t, 8080, dig(c, "ports", 0, "containerPort"))
	assert.Equal(t, "opsworker-secrets", dig(c, "envFrom", 0, "secretRef", "name"))

	// No Kubernetes API token in the pod.
	assert.Equal(t, dig(k["ServiceAccount"], "metadata", "name"), dig(pod, "serviceAccountName"))
	assert.Equal(t, false, dig(k["ServiceAccount"], "automountServiceAccountToken"))
	assert.Equal(t, false, dig(pod, "automountServiceAccountToken"))

	// Spread over zones and nodes, never blocking scheduling.
	keys := map[string]bool{}
	for _, tsc := range dig(pod, "topologySpreadConstraints").([]any) {
		keys[dig(tsc, "topologyKey").(string)] = true
		assert.Equal(t, 1, dig(tsc, "maxSkew"))
		assert.Equal(t, "ScheduleAnyway", dig(tsc, "whenUnsatisfiable"))
	}
	assert.Equal(t, map[string]bool{"topology.kubernetes.io/zone": true, "kubernetes.io/hostname": true}, keys)
	assert.Equal(t, 1, dig(k["PodDisruptionBudget"], "spec", "minAvailable"))

	// In: the HTTP port only. Out: DNS, Redis, HTTPS.
	np := k["NetworkPolicy"]
	assert.ElementsMatch(t, []any{"Ingress", "Egress"}, dig(np, "spec", "policyTypes"))
	ingress := dig(np, "spec", "ingress").([]any)
	require.Len(t, ingress, 1)
	assert.Equal(t, []any{map[string]any{"protocol": "TCP", "port": 8080}}, dig(ingress[0], "ports"))
	egress := map[string]bool{}
	for _, rule := range dig(np, "spec", "egress").([]any) {
		for _, p := range dig(rule, "ports").([]any) {
			egress[fmt.Sprint(dig(p, "protocol"), "/", dig(p, "port"))] = true
		}
	}
	assert.Equal(t, map[string]bool{"UDP/53": true, "TCP/53": true, "TCP/6379": true, "TCP/443": true}, egress)

	// The ServiceMonitor scrapes the Service's port, which is the pod's.
	assert.Equal(t, "http", dig(k["ServiceMonitor"], "spec", "endpoints", 0, "port"))
	assert.Equal(t, "/metrics", dig(k["ServiceMonitor"], "spec", "endpoints", 0, "path"))
	assert.Equal(t, "http", dig(k["Service"], "spec", "ports", 0, "name"))
	assert.Equal(t, dig(c, "ports", 0, "name"), dig(k["Service"], "spec", "ports", 0, "targetPort"))
	for key, v := range dig(k["ServiceMonitor"], "spec", "selector", "matchLabels").(map[string]any) {
		assert.Equal(t, v, dig(k["Service"], "metadata", "labels", key), "the ServiceMonitor selects the Service")
	}

	// The shipped config is valid with the Secret's keys, uses them all,
	// and the grace period outlasts its shutdown bound.
	gen := dig(kz, "configMapGenerator", 0)
	assert.Equal(t, "opsworker-config", dig(gen, "name"))
	assert.Equal(t, "opsworker-config", dig(pod, "volumes", 0, "configMap", "name"))
	raw, err := os.ReadFile(baseDir + "/" + dig(gen, "files", 0).(string))
	require.NoError(t, err)
	used := map[string]bool{}
	cfg, err := config.Parse(raw, func(n string) (string, bool) { used[n] = true; v, ok := secretEnv[n]; return v, ok })
	require.NoError(t, err)
	grace := time.Duration(dig(pod, "terminationGracePeriodSeconds").(int)) * time.Second
	assert.Greater(t, grace, cfg.Worker.ShutdownTimeout)
	example := exampleSecrets(t)
	for name, v := range example {
		assert.True(t, used[name], "secret %s is used by the config", name)
		assert.Contains(t, v, "change-me", "secret.example.env holds placeholders only")
	}
	for name := range used {
		assert.Contains(t, example, name, "the config's ${%s} is a key of secret.example.env", name)
	}

	// The overlays' secrets.env stays out of git.
	ignore, err := os.ReadFile("../.gitignore")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^/deploy/kubernetes/overlays/\*/secrets\.env$`, string(ignore))
}

// kustomizeCmd returns the command that builds a kustomization: kubectl's
// built-in kustomize, else a kustomize binary on PATH or where `make
// test-deps` installs it. Without either it skips, but fails under CI.
func kustomizeCmd(t *testing.T) []string {
	t.Helper()
	if p, err := exec.LookPath("kubectl"); err == nil {
		return []string{p, "kustomize"}
	}
	if p, err := exec.LookPath("kustomize"); err == nil {
		return []string{p, "build"}
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(string(out), "\n")
		dir := strings.TrimSpace(lines[0])
		if dir == "" && len(lines) > 1 {
			dir = filepath.Join(strings.TrimSpace(lines[1]), "bin")
		}
		if p := filepath.Join(dir, "kustomize"); dir != "" {
			if _, err := os.Stat(p); err == nil {
				return []string{p, "build"}
			}
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("neither kubectl nor kustomize is installed (make test-deps installs kustomize)")
	}
	t.Skip("neither kubectl nor kustomize installed: make test-deps")
	return nil
}

// buildOverlay builds an overlay in a copy of deploy/kubernetes whose
// secrets.env is the example's, and returns its objects by kind.
func buildOverlay(t *testing.T, cmd []string, overlay string) map[string]map[string]any {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, filepath.WalkDir(kustomizeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(kustomizeDir, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		if d.Name() == "secrets.env" {
			return nil // never a developer's real secrets
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	}))
	example, err := os.ReadFile(baseDir + "/secret.example.env")
	require.NoError(t, err)
	od := filepath.Join(dir, "overlays", overlay)
	require.NoError(t, os.WriteFile(filepath.Join(od, "secrets.env"), example, 0o600))
	var stderr bytes.Buffer
	c := exec.Command(cmd[0], append(cmd[1:], od)...)
	c.Stderr = &stderr
	out, err := c.Output()
	require.NoError(t, err, "%s %s: %s", strings.Join(cmd, " "), overlay, stderr.String())
	return parseDocs(t, out)
}

// The overlays build, and what they build keeps the secrets out of the
// Deployment, the API token out of the pod, and the monitoring in.
func TestKustomizeOverlays(t *testing.T) {
	cmd := kustomizeCmd(t)
	rules := docs(t, rulesFile)[""]
	example := exampleSecrets(t)
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			k := buildOverlay(t, cmd, overlay)
			for _, kind := range []string{"ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"} {
				require.Contains(t, k, kind)
			}
			for kind, d := range k {
				assert.Equal(t, "opsworker", dig(d, "metadata", "labels", "app.kubernetes.io/name"), "%s is labelled", kind)
				assert.Equal(t, "opsworker", dig(d, "metadata", "labels", "app.kubernetes.io/part-of"), "%s is labelled", kind)
			}

			dep := k["Deployment"]
			pod := dig(dep, "spec", "template", "spec")
			sa := k["ServiceAccount"]
			assert.Equal(t, dig(sa, "metadata", "name"), dig(pod, "serviceAccountName"))
			assert.Equal(t, false, dig(sa, "automountServiceAccountToken"))
			assert.Equal(t, false, dig(pod, "automountServiceAccountToken"))
			assert.NotEmpty(t, dig(pod, "topologySpreadConstraints"))
			assert.Equal(t, dig(k["ConfigMap"], "metadata", "name"), dig(pod, "volumes", 0, "configMap", "name"))

			// The Secret is its own object; the Deployment refers to it
			// and holds none of its values.
			secret := k["Secret"]
			name := dig(secret, "metadata", "name").(string)
			assert.True(t, strings.HasPrefix(name, "opsworker-secrets"), name)
			keys := map[string]bool{}
			for key := range dig(secret, "data").(map[string]any) {
				keys[key] = true
			}
			assert.Len(t, keys, len(example))
			for key := range example {
				assert.True(t, keys[key], "the Secret has %s", key)
			}
			depYAML, err := yaml.Marshal(dep)
			require.NoError(t, err)
			for key, v := range example {
				assert.NotContains(t, string(depYAML), v, "the Deployment embeds the value of %s", key)
				assert.NotContains(t, string(depYAML), base64.StdEncoding.EncodeToString([]byte(v)), "the Deployment embeds the value of %s", key)
			}
			for _, ct := range dig(pod, "containers").([]any) {
				for _, ef := range dig(ct, "envFrom").([]any) {
					if ref, ok := dig(ef, "secretRef").(map[string]any); ok {
						assert.Equal(t, name, ref["name"], "envFrom names the built Secret")
					} else {
						assert.NotNil(t, dig(ef, "configMapRef"), "envFrom: only secretRef and configMapRef")
					}
				}
				env, _ := dig(ct, "env").([]any)
				for _, e := range env {
					assert.False(t, keys[dig(e, "name").(string)] && dig(e, "valueFrom", "secretKeyRef") == nil,
						"env %v: a secret comes by secretKeyRef", dig(e, "name"))
				}
			}

			assert.Equal(t, map[string]any{"groups": dig(rules, "groups")}, dig(k["PrometheusRule"], "spec"))
			assert.Equal(t, "http", dig(k["ServiceMonitor"], "spec", "endpoints", 0, "port"))

			switch overlay {
			case "production":
				assert.Equal(t, 3, dig(dep, "spec", "replicas"))
				image := dig(pod, "containers", 0, "image").(string)
				assert.Regexp(t, `(:[0-9A-Za-z._-]+|@sha256:[0-9a-f]{64})$`, image, "a pinned image")
				assert.NotRegexp(t, `:latest$`, image)
				assert.Equal(t, 1, dig(k["PodDisruptionBudget"], "spec", "minAvailable"))
			case "dev":
				assert.Equal(t, 1, dig(dep, "spec", "replicas"))
				assert.NotContains(t, k, "PodDisruptionBudget", "one replica: a budget would block drains")
			}
		})
	}
}

// clusterGauges are read from Redis: every replica exports the same
// values, so an alert aggregates them with max, never sum.
func isClusterGauge(name string) bool {
	return !strings.HasSuffix(name, "_total") && (strings.HasPrefix(name, "opsworker_queue_") ||
		strings.HasPrefix(name, "opsworker_provider_account_") || clusterGauges[name])
}

// Every alert uses metrics the worker exports, says how bad it is, what
// it means and what to run; the PrometheusRule carries the rules file's
// groups.
func TestAlertRules(t *testing.T) {
	rules := docs(t, rulesFile)[""]
	pr := docs(t, baseDir+"/prometheusrule.yaml")["PrometheusRule"]
	assert.Equal(t, dig(rules, "groups"), dig(pr, "spec", "groups"),
		"the PrometheusRule's groups are those of %s: change both", rulesFile)

	known := exportedMetrics(t)
	re := regexp.MustCompile(`opsworker_[a-z_]+`)
	var exprs []string
	names := map[string]bool{}
	for _, g := range dig(rules, "groups").([]any) {
		for _, r := range dig(g, "rules").([]any) {
			alert, _ := dig(r, "alert").(string)
			require.NotEmpty(t, alert, "only alerting rules")
			assert.False(t, names[alert], "%s: one alert of that name", alert)
			names[alert] = true
			expr := dig(r, "expr").(string)
			exprs = append(exprs, expr)
			_, err := time.ParseDuration(fmt.Sprint(dig(r, "for")))
			assert.NoError(t, err, "%s: for", alert)
			assert.Contains(t, []any{"critical", "warning"}, dig(r, "labels", "severity"), "%s: severity", alert)
			assert.NotEmpty(t, dig(r, "annotations", "summary"), "%s: summary", alert)
			desc, _ := dig(r, "annotations", "description").(string)
			assert.Contains(t, desc, "`enqueue ", "%s: the description names an enqueue command", alert)
			for _, name := range re.FindAllString(expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
				assert.True(t, known[base], "%s: unknown metric %s", alert, name)
				if isClusterGauge(name) {
					assert.NotContains(t, expr, "sum", "%s: %s is alike on every replica: aggregate with max", alert, name)
				}
			}
		}
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{`opsworker_operations_finished_total{state="timed_out"}`, "opsworker_operation_oldest_running_seconds",
		`opsworker_webhook_deliveries_total{outcome="failed"}`, "opsworker_provider_account_circuit_open",
		`opsworker_provider_calls_total{class="5xx"}`, `opsworker_provider_account_held_total{cause="retry_after"}`,
		"opsworker_queue_latency_seconds", "opsworker_queue_scrape_ok", "absent(opsworker_build_info)", "up{job="} {
		assert.Contains(t, all, want, "an alert on %s", want)
	}
}

// promtool checks the rules and runs their unit tests. Without promtool
// it skips, but fails under CI.
func TestPromtoolRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (make test-deps installs Debian's prometheus)")
		}
		t.Skip("promtool not installed: make test-deps")
	}
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTests}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		assert.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	}
	tests, err := os.ReadFile(rulesTests)
	require.NoError(t, err)
	for _, alert := range []string{"OpsworkerWebhookDeadLetters", "OpsworkerProviderCircuitOpen"} {
		assert.Contains(t, string(tests), "alertname: "+alert, "the unit tests cover %s", alert)
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

// Every metric the worker exports is in the metrics table of
// docs/operating.md, and
// the build is named by opsworker_build_info.
func TestMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../docs/operating.md")
	require.NoError(t, err)
	for name := range exportedMetrics(t) {
		short := strings.TrimPrefix(name, "opsworker_provider_account_")
		assert.True(t, strings.Contains(string(readme), "`"+name+"`") || strings.Contains(string(readme), "`…_"+short+"`"),
			"%s is not in the metrics table of docs/operating.md", name)
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
