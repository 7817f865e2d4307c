package graph

import (
	"net/http"
	"time"
)

// The cost model: how long a real tenant takes to answer, so that a
// benchmark against the simulator shows where easgate's time would go (a
// 100,000-device inventory is about a hundred sequential pages, and the
// pages, not the client, dominate). It is off unless Options.CostScale is
// set; every response is then held back for its cost times CostScale, so
// 1 is real time and 0.01 a hundred times faster. A client that gives up
// waiting (its context ends) gets no answer, as with a real server.
//
// The figures are assumptions, not measurements of Graph: the order of
// magnitude that administrators report for large tenants, where a page of
// 1,000 managed devices with a narrow $select takes one to two seconds and
// the unselected page several times as long. Calibrate them against a real
// tenant (`easgate intune devices` logs the read's pages and duration)
// before trusting absolute numbers; the ratios are what matter.
const (
	// CostDiscovery is the authority's OpenID configuration document.
	CostDiscovery = 80 * time.Millisecond
	// CostToken is a client-credentials token request.
	CostToken = 200 * time.Millisecond
	// CostDevicePage is the fixed part of a managedDevices page.
	CostDevicePage = 300 * time.Millisecond
	// CostPerDevice is each device on a page with a $select of at most
	// selectNarrow properties.
	CostPerDevice = 1200 * time.Microsecond
	// CostPerDeviceWide is each device on a page without $select, or with
	// a wider one: Intune assembles every property.
	CostPerDeviceWide = 4 * time.Millisecond
	// CostDirectoryPage is the fixed part of a transitiveMembers page.
	CostDirectoryPage = 150 * time.Millisecond
	// CostPerMember is each user on a transitiveMembers page.
	CostPerMember = 250 * time.Microsecond
)

// selectNarrow is the widest $select the cost model still calls narrow:
// easgate's own selects 16 of managedDevice's properties.
const selectNarrow = 20

// pay holds the response for cost times the cost scale; false means the
// client went away.
func (s *Server) pay(r *http.Request, cost time.Duration) bool {
	if s.cost <= 0 {
		return true
	}
	return s.delay(r, time.Duration(float64(cost)*s.cost))
}

// devicePageCost is the cost of a managedDevices page of n devices with
// fields properties each.
func devicePageCost(n, fields int) time.Duration {
	per := CostPerDevice
	if fields > selectNarrow {
		per = CostPerDeviceWide
	}
	return CostDevicePage + time.Duration(n)*per
}

// memberPageCost is the cost of a transitiveMembers page of n users.
func memberPageCost(n int) time.Duration {
	return CostDirectoryPage + time.Duration(n)*CostPerMember
}
