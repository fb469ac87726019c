package providers_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/httpclass"
	"github.com/opsworker/opsworker/internal/httpclass/httpclasstest"
	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/edgio"
	"github.com/opsworker/opsworker/internal/providers/ionos"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/ucdn"
)

// outcome is what a provider client decided, as the contract sees it.
func outcome(t *testing.T, err error) httpclasstest.Outcome {
	if err == nil {
		return httpclasstest.Outcome{Class: httpclass.Success}
	}
	var pe *providers.Error
	require.True(t, errors.As(err, &pe), "%T is not a *providers.Error: %v", err, err)
	return httpclasstest.Outcome{Class: pe.Class, RetryAfter: pe.RetryAfter}
}

// Every provider client classifies every answer as the shared table says,
// but for the statuses its API documents otherwise.
func TestClientsHonourTheStatusContract(t *testing.T) {
	t.Parallel()
	hc := &http.Client{Timeout: httpclasstest.Timeout}
	clients := []struct {
		name      string
		call      func(t *testing.T, ctx context.Context, base string) error
		overrides httpclass.Overrides
	}{
		{name: "ucdn", call: func(t *testing.T, ctx context.Context, base string) error {
			c, err := ucdn.New(base, ucdn.WithHTTPClient(hc), ucdn.WithToken("t"))
			require.NoError(t, err)
			_, err = c.GetPurgeJob(ctx, "job")
			return err
		}, overrides: httpclass.Overrides{ucdn.StatusFail: httpclass.Permanent}},
		{name: "leaseweb", call: func(t *testing.T, ctx context.Context, base string) error {
			c, err := leaseweb.New(base, leaseweb.WithHTTPClient(hc), leaseweb.WithAPIKey("k"))
			require.NoError(t, err)
			_, err = c.BareMetal.GetJob(ctx, "1", "job")
			return err
		}},
		{name: "edgio", call: func(t *testing.T, ctx context.Context, base string) error {
			c, err := edgio.New(base, edgio.WithHTTPClient(hc), edgio.WithToken("t"))
			require.NoError(t, err)
			_, err = c.GetPurge(ctx, "0001", "job")
			return err
		}},
		{name: "ionos", call: func(t *testing.T, ctx context.Context, base string) error {
			c, err := ionos.New(base, ionos.WithHTTPClient(hc), ionos.WithToken("t"))
			require.NoError(t, err)
			_, err = c.GetDistribution(ctx, "dist")
			return err
		}},
	}
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			t.Parallel()
			httpclasstest.Run(t, httpclasstest.Target{
				Call: func(t *testing.T, ctx context.Context, base string) httpclasstest.Outcome {
					return outcome(t, cl.call(t, ctx, base))
				},
				Overrides: cl.overrides,
			})
		})
	}
}
