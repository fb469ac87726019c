package tasks

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // timezone params are checked against the IANA database

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
)

// Dedicated-server kinds (Leaseweb bareMetals v2).
const (
	// TypeServerInstall (re)installs an operating system: it wipes disks.
	TypeServerInstall = "server:install"
	// TypeServerRescue boots a server into a rescue image.
	TypeServerRescue = "server:rescue"
)

var (
	serverIDRe   = regexp.MustCompile(`^[0-9]{1,20}$`)
	symbolicIDRe = regexp.MustCompile(`^[A-Z0-9_]{2,64}$`)
	deviceRe     = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)
	hostLabelRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	timezoneRe   = regexp.MustCompile(`^(UTC|[A-Za-z_]+(/[A-Za-z0-9_+-]+)+)$`)
	mountRe      = regexp.MustCompile(`^/[A-Za-z0-9._/-]*$`)
)

// Filesystems the install accepts (seed 001:9415-9439, supportedFileSystems).
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
	Filesystem string          `json:"filesystem"`
	Mountpoint string          `json:"mountpoint,omitempty"`
	Size       json.RawMessage `json:"size"`
}

// RAIDParam configures RAID.
type RAIDParam struct {
	Level         int    `json:"level"`
	NumberOfDisks int    `json:"numberOfDisks"`
	Type          string `json:"type"`
}

// ServerInstallParams are the params of server:install on leaseweb.
type ServerInstallParams struct {
	ServerID          string           `json:"server_id"`
	OperatingSystemID string           `json:"operating_system_id"`
	ControlPanelID    string           `json:"control_panel_id,omitempty"`
	Device            string           `json:"device,omitempty"`
	Hostname          string           `json:"hostname,omitempty"`
	Partitions        []PartitionParam `json:"partitions,omitempty"`
	RAID              *RAIDParam       `json:"raid,omitempty"`
	SSHKeys           StringList       `json:"ssh_keys,omitempty" secret:"true"`
	Password          string           `json:"password,omitempty" secret:"true"`
	// PostInstallScript is plain text; the client base64-encodes it.
	PostInstallScript string `json:"post_install_script,omitempty" secret:"true"`
	Timezone          string `json:"timezone,omitempty"`
	PowerCycle        *bool  `json:"power_cycle,omitempty"`
}

// ServerRescueParams are the params of server:rescue on leaseweb.
type ServerRescueParams struct {
	ServerID      string     `json:"server_id"`
	RescueImageID string     `json:"rescue_image_id,omitempty"`
	SSHKeys       StringList `json:"ssh_keys,omitempty" secret:"true"`
	Password      string     `json:"password,omitempty" secret:"true"`
	// PostInstallScript is plain text starting with a shebang.
	PostInstallScript string `json:"post_install_script,omitempty" secret:"true"`
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

// Validate checks the params as the seed documents them.
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

// Validate checks the params as the seed documents them.
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

func validateServerInstall(params json.RawMessage) error {
	var p ServerInstallParams
	if err := decodeParams(params, &p); err != nil {
		return err
	}
	return p.Validate()
}

func validateServerRescue(params json.RawMessage) error {
	var p ServerRescueParams
	if err := decodeParams(params, &p); err != nil {
		return err
	}
	return p.Validate()
}

// LeasewebServerJob runs server:install or server:rescue on Leaseweb: it
// holds the server's lock, checks the server has no running job, launches
// the job, polls it, and can cancel or expire it. After a crash between
// the launch call and saving its uuid, Reconcile finds the job the call
// created instead of launching a second one.
type LeasewebServerJob struct {
	kind    string
	clients map[string]*leaseweb.Client
}

// NewLeasewebServerJob returns the executor of kind (TypeServerInstall or
// TypeServerRescue); clients maps account name to client.
func NewLeasewebServerJob(kind string, clients map[string]*leaseweb.Client) *LeasewebServerJob {
	return &LeasewebServerJob{kind: kind, clients: clients}
}

func (l *LeasewebServerJob) client(account string) (*leaseweb.Client, error) {
	c, ok := l.clients[account]
	if !ok {
		return nil, Permanent(fmt.Errorf("account %q is not configured for provider leaseweb (providers.leaseweb.accounts)", account))
	}
	return c, nil
}

func (l *LeasewebServerJob) jobType() string {
	if l.kind == TypeServerRescue {
		return leaseweb.JobTypeRescueMode
	}
	return leaseweb.JobTypeInstall
}

func serverOf(op *opstore.Operation) string {
	var p struct {
		ServerID string `json:"server_id"`
	}
	_ = json.Unmarshal(op.Params, &p)
	return p.ServerID
}

// LockKey is the server: one operation per server at a time.
func (l *LeasewebServerJob) LockKey(op *opstore.Operation) string {
	return "leaseweb:server:" + serverOf(op)
}

// Preflight refuses to stack a job on a server that is running one
// (GET .../jobs?isRunning=true).
func (l *LeasewebServerJob) Preflight(ctx context.Context, op *opstore.Operation) error {
	c, err := l.client(op.Account)
	if err != nil {
		return err
	}
	running := true
	list, err := c.BareMetal.ListJobs(ctx, serverOf(op), &leaseweb.ListJobsOptions{IsRunning: &running, Limit: 10})
	if err != nil {
		return err
	}
	for _, j := range list.Jobs {
		if j.UUID != op.Handle {
			return &BusyError{Resource: "server " + serverOf(op), Holder: fmt.Sprintf("a %s job (%s) not started by this operation", j.Type, j.UUID)}
		}
	}
	return nil
}

// Reconcile looks for a job the previous launch attempt created: same
// type (and operating system), created at or after that attempt began
// (minus clock skew). It returns the job's uuid when it finds one.
func (l *LeasewebServerJob) Reconcile(ctx context.Context, op *opstore.Operation, since time.Time) (string, bool, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return "", false, err
	}
	list, err := c.BareMetal.ListJobs(ctx, serverOf(op), &leaseweb.ListJobsOptions{Type: l.jobType(), Limit: 50})
	if err != nil {
		return "", false, err
	}
	var osID string
	if l.kind == TypeServerInstall {
		var p ServerInstallParams
		_ = json.Unmarshal(op.Params, &p)
		osID = p.OperatingSystemID
	}
	const skew = 2 * time.Minute
	var best *leaseweb.Job
	for i := range list.Jobs {
		j := &list.Jobs[i]
		created := j.Created()
		if j.Type != l.jobType() || created.IsZero() || created.Before(since.Add(-skew)) {
			continue
		}
		if osID != "" {
			var pl struct {
				OperatingSystemID string `json:"operatingSystemId"`
			}
			if json.Unmarshal(j.Payload, &pl) == nil && pl.OperatingSystemID != "" && pl.OperatingSystemID != osID {
				continue
			}
		}
		if best == nil || created.Before(best.Created()) {
			best = j
		}
	}
	if best == nil {
		return "", false, nil
	}
	return best.UUID, true, nil
}

// Launch starts the job and returns its uuid.
func (l *LeasewebServerJob) Launch(ctx context.Context, op *opstore.Operation, opts LaunchOptions) (string, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return "", err
	}
	var job *leaseweb.Job
	if l.kind == TypeServerRescue {
		var p ServerRescueParams
		if err := decodeParams(op.Params, &p); err != nil {
			return "", Permanent(err)
		}
		img := p.RescueImageID
		if img == "" {
			img = "GRML"
		}
		req := &leaseweb.RescueRequest{RescueImageID: img, CallbackURL: opts.CallbackURL, Password: p.Password,
			SSHKeys: strings.Join(p.SSHKeys, "\n"), PowerCycle: p.PowerCycle}
		if p.PostInstallScript != "" {
			req.PostInstallScript = base64.StdEncoding.EncodeToString([]byte(p.PostInstallScript))
		}
		job, err = c.BareMetal.LaunchRescueMode(ctx, p.ServerID, req)
	} else {
		var p ServerInstallParams
		if err := decodeParams(op.Params, &p); err != nil {
			return "", Permanent(err)
		}
		req := &leaseweb.InstallRequest{OperatingSystemID: p.OperatingSystemID, CallbackURL: opts.CallbackURL, ControlPanelID: p.ControlPanelID,
			Device: p.Device, Hostname: p.Hostname, Password: p.Password, PowerCycle: p.PowerCycle,
			SSHKeys: strings.Join(p.SSHKeys, "\n"), Timezone: p.Timezone}
		for _, part := range p.Partitions {
			size, _ := partitionSize(part.Size)
			mp := part.Mountpoint
			if mp == "none" {
				mp = ""
			}
			req.Partitions = append(req.Partitions, leaseweb.Partition{Filesystem: part.Filesystem, Mountpoint: mp, Size: size})
		}
		if p.RAID != nil {
			req.RAID = &leaseweb.RAID{Level: p.RAID.Level, NumberOfDisks: p.RAID.NumberOfDisks, Type: p.RAID.Type}
		}
		if p.PostInstallScript != "" {
			req.PostInstallScript = base64.StdEncoding.EncodeToString([]byte(p.PostInstallScript))
		}
		job, err = c.BareMetal.LaunchInstallation(ctx, p.ServerID, req)
	}
	if err != nil {
		return "", err
	}
	if job.UUID == "" {
		return "", fmt.Errorf("leaseweb: launch answered without a job uuid")
	}
	return job.UUID, nil
}

// Poll reads the job once. Every terminal status ends the operation at
// once: FINISHED succeeds; FAILED, CANCELED and EXPIRED fail with the
// failing task's errorMessage (Leaseweb's own Terraform provider waits
// out its timeout on anything but FINISHED; we do not).
func (l *LeasewebServerJob) Poll(ctx context.Context, op *opstore.Operation) (PollResult, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	job, err := c.BareMetal.GetJob(ctx, serverOf(op), op.Handle)
	if err != nil {
		return PollResult{}, err
	}
	res := PollResult{Status: job.Status}
	current := ""
	failure := ""
	for _, t := range job.Tasks {
		if current == "" && t.Status != "FINISHED" {
			current = t.Description
		}
		if t.ErrorMessage != nil && *t.ErrorMessage != "" && failure == "" {
			failure = fmt.Sprintf("%s: %s", t.Description, *t.ErrorMessage)
		}
	}
	res.Progress, _ = json.Marshal(map[string]any{"percentage": job.Progress.Percentage, "task": current, "finished": job.Progress.Finished, "total": job.Progress.Total})
	result, _ := json.Marshal(map[string]any{"job_uuid": job.UUID, "type": job.Type, "status": job.Status, "server_id": job.ServerID,
		"created_at": job.CreatedAt, "updated_at": job.UpdatedAt, "progress": job.Progress})
	switch job.Status {
	case leaseweb.JobActive:
	case leaseweb.JobFinished:
		res.Done, res.Succeeded, res.Result = true, true, result
	case leaseweb.JobFailed, leaseweb.JobCanceled, leaseweb.JobExpired:
		res.Done, res.Result = true, result
		res.Canceled = job.Status != leaseweb.JobFailed
		if failure == "" {
			failure = "no task reported an error"
		}
		res.Error = fmt.Sprintf("leaseweb %s job %s ended %s: %s", job.Type, job.UUID, job.Status, failure)
	default:
		res.Unknown = true
	}
	return res, nil
}

// Cancel stops the server's active job: cancelActiveJob runs the job's
// on-fail flow (often a reboot); expireActiveJob only marks it expired.
func (l *LeasewebServerJob) Cancel(ctx context.Context, op *opstore.Operation, expire bool) error {
	c, err := l.client(op.Account)
	if err != nil {
		return err
	}
	if expire {
		_, err = c.BareMetal.ExpireActiveJob(ctx, serverOf(op))
	} else {
		_, err = c.BareMetal.CancelActiveJob(ctx, serverOf(op))
	}
	return err
}
