package webhooks_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/httpclass"
	"github.com/opsworker/opsworker/internal/httpclass/httpclasstest"
	"github.com/opsworker/opsworker/internal/webhooks"
	"github.com/opsworker/opsworker/webhookverify"
)

// Delivery classifies every answer as the shared table says, the same as
// the provider clients: webhook delivery has no overrides.
func TestDeliveryHonoursTheStatusContract(t *testing.T) {
	t.Parallel()
	sender := open(httpclasstest.Timeout)
	secret := []webhookverify.Secret{webhookverify.NewSecret()}
	httpclasstest.Run(t, httpclasstest.Target{
		Call: func(t *testing.T, ctx context.Context, base string) httpclasstest.Outcome {
			err := sender.Send(ctx, base+"/hook?token=s3cret", "evt", []byte(`{}`), secret)
			if err == nil {
				return httpclasstest.Outcome{Class: httpclass.Success}
			}
			var de *webhooks.DeliveryError
			require.True(t, errors.As(err, &de), "%T: %v", err, err)
			assert.NotContains(t, err.Error(), "s3cret")
			assert.False(t, de.Refused)
			assert.Equal(t, de.Class.Retryable(), de.Retryable, "Retryable")
			assert.Equal(t, de.Class == httpclass.Gone, de.Gone, "Gone")
			return httpclasstest.Outcome{Class: de.Class, RetryAfter: de.RetryAfter}
		},
	})
}
