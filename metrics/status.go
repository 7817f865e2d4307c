package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"easgate/engine"
)

// statusCollector reads engine.Status at scrape time.
type statusCollector struct{ m *Metrics }

var (
	descDevices = prometheus.NewDesc(namespace+"_devices",
		"EAS device records by state: allowed, blocked, quarantined (as Exchange reports them), exempt, merged and unmerged.",
		[]string{labelState}, nil)
	descEAS = prometheus.NewDesc(namespace+"_eas_devices",
		"EAS device partnerships in the last snapshot.", nil, nil)
	descMDM = prometheus.NewDesc(namespace+"_mdm_devices",
		"Intune managed devices in the last snapshot.", nil, nil)
	descBrake = prometheus.NewDesc(namespace+"_brake_held",
		"1 while the safety brake holds a plan for an admin to approve, else 0.", nil, nil)
	descBrakeBlocks = prometheus.NewDesc(namespace+"_brake_new_blocks",
		"New blocks in the plan the brake holds; 0 when none is held.", nil, nil)
	descPending = prometheus.NewDesc(namespace+"_notifications_pending",
		"Unmerged in-scope devices whose users still await a notification.", nil, nil)
	descRunning = prometheus.NewDesc(namespace+"_sync_running",
		"1 while a sync runs, else 0.", nil, nil)
	descUp = prometheus.NewDesc(namespace+"_remote_up",
		"1 if the last call to the remote system succeeded, 0 if it failed; absent before the first call.",
		[]string{labelSystem, labelName}, nil)
)

// Describe implements prometheus.Collector.
func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDevices, descEAS, descMDM, descBrake, descBrakeBlocks, descPending, descRunning, descUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	api := c.m.api
	c.m.mu.Unlock()
	if api == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	s, err := api.Status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descEAS, err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	k := s.Counts
	for _, x := range []struct {
		state string
		n     int
	}{{"allowed", k.Allowed}, {"blocked", k.Blocked}, {"quarantined", k.Quarantined}, {"exempt", k.Exempt},
		{"merged", k.Merged}, {"unmerged", k.Unmerged}} {
		gauge(descDevices, float64(x.n), x.state)
	}
	gauge(descEAS, float64(k.EASDevices))
	gauge(descMDM, float64(k.MDMDevices))
	held, blocks := 0.0, 0.0
	if s.HeldPlan != nil {
		held = 1
		if s.HeldPlan.Brake != nil {
			blocks = float64(s.HeldPlan.Brake.NewBlocks)
		}
	}
	gauge(descBrake, held)
	gauge(descBrakeBlocks, blocks)
	gauge(descPending, float64(s.Pending))
	running := 0.0
	if s.Running != nil {
		running = 1
	}
	gauge(descRunning, running)
	up := func(system string, h engine.Health) {
		if h.LastCall.IsZero() {
			return
		}
		v := 0.0
		if h.OK {
			v = 1
		}
		gauge(descUp, v, system, h.Name)
	}
	for _, h := range s.Exchange {
		up("exchange", h)
	}
	up("graph", s.Intune)
}
