package ops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // timezone params are checked against the IANA database
)

func init() {
	registerParams[ServerInstallParams](
		`{"server_id":"12345","operating_system_id":"UBUNTU_22_04_64BIT","control_panel_id":"CPANEL_PREMIER_100","device":"SATA2TB",` +
			`"hostname":"web01.example.com","partitions":[{"filesystem":"swap","size":4096},{"filesystem":"ext4","mountpoint":"/boot","size":"1024"},{"filesystem":"ext4","mountpoint":"/","size":"*"}],` +
			`"raid":{"level":1,"numberOfDisks":2,"type":"SW"},"ssh_keys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnlyForTheDocs ops@example.com"],` +
			`"password":"correct-horse-battery","post_install_script":"#!/bin/sh\necho ready","timezone":"Europe/Amsterdam","power_cycle":true}`,
	)
	registerParams[ServerRescueParams](
		`{"server_id":"12345","rescue_image_id":"GRML","ssh_keys":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnlyForTheDocs ops@example.com",` +
			`"password":"correct-horse-battery","post_install_script":"#!/bin/sh\necho rescued","power_cycle":false}`,
	)
}

var (
	serverIDRe   = regexp.MustCompile(`^[0-9]{1,20}$`)
	symbolicIDRe = regexp.MustCompile(`^[A-Z0-9_]{2,64}$`)
	deviceRe     = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)
	hostLabelRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	timezoneRe   = regexp.MustCompile(`^(UTC|[A-Za-z_]+(/[A-Za-z0-9_+-]+)+)$`)
	mountRe      = regexp.MustCompile(`^/[A-Za-z0-9._/-]*$`)
)

// Filesystems the install accepts.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Show an operating system", supportedFileSystems)
var Filesystems = []string{"ext2", "ext3", "ext4", "xfs", "swap"}

// StringList is a list of strings given as a JSON list or as one string
// with an item per line (ssh_keys, media_path).
type StringList []string

// UnmarshalJSON accepts a string (newline-separated) or a list.
func (k *StringList) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				*k = append(*k, line)
			}
		}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*k = list
	return nil
}

func validateSSHKeys(k StringList, field string) error {
	for i, key := range k {
		key = strings.TrimSpace(key)
		if strings.ContainsFunc(key, isControlOrBreak) || !(strings.HasPrefix(key, "ssh-") || strings.HasPrefix(key, "ecdsa-sha2-") || strings.HasPrefix(key, "sk-")) || len(strings.Fields(key)) < 2 {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "must be one OpenSSH public key (ssh-ed25519 AAAA..., ssh-rsa ..., ecdsa-sha2-...)")
		}
	}
	return nil
}

// PartitionParam is one partition. Size is MB as a number, or "*" for the
// rest of the disk.
type PartitionParam struct {
	Filesystem string          `json:"filesystem" jsonschema:"enum=ext2,enum=ext3,enum=ext4,enum=xfs,enum=swap"`
	Mountpoint string          `json:"mountpoint,omitempty"`
	Size       json.RawMessage `json:"size"`
}

// RAIDParam configures RAID.
type RAIDParam struct {
	Level         int    `json:"level" jsonschema:"enum=0,enum=1,enum=5,enum=10"`
	NumberOfDisks int    `json:"numberOfDisks" jsonschema:"minimum=2"`
	Type          string `json:"type" jsonschema:"enum=HW,enum=SW"`
}

// ServerInstallParams are the params of server:install on leaseweb.
type ServerInstallParams struct {
	ServerID          string           `json:"server_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
	OperatingSystemID string           `json:"operating_system_id" jsonschema:"pattern=^[A-Z0-9_]{2\\,64}$"`
	ControlPanelID    string           `json:"control_panel_id,omitempty" jsonschema:"pattern=^[A-Z0-9_]{2\\,64}$"`
	Device            string           `json:"device,omitempty" jsonschema:"pattern=^[A-Za-z0-9_]{1\\,32}$"`
	Hostname          string           `json:"hostname,omitempty" jsonschema:"maxLength=253"`
	Partitions        []PartitionParam `json:"partitions,omitempty"`
	RAID              *RAIDParam       `json:"raid,omitempty"`
	SSHKeys           StringList       `json:"ssh_keys,omitempty" secret:"true"`
	Password          string           `json:"password,omitempty" secret:"true" jsonschema:"minLength=8,maxLength=128"`
	// PostInstallScript is plain text; the client base64-encodes it.
	PostInstallScript string `json:"post_install_script,omitempty" secret:"true" jsonschema:"maxLength=65536"`
	Timezone          string `json:"timezone,omitempty"`
	PowerCycle        *bool  `json:"power_cycle,omitempty"`
}

// ServerRescueParams are the params of server:rescue on leaseweb.
type ServerRescueParams struct {
	ServerID      string     `json:"server_id" jsonschema:"pattern=^[0-9]{1\\,20}$"`
	RescueImageID string     `json:"rescue_image_id,omitempty" jsonschema:"pattern=^[A-Z0-9_]{2\\,64}$"`
	SSHKeys       StringList `json:"ssh_keys,omitempty" secret:"true"`
	Password      string     `json:"password,omitempty" secret:"true" jsonschema:"minLength=8,maxLength=128"`
	// PostInstallScript is plain text starting with a shebang.
	PostInstallScript string `json:"post_install_script,omitempty" secret:"true" jsonschema:"maxLength=65536"`
	PowerCycle        *bool  `json:"power_cycle,omitempty"`
}

func validServerID(id string) error {
	if id == "" {
		return invalid("params.server_id", "required")
	}
	if !serverIDRe.MatchString(id) {
		return invalid("params.server_id", "must be the numeric id of a dedicated server, got %q", id)
	}
	return nil
}

func validPassword(p string) error {
	if p == "" {
		return nil
	}
	if len(p) < 8 || len(p) > 128 || strings.ContainsFunc(p, isControlOrBreak) {
		return invalid("params.password", "must be 8-128 characters on one line (the value is never shown)")
	}
	return nil
}

func validScript(s string, shebang bool) error {
	if s == "" {
		return nil
	}
	if len(s) > 64<<10 {
		return invalid("params.post_install_script", "longer than 64 KiB")
	}
	if shebang && !strings.HasPrefix(s, "#!") {
		return invalid("params.post_install_script", "must start with a shebang, e.g. #!/usr/bin/env bash")
	}
	return nil
}

func validHostname(h string) error {
	if h == "" {
		return nil
	}
	if len(h) > 253 {
		return invalid("params.hostname", "longer than 253 characters")
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !hostLabelRe.MatchString(label) {
			return invalid("params.hostname", "%q is not a hostname (labels of a-z, 0-9 and inner '-', 1-63 characters)", h)
		}
	}
	return nil
}

// Validate checks the params as Leaseweb documents them.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Launch installation")
func (p *ServerInstallParams) Validate() error {
	if err := validServerID(p.ServerID); err != nil {
		return err
	}
	switch {
	case p.OperatingSystemID == "":
		return invalid("params.operating_system_id", "required (e.g. UBUNTU_22_04_64BIT)")
	case !symbolicIDRe.MatchString(p.OperatingSystemID):
		return invalid("params.operating_system_id", "must look like UBUNTU_22_04_64BIT, got %q", p.OperatingSystemID)
	case p.ControlPanelID != "" && !symbolicIDRe.MatchString(p.ControlPanelID):
		return invalid("params.control_panel_id", "must look like CPANEL_PREMIER_100, got %q", p.ControlPanelID)
	case p.Device != "" && !deviceRe.MatchString(p.Device):
		return invalid("params.device", "must be a disk set id such as SATA2TB, SATA_SAS or NVME")
	}
	if err := validHostname(p.Hostname); err != nil {
		return err
	}
	if p.Timezone != "" {
		if _, err := time.LoadLocation(p.Timezone); err != nil || !timezoneRe.MatchString(p.Timezone) {
			return invalid("params.timezone", "must be an IANA Geographical_Area/City, got %q", p.Timezone)
		}
	}
	if err := p.validatePartitions(); err != nil {
		return err
	}
	if r := p.RAID; r != nil {
		min := map[int]int{0: 2, 1: 2, 5: 3, 10: 4}
		switch {
		case r.Type != "HW" && r.Type != "SW":
			return invalid("params.raid.type", "must be HW or SW")
		case min[r.Level] == 0:
			return invalid("params.raid.level", "must be 0, 1, 5 or 10")
		case r.NumberOfDisks < min[r.Level]:
			return invalid("params.raid.numberOfDisks", "RAID %d needs at least %d disks", r.Level, min[r.Level])
		case r.Level == 10 && r.NumberOfDisks%2 != 0:
			return invalid("params.raid.numberOfDisks", "RAID 10 needs an even number of disks")
		}
	}
	if err := validateSSHKeys(p.SSHKeys, "params.ssh_keys"); err != nil {
		return err
	}
	if err := validPassword(p.Password); err != nil {
		return err
	}
	return validScript(p.PostInstallScript, false)
}

func (p *ServerInstallParams) validatePartitions() error {
	seen := map[string]bool{}
	root := false
	for i, part := range p.Partitions {
		f := fmt.Sprintf("params.partitions[%d]", i)
		if !slices.Contains(Filesystems, part.Filesystem) {
			return invalid(f+".filesystem", "must be one of %s", strings.Join(Filesystems, ", "))
		}
		if part.Filesystem == "swap" {
			if part.Mountpoint != "" && part.Mountpoint != "none" {
				return invalid(f+".mountpoint", "a swap partition has no mountpoint")
			}
		} else {
			if !mountRe.MatchString(part.Mountpoint) || strings.Contains(part.Mountpoint, "//") {
				return invalid(f+".mountpoint", "must be an absolute path such as / or /boot")
			}
			if seen[part.Mountpoint] {
				return invalid(f+".mountpoint", "%s is used twice", part.Mountpoint)
			}
			seen[part.Mountpoint] = true
			root = root || part.Mountpoint == "/"
		}
		size, err := partitionSize(part.Size)
		if err != nil {
			return invalid(f+".size", "%v", err)
		}
		if size == "*" && i != len(p.Partitions)-1 {
			return invalid(f+".size", `only the last partition may take the rest of the disk ("*")`)
		}
	}
	if len(p.Partitions) > 0 {
		if last, _ := partitionSize(p.Partitions[len(p.Partitions)-1].Size); last != "*" {
			return invalid("params.partitions", `exactly one partition, the last, must have size "*" (the rest of the disk)`)
		}
		if !root {
			return invalid("params.partitions", "one partition must be mounted on /")
		}
	}
	return nil
}

// partitionSize reads a size: a positive whole number of MB (number or
// decimal string) or "*".
func partitionSize(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", fmt.Errorf("required: MB as a number, or \"*\"")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "*" {
			return s, nil
		}
	} else {
		s = string(bytes.TrimSpace(raw))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return "", fmt.Errorf("must be a positive number of MB or \"*\", got %s", raw)
	}
	return strconv.FormatInt(n, 10), nil
}

// Validate checks the params as Leaseweb documents them.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Launch rescue mode")
func (p *ServerRescueParams) Validate() error {
	if err := validServerID(p.ServerID); err != nil {
		return err
	}
	if p.RescueImageID != "" && !symbolicIDRe.MatchString(p.RescueImageID) {
		return invalid("params.rescue_image_id", "must look like GRML, CENTOS_7 or FREEBSD, got %q", p.RescueImageID)
	}
	if err := validateSSHKeys(p.SSHKeys, "params.ssh_keys"); err != nil {
		return err
	}
	if err := validPassword(p.Password); err != nil {
		return err
	}
	return validScript(p.PostInstallScript, true)
}

// SizeValue is the partition's size as the provider takes it: a whole
// number of MB as a decimal string, or "*" for the rest of the disk.
func (p PartitionParam) SizeValue() (string, error) { return partitionSize(p.Size) }

// Kind is KindServerInstall.
func (*ServerInstallParams) Kind() string { return KindServerInstall }

// Provider is ProviderLeaseweb.
func (*ServerInstallParams) Provider() string { return ProviderLeaseweb }

// Kind is KindServerRescue.
func (*ServerRescueParams) Kind() string { return KindServerRescue }

// Provider is ProviderLeaseweb.
func (*ServerRescueParams) Provider() string { return ProviderLeaseweb }

// Server is the dedicated server's id.
func (p *ServerInstallParams) Server() string { return p.ServerID }

// Server is the dedicated server's id.
func (p *ServerRescueParams) Server() string { return p.ServerID }
