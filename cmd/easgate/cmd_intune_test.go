package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easgate/engine/sim/graph"
	"easgate/engine/sim/org"
)

// wantIntuneDevice is the CONTRACTS.md raw shape of a simulated device, as
// Graph reports it.
func wantIntuneDevice(d *org.ManagedDevice) map[string]any {
	str := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	date := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339)
	}
	compliance := d.ComplianceState
	if compliance == "" {
		compliance = "unknown"
	}
	access := d.ExchangeAccessState
	if access == "" {
		access = "none"
	}
	return map[string]any{
		"id": d.ID, "user_principal_name": d.UserPrincipalName, "email": d.EmailAddress, "device_name": d.DeviceName,
		"operating_system": d.OperatingSystem, "os_version": d.OSVersion, "model": d.Model, "manufacturer": d.Manufacturer,
		"eas_device_id": str(d.EASDeviceID), "eas_activated": d.EASActivated, "compliance": compliance,
		"management_agent": d.ManagementAgent, "exchange_access_state": access,
		"enrolled": date(d.EnrolledDateTime), "last_sync": date(d.LastSyncDateTime),
	}
}

func TestCLIIntuneDevicesPrintsTheSimulatedDevices(t *testing.T) {
	s := startSim(t, 60, 11)
	r := run(t, "intune", "devices", "--config", s.Info.ConfigFile, "--output", "json")
	if r.code != 0 {
		t.Fatalf("intune devices: exit %d\n%s", r.code, r.stderr)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, r.stdout)
	}
	s.Org.Mu.RLock()
	want := make([]map[string]any, len(s.Org.Managed))
	for i, d := range s.Org.Managed {
		want[i] = wantIntuneDevice(d)
	}
	s.Org.Mu.RUnlock()
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d devices printed, want %d", len(got), len(want))
	}
	nullEAS := 0
	for i := range want {
		g, _ := json.Marshal(got[i])
		w, _ := json.Marshal(want[i])
		if string(g) != string(w) {
			t.Fatalf("device %d:\ngot  %s\nwant %s", i, g, w)
		}
		if got[i]["eas_device_id"] == nil {
			nullEAS++
		}
	}
	if nullEAS == 0 {
		t.Error("no device without an EAS ID: the null case went untested")
	}
	if r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}

	text := run(t, "intune", "devices", "--config", s.Info.ConfigFile, "--output", "text")
	if text.code != 0 || strings.Count(text.stdout, "\n") != len(want)+1 || !strings.Contains(text.stdout, "COMPLIANCE") {
		t.Fatalf("text output: exit %d, %d lines\n%s", text.code, strings.Count(text.stdout, "\n"), text.stderr)
	}
}

func TestCLIIntuneDevicesIncompleteExitsOne(t *testing.T) {
	s := startSim(t, 1500, 5) // more than one page of 1000
	s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 2, Status: http.StatusInternalServerError})
	r := run(t, "intune", "devices", "--config", s.Info.ConfigFile)
	if r.code != exitFailed || !strings.Contains(r.stderr, "page 2") || !strings.Contains(r.stderr, "incomplete") {
		t.Fatalf("exit %d, stderr %q: want 1 and the missing page named", r.code, r.stderr)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 1000 {
		t.Fatalf("%d devices printed (%v), want page 1's 1000", len(got), err)
	}
}

func TestCLIIntuneTest(t *testing.T) {
	s := startSim(t, 20, 3)
	// A config whose policy names groups, so that they are probed.
	cfgPath := filepath.Join(s.Dir, "groups.yaml")
	raw, err := os.ReadFile(s.Info.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	withGroups := string(raw) + "policy:\n  include_groups: [" + org.GroupMobileUsers + "]\n  exclude_groups: [" + org.GroupExempt + "]\n"
	if err := os.WriteFile(cfgPath, []byte(withGroups), 0o600); err != nil {
		t.Fatal(err)
	}

	ok := run(t, "intune", "test", "--config", cfgPath)
	if ok.code != 0 || !strings.Contains(ok.stdout, "result:      OK") || strings.Count(ok.stdout, ") ok") != 2 {
		t.Fatalf("intune test: exit %d\n%s%s", ok.code, ok.stdout, ok.stderr)
	}
	if strings.Contains(ok.stdout, s.Info.ClientSecret) {
		t.Fatal("the report shows the client secret")
	}

	var rep map[string]any
	js := run(t, "intune", "test", "--config", cfgPath, "--output", "json")
	if js.code != 0 || json.Unmarshal([]byte(js.stdout), &rep) != nil || rep["read_ok"] != true || rep["token_ok"] != true {
		t.Fatalf("intune test --output json: exit %d\n%s", js.code, js.stdout)
	}

	// Graph refuses the devices: the report says which permission, exit 1.
	s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, Status: http.StatusForbidden})
	bad := run(t, "intune", "test", "--config", cfgPath)
	if bad.code != exitFailed || !strings.Contains(bad.stdout, "DeviceManagementManagedDevices.Read.All") ||
		!strings.Contains(bad.stdout, "Grant admin consent") || !strings.Contains(bad.stderr, "intune test failed") {
		t.Fatalf("exit %d, want 1 naming the permission\n%s%s", bad.code, bad.stdout, bad.stderr)
	}
}

func TestCLIIntuneConfigErrorsExitTwo(t *testing.T) {
	s := startSim(t, 5, 1)
	raw, err := os.ReadFile(s.Info.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(s.Dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A certificate the adapter cannot read instead of the secret.
	cfg := strings.Replace(string(raw), "client_secret_file: "+filepath.Join(s.Dir, "graph-secret"), "certificate_file: "+junk, 1)
	path := filepath.Join(s.Dir, "badcert.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unreadable certificate", args: []string{"intune", "test", "--config", path}, want: "certificate_file"},
		{name: "no config file", args: []string{"intune", "devices", "--config", filepath.Join(s.Dir, "absent.yaml")}, want: "absent.yaml"},
		{name: "bad output", args: []string{"intune", "devices", "--config", s.Info.ConfigFile, "--output", "xml"}, want: "--output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q: want 2 mentioning %q", r.code, r.stderr, tt.want)
			}
		})
	}
}
