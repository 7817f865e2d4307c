package bench

import (
	"strings"
	"testing"
	"time"
)

func TestFloor(t *testing.T) {
	tests := []struct {
		name string
		m    Model
		w    Work
		want Floor
	}{
		{
			// Inventory: 1,500 × (6+60) ms + 1,000 × (8+20) ms = 127 s,
			// over 4 lanes 31.75 s, plus one 4.7 s session. Graph: 80+200
			// ms and two pages of 300 ms + 1,200 × 1.2 ms = 2.32 s. Apply:
			// (900 × 120 + 1,300 × 2) ms / 4 = 27.65 s.
			name: "first full sync at scale 1",
			m:    Model{Scale: 1, Parallel: 4},
			w:    Work{Devices: 1500, Mailboxes: 1000, Edits: 900, Changes: 1300, ManagedDevices: 1200},
			want: Floor{Session: 4700 * time.Millisecond, Inventory: 31750 * time.Millisecond, Graph: 2320 * time.Millisecond,
				Apply: 27650 * time.Millisecond, Total: (4700 + 31750 + 27650) * time.Millisecond},
		},
		{
			name: "steady full sync at scale 0.1: nothing to apply",
			m:    Model{Scale: 0.1, Parallel: 2},
			w:    Work{Devices: 100, Mailboxes: 100, ManagedDevices: 100},
			want: Floor{Session: 470 * time.Millisecond, Inventory: 470 * time.Millisecond, Graph: 70 * time.Millisecond,
				Total: 940 * time.Millisecond},
		},
		{
			// Graph's chain is longer than Exchange's inventory: it sets
			// the pace until the plan.
			name: "quick sync where Graph dominates",
			m:    Model{Scale: 1, Parallel: 4},
			w:    Work{Devices: 0, Mailboxes: 0, ManagedDevices: 10000, Quick: true},
			want: Floor{Session: 4700 * time.Millisecond, Graph: (80 + 200 + 300 + 12000) * time.Millisecond,
				Total: (80 + 200 + 300 + 12000) * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.Floor(tt.w)
			// Scaling rounds to the nanosecond.
			for _, p := range [][2]time.Duration{{got.Session, tt.want.Session}, {got.Inventory, tt.want.Inventory},
				{got.Graph, tt.want.Graph}, {got.Apply, tt.want.Apply}, {got.Total, tt.want.Total}} {
				if d := p[0] - p[1]; d > time.Microsecond || d < -time.Microsecond {
					t.Fatalf("Floor = %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestBaselineModel(t *testing.T) {
	// One list process (4.7 s + 1,000 × 8 ms), 1,000 mailbox processes of
	// 4.728 s and 1,500 × 66 ms of partnerships, 1,300 change processes of
	// 4.822 s, four at a time.
	m := Model{Scale: 1, Parallel: 4}
	w := Work{Devices: 1500, Mailboxes: 1000, Changes: 1300}
	want := 4700*time.Millisecond + 8*time.Second + (1000*4728*time.Millisecond+1500*66*time.Millisecond)/4 + 1300*4822*time.Millisecond/4
	if got := m.BaselineModel(w); got != want {
		t.Errorf("BaselineModel = %v, want %v", got, want)
	}
}

func TestSplice(t *testing.T) {
	doc := "# Benchmarks\n\nintro\n\n" + BeginMarker + "\nold tables\n" + EndMarker + "\n\nanalysis\n"
	got, err := Splice(doc, "new tables\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nintro\n\n" + BeginMarker + "\nnew tables\n" + EndMarker + "\n\nanalysis\n"
	if got != want {
		t.Errorf("Splice = %q, want %q", got, want)
	}
	if _, err := Splice("no markers", "x"); err == nil || !strings.Contains(err.Error(), "markers") {
		t.Errorf("Splice without markers: err = %v", err)
	}
}

func TestCPUGrowthComparesTheLeastOfEachSize(t *testing.T) {
	res := func(users, round int, cpu time.Duration) Result {
		r := Result{Users: users, Scenario: SteadyFull, Round: round}
		r.CPU, r.MaxRSS = cpu, 100<<20
		return r
	}
	rep := &Report{Options: Options{NoCost: true}, Results: []Result{
		res(10_000, 1, 1000*time.Millisecond), res(10_000, 2, 1200*time.Millisecond),
		res(100_000, 1, 10500*time.Millisecond), res(100_000, 2, 13000*time.Millisecond),
	}}
	var b strings.Builder
	rep.targets(&b)
	if !strings.Contains(b.String(), "| steady full sync: CPU 10,000 → 100,000 ≤ 11× | 10.50 | yes |") {
		t.Errorf("growth row: want 10.5 (least over least), got:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "| steady full sync, no cost model: CPU < 15 s | 10.50–13.00 | yes |") {
		t.Errorf("CPU row: want the range, judged on the worst round, got:\n%s", b.String())
	}
}
