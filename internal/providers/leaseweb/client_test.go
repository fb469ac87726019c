package leaseweb_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/opsworker/opsworker/internal/providers"
	"github.com/opsworker/opsworker/internal/providers/leaseweb"
	"github.com/opsworker/opsworker/internal/providers/leaseweb/leasewebsim"
)

const key = "lsw-secret-key"

// setup is a client against a bare mux, for asserting request shapes.
func setup(t *testing.T) (*leaseweb.Client, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	return clientFor(t, mux), mux
}

// simClient is a client against a fresh Leaseweb simulator.
func simClient(t *testing.T) *leaseweb.Client {
	t.Helper()
	sim := leasewebsim.New(leasewebsim.Config{APIKey: key})
	t.Cleanup(sim.Close)
	return clientFor(t, sim)
}

func clientFor(t *testing.T, h http.Handler) *leaseweb.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := leaseweb.New(srv.URL, leaseweb.WithAPIKey(key))
	require.NoError(t, err)
	return c
}

func TestLaunchInstallationRequest(t *testing.T) {
	t.Parallel()
	c, mux := setup(t)
	mux.HandleFunc("POST /bareMetals/v2/servers/12345/install", func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, key, r.Header.Get("X-LSW-Auth"))
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		var body map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		assert.Equal(t, "UBUNTU_22_04_64BIT", body["operatingSystemId"])
		assert.Equal(t, []any{map[string]any{"filesystem": "ext4", "mountpoint": "/", "size": "*"}}, body["partitions"])
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"uuid":"3a867358-5b4b-44ee-88ac-4274603ef641","type":"install","status":"ACTIVE","isRunning":true,"createdAt":"2021-01-09T10:38:12+00:00","progress":{"pending":1,"waiting":25,"total":26,"percentage":0}}`)
	})
	script := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\n"))
	job, err := c.BareMetal.LaunchInstallation(t.Context(), "12345", &leaseweb.InstallRequest{
		OperatingSystemID: "UBUNTU_22_04_64BIT", Partitions: []leaseweb.Partition{{Filesystem: "ext4", Mountpoint: "/", Size: "*"}}, PostInstallScript: script})
	require.NoError(t, err)
	assert.Equal(t, "3a867358-5b4b-44ee-88ac-4274603ef641", job.UUID)
	assert.Equal(t, 26, job.Progress.Total)
	assert.Equal(t, time.Date(2021, 1, 9, 10, 38, 12, 0, time.UTC), job.Created().UTC())
}

func TestErrorEnvelopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		body      string
		code, msg string
		requestID string
		retryable bool
	}{
		{"Generic", 400, `{"errorCode":"APP00800","errorMessage":"The connection with the DB cannot be established.","correlationId":"550e8400-e29b-41d4-a716-446655440000","userMessage":"Cannot handle your request at the moment.","reference":"https://developer.leaseweb.com/errors/APP00800"}`,
			"APP00800", "The connection with the DB cannot be established. (Cannot handle your request at the moment.)", "550e8400-e29b-41d4-a716-446655440000", false},
		{"IntegerCode", 400, `{"correlationId":"c-1","errorCode":400,"errorMessage":"Validation Failed","errorDetails":{"operatingSystemId":["This value should not be blank."]}}`, "400", "Validation Failed (operatingSystemId: This value should not be blank.)", "c-1", false},
		{"Details", 400, `{"correlationId":"c-4","errorCode":"400","errorMessage":"Validation Failed.","errorDetails":{"sshKeys":["Invalid key."],"hostname":"not a valid hostname","raid":{"level":"unsupported"}}}`,
			"400", `Validation Failed. (hostname: not a valid hostname; raid: {"level":"unsupported"}; sshKeys: Invalid key.)`, "c-4", false},
		{"EmptyDetails", 400, `{"correlationId":"c-5","errorCode":"400","errorDetails":{},"errorMessage":"The API could not interpret your request correctly."}`,
			"400", "The API could not interpret your request correctly.", "c-5", false},
		{"AccessDenied", 403, `{"errorCode":"ACCESS_DENIED","errorMessage":"The access token is expired or invalid."}`, "ACCESS_DENIED", "The access token is expired or invalid.", "", false},
		{"NotFound", 404, `{"correlationId":"c-2","errorCode":"404","errorMessage":"Resource not found"}`, "404", "Resource not found", "c-2", false},
		{"Unavailable", 503, `{"correlationId":"c-3","errorCode":"503","errorMessage":"The API is not available at the moment."}`, "503", "The API is not available at the moment.", "c-3", true},
		{"NotJSON", 502, `<html>bad gateway</html>`, "", "<html>bad gateway</html>", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mux := setup(t)
			mux.HandleFunc("GET /bareMetals/v2/servers/1/jobs/j", func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			_, err := c.BareMetal.GetJob(t.Context(), "1", "j")
			var pe *providers.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.code, pe.Code)
			assert.Equal(t, tc.msg, pe.Message)
			assert.Equal(t, tc.requestID, pe.RequestID)
			assert.Equal(t, tc.retryable, pe.Retryable())
			assert.NotContains(t, err.Error(), key)
		})
	}
}

func TestParseTimeFormats(t *testing.T) {
	t.Parallel()
	want := time.Date(2021, 3, 6, 21, 55, 32, 0, time.UTC)
	for _, s := range []string{"2021-03-06T21:55:32Z", "2021-03-06T21:55:32+00:00", "2021-03-06T21:55:32+0000", "2021-03-06T21:55:32"} {
		assert.True(t, want.Equal(leaseweb.ParseTime(s)), s)
	}
	assert.True(t, leaseweb.ParseTime("").IsZero())
}
