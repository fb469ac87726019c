package leaseweb

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// PublicCloudService is the public cloud API: /publicCloud/v1 (instances,
// VPS, snapshots, auto scaling groups).
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html
// and https://developer.leaseweb.com/api-docs/vps_v1.html
type PublicCloudService service

// Instance is a public cloud instance or a VPS (the fields used here).
type Instance struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	State  string `json:"state"`
	Region string `json:"region,omitempty"`
	// Reference is the customer's label.
	Reference string `json:"reference,omitempty"`
	// Image is what the machine runs (nil when not reported).
	Image *Image `json:"image,omitempty"`
}

// Image is an operating system image of a machine.
type Image struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// ImageID is the machine's image id ("" when not reported).
func (m *Instance) ImageID() string {
	if m.Image == nil {
		return ""
	}
	return m.Image.ID
}

// Instance states (the state filter's enum).
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Get instance list")
const (
	InstanceRunning  = "RUNNING"
	InstanceStopped  = "STOPPED"
	InstanceFailed   = "FAILED"
	InstanceStarting = "STARTING"
	InstanceStopping = "STOPPING"
)

// Snapshot of an instance or VPS.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Get snapshot detail")
type Snapshot struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	State       string `json:"state"`
	Created     string `json:"created"`
}

// InstanceType is one type an instance may change to.
type InstanceType struct {
	Name string `json:"name"`
}

// AutoScalingGroup is an auto scaling group. Unused fields are null.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Get Auto Scaling Group details")
type AutoScalingGroup struct {
	ID            string  `json:"id"`
	Type          string  `json:"type"`
	State         string  `json:"state"`
	DesiredAmount *int    `json:"desiredAmount"`
	MinimumAmount *int    `json:"minimumAmount"`
	MaximumAmount *int    `json:"maximumAmount"`
	CPUThreshold  *int    `json:"cpuThreshold"`
	WarmupTime    *int    `json:"warmupTime"`
	CooldownTime  *int    `json:"cooldownTime"`
	StartsAt      *string `json:"startsAt"`
	EndsAt        *string `json:"endsAt"`
	Reference     string  `json:"reference,omitempty"`
	Region        string  `json:"region,omitempty"`
}

// ASG types.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Create Auto Scaling Group")
const (
	ASGManual    = "MANUAL"
	ASGScheduled = "SCHEDULED"
	ASGCPUBased  = "CPU_BASED"
)

// UpdateAutoScalingGroupRequest changes a group; nil fields are left out.
type UpdateAutoScalingGroupRequest struct {
	DesiredAmount *int    `json:"desiredAmount,omitempty"`
	MinimumAmount *int    `json:"minimumAmount,omitempty"`
	MaximumAmount *int    `json:"maximumAmount,omitempty"`
	CPUThreshold  *int    `json:"cpuThreshold,omitempty"`
	WarmupTime    *int    `json:"warmupTime,omitempty"`
	CooldownTime  *int    `json:"cooldownTime,omitempty"`
	StartsAt      *string `json:"startsAt,omitempty"`
	EndsAt        *string `json:"endsAt,omitempty"`
}

// Machine kinds whose snapshots this service handles.
const (
	MachineInstance = "instances"
	MachineVPS      = "vps"
)

func machinePath(kind, id string) string { return "/publicCloud/v1/" + kind + "/" + url.PathEscape(id) }

// GetMachine reads an instance (kind MachineInstance) or a VPS (MachineVPS).
func (s *PublicCloudService) GetMachine(ctx context.Context, kind, id string) (*Instance, error) {
	var in Instance
	return &in, s.c.do(ctx, "get "+kind, http.MethodGet, machinePath(kind, id), nil, nil, &in)
}

// ListSnapshots lists a machine's snapshots: GET .../{id}/snapshots.
func (s *PublicCloudService) ListSnapshots(ctx context.Context, kind, id string) ([]Snapshot, error) {
	var out struct {
		Snapshots []Snapshot `json:"snapshots"`
	}
	err := s.c.do(ctx, "list snapshots", http.MethodGet, machinePath(kind, id)+"/snapshots", url.Values{"limit": {"50"}}, nil, &out)
	return out.Snapshots, err
}

// GetSnapshot reads one snapshot: GET .../{id}/snapshots/{snapshotId}.
func (s *PublicCloudService) GetSnapshot(ctx context.Context, kind, id, snapshotID string) (*Snapshot, error) {
	var snap Snapshot
	return &snap, s.c.do(ctx, "get snapshot", http.MethodGet, machinePath(kind, id)+"/snapshots/"+url.PathEscape(snapshotID), nil, nil, &snap)
}

// CreateSnapshot asks for a snapshot named name: POST .../{id}/snapshots.
// The answer has no documented body: find the snapshot by listing.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Create instance snapshot")
func (s *PublicCloudService) CreateSnapshot(ctx context.Context, kind, id, name string) error {
	return s.c.do(ctx, "create snapshot", http.MethodPost, machinePath(kind, id)+"/snapshots", nil, map[string]string{"name": name}, nil)
}

// DeleteSnapshot deletes a snapshot: DELETE .../{id}/snapshots/{snapshotId}.
func (s *PublicCloudService) DeleteSnapshot(ctx context.Context, kind, id, snapshotID string) error {
	return s.c.do(ctx, "delete snapshot", http.MethodDelete, machinePath(kind, id)+"/snapshots/"+url.PathEscape(snapshotID), nil, nil, nil)
}

// RestoreSnapshot restores a machine from its snapshot: PUT
// .../{id}/snapshots/{snapshotId}, no body. The answer has no documented
// body: the machine's state tells the progress.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Restore instance snapshot")
func (s *PublicCloudService) RestoreSnapshot(ctx context.Context, kind, id, snapshotID string) error {
	return s.c.do(ctx, "restore snapshot", http.MethodPut, machinePath(kind, id)+"/snapshots/"+url.PathEscape(snapshotID), nil, nil, nil)
}

// ReinstallMachine recreates a machine from an image, wiping its disk:
// PUT .../{id}/reinstall with imageId (and marketAppId). The answer has
// no documented body; Leaseweb refuses a machine that has a snapshot.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Reinstall an Instance")
func (s *PublicCloudService) ReinstallMachine(ctx context.Context, kind, id, imageID, marketAppID string) error {
	body := map[string]string{"imageId": imageID}
	if marketAppID != "" {
		body["marketAppId"] = marketAppID
	}
	return s.c.do(ctx, "reinstall "+kind, http.MethodPut, machinePath(kind, id)+"/reinstall", nil, body, nil)
}

// UpdateInstanceType changes an instance's type: PUT
// /publicCloud/v1/instances/{id} with {"type": ...}.
func (s *PublicCloudService) UpdateInstanceType(ctx context.Context, id, typ string) (*Instance, error) {
	var in Instance
	return &in, s.c.do(ctx, "update instance", http.MethodPut, machinePath(MachineInstance, id), nil, map[string]string{"type": typ}, &in)
}

// ListInstanceTypesUpdate lists the types an instance may change to:
// GET /publicCloud/v1/instances/{id}/instanceTypesUpdate.
func (s *PublicCloudService) ListInstanceTypesUpdate(ctx context.Context, id string) ([]InstanceType, error) {
	var out struct {
		InstanceTypes []InstanceType `json:"instanceTypes"`
	}
	err := s.c.do(ctx, "list instance types", http.MethodGet, machinePath(MachineInstance, id)+"/instanceTypesUpdate", url.Values{"limit": {"50"}}, nil, &out)
	return out.InstanceTypes, err
}

func asgPath(id string) string { return "/publicCloud/v1/autoScalingGroups/" + url.PathEscape(id) }

// GetAutoScalingGroup reads a group.
func (s *PublicCloudService) GetAutoScalingGroup(ctx context.Context, id string) (*AutoScalingGroup, error) {
	var g AutoScalingGroup
	return &g, s.c.do(ctx, "get auto scaling group", http.MethodGet, asgPath(id), nil, nil, &g)
}

// UpdateAutoScalingGroup changes a group: PUT .../autoScalingGroups/{id}.
func (s *PublicCloudService) UpdateAutoScalingGroup(ctx context.Context, id string, req *UpdateAutoScalingGroupRequest) (*AutoScalingGroup, error) {
	var g AutoScalingGroup
	return &g, s.c.do(ctx, "update auto scaling group", http.MethodPut, asgPath(id), nil, req, &g)
}

// CreateAutoScalingGroupRequest is the body of Create Auto Scaling Group;
// which amounts are required depends on the type.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Create Auto Scaling Group")
type CreateAutoScalingGroupRequest struct {
	Type          string  `json:"type"`
	InstanceID    string  `json:"instanceId"`
	Reference     string  `json:"reference"`
	DesiredAmount *int    `json:"desiredAmount,omitempty"`
	StartsAt      *string `json:"startsAt,omitempty"`
	EndsAt        *string `json:"endsAt,omitempty"`
	MinimumAmount *int    `json:"minimumAmount,omitempty"`
	MaximumAmount *int    `json:"maximumAmount,omitempty"`
	CPUThreshold  *int    `json:"cpuThreshold,omitempty"`
	WarmupTime    *int    `json:"warmupTime,omitempty"`
	CooldownTime  *int    `json:"cooldownTime,omitempty"`
}

// CreateAutoScalingGroup creates a group: POST
// /publicCloud/v1/autoScalingGroups (201, the group CREATING).
func (s *PublicCloudService) CreateAutoScalingGroup(ctx context.Context, req *CreateAutoScalingGroupRequest) (*AutoScalingGroup, error) {
	var g AutoScalingGroup
	return &g, s.c.do(ctx, "create auto scaling group", http.MethodPost, "/publicCloud/v1/autoScalingGroups", nil, req, &g)
}

// ListAutoScalingGroups lists the groups with a reference ("" lists the
// first 50 of all): GET /publicCloud/v1/autoScalingGroups?reference=.
func (s *PublicCloudService) ListAutoScalingGroups(ctx context.Context, reference string) ([]AutoScalingGroup, error) {
	var out struct {
		Groups []AutoScalingGroup `json:"autoScalingGroups"`
	}
	q := url.Values{"limit": {"50"}}
	if reference != "" {
		q.Set("reference", reference)
	}
	err := s.c.do(ctx, "list auto scaling groups", http.MethodGet, "/publicCloud/v1/autoScalingGroups", q, nil, &out)
	return out.Groups, err
}

// ListAutoScalingGroupsPage reads one page of the account's groups: GET
// /publicCloud/v1/autoScalingGroups?limit=&offset=. It returns the page
// and _metadata.totalCount.
//
// Leaseweb API docs: https://developer.leaseweb.com/api-docs/publiccloud_v1.html ("Get Auto Scaling Group list")
func (s *PublicCloudService) ListAutoScalingGroupsPage(ctx context.Context, limit, offset int) ([]AutoScalingGroup, int, error) {
	var out struct {
		Groups   []AutoScalingGroup `json:"autoScalingGroups"`
		Metadata struct {
			TotalCount int `json:"totalCount"`
		} `json:"_metadata"`
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
	err := s.c.do(ctx, "list auto scaling groups", http.MethodGet, "/publicCloud/v1/autoScalingGroups", q, nil, &out)
	return out.Groups, out.Metadata.TotalCount, err
}

// DeleteAutoScalingGroup deletes a group: DELETE
// .../autoScalingGroups/{id}. The answer has no documented body; the
// group reads DESTROYING, then DESTROYED or 404.
func (s *PublicCloudService) DeleteAutoScalingGroup(ctx context.Context, id string) error {
	return s.c.do(ctx, "delete auto scaling group", http.MethodDelete, asgPath(id), nil, nil, nil)
}

// ListAutoScalingGroupInstances lists a group's instances.
func (s *PublicCloudService) ListAutoScalingGroupInstances(ctx context.Context, id string) ([]Instance, error) {
	var out struct {
		Instances []Instance `json:"instances"`
	}
	err := s.c.do(ctx, "list group instances", http.MethodGet, asgPath(id)+"/instances", url.Values{"limit": {"100"}}, nil, &out)
	return out.Instances, err
}
