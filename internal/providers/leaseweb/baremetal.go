package leaseweb

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// BareMetalService is the dedicated servers API: /bareMetals/v2.
type BareMetalService service

// Job statuses. Leaseweb documents no enum: ACTIVE, FINISHED, CANCELED
// and EXPIRED appear in the job samples; FAILED is implied by
// progress.failed and the callbackUrl text ("when the installation is
// finished or failed").
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Show a job")
const (
	JobActive   = "ACTIVE"
	JobFinished = "FINISHED"
	JobFailed   = "FAILED"
	JobCanceled = "CANCELED"
	JobExpired  = "EXPIRED"
)

// Job types.
const (
	JobTypeInstall      = "install"
	JobTypeRescueMode   = "rescueMode"
	JobTypeHardwareScan = "hardwareScan"
	JobTypeIPMIReset    = "ipmiReset"
)

// Job is a server job.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Show a job")
type Job struct {
	UUID      string          `json:"uuid"`
	Type      string          `json:"type"`
	Status    string          `json:"status"`
	IsRunning bool            `json:"isRunning"`
	ServerID  string          `json:"serverId"`
	CreatedAt string          `json:"createdAt"`
	UpdatedAt string          `json:"updatedAt"`
	Flow      string          `json:"flow,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Progress  Progress        `json:"progress"`
	Tasks     []Task          `json:"tasks,omitempty"`
}

// Progress counts a job's tasks by state.
type Progress struct {
	Canceled   int `json:"canceled"`
	Expired    int `json:"expired"`
	Failed     int `json:"failed"`
	Finished   int `json:"finished"`
	InProgress int `json:"inprogress"`
	Pending    int `json:"pending"`
	Percentage int `json:"percentage"`
	Total      int `json:"total"`
	Waiting    int `json:"waiting"`
}

// Task is one step of a job.
type Task struct {
	UUID         string            `json:"uuid"`
	Description  string            `json:"description"`
	ErrorMessage *string           `json:"errorMessage"`
	Flow         string            `json:"flow,omitempty"`
	OnError      string            `json:"onError,omitempty"`
	Status       string            `json:"status"`
	Timestamps   map[string]string `json:"statusTimestamps,omitempty"`
}

// Created parses CreatedAt, whose format varies across the API (the
// documented job samples use both "+0000" and "Z"). The zero time means
// unparsable.
func (j *Job) Created() time.Time { return ParseTime(j.CreatedAt) }

// ParseTime reads the timestamp formats Leaseweb uses: RFC 3339 with
// "+00:00" or "Z", "+0000" without a colon, and zone-less.
func ParseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05-0700", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// Partition is one partition of an installation.
type Partition struct {
	Filesystem string `json:"filesystem"`
	Mountpoint string `json:"mountpoint,omitempty"`
	// Size in MB as a decimal string, or "*" for the rest of the disk.
	Size string `json:"size"`
}

// RAID configures software or hardware RAID.
type RAID struct {
	Level         int    `json:"level"`
	NumberOfDisks int    `json:"numberOfDisks,omitempty"`
	Type          string `json:"type"`
}

// InstallRequest is the body of Launch installation.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Launch installation")
type InstallRequest struct {
	OperatingSystemID string      `json:"operatingSystemId"`
	CallbackURL       string      `json:"callbackUrl,omitempty"`
	ControlPanelID    string      `json:"controlPanelId,omitempty"`
	Device            string      `json:"device,omitempty"`
	Hostname          string      `json:"hostname,omitempty"`
	Partitions        []Partition `json:"partitions,omitempty"`
	Password          string      `json:"password,omitempty"`
	// PostInstallScript is base64 of the script (the API's encoding).
	PostInstallScript string `json:"postInstallScript,omitempty"`
	PowerCycle        *bool  `json:"powerCycle,omitempty"`
	RAID              *RAID  `json:"raid,omitempty"`
	// SSHKeys are public keys separated by new lines.
	SSHKeys  string `json:"sshKeys,omitempty"`
	Timezone string `json:"timezone,omitempty"`
}

// RescueRequest is the body of Launch rescue mode.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Launch rescue mode")
type RescueRequest struct {
	RescueImageID     string `json:"rescueImageId"`
	CallbackURL       string `json:"callbackUrl,omitempty"`
	Password          string `json:"password,omitempty"`
	PostInstallScript string `json:"postInstallScript,omitempty"`
	PowerCycle        *bool  `json:"powerCycle,omitempty"`
	SSHKeys           string `json:"sshKeys,omitempty"`
}

func serverPath(serverID string) string { return "/bareMetals/v2/servers/" + url.PathEscape(serverID) }

// LaunchInstallation starts an OS installation, which wipes the server's
// disks: POST /bareMetals/v2/servers/{serverId}/install (202 job).
func (s *BareMetalService) LaunchInstallation(ctx context.Context, serverID string, req *InstallRequest) (*Job, error) {
	var j Job
	return &j, s.c.do(ctx, "launch installation", http.MethodPost, serverPath(serverID)+"/install", nil, req, &j)
}

// LaunchRescueMode boots the server into a rescue image: POST
// /bareMetals/v2/servers/{serverId}/rescueMode (202 job).
func (s *BareMetalService) LaunchRescueMode(ctx context.Context, serverID string, req *RescueRequest) (*Job, error) {
	var j Job
	return &j, s.c.do(ctx, "launch rescue mode", http.MethodPost, serverPath(serverID)+"/rescueMode", nil, req, &j)
}

// JobRequest is the body of Launch hardware scan and Launch IPMI reset.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Launch hardware scan", "Launch IPMI reset")
type JobRequest struct {
	CallbackURL string `json:"callbackUrl,omitempty"`
	// PowerCycle: Leaseweb's default is true (both jobs need a reboot).
	PowerCycle *bool `json:"powerCycle,omitempty"`
}

// LaunchHardwareScan reboots the server into a scan image and back; the
// disks are untouched: POST /bareMetals/v2/servers/{serverId}/hardwareScan
// (202 job).
func (s *BareMetalService) LaunchHardwareScan(ctx context.Context, serverID string, req *JobRequest) (*Job, error) {
	var j Job
	return &j, s.c.do(ctx, "launch hardware scan", http.MethodPost, serverPath(serverID)+"/hardwareScan", nil, req, &j)
}

// LaunchIPMIReset resets the server's IPMI interface to what Leaseweb's
// automation expects: POST /bareMetals/v2/servers/{serverId}/ipmiReset
// (202 job).
func (s *BareMetalService) LaunchIPMIReset(ctx context.Context, serverID string, req *JobRequest) (*Job, error) {
	var j Job
	return &j, s.c.do(ctx, "launch IPMI reset", http.MethodPost, serverPath(serverID)+"/ipmiReset", nil, req, &j)
}

// PowerInfo is a server's power as Leaseweb reports it: IPMI asks the
// server's remote management; the PDU reads "on" while any of its ports
// has power, even for a server shut down through IPMI.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Show power status")
type PowerInfo struct {
	IPMI struct {
		Status string `json:"status"`
	} `json:"ipmi"`
	PDU struct {
		Status string `json:"status"`
	} `json:"pdu"`
}

// Power actions: the path segment of POST /bareMetals/v2/servers/{serverId}/….
const (
	PowerActionCycle = "powerCycle"
	PowerActionOn    = "powerOn"
	PowerActionOff   = "powerOff"
)

// Power sends a power action (PowerActionCycle, PowerActionOn or
// PowerActionOff). Leaseweb documents no success body: any 2xx is
// success, and GetPowerInfo tells what happened.
func (s *BareMetalService) Power(ctx context.Context, serverID, action string) error {
	return s.c.do(ctx, "power "+action, http.MethodPost, serverPath(serverID)+"/"+action, nil, nil, nil)
}

// GetPowerInfo reads a server's power: GET
// /bareMetals/v2/servers/{serverId}/powerInfo.
func (s *BareMetalService) GetPowerInfo(ctx context.Context, serverID string) (*PowerInfo, error) {
	var p PowerInfo
	return &p, s.c.do(ctx, "get power info", http.MethodGet, serverPath(serverID)+"/powerInfo", nil, nil, &p)
}

// RetryJob runs a failed, canceled or expired job again: POST
// /bareMetals/v2/servers/{serverId}/jobs/{jobId}/retry (200, the job
// ACTIVE again, under the same uuid).
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/dedicatedservers_v2.html ("Retry a job")
func (s *BareMetalService) RetryJob(ctx context.Context, serverID, jobID string) (*Job, error) {
	var j Job
	return &j, s.c.do(ctx, "retry job", http.MethodPost, serverPath(serverID)+"/jobs/"+url.PathEscape(jobID)+"/retry", nil, nil, &j)
}

// GetJob reads one job: GET /bareMetals/v2/servers/{serverId}/jobs/{jobId}.
func (s *BareMetalService) GetJob(ctx context.Context, serverID, jobID string) (*Job, error) {
	var j Job
	return &j, s.c.do(ctx, "get job", http.MethodGet, serverPath(serverID)+"/jobs/"+url.PathEscape(jobID), nil, nil, &j)
}

// ListJobsOptions filter a server's jobs.
type ListJobsOptions struct {
	Type      string
	Status    string
	IsRunning *bool
	Limit     int
	Offset    int
}

// JobList is a page of jobs.
type JobList struct {
	Jobs     []Job `json:"jobs"`
	Metadata struct {
		TotalCount int `json:"totalCount"`
		Limit      int `json:"limit"`
		Offset     int `json:"offset"`
	} `json:"_metadata"`
}

// ListJobs lists a server's jobs: GET /bareMetals/v2/servers/{serverId}/jobs.
func (s *BareMetalService) ListJobs(ctx context.Context, serverID string, opts *ListJobsOptions) (*JobList, error) {
	q := url.Values{}
	if opts != nil {
		if opts.Type != "" {
			q.Set("type", opts.Type)
		}
		if opts.Status != "" {
			q.Set("status", opts.Status)
		}
		if opts.IsRunning != nil {
			q.Set("isRunning", strconv.FormatBool(*opts.IsRunning))
		}
		if opts.Limit > 0 {
			q.Set("limit", strconv.Itoa(opts.Limit))
		}
		if opts.Offset > 0 {
			q.Set("offset", strconv.Itoa(opts.Offset))
		}
	}
	var l JobList
	return &l, s.c.do(ctx, "list jobs", http.MethodGet, serverPath(serverID)+"/jobs", q, nil, &l)
}

// CancelActiveJob cancels the server's active job. It runs the job's
// on-fail flow, which often reboots the server: POST .../cancelActiveJob.
func (s *BareMetalService) CancelActiveJob(ctx context.Context, serverID string) (*Job, error) {
	var j Job
	return &j, s.c.do(ctx, "cancel active job", http.MethodPost, serverPath(serverID)+"/cancelActiveJob", nil, nil, &j)
}

// ExpireActiveJob marks the server's active job expired without touching
// the server (administrative only): POST .../expireActiveJob.
func (s *BareMetalService) ExpireActiveJob(ctx context.Context, serverID string) (*Job, error) {
	var j Job
	return &j, s.c.do(ctx, "expire active job", http.MethodPost, serverPath(serverID)+"/expireActiveJob", nil, nil, &j)
}
