package tasks

import (
	"github.com/opsworker/opsworker/ops"
)

// cdn:purge on leaseweb is the invalidation executor (LeasewebInvalidate)
// under the name the other CDNs use; its polling policy is cdn:purge's.
func init() {
	registerKind(Kind{Kind: ops.KindCDNPurge, Provider: ops.ProviderLeaseweb,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return Register[ops.LeasewebPurgeParams](&LeasewebInvalidate[*ops.LeasewebPurgeParams]{clients: c.Leaseweb})
			})
		},
		Policy: purgePolicy})
}
