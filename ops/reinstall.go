package ops

import "regexp"

// The reinstall kinds recreate a public cloud machine from an image. This
// wipes its disk.
const (
	// KindInstanceReinstall reinstalls a public cloud instance.
	KindInstanceReinstall = "instance:reinstall"
	// KindVPSReinstall reinstalls a VPS.
	KindVPSReinstall = "vps:reinstall"
)

func init() {
	registerParams[InstanceReinstallParams](
		`{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","image_id":"UBUNTU_24_04_64BIT"}`,
		`{"instance_id":"ace712e9-a166-47f1-9065-4af0f7e7fce1","image_id":"DEBIAN_12_64BIT","delete_snapshot_first":true}`,
	)
	registerParams[VPSReinstallParams](`{"vps_id":"999999999","image_id":"UBUNTU_24_04_64BIT"}`)
}

var imageIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{1,127}$`)

// InstanceReinstallParams are the params of instance:reinstall on
// leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Reinstall an Instance")
type InstanceReinstallParams struct {
	InstanceID string `json:"instance_id" jsonschema:"format=uuid"`
	// ImageID is the image to install (UBUNTU_24_04_64BIT, or a custom
	// image's id).
	ImageID string `json:"image_id" jsonschema:"minLength=2,maxLength=128"`
	// MarketAppID is a marketplace app to install with it.
	MarketAppID string `json:"market_app_id,omitempty" jsonschema:"maxLength=128"`
	// DeleteSnapshotFirst deletes the machine's snapshot first (Leaseweb
	// refuses to reinstall a machine that has one) and waits for the
	// deletion.
	DeleteSnapshotFirst bool `json:"delete_snapshot_first,omitempty"`
}

// VPSReinstallParams are the params of vps:reinstall on leaseweb.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/vps_v1.html ("Reinstall a VPS")
type VPSReinstallParams struct {
	VPSID               string `json:"vps_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
	ImageID             string `json:"image_id" jsonschema:"minLength=2,maxLength=128"`
	MarketAppID         string `json:"market_app_id,omitempty" jsonschema:"maxLength=128"`
	DeleteSnapshotFirst bool   `json:"delete_snapshot_first,omitempty"`
}

// ReinstallResult is the result of instance:reinstall and vps:reinstall:
// the machine as Leaseweb last reported it.
type ReinstallResult struct {
	MachineID string `json:"machine_id"`
	// ImageBefore is the machine's image before the reinstall.
	ImageBefore string `json:"image_before"`
	// StateBefore is the machine's state before (RUNNING or STOPPED).
	StateBefore string `json:"state_before"`
	// ImageID is the machine's image now.
	ImageID string `json:"image_id"`
	State   string `json:"state"`
	// ChangeSeen says whether the machine was seen changing.
	ChangeSeen bool `json:"change_seen"`
}

func validImage(image, app string) error {
	switch {
	case image == "":
		return invalid("params.image_id", "required")
	case !imageIDRe.MatchString(image):
		return invalid("params.image_id", "must be an image id such as UBUNTU_24_04_64BIT, got %q", image)
	case app != "" && !imageIDRe.MatchString(app):
		return invalid("params.market_app_id", "must be a marketplace app id, got %q", app)
	}
	return nil
}

// Validate checks the ids.
func (p *InstanceReinstallParams) Validate() error {
	if err := validInstanceID(p.InstanceID); err != nil {
		return err
	}
	return validImage(p.ImageID, p.MarketAppID)
}

// Validate checks the ids.
func (p *VPSReinstallParams) Validate() error {
	if err := validVPSID(p.VPSID); err != nil {
		return err
	}
	return validImage(p.ImageID, p.MarketAppID)
}

// Kind is KindInstanceReinstall.
func (*InstanceReinstallParams) Kind() string { return KindInstanceReinstall }

// Kind is KindVPSReinstall.
func (*VPSReinstallParams) Kind() string { return KindVPSReinstall }

// Provider is ProviderLeaseweb.
func (*InstanceReinstallParams) Provider() string { return ProviderLeaseweb }

// Provider is ProviderLeaseweb.
func (*VPSReinstallParams) Provider() string { return ProviderLeaseweb }

// Machine is the instance's id.
func (p *InstanceReinstallParams) Machine() string { return p.InstanceID }

// Machine is the VPS's id.
func (p *VPSReinstallParams) Machine() string { return p.VPSID }

// Image is the image to install.
func (p *InstanceReinstallParams) Image() (id, app string, deleteSnapshot bool) {
	return p.ImageID, p.MarketAppID, p.DeleteSnapshotFirst
}

// Image is the image to install.
func (p *VPSReinstallParams) Image() (id, app string, deleteSnapshot bool) {
	return p.ImageID, p.MarketAppID, p.DeleteSnapshotFirst
}

// NewResult returns a new *ReinstallResult.
func (*InstanceReinstallParams) NewResult() any { return new(ReinstallResult) }

// NewResult returns a new *ReinstallResult.
func (*VPSReinstallParams) NewResult() any { return new(ReinstallResult) }
