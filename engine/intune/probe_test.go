package intune

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim/graph"
	"easgate/engine/sim/org"
)

func TestConnectivityReport(t *testing.T) {
	tests := []struct {
		name     string
		roles    []string
		groups   []string
		readOK   bool
		missing  []string
		wantErrs []error
		mention  []string
	}{
		{name: "all permissions, no groups", readOK: true},
		{name: "all permissions and a group", groups: []string{org.GroupExecutives}, readOK: true},
		{name: "group permission not needed without groups", roles: []string{graph.RoleManagedDevicesRead}, readOK: true},
		{name: "broader roles satisfy", roles: []string{graph.RoleManagedDevicesReadWrite, graph.RoleDirectoryRead},
			groups: []string{org.GroupExecutives}, readOK: true},
		{name: "groups only", roles: []string{graph.RoleGroupMemberRead}, missing: []string{PermissionManagedDevices},
			wantErrs: []error{ErrForbidden}, mention: []string{PermissionManagedDevices, "Grant admin consent"}},
		{name: "devices only, with groups", roles: []string{graph.RoleManagedDevicesRead}, groups: []string{org.GroupExecutives},
			readOK: true, missing: []string{PermissionGroupMembers}, wantErrs: []error{ErrForbidden}, mention: []string{PermissionGroupMembers}},
		{name: "unknown group", groups: []string{"0b6f0c52-0000-4d2a-9c51-0a1e2b3c4d99"}, readOK: true,
			wantErrs: []error{engine.ErrGroupNotFound}, mention: []string{"0b6f0c52-0000-4d2a-9c51-0a1e2b3c4d99"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{users: 10, sim: graph.Options{Roles: tt.roles}})
			rep, err := e.client.Test(t.Context(), tt.groups...)
			for _, w := range tt.wantErrs {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
			if len(tt.wantErrs) == 0 && err != nil {
				t.Fatalf("err = %v", err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(rep.Error, m) {
					t.Errorf("report error %q does not mention %q", rep.Error, m)
				}
			}
			if !rep.TokenOK || rep.ReadOK != tt.readOK || !slices.Equal(rep.MissingRoles, tt.missing) {
				t.Fatalf("report %+v", rep)
			}
			if tt.readOK && rep.DevicesSeen != 1 {
				t.Fatalf("devices seen %d, want 1", rep.DevicesSeen)
			}
			if len(rep.Groups) != len(tt.groups) || len(rep.Permissions) != 2 || rep.Credential != "client secret" {
				t.Fatalf("report %+v", rep)
			}
			if rep.TokenExpires.Before(time.Now().Add(50*time.Minute)) || rep.GraphURL != e.url || rep.TenantID != e.sim.TenantID() {
				t.Fatalf("report %+v", rep)
			}
			if strings.Contains(rep.Error, e.sim.ClientSecret()) {
				t.Fatal("report holds the secret")
			}
		})
	}
}
