package tasks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // timezone params are checked against the IANA database

	"github.com/opsworker/opsworker/internal/poller"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/ops"
)

func init() {
	registerKind(Kind{Kind: TypeServerInstall, Provider: ops.ProviderLeaseweb, Cancelable: true,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return newServerJob[ops.ServerInstallParams](leaseweb.JobTypeInstall, c.Leaseweb,
					func(p *ops.ServerInstallParams) string { return p.OperatingSystemID }, launchInstall)
			})
		},
		Policy: poller.Policy{Initial: 30 * time.Second, Multiplier: 1.5, Max: 2 * time.Minute, Jitter: 0.1, Deadline: 4 * time.Hour}})
	registerKind(Kind{Kind: TypeServerRescue, Provider: ops.ProviderLeaseweb, Cancelable: true,
		New: func(c Clients) Executor {
			return when(c.Leaseweb != nil, func() Executor {
				return newServerJob[ops.ServerRescueParams](leaseweb.JobTypeRescueMode, c.Leaseweb, nil, launchRescue)
			})
		},
		Policy: poller.Policy{Initial: 15 * time.Second, Multiplier: 1.5, Max: time.Minute, Jitter: 0.1, Deadline: time.Hour}})
}

// LeasewebServerJob runs a kind that is one Leaseweb server job
// (server:install, server:rescue, server:hardware_scan…): it holds the
// server's lock, checks the server has no running job, launches the job,
// polls it, and can cancel or expire it. After a crash between the launch
// call and saving its uuid, Reconcile finds the job the call created
// instead of launching a second one.
type LeasewebServerJob[P ServerParams] struct {
	jobType string
	clients map[string]*leaseweb.Client
	// osID reads the params' operating system (nil: the job has none).
	osID func(P) string
	// start launches the job.
	start func(ctx context.Context, c *leaseweb.Client, p P, opts LaunchOptions) (*leaseweb.Job, error)
}

// ServerParams are the params of a kind that acts on one dedicated
// server.
type ServerParams interface {
	ops.Params
	Server() string
}

// newServerJob returns the executor of a server job kind whose params
// type is T: jobType is Leaseweb's job type, osID (nil: none) reads the
// operating system a reconcile matches on, and start makes the launch
// call.
func newServerJob[T any, P interface {
	*T
	ServerParams
}](jobType string, clients map[string]*leaseweb.Client, osID func(P) string, start func(context.Context, *leaseweb.Client, P, LaunchOptions) (*leaseweb.Job, error)) Executor {
	if osID == nil {
		osID = func(P) string { return "" }
	}
	return Register[T](&LeasewebServerJob[P]{jobType: jobType, clients: clients, osID: osID, start: start})
}

// NewLeasewebServerJob returns the registered executor of a server job
// kind (TypeServerInstall, TypeServerRescue…); clients maps account name
// to client.
func NewLeasewebServerJob(kind string, clients map[string]*leaseweb.Client) Executor {
	return Executors(Clients{Leaseweb: clients})[ExecutorKey{kind, ops.ProviderLeaseweb}]
}

func (l *LeasewebServerJob[P]) client(account string) (*leaseweb.Client, error) {
	c, ok := l.clients[account]
	if !ok {
		return nil, Permanent(fmt.Errorf("account %q is not configured for provider leaseweb (providers.leaseweb.accounts)", account))
	}
	return c, nil
}

// LockKey is the server: one operation per server at a time.
func (l *LeasewebServerJob[P]) LockKey(op Op[P]) string {
	return "leaseweb:server:" + op.Params.Server()
}

// Preflight refuses to stack a job on a server that is running one
// (GET .../jobs?isRunning=true).
func (l *LeasewebServerJob[P]) Preflight(ctx context.Context, op Op[P]) error {
	c, err := l.client(op.Account)
	if err != nil {
		return err
	}
	return serverJobRunning(ctx, c, op.Params.Server(), op.Handle)
}

// serverJobRunning returns a *BusyError when the server runs a job other
// than own (GET .../jobs?isRunning=true): one started outside opsworker
// holds no lock, but a second job or a power action would break it.
func serverJobRunning(ctx context.Context, c *leaseweb.Client, serverID, own string) error {
	running := true
	list, err := c.BareMetal.ListJobs(ctx, serverID, &leaseweb.ListJobsOptions{IsRunning: &running, Limit: 10})
	if err != nil {
		return err
	}
	for _, j := range list.Jobs {
		if j.UUID != own {
			return &BusyError{Resource: "server " + serverID, Holder: fmt.Sprintf("a %s job (%s) not started by this operation", j.Type, j.UUID)}
		}
	}
	return nil
}

// Reconcile looks for a job the previous launch attempt created: same
// type (and operating system), created at or after that attempt began
// (minus clock skew). It returns the job's uuid when it finds one.
func (l *LeasewebServerJob[P]) Reconcile(ctx context.Context, op Op[P], since time.Time) (string, bool, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return "", false, err
	}
	list, err := c.BareMetal.ListJobs(ctx, op.Params.Server(), &leaseweb.ListJobsOptions{Type: l.jobType, Limit: 50})
	if err != nil {
		return "", false, err
	}
	osID := l.osID(op.Params)
	const skew = 2 * time.Minute
	var best *leaseweb.Job
	for i := range list.Jobs {
		j := &list.Jobs[i]
		created := j.Created()
		if j.Type != l.jobType || created.IsZero() || created.Before(since.Add(-skew)) {
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
func (l *LeasewebServerJob[P]) Launch(ctx context.Context, op Op[P], opts LaunchOptions) (string, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return "", err
	}
	job, err := l.start(ctx, c, op.Params, opts)
	if err != nil {
		return "", err
	}
	if job.UUID == "" {
		return "", fmt.Errorf("leaseweb: launch answered without a job uuid")
	}
	return job.UUID, nil
}

func launchRescue(ctx context.Context, c *leaseweb.Client, p *ops.ServerRescueParams, opts LaunchOptions) (*leaseweb.Job, error) {
	img := p.RescueImageID
	if img == "" {
		img = "GRML"
	}
	req := &leaseweb.RescueRequest{RescueImageID: img, CallbackURL: opts.CallbackURL, Password: p.Password,
		SSHKeys: strings.Join(p.SSHKeys, "\n"), PowerCycle: p.PowerCycle}
	if p.PostInstallScript != "" {
		req.PostInstallScript = base64.StdEncoding.EncodeToString([]byte(p.PostInstallScript))
	}
	return c.BareMetal.LaunchRescueMode(ctx, p.ServerID, req)
}

func launchInstall(ctx context.Context, c *leaseweb.Client, p *ops.ServerInstallParams, opts LaunchOptions) (*leaseweb.Job, error) {
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
	return c.BareMetal.LaunchInstallation(ctx, p.ServerID, req)
}

// Poll reads the job once. Every terminal status ends the operation at
// once: FINISHED succeeds; FAILED, CANCELED and EXPIRED fail with the
// failing task's errorMessage (Leaseweb's own Terraform provider waits
// out its timeout on anything but FINISHED; we do not).
func (l *LeasewebServerJob[P]) Poll(ctx context.Context, op Op[P]) (PollResult, error) {
	c, err := l.client(op.Account)
	if err != nil {
		return PollResult{}, err
	}
	job, err := c.BareMetal.GetJob(ctx, op.Params.Server(), op.Handle)
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
	res.Progress, _ = json.Marshal(ops.Progress{Percentage: job.Progress.Percentage, Task: current, Finished: &job.Progress.Finished, Total: &job.Progress.Total})
	result, _ := json.Marshal(ops.ServerJobResult{JobUUID: job.UUID, Type: job.Type, Status: job.Status, ServerID: job.ServerID,
		CreatedAt: job.CreatedAt, UpdatedAt: job.UpdatedAt, Progress: ops.ServerJobTasks(job.Progress)})
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
func (l *LeasewebServerJob[P]) Cancel(ctx context.Context, op Op[P], expire bool) error {
	c, err := l.client(op.Account)
	if err != nil {
		return err
	}
	if expire {
		_, err = c.BareMetal.ExpireActiveJob(ctx, op.Params.Server())
	} else {
		_, err = c.BareMetal.CancelActiveJob(ctx, op.Params.Server())
	}
	return err
}
