package bench

import (
	"fmt"
	"time"

	simexchange "easgate/engine/sim/exchange"
	simgraph "easgate/engine/sim/graph"
)

// Work is the remote work a run cannot avoid, counted in the organisation
// and the run: what any client, easgate or not, has to ask Exchange and
// Graph for.
type Work struct {
	// Exchange inventory: partnerships Get-MobileDevice returns (each also
	// needs its Get-MobileDeviceStatistics), and the CAS mailboxes holding
	// them (each also needs its UPN from Get-Mailbox).
	Devices   int `json:"devices"`
	Mailboxes int `json:"mailboxes"`
	// Exchange apply: Set-CASMailbox calls (one per mailbox with changes)
	// and the device IDs they add or remove.
	Edits   int `json:"edits"`
	Changes int `json:"changes"`
	// Graph: managed devices read, in pages of up to 1,000.
	ManagedDevices int `json:"managed_devices"`
	// Quick is a quick sync: Graph answers one filtered page.
	Quick bool `json:"quick"`
}

// Model is the simulators' cost model at a scale, and the concurrency
// Exchange allows the client (exchange.parallel, at most Exchange's 18
// sessions per user).
type Model struct {
	Scale    float64 `json:"scale"`
	Parallel int     `json:"parallel"`
}

// Floor is the least time a run can take under the model, and its parts.
type Floor struct {
	Session   time.Duration `json:"session"`   // one powershell.exe start and Exchange session, paid by every lane at once
	Inventory time.Duration `json:"inventory"` // Exchange inventory work, spread over the lanes
	Graph     time.Duration `json:"graph"`     // the Graph page chain (nextLink pages follow each other)
	Apply     time.Duration `json:"apply"`     // Set-CASMailbox work, spread over the lanes
	Total     time.Duration `json:"total"`
}

// FloorFormula states Floor's formula, for the report.
const FloorFormula = "floor = s × ( max(T_ps + (D·(c_dev + c_stat) + M·(c_cas + c_upn)) / P, G) + (E·c_edit + C·c_id) / P )"

// Floor returns the time a perfect client needs for w: it opens P
// Exchange sessions at once and keeps them for the whole run, spreads
// every cmdlet's work evenly over them, reads Graph while Exchange is
// read, and applies the plan over the same P sessions. Only the Graph
// page chain is sequential: each page's nextLink comes with the page
// before it. Graph's per-tenant limit (2,000 requests in 20 seconds) does
// not bind a chain of a few hundred pages. SMTP has no cost model.
func (m Model) Floor(w Work) Floor {
	p := max(m.Parallel, 1)
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * m.Scale) }
	f := Floor{Session: scale(simexchange.CostProcessStart + simexchange.CostRemoteSession)}
	inv := time.Duration(w.Devices)*(simexchange.CostPerDevice+simexchange.CostPerStatistic) +
		time.Duration(w.Mailboxes)*(simexchange.CostPerMailbox+simexchange.CostPerUPNLookup)
	f.Inventory = scale(inv / time.Duration(p))
	f.Graph = scale(graphChain(w))
	if w.Edits > 0 {
		f.Apply = scale((time.Duration(w.Edits)*simexchange.CostPerEdit + time.Duration(w.Changes)*simexchange.CostPerChange) / time.Duration(p))
	}
	f.Total = max(f.Session+f.Inventory, f.Graph) + f.Apply
	return f
}

// graphChain is the Graph part of a run at scale 1: discovery, a token,
// and the managedDevices pages one after the other.
func graphChain(w Work) time.Duration {
	pages := 1
	if !w.Quick {
		pages = max(1, (w.ManagedDevices+simgraph.MaxDevicePage-1)/simgraph.MaxDevicePage)
	}
	return simgraph.CostDiscovery + simgraph.CostToken + time.Duration(pages)*simgraph.CostDevicePage +
		time.Duration(w.ManagedDevices)*simgraph.CostPerDevice
}

// BaselineModel is the modelled time of the per-mailbox baseline for w:
// one process (start and session) lists the mailboxes; then one process
// per mailbox reads its CAS mailbox, UPN, partnerships and their
// statistics, and one process per change makes it, P processes at a time.
func (m Model) BaselineModel(w Work) time.Duration {
	p := time.Duration(max(m.Parallel, 1))
	ps := simexchange.CostProcessStart + simexchange.CostRemoteSession
	list := ps + time.Duration(w.Mailboxes)*simexchange.CostPerMailbox
	perMailbox := time.Duration(w.Mailboxes)*(ps+simexchange.CostPerMailbox+simexchange.CostPerUPNLookup) +
		time.Duration(w.Devices)*(simexchange.CostPerDevice+simexchange.CostPerStatistic)
	perChange := time.Duration(w.Changes) * (ps + simexchange.CostPerEdit + simexchange.CostPerChange)
	return time.Duration(float64(list+perMailbox/p+perChange/p) * m.Scale)
}

// Constants lists the cost model's constants, for the report.
func Constants() []string {
	return []string{
		fmt.Sprintf("T_ps = powershell.exe start + Exchange remote session = %v + %v", simexchange.CostProcessStart, simexchange.CostRemoteSession),
		fmt.Sprintf("c_dev = Get-MobileDevice per partnership = %v", simexchange.CostPerDevice),
		fmt.Sprintf("c_stat = Get-MobileDeviceStatistics per partnership = %v", simexchange.CostPerStatistic),
		fmt.Sprintf("c_cas = Get-CASMailbox per mailbox = %v", simexchange.CostPerMailbox),
		fmt.Sprintf("c_upn = Get-Mailbox per mailbox (its UPN) = %v", simexchange.CostPerUPNLookup),
		fmt.Sprintf("c_edit = Set-CASMailbox per call = %v; c_id = per device ID it adds or removes = %v", simexchange.CostPerEdit, simexchange.CostPerChange),
		fmt.Sprintf("G = Graph: discovery %v + token %v + per page of up to %d devices %v + %v a device",
			simgraph.CostDiscovery, simgraph.CostToken, simgraph.MaxDevicePage, simgraph.CostDevicePage, simgraph.CostPerDevice),
	}
}
