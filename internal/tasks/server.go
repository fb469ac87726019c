package tasks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // timezone params are checked against the IANA database

	"github.com/opsworker/opsworker/internal/opstore"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
)

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
			size, _ := part.SizeValue()
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
