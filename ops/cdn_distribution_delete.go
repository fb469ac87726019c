package ops

// KindCDNDistributionDelete deletes a CDN distribution.
const KindCDNDistributionDelete = "cdn:distribution_delete"

func init() {
	registerParams[DistributionDeleteParams](`{"distribution_id":"0b9f5a52-7c1e-4b7e-9d1c-3c8a2d4e5f60"}`)
}

// DistributionDeleteParams are the params of cdn:distribution_delete on
// ionos.
//
// IONOS API docs: https://api.ionos.com/docs/cdn/v1/ ("Delete Distribution")
type DistributionDeleteParams struct {
	DistributionID string `json:"distribution_id" jsonschema:"format=uuid"`
}

// DistributionDeleteResult is the result of cdn:distribution_delete.
type DistributionDeleteResult struct {
	DistributionID string `json:"distribution_id"`
	// AlreadyGone is true when the distribution did not exist when the
	// operation started (deleting it again is success, not failure).
	AlreadyGone bool `json:"already_gone"`
}

// Validate checks the id.
func (p *DistributionDeleteParams) Validate() error {
	switch {
	case p.DistributionID == "":
		return invalid("params.distribution_id", "required")
	case !uuidRe.MatchString(p.DistributionID):
		return invalid("params.distribution_id", "must be a distribution UUID, got %q", p.DistributionID)
	}
	return nil
}

// Kind is KindCDNDistributionDelete.
func (*DistributionDeleteParams) Kind() string { return KindCDNDistributionDelete }

// Provider is ProviderIONOS.
func (*DistributionDeleteParams) Provider() string { return ProviderIONOS }

// NewResult returns a new *DistributionDeleteResult.
func (*DistributionDeleteParams) NewResult() any { return new(DistributionDeleteResult) }
