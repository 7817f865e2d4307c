package graph

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"easgate/engine/sim/org"
)

// MaxDevicePage is the largest (and default) managedDevices page.
const MaxDevicePage = 1000

// graphMaxDate is what Graph reports for a grace period that never ends.
var graphMaxDate = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// deviceField writes one property of a managedDevice.
type deviceField struct {
	name  string
	write func(w *jw, d *org.ManagedDevice, u *org.User)
}

// deviceFields are the managedDevice properties Graph v1.0 returns, in its
// schema order. Those the simulated org does not model get the values a
// real tenant typically shows.
var deviceFields = []deviceField{
	{"id", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.ID) }},
	{"userId", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.UserID) }},
	{"deviceName", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.DeviceName) }},
	{"managedDeviceOwnerType", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("company") }},
	{"enrolledDateTime", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.time(d.EnrolledDateTime) }},
	{"lastSyncDateTime", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.time(d.LastSyncDateTime) }},
	{"operatingSystem", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.OperatingSystem) }},
	{"complianceState", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(complianceOf(d)) }},
	{"jailBroken", func(w *jw, d *org.ManagedDevice, _ *org.User) {
		switch d.OperatingSystem {
		case "iOS", "iPadOS", "Android":
			w.str("False")
		default:
			w.str("Unknown")
		}
	}},
	{"managementAgent", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.ManagementAgent) }},
	{"osVersion", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.OSVersion) }},
	{"easActivated", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.bool(d.EASActivated) }},
	{"easDeviceId", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.EASDeviceID) }},
	{"easActivationDateTime", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.time(time.Time{}) }},
	{"azureADRegistered", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.bool(true) }},
	{"deviceEnrollmentType", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("userEnrollment") }},
	{"activationLockBypassCode", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.null() }},
	{"emailAddress", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.EmailAddress) }},
	{"azureADDeviceId", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(derivedGUID(d.ID)) }},
	{"deviceRegistrationState", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("registered") }},
	{"deviceCategoryDisplayName", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("Unknown") }},
	{"isSupervised", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.bool(false) }},
	{"exchangeLastSuccessfulSyncDateTime", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.time(time.Time{}) }},
	{"exchangeAccessState", func(w *jw, d *org.ManagedDevice, _ *org.User) {
		if d.ExchangeAccessState == "" {
			w.str("none")
			return
		}
		w.str(d.ExchangeAccessState)
	}},
	{"exchangeAccessStateReason", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("none") }},
	{"remoteAssistanceSessionUrl", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.null() }},
	{"remoteAssistanceSessionErrorDetails", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.null() }},
	{"isEncrypted", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.bool(true) }},
	{"userPrincipalName", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.UserPrincipalName) }},
	{"model", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.Model) }},
	{"manufacturer", func(w *jw, d *org.ManagedDevice, _ *org.User) { w.str(d.Manufacturer) }},
	{"imei", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("") }},
	{"complianceGracePeriodExpirationDateTime", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.time(graphMaxDate) }},
	{"serialNumber", func(w *jw, d *org.ManagedDevice, _ *org.User) {
		w.str(strings.ToUpper(strings.ReplaceAll(derivedGUID(d.ID), "-", "")[:12]))
	}},
	{"phoneNumber", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("") }},
	{"androidSecurityPatchLevel", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("") }},
	{"userDisplayName", func(w *jw, _ *org.ManagedDevice, u *org.User) {
		if u == nil {
			w.null()
			return
		}
		w.str(u.DisplayName)
	}},
	{"configurationManagerClientEnabledFeatures", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.null() }},
	{"wiFiMacAddress", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("") }},
	{"deviceHealthAttestationState", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.null() }},
	{"subscriberCarrier", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("") }},
	{"meid", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("") }},
	{"totalStorageSpaceInBytes", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.int(128 << 30) }},
	{"freeStorageSpaceInBytes", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.int(41 << 30) }},
	{"managedDeviceName", func(w *jw, d *org.ManagedDevice, _ *org.User) {
		local, _, _ := strings.Cut(d.UserPrincipalName, "@")
		w.str(local + "_" + d.OperatingSystem + "_" + d.EnrolledDateTime.UTC().Format("1/2/2006_3:04 PM"))
	}},
	{"partnerReportedThreatState", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.str("unknown") }},
	{"deviceActionResults", func(w *jw, _ *org.ManagedDevice, _ *org.User) { w.raw("[]") }},
}

var deviceFieldIndex = func() map[string]int {
	m := make(map[string]int, len(deviceFields))
	for i, f := range deviceFields {
		m[f.name] = i
	}
	return m
}()

// complianceOf is the device's complianceState as Graph spells it; the org
// may hold any string, including values Graph adds later.
func complianceOf(d *org.ManagedDevice) string {
	if d.ComplianceState == "" {
		return "unknown"
	}
	return d.ComplianceState
}

// derivedGUID makes a stable GUID-shaped value from another ID.
func derivedGUID(id string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(h>>32), uint16(h>>16), uint16(h)&0xfff, uint16(h>>4)&0xfff, h&0xffffffffffff)
}

// managedDevices serves GET /v1.0/deviceManagement/managedDevices.
func (s *Server) managedDevices(w http.ResponseWriter, r *http.Request, c *reqCtx, cur cursor) {
	q := r.URL.Query()
	sel, unknown := parseSelect(q.Get("$select"), func(n string) bool { _, ok := deviceFieldIndex[n]; return ok })
	if unknown != "" {
		s.graphError(w, r, c, http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.managedDevice'.", unknown))
		return
	}
	top := MaxDevicePage
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.graphError(w, r, c, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid value '%s' for query option $top.", v))
			return
		}
		top = min(n, MaxDevicePage)
	}
	filter := parseDeviceFilter(q.Get("$filter"))
	if s.noFilter {
		filter = nil
	}
	fields := deviceFields
	if sel != nil {
		fields = make([]deviceField, 0, len(sel))
		seen := map[int]bool{}
		for _, n := range sel {
			if i := deviceFieldIndex[n]; !seen[i] {
				seen[i] = true
				fields = append(fields, deviceFields[i])
			}
		}
	}

	s.org.Mu.RLock()
	devs := s.org.Managed
	i := cur.start(len(devs), func(i int) string { return devs[i].ID })
	page := make([]*org.ManagedDevice, 0, min(top, 64))
	for ; i < len(devs) && len(page) < top; i++ {
		if filter == nil || filter(devs[i]) {
			page = append(page, devs[i])
		}
	}
	for i < len(devs) && filter != nil && !filter(devs[i]) {
		i++
	}
	more := i < len(devs)
	next := cursor{page: cur.page + 1, index: i}
	if more {
		next.nextID = devs[i].ID
	}

	j := jw{b: make([]byte, 0, 256+len(page)*(80+40*len(fields)))}
	j.raw(`{"@odata.context":`)
	ctxURL := baseURL(r) + "/v1.0/$metadata#deviceManagement/managedDevices"
	if sel != nil {
		ctxURL += "(" + strings.Join(sel, ",") + ")"
	}
	j.str(ctxURL)
	if more {
		j.raw(`,"@odata.nextLink":`)
		j.str(s.nextLink(r, next))
	}
	j.raw(`,"value":[`)
	for n, d := range page {
		if n > 0 {
			j.raw(",")
		}
		var u *org.User
		if d.UserID != "" {
			u = s.org.UserByID(d.UserID)
		}
		j.raw("{")
		first := true
		for _, f := range fields {
			j.key(&first, f.name)
			f.write(&j, d, u)
		}
		j.raw("}")
	}
	s.org.Mu.RUnlock()
	j.raw("]}")

	if !s.pay(r, devicePageCost(len(page), len(fields))) {
		return
	}
	s.count(func(st *Stats) {
		st.Graph++
		st.ByPath[PathManagedDevices]++
		st.Pages++
		st.Objects += len(page)
	})
	writeJSON(w, r, http.StatusOK, j.b)
}
