package ops

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

func init() {
	registerParams[UCDNPurgeParams](
		`{"zone_name":"shop","zone_type":"objects","files":["/index.html","https://cdn.example.com/app.css"]}`,
	)
	registerParams[EdgioPurgeParams](
		`{"media_path":["https://wpc.0001.edgecastcdn.net/000001/img/*","/css/app.css"],"media_type":"http_large"}`,
		`{"media_path":"/a.png\n/b.png"}`,
	)
	registerParams[InvalidateParams](
		`{"files":["https://cdn.example.com/app.js"]}`,
	)
	registerParams[DistributionParams](
		`{"distribution_id":"0b9f5a52-7c1e-4b7e-9d1c-3c8a2d4e5f60","domain":"cdn.example.com","certificate_id":"6a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d",` +
			`"routing_rules":[{"scheme":"https","prefix":"/api","upstream":{"host":"origin.example.com","caching":true,"waf":true,` +
			`"geo_restrictions":{"block_list":["CN","RU"]},"rate_limit_class":"R100","sni_mode":"distribution"}}]}`,
	)
}

// UCDN zone types.
const (
	ZoneTypeObjects    = "objects"
	ZoneTypeLivestream = "livestream"
)

// EdgioMaxOutstanding is Edgio's limit of outstanding purge requests per
// account: one cdn:purge on edgio purges at most this many paths.
const EdgioMaxOutstanding = 50

// EdgioMediaTypes are the media_type values of a purge on edgio.
var EdgioMediaTypes = []string{"adn", "flash", "http_large", "http_small"}

// MaxPurgeFiles bounds the files of one purge operation. UCDN documents no
// limit; this keeps one request body and one operation record small.
const MaxPurgeFiles = 1000

// UCDNPurgeParams are the params of cdn:purge on provider ucdn.
type UCDNPurgeParams struct {
	// ZoneName is an existing UCDN zone: 1-30 of a-z A-Z 0-9 - _.
	//
	// UCDN API docs: https://api.ucdn.com/docs/ ("Create zone", name)
	ZoneName string `json:"zone_name" jsonschema:"pattern=^[A-Za-z0-9_-]{1\\,30}$"`
	// ZoneType is "objects" or "livestream".
	ZoneType string `json:"zone_type" jsonschema:"enum=objects,enum=livestream"`
	// Files are paths ("/dir/file.txt") or absolute http(s) URLs.
	Files []string `json:"files" jsonschema:"minItems=1,maxItems=1000,maxLength=2048"`
}

var zoneNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,30}$`)

// Validate checks the params as UCDN documents them.
func (p *UCDNPurgeParams) Validate() error {
	switch {
	case p.ZoneName == "":
		return invalid("params.zone_name", "required")
	case !zoneNameRe.MatchString(p.ZoneName):
		return invalid("params.zone_name", "must be 1-30 characters of a-z, A-Z, 0-9, '-', '_'")
	case p.ZoneType == "":
		return invalid("params.zone_type", "required (objects or livestream)")
	case p.ZoneType != ZoneTypeObjects && p.ZoneType != ZoneTypeLivestream:
		return invalid("params.zone_type", "must be objects or livestream, got %q", p.ZoneType)
	}
	return validateFiles(p.Files)
}

// validateFiles checks a purge's file list: 1..MaxPurgeFiles entries, each
// a path starting with / or an absolute http(s) URL, no control
// characters.
func validateFiles(files []string) error {
	switch {
	case len(files) == 0:
		return invalid("params.files", "at least one file is required")
	case len(files) > MaxPurgeFiles:
		return invalid("params.files", "at most %d files per operation, got %d", MaxPurgeFiles, len(files))
	}
	for i, f := range files {
		field := fmt.Sprintf("params.files[%d]", i)
		if len(f) > 2048 {
			return invalid(field, "longer than 2048 characters")
		}
		if strings.ContainsFunc(f, isControlOrBreak) {
			// UCDN separates files with newlines: a control character
			// would smuggle in another entry.
			return invalid(field, "must not contain control characters or newlines")
		}
		if strings.HasPrefix(f, "/") {
			continue
		}
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Not quoted: a URL may carry user info.
			return invalid(field, "must be a path starting with / or an absolute http(s) URL")
		}
	}
	return nil
}

// EdgioPurgeParams are the params of cdn:purge on edgio.
type EdgioPurgeParams struct {
	// MediaPath is one path/URL or a list; each is its own purge request
	// (a trailing * purges a folder).
	MediaPath StringList `json:"media_path"`
	// MediaType is http_large (default), http_small, adn or flash.
	MediaType string `json:"media_type,omitempty" jsonschema:"enum=adn,enum=flash,enum=http_large,enum=http_small"`
}

// Validate checks the params as Edgio documents them.
func (p *EdgioPurgeParams) Validate() error {
	if len(p.MediaPath) > EdgioMaxOutstanding {
		return invalid("params.media_path", "at most %d paths per operation (Edgio allows %d outstanding purges per account)", EdgioMaxOutstanding, EdgioMaxOutstanding)
	}
	if err := validateFiles(p.MediaPath); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.Field = strings.Replace(ve.Field, "params.files", "params.media_path", 1)
		}
		return err
	}
	if p.MediaType != "" {
		if !slices.Contains(EdgioMediaTypes, p.MediaType) {
			return invalid("params.media_type", "must be one of %s, got %q", strings.Join(EdgioMediaTypes, ", "), p.MediaType)
		}
	}
	return nil
}

// InvalidateParams are the params of cdn:invalidate on leaseweb.
type InvalidateParams struct {
	// Files are the URLs (or paths) to invalidate.
	Files []string `json:"files" jsonschema:"minItems=1,maxItems=1000,maxLength=2048"`
}

// Validate checks the params as Leaseweb documents them.
func (p *InvalidateParams) Validate() error { return validateFiles(p.Files) }

// URLs are the files to invalidate.
func (p *InvalidateParams) URLs() []string { return p.Files }

// Limits and patterns IONOS documents (filter.domain: 2..253 characters,
// the hostname pattern below).
//
// IONOS API docs: https://api.ionos.com/docs/cdn/v1/ ("Retrieve all Distributions", filter.domain)
var (
	ionosDomainRe = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}\.?$`)
	countryRe     = regexp.MustCompile(`^[A-Z]{2}$`)
	rateClassRe   = regexp.MustCompile(`^R[0-9]{1,4}$`)
	prefixRe      = regexp.MustCompile(`^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$`)
)

// DistributionParams are the params of cdn:distribution_ensure on ionos.
// The whole distribution is given: IONOS fills what is left out with
// defaults, not with the previous values.
type DistributionParams struct {
	DistributionID string            `json:"distribution_id" jsonschema:"format=uuid"`
	Domain         string            `json:"domain" jsonschema:"minLength=2,maxLength=253"`
	CertificateID  string            `json:"certificate_id,omitempty" jsonschema:"format=uuid"`
	RoutingRules   []RoutingRuleParm `json:"routing_rules" jsonschema:"minItems=1"`
}

// RoutingRuleParm is one routing rule.
type RoutingRuleParm struct {
	Scheme   string `json:"scheme" jsonschema:"enum=http,enum=https,enum=http/https"`
	Prefix   string `json:"prefix" jsonschema:"pattern=^/[A-Za-z0-9._~!$&'()*+\\,;=:@%/-]*$"`
	Upstream struct {
		Host            string `json:"host"`
		Caching         bool   `json:"caching"`
		WAF             bool   `json:"waf"`
		GeoRestrictions *struct {
			BlockList []string `json:"block_list,omitempty"`
			AllowList []string `json:"allow_list,omitempty"`
		} `json:"geo_restrictions,omitempty"`
		RateLimitClass string `json:"rate_limit_class,omitempty"`
		SNIMode        string `json:"sni_mode,omitempty"`
	} `json:"upstream"`
}

// Validate checks the params as IONOS documents them.
func (p *DistributionParams) Validate() error {
	switch {
	case p.DistributionID == "":
		return invalid("params.distribution_id", "required")
	case !uuidRe.MatchString(p.DistributionID):
		return invalid("params.distribution_id", "must be a UUID, got %q", p.DistributionID)
	case p.Domain == "":
		return invalid("params.domain", "required")
	case len(p.Domain) < 2 || len(p.Domain) > 253 || !ionosDomainRe.MatchString(p.Domain):
		return invalid("params.domain", "must be a domain name of 2-253 characters (e.g. cdn.example.com), got %q", p.Domain)
	case p.CertificateID != "" && !uuidRe.MatchString(p.CertificateID):
		return invalid("params.certificate_id", "must be a UUID")
	case len(p.RoutingRules) == 0:
		return invalid("params.routing_rules", "at least one rule is required")
	}
	seen := map[string]bool{}
	for i, r := range p.RoutingRules {
		f := fmt.Sprintf("params.routing_rules[%d]", i)
		switch {
		case r.Scheme != "http" && r.Scheme != "https" && r.Scheme != "http/https":
			return invalid(f+".scheme", "must be http, https or http/https")
		case !prefixRe.MatchString(r.Prefix):
			return invalid(f+".prefix", "must be a path starting with /")
		case seen[r.Scheme+" "+r.Prefix]:
			return invalid(f+".prefix", "%s %s is routed twice", r.Scheme, r.Prefix)
		case r.Upstream.Host == "":
			return invalid(f+".upstream.host", "required")
		case validHostname(r.Upstream.Host) != nil:
			return invalid(f+".upstream.host", "must be a hostname, got %q", r.Upstream.Host)
		case r.Upstream.RateLimitClass != "" && !rateClassRe.MatchString(r.Upstream.RateLimitClass):
			return invalid(f+".upstream.rate_limit_class", "must look like R1, R10, R100, got %q", r.Upstream.RateLimitClass)
		case r.Upstream.SNIMode != "" && r.Upstream.SNIMode != "distribution" && r.Upstream.SNIMode != "origin":
			return invalid(f+".upstream.sni_mode", "must be distribution or origin")
		}
		seen[r.Scheme+" "+r.Prefix] = true
		if g := r.Upstream.GeoRestrictions; g != nil {
			if len(g.BlockList) > 0 && len(g.AllowList) > 0 {
				return invalid(f+".upstream.geo_restrictions", "give block_list or allow_list, not both")
			}
			for j, c := range append(append([]string{}, g.BlockList...), g.AllowList...) {
				if !countryRe.MatchString(c) {
					return invalid(fmt.Sprintf("%s.upstream.geo_restrictions[%d]", f, j), "must be an ISO 3166-1 alpha-2 code such as DE, got %q", c)
				}
			}
		}
	}
	return nil
}

// Kind is KindCDNPurge.
func (*UCDNPurgeParams) Kind() string { return KindCDNPurge }

// Provider is ProviderUCDN.
func (*UCDNPurgeParams) Provider() string { return ProviderUCDN }

// Kind is KindCDNPurge.
func (*EdgioPurgeParams) Kind() string { return KindCDNPurge }

// Provider is ProviderEdgio.
func (*EdgioPurgeParams) Provider() string { return ProviderEdgio }

// Kind is KindCDNInvalidate.
func (*InvalidateParams) Kind() string { return KindCDNInvalidate }

// Provider is ProviderLeaseweb.
func (*InvalidateParams) Provider() string { return ProviderLeaseweb }

// Kind is KindCDNDistributionEnsure.
func (*DistributionParams) Kind() string { return KindCDNDistributionEnsure }

// Provider is ProviderIONOS.
func (*DistributionParams) Provider() string { return ProviderIONOS }
