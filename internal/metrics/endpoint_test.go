package metrics_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/metrics"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
)

// dynamicEndpoints are the values of the names the provider clients
// build from a literal and a parameter ("power "+action): every value
// the parameter takes. A new such name must be added here.
var dynamicEndpoints = map[string][]string{
	"power ":     {leaseweb.PowerActionCycle, leaseweb.PowerActionOn, leaseweb.PowerActionOff},
	"get ":       {leaseweb.MachineInstance, leaseweb.MachineVPS},
	"reinstall ": {leaseweb.MachineInstance, leaseweb.MachineVPS},
}

// providerEndpoints reads the provider clients' sources for the names
// they give their calls: the op argument of every .do, .Call and
// .CallRaw (which hand it to the observer). Simulators and tests are left
// out. It fails on a name it cannot evaluate.
func providerEndpoints(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("../providers", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.Contains(d.Name(), "sim") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "do" && sel.Sel.Name != "Call" && sel.Sel.Name != "CallRaw") {
				return true
			}
			if ctx, ok := call.Args[0].(*ast.Ident); !ok || ctx.Name != "ctx" {
				return true
			}
			where := fset.Position(call.Pos()).String()
			switch op := call.Args[1].(type) {
			case *ast.BasicLit:
				s, err := strconv.Unquote(op.Value)
				require.NoError(t, err, where)
				out[s] = true
			case *ast.Ident:
				// A wrapper handing its own op parameter on.
				assert.Equal(t, "op", op.Name, "%s: an endpoint name this test cannot read", where)
			case *ast.BinaryExpr:
				lit, ok := op.X.(*ast.BasicLit)
				require.True(t, ok, "%s: an endpoint name this test cannot read", where)
				prefix, err := strconv.Unquote(lit.Value)
				require.NoError(t, err, where)
				values, ok := dynamicEndpoints[prefix]
				require.True(t, ok, "%s: the name %q+… is not in dynamicEndpoints", where, prefix)
				for _, v := range values {
					out[prefix+v] = true
				}
			default:
				t.Errorf("%s: an endpoint name this test cannot read", where)
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	return out
}

// Every endpoint name a provider client gives its calls is a snake_case
// label value, and no two names share one.
func TestEndpointLabelValues(t *testing.T) {
	names := providerEndpoints(t)
	require.Greater(t, len(names), 30, "the scan finds the clients' calls")
	assert.Contains(t, names, "get distribution")
	valid := regexp.MustCompile(`^[a-z0-9_]+$`)
	by := map[string]string{}
	for name := range names {
		label := metrics.EndpointLabel(name)
		assert.Regexp(t, valid, label, "endpoint %q", name)
		if other, ok := by[label]; ok {
			t.Errorf("endpoints %q and %q share the label %q", name, other, label)
		}
		by[label] = name
	}

	for name, want := range map[string]string{
		"get distribution":   "get_distribution",
		"launch IPMI reset":  "launch_ipmi_reset",
		"power powerCycle":   "power_power_cycle",
		"get instances":      "get_instances",
		"purge":              "purge",
		"  Get--Purge  Job ": "get_purge_job",
		"IPMIReset":          "ipmi_reset",
		"v2Beta":             "v2_beta",
		"café crème":         "caf_cr_me",
		"":                   "unknown",
		" - ":                "unknown",
	} {
		assert.Equal(t, want, metrics.EndpointLabel(name), "%q", name)
	}

	// The metrics carry the label value.
	m := metrics.New(nil)
	m.ProviderCall("ionos", "get distribution", 200, time.Millisecond)
	fams, err := m.Registry.Gather()
	require.NoError(t, err)
	seen := 0
	for _, f := range fams {
		if f.GetName() != "opsworker_provider_calls_total" && f.GetName() != "opsworker_provider_call_duration_seconds" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "endpoint" {
					assert.Equal(t, "get_distribution", l.GetValue(), f.GetName())
					seen++
				}
			}
		}
	}
	assert.Equal(t, 2, seen)
}
