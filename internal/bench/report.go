package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Machine describes where a bench ran.
type Machine struct {
	CPU     string `json:"cpu"`
	Cores   int    `json:"cores"`
	Memory  string `json:"memory"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	Commit  string `json:"commit"`
	Binary  string `json:"binary"`
	Version string `json:"version"`
}

func machine(binary string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Binary: binary}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		m.Memory = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.Commit += " (with uncommitted changes)"
		}
	}
	if out, err := exec.Command(binary, "version").Output(); err == nil {
		m.Version = strings.TrimSpace(string(out))
	}
	return m
}

// span is the range of a measurement over repeats.
type span struct{ lo, hi float64 }

func (s span) format(unit string, prec int) string {
	if s.lo == s.hi {
		return fmt.Sprintf("%.*f%s", prec, s.lo, unit)
	}
	return fmt.Sprintf("%.*f–%.*f%s", prec, s.lo, prec, s.hi, unit)
}

func spanOf(rs []Result, f func(Result) float64) span {
	s := span{lo: f(rs[0]), hi: f(rs[0])}
	for _, r := range rs[1:] {
		s.lo, s.hi = min(s.lo, f(r)), max(s.hi, f(r))
	}
	return s
}

// group returns the results of one size, scenario and scale.
func (r *Report) group(users int, scenario string, scale float64) []Result {
	var out []Result
	for _, x := range r.Results {
		if x.Users == users && x.Scenario == scenario && x.Scale == scale {
			out = append(out, x)
		}
	}
	return out
}

func (r *Report) sizes() []int {
	var out []int
	for _, x := range r.Results {
		if !slices.Contains(out, x.Users) {
			out = append(out, x.Users)
		}
	}
	slices.Sort(out)
	return out
}

// baselineAt estimates the baseline at a size from the measured sample:
// the sample's measured time, times the ratio of the modelled times.
func (r *Report) baselineAt(first Result) (time.Duration, bool, bool) {
	if len(r.Baselines) == 0 {
		return 0, false, false
	}
	var measured time.Duration
	b := r.Baselines[0]
	for _, x := range r.Baselines {
		measured += x.Total
	}
	measured /= time.Duration(len(r.Baselines))
	w := first.Work
	w.Changes, w.Edits = first.Changes, first.Changes
	model := Model{Scale: b.Scale, Parallel: r.Options.Parallel}
	est := time.Duration(float64(measured) * float64(model.BaselineModel(w)) / float64(b.Modelled))
	return est, first.Users == b.Users, true
}

const sec = float64(time.Second)

// Markdown writes the results as tables.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Measured %s on %s (%d cores, %s RAM, Linux %s), %s, commit %s; `easgate bench` took %s.\n\n",
		r.Started.Format("2006-01-02"), m.CPU, m.Cores, m.Memory, m.Kernel, m.Go, m.Commit, r.Took)
	o := r.Options
	fmt.Fprintf(&b, "Settings: exchange.parallel %d, exchange.apply_batch %s, churn %.3g%% of the mailboxes before the quick sync, seed %d, %d round(s) each (ranges are min–max over the rounds).\n\n",
		o.Parallel, orDefault(o.ApplyBatch, "500 (default)"), o.ChurnPercent, o.Seed, o.Repeat)
	if o.CostScale > 0 {
		fmt.Fprintf(&b, "### Under the cost model (scale %g: every remote cost is %g × the real one)\n\n", o.CostScale, o.CostScale)
		fmt.Fprintf(&b, "Floor: `%s`, with s the scale, P = exchange.parallel = %d, D partnerships, M mailboxes with partnerships, E Set-CASMailbox calls and C device IDs the run changed (a quick sync counts only what changed). Constants (at scale 1):\n\n", FloorFormula, o.Parallel)
		for _, c := range Constants() {
			fmt.Fprintf(&b, "- %s\n", c)
		}
		b.WriteString("\n")
		b.WriteString("| mailboxes | run | wall | floor | × floor | baseline | × faster | PS starts | WinRM requests | Graph requests | changes | mails |\n")
		b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, n := range r.sizes() {
			for _, sc := range []string{FirstFull, SteadyFull, QuickChurn} {
				rs := r.group(n, sc, o.CostScale)
				if len(rs) == 0 {
					continue
				}
				base, speed := "", ""
				if sc == FirstFull {
					if est, measured, ok := r.baselineAt(rs[0]); ok {
						base = fmt.Sprintf("%.0fs", est.Seconds())
						if !measured {
							base += " (est.)"
						}
						speed = spanOf(rs, func(x Result) float64 { return est.Seconds() / x.Wall.Seconds() }).format("×", 0)
					}
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %.1fs | %s | %s | %s | %s | %s | %s | %s | %s |\n", thousands(n), sc,
					spanOf(rs, func(x Result) float64 { return x.Wall.Seconds() }).format("s", 1),
					rs[0].Floor.Total.Seconds(),
					spanOf(rs, func(x Result) float64 { return float64(x.Wall) / float64(x.Floor.Total) }).format("", 2),
					base, speed,
					spanOf(rs, func(x Result) float64 { return float64(x.Starts) }).format("", 0),
					spanOf(rs, func(x Result) float64 { return float64(x.WinRMRequests) }).format("", 0),
					spanOf(rs, func(x Result) float64 { return float64(x.GraphRequests) }).format("", 0),
					thousands(rs[0].Changes), thousands(int(rs[0].Mails)))
			}
		}
		b.WriteString("\n")
		if len(r.Baselines) > 0 {
			x := r.Baselines[0]
			fmt.Fprintf(&b, "Baseline measured at %s mailboxes (%s partnerships, %s changes): inventory %.1fs, apply %.1fs, %d PowerShell starts; modelled %.1fs. ",
				thousands(x.Users), thousands(x.Devices), thousands(x.Changes), x.Inventory.Seconds(), x.Apply.Seconds(), x.Starts, x.Modelled.Seconds())
			b.WriteString("Larger sizes are estimated from it linearly through the model: measured × modelled(size) / modelled(sample).\n\n")
		}
	}
	if o.NoCost {
		b.WriteString("### Without the cost model (the simulators answer at once): the easgate process's own cost\n\n")
		b.WriteString("| mailboxes | run | wall | CPU (user+sys) | peak RSS | of it anon / file | store | written | PS starts | WinRM requests | Graph requests | SMTP TLS sessions | changes | mails |\n")
		b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, n := range r.sizes() {
			for _, sc := range []string{FirstFull, SteadyFull, QuickChurn} {
				rs := r.group(n, sc, 0)
				if len(rs) == 0 {
					continue
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", thousands(n), sc,
					spanOf(rs, func(x Result) float64 { return x.Wall.Seconds() }).format("s", 1),
					spanOf(rs, func(x Result) float64 { return x.CPU.Seconds() }).format("s", 1),
					spanOf(rs, func(x Result) float64 { return float64(x.MaxRSS) / (1 << 20) }).format(" MB", 0),
					spanOf(rs, func(x Result) float64 { return float64(x.AnonRSS) / (1 << 20) }).format("", 0)+" / "+
						spanOf(rs, func(x Result) float64 { return float64(x.FileRSS) / (1 << 20) }).format(" MB", 0),
					spanOf(rs, func(x Result) float64 { return float64(x.Store) / (1 << 20) }).format(" MB", 0),
					spanOf(rs, func(x Result) float64 { return float64(x.Written) / (1 << 20) }).format(" MB", 0),
					spanOf(rs, func(x Result) float64 { return float64(x.Starts) }).format("", 0),
					spanOf(rs, func(x Result) float64 { return float64(x.WinRMRequests) }).format("", 0),
					spanOf(rs, func(x Result) float64 { return float64(x.GraphRequests) }).format("", 0),
					spanOf(rs, func(x Result) float64 { return float64(x.SMTPTLS) }).format("", 0),
					thousands(rs[0].Changes), thousands(int(rs[0].Mails)))
			}
		}
		b.WriteString("\n")
	}
	r.targets(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// targets checks the targets at the largest size measured.
func (r *Report) targets(b *strings.Builder) {
	sizes := r.sizes()
	if len(sizes) == 0 {
		return
	}
	n := sizes[len(sizes)-1]
	o := r.Options
	fmt.Fprintf(b, "### Targets at %s mailboxes\n\n| target | measured | met |\n|---|---:|:---:|\n", thousands(n))
	row := func(name string, s span, ok bool) {
		mark := "yes"
		if !ok {
			mark = "**no**"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", name, s.format("", 2), mark)
	}
	if o.CostScale > 0 {
		for _, sc := range []string{FirstFull, SteadyFull} {
			if rs := r.group(n, sc, o.CostScale); len(rs) > 0 {
				s := spanOf(rs, func(x Result) float64 { return float64(x.Wall) / float64(x.Floor.Total) })
				row(sc+": wall ≤ 1.25 × floor", s, s.hi <= 1.25)
			}
		}
		if rs := r.group(n, FirstFull, o.CostScale); len(rs) > 0 {
			if est, _, ok := r.baselineAt(rs[0]); ok {
				s := spanOf(rs, func(x Result) float64 { return est.Seconds() / x.Wall.Seconds() })
				row("first full sync: ≥ 20 × faster than the baseline", s, s.lo >= 20)
			}
		}
		steady, quick := r.group(n, SteadyFull, o.CostScale), r.group(n, QuickChurn, o.CostScale)
		if len(steady) > 0 && len(quick) == len(steady) {
			s := span{lo: 1e9, hi: 0}
			for i := range quick {
				v := quick[i].Wall.Seconds() / steady[i].Wall.Seconds()
				s.lo, s.hi = min(s.lo, v), max(s.hi, v)
			}
			row("quick sync (1% churn) wall ≤ 0.10 × steady full sync wall", s, s.hi <= 0.10)
		}
	}
	if o.NoCost {
		for _, sc := range []string{FirstFull, SteadyFull} {
			rs := r.group(n, sc, 0)
			if len(rs) == 0 {
				continue
			}
			cpu := spanOf(rs, func(x Result) float64 { return x.CPU.Seconds() })
			row(sc+", no cost model: CPU < 15 s", cpu, cpu.hi < 15)
			rss := spanOf(rs, func(x Result) float64 { return float64(x.MaxRSS) / (1 << 20) })
			row(sc+", no cost model: peak RSS < 400 MB", rss, rss.hi < 400)
			st := spanOf(rs, func(x Result) float64 { return float64(x.Store) / (1 << 20) })
			row(sc+": store < 300 MB", st, st.hi < 300)
			if n >= 100_000 && slices.Contains(sizes, n/10) {
				small := r.group(n/10, sc, 0)
				if len(small) > 0 {
					// CPU growth compares each size's least CPU over the rounds:
					// other work on a shared machine only ever adds CPU time (cache
					// and scheduler interference), so the least is the best estimate
					// of the cost, and worst over best would measure the noise.
					g := spanOf(rs, func(x Result) float64 { return x.CPU.Seconds() }).lo / spanOf(small, func(x Result) float64 { return x.CPU.Seconds() }).lo
					row(fmt.Sprintf("%s: CPU %s → %s ≤ 11×", sc, thousands(n/10), thousands(n)), span{g, g}, g <= 11)
					g = spanOf(rs, func(x Result) float64 { return float64(x.MaxRSS) }).hi / spanOf(small, func(x Result) float64 { return float64(x.MaxRSS) }).lo
					row(fmt.Sprintf("%s: peak RSS %s → %s ≤ 11×", sc, thousands(n/10), thousands(n)), span{g, g}, g <= 11)
				}
			}
		}
	}
	b.WriteString("\n")
}

func orDefault(v int, def string) string {
	if v <= 0 {
		return def
	}
	return fmt.Sprint(v)
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Markers enclose the generated part of BENCHMARKS.md.
const (
	BeginMarker = "<!-- easgate bench: begin -->"
	EndMarker   = "<!-- easgate bench: end -->"
)

// ErrNoMarkers means a file has no generated part to replace.
var ErrNoMarkers = errors.New("no easgate bench markers")

// Splice replaces the text between the markers in doc with generated.
func Splice(doc, generated string) (string, error) {
	i := strings.Index(doc, BeginMarker)
	j := strings.Index(doc, EndMarker)
	if i < 0 || j < i {
		return "", ErrNoMarkers
	}
	return doc[:i+len(BeginMarker)] + "\n" + generated + doc[j:], nil
}
