package leasewebsim_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
	"github.com/opsworker/opsworker/internal/testutil"
)

func setup(t *testing.T, cfg leasewebsim.Config) (*leasewebsim.Server, *leaseweb.Client, *testutil.Clock) {
	t.Helper()
	clock := testutil.NewClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	cfg.Now = clock.Now
	cfg.APIKey = "k"
	sim := leasewebsim.New(cfg)
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := leaseweb.New(srv.URL, leaseweb.WithAPIKey("k"))
	require.NoError(t, err)
	return sim, c, clock
}

func TestInstallMovesThroughTasks(t *testing.T) {
	t.Parallel()
	_, c, clock := setup(t, leasewebsim.Config{TaskDuration: time.Minute})
	job, err := c.BareMetal.LaunchInstallation(t.Context(), "12345", &leaseweb.InstallRequest{OperatingSystemID: "UBUNTU_22_04_64BIT"})
	require.NoError(t, err)
	assert.Equal(t, "ACTIVE", job.Status)
	assert.Equal(t, 7, job.Progress.Total)
	clock.Add(3 * time.Minute)
	job, err = c.BareMetal.GetJob(t.Context(), "12345", job.UUID)
	require.NoError(t, err)
	assert.Equal(t, 42, job.Progress.Percentage)
	assert.Equal(t, "PENDING", job.Tasks[3].Status)
	clock.Add(4 * time.Minute)
	job, err = c.BareMetal.GetJob(t.Context(), "12345", job.UUID)
	require.NoError(t, err)
	assert.Equal(t, "FINISHED", job.Status)
	assert.False(t, job.IsRunning)
	assert.Equal(t, 100, job.Progress.Percentage)
}

func TestOneActiveJobPerServer(t *testing.T) {
	t.Parallel()
	sim, c, _ := setup(t, leasewebsim.Config{TaskDuration: time.Minute})
	_, err := c.BareMetal.LaunchInstallation(t.Context(), "1", &leaseweb.InstallRequest{OperatingSystemID: "DEBIAN_11_64BIT"})
	require.NoError(t, err)
	_, err = c.BareMetal.LaunchRescueMode(t.Context(), "1", &leaseweb.RescueRequest{RescueImageID: "GRML"})
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, http.StatusConflict, pe.StatusCode)
	assert.Contains(t, pe.Message, "already has an active job")
	assert.Equal(t, 1, sim.Launches("1", "install"))
	assert.Equal(t, 0, sim.Launches("1", "rescueMode"))
	running := true
	list, err := c.BareMetal.ListJobs(t.Context(), "1", &leaseweb.ListJobsOptions{IsRunning: &running})
	require.NoError(t, err)
	assert.Len(t, list.Jobs, 1)
	assert.Empty(t, list.Jobs[0].Tasks, "list items carry no tasks")
}

func TestFailCancelExpire(t *testing.T) {
	t.Parallel()
	sim, c, clock := setup(t, leasewebsim.Config{TaskDuration: time.Minute})
	sim.FailNextJobs(1)
	j, err := c.BareMetal.LaunchInstallation(t.Context(), "1", &leaseweb.InstallRequest{OperatingSystemID: "DEBIAN_11_64BIT"})
	require.NoError(t, err)
	clock.Add(time.Hour)
	j, err = c.BareMetal.GetJob(t.Context(), "1", j.UUID)
	require.NoError(t, err)
	assert.Equal(t, "FAILED", j.Status)
	require.NotNil(t, j.Tasks[3].ErrorMessage)
	assert.Contains(t, *j.Tasks[3].ErrorMessage, "I/O errors")

	for _, tc := range []struct{ server, want, msg string }{{"2", "CANCELED", "canceled by the api consumer"}, {"3", "EXPIRED", "expired by the api consumer"}} {
		j, err := c.BareMetal.LaunchRescueMode(t.Context(), tc.server, &leaseweb.RescueRequest{RescueImageID: "GRML"})
		require.NoError(t, err)
		if tc.want == "CANCELED" {
			_, err = c.BareMetal.CancelActiveJob(t.Context(), tc.server)
		} else {
			_, err = c.BareMetal.ExpireActiveJob(t.Context(), tc.server)
		}
		require.NoError(t, err)
		clock.Add(time.Hour)
		j, err = c.BareMetal.GetJob(t.Context(), tc.server, j.UUID)
		require.NoError(t, err)
		assert.Equal(t, tc.want, j.Status, "stays so, whatever time passes")
		require.NotNil(t, j.Tasks[0].ErrorMessage)
		assert.Contains(t, *j.Tasks[0].ErrorMessage, tc.msg)
	}
	_, err = c.BareMetal.CancelActiveJob(t.Context(), "2")
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 404, pe.StatusCode, "no active job left")
}

func TestValidationAndAuth(t *testing.T) {
	t.Parallel()
	_, c, _ := setup(t, leasewebsim.Config{Servers: []string{"1"}})
	var pe *providers.Error
	_, err := c.BareMetal.LaunchInstallation(t.Context(), "1", &leaseweb.InstallRequest{OperatingSystemID: "TEMPLEOS"})
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 400, pe.StatusCode)
	assert.Equal(t, "Validation Failed (operatingSystemId: Unknown operating system TEMPLEOS)", pe.Message, "errorDetails kept")
	_, err = c.BareMetal.LaunchRescueMode(t.Context(), "1", &leaseweb.RescueRequest{RescueImageID: "GRML", PostInstallScript: base64.StdEncoding.EncodeToString([]byte("echo no shebang"))})
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 400, pe.StatusCode)
	_, err = c.BareMetal.LaunchInstallation(t.Context(), "2", &leaseweb.InstallRequest{OperatingSystemID: "DEBIAN_11_64BIT"})
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 404, pe.StatusCode, "unknown server")

}

func TestAuth(t *testing.T) {
	t.Parallel()
	sim := leasewebsim.New(leasewebsim.Config{APIKey: "right"})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := leaseweb.New(srv.URL, leaseweb.WithAPIKey("wrong"))
	require.NoError(t, err)
	_, err = c.BareMetal.ListJobs(t.Context(), "1", nil)
	var pe *providers.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 401, pe.StatusCode)
	assert.False(t, pe.Retryable())
	assert.NotContains(t, err.Error(), "wrong")
}

func TestCallbackWhenJobEnds(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	sim, c, clock := setup(t, leasewebsim.Config{TaskDuration: time.Minute})
	// An installation takes 7 minutes (7 tasks), a rescue 3. The rescue,
	// launched after the installation, ends first: its callback shows that
	// the simulator has looked at every job since, the installation first.
	j, err := c.BareMetal.LaunchInstallation(t.Context(), "5", &leaseweb.InstallRequest{OperatingSystemID: "UBUNTU_22_04_64BIT", CallbackURL: recv.URL + "/cb"})
	require.NoError(t, err)
	rescue, err := c.BareMetal.LaunchRescueMode(t.Context(), "6", &leaseweb.RescueRequest{RescueImageID: "GRML", CallbackURL: recv.URL + "/cb"})
	require.NoError(t, err)
	clock.Add(3 * time.Minute)
	testutil.WaitFor(t, 5*time.Second, "callback of the rescue", func() bool { return len(sim.Callbacks()) >= 1 })
	assert.Equal(t, []string{rescue.UUID}, sim.Callbacks(), "no callback while running")
	clock.Add(time.Hour)
	testutil.WaitFor(t, 5*time.Second, "callback", func() bool { return len(sim.Callbacks()) == 2 })
	assert.Equal(t, []string{rescue.UUID, j.UUID}, sim.Callbacks())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 2)
	var ended []leaseweb.Job
	for _, body := range got {
		var job leaseweb.Job
		require.NoError(t, json.Unmarshal([]byte(body), &job), body)
		ended = append(ended, job)
	}
	assert.Equal(t, rescue.UUID, ended[0].UUID)
	assert.Equal(t, j.UUID, ended[1].UUID)
	assert.Equal(t, "FINISHED", ended[0].Status)
	assert.Equal(t, "FINISHED", ended[1].Status)
}
