package exchange

import (
	"context"
	"sync/atomic"
	"time"
)

// What a real Exchange 2016/2019 server spends on the work easgate's
// scripts ask of it, roughly: the figures admins report for a quiet
// server with the mailboxes on local databases. They are estimates to
// show where time goes, not measurements of one server.
const (
	// CostProcessStart is powershell.exe starting (Windows PowerShell 5.1,
	// -NoProfile) until its first line runs.
	CostProcessStart = 1200 * time.Millisecond
	// CostRemoteSession is New-PSSession to http://<server>/PowerShell/
	// with Kerberos, plus Import-PSSession of the scripts' cmdlets.
	CostRemoteSession = 3500 * time.Millisecond
	// CostSnapin is Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn.
	CostSnapin = 6 * time.Second
	// CostPerDevice is Get-MobileDevice -ResultSize Unlimited, per
	// partnership streamed.
	CostPerDevice = 6 * time.Millisecond
	// CostPerMailbox is Get-CASMailbox, per mailbox returned.
	CostPerMailbox = 8 * time.Millisecond
	// CostPerUPNLookup is Get-Mailbox for one mailbox piped into it (the
	// inventory reads each mailbox's UPN so).
	CostPerUPNLookup = 20 * time.Millisecond
	// CostPerStatistic is Get-MobileDeviceStatistics of one partnership,
	// which opens the device's sync state in the mailbox.
	CostPerStatistic = 60 * time.Millisecond
	// CostPerEdit is one Set-CASMailbox call (an Active Directory write).
	CostPerEdit = 120 * time.Millisecond
	// CostPerChange is each device ID one Set-CASMailbox adds or removes.
	CostPerChange = 2 * time.Millisecond
	// CostAdminCmdlet is one Remove-MobileDevice, Clear-MobileDevice,
	// device access rule or organisation settings change, or one
	// Get-MobileDeviceStatistics of a single device.
	CostAdminCmdlet = 250 * time.Millisecond
)

// Cost is the cost model: how long each piece of work takes, applied as
// real sleeps in the host so that wall time reflects it. A nil *Cost (the
// default) costs nothing.
type Cost struct {
	ProcessStart, RemoteSession, Snapin               time.Duration
	PerDevice, PerMailbox, PerUPNLookup, PerStatistic time.Duration
	PerEdit, PerChange, AdminCmdlet                   time.Duration
	// Scale multiplies every cost: 1 is real time, 0.01 a hundredth of it.
	Scale float64
}

// DefaultCost returns the documented costs above, scaled.
func DefaultCost(scale float64) *Cost {
	return &Cost{
		ProcessStart: CostProcessStart, RemoteSession: CostRemoteSession, Snapin: CostSnapin,
		PerDevice: CostPerDevice, PerMailbox: CostPerMailbox, PerUPNLookup: CostPerUPNLookup, PerStatistic: CostPerStatistic,
		PerEdit: CostPerEdit, PerChange: CostPerChange, AdminCmdlet: CostAdminCmdlet,
		Scale: scale,
	}
}

// minSleep is the smallest sleep the meter takes; smaller costs add up
// until they reach it, so that thousands of microsecond costs cost their
// sum and not a timer each.
const minSleep = 2 * time.Millisecond

// meter charges one process's costs against the clock.
type meter struct {
	cost  *Cost
	debt  time.Duration
	slept *atomic.Int64 // the host's total, in nanoseconds
}

// charge adds d (unscaled) and sleeps once the debt is worth a sleep. It
// returns false when ctx ended first (the command was terminated).
func (m *meter) charge(ctx context.Context, d time.Duration, n int) bool {
	if m.cost == nil || d <= 0 || n <= 0 {
		return ctx.Err() == nil
	}
	m.debt += time.Duration(float64(d) * float64(n) * m.cost.Scale)
	if m.debt < minSleep {
		return ctx.Err() == nil
	}
	return m.settle(ctx)
}

// settle sleeps off the debt.
func (m *meter) settle(ctx context.Context) bool {
	if m.debt <= 0 {
		return ctx.Err() == nil
	}
	start := time.Now()
	t := time.NewTimer(m.debt)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	took := time.Since(start)
	m.slept.Add(int64(took))
	m.debt -= took
	return ctx.Err() == nil
}
