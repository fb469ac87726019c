package ops

func init() {
	registerParams[LeasewebPurgeParams](`{"files":["https://cdn.example.com/app.js","/css/app.css"]}`)
}

// LeasewebPurgeParams are the params of cdn:purge on leaseweb. Leaseweb
// documents invalidation as its purge: this is cdn:invalidate under the
// name the other CDNs use, with the same rules and result.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/cdn_v2.html ("Do Invalidation")
type LeasewebPurgeParams struct {
	// Files are the URLs (or paths) to purge.
	Files []string `json:"files" jsonschema:"minItems=1,maxItems=1000,maxLength=2048"`
}

// Validate checks the params as Leaseweb documents them.
func (p *LeasewebPurgeParams) Validate() error { return validateFiles(p.Files) }

// URLs are the files to purge.
func (p *LeasewebPurgeParams) URLs() []string { return p.Files }

// Kind is KindCDNPurge.
func (*LeasewebPurgeParams) Kind() string { return KindCDNPurge }

// Provider is ProviderLeaseweb.
func (*LeasewebPurgeParams) Provider() string { return ProviderLeaseweb }

// NewResult returns a new *InvalidateResult.
func (*LeasewebPurgeParams) NewResult() any { return new(InvalidateResult) }
