package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"easgate/internal/bench"
)

// benchFlags say what `easgate bench` measures.
type benchFlags struct {
	sizes          string
	seed           uint64
	costScale      float64
	noCost         bool
	parallel       int
	applyBatch     int
	churn          float64
	repeat         int
	baselineSample int
	dir            string
	keep           bool
	out            string
	jsonOut        string
	env            []string
	syncBinary     string
}

func (f *benchFlags) options() (bench.Options, error) {
	var o bench.Options
	for _, s := range strings.Split(f.sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(s, "_", "")))
		if err != nil || n < 1 || n > 1_000_000 {
			return o, usageError{fmt.Errorf("--sizes %q: want mailbox counts from 1 to 1000000, comma-separated", f.sizes)}
		}
		o.Sizes = append(o.Sizes, n)
	}
	switch {
	case f.costScale < 0 || f.costScale > 10:
		return o, usageError{fmt.Errorf("--cost-scale %v: want 0 (skip the timed runs) to 10", f.costScale)}
	case f.parallel < 1 || f.parallel > 18:
		return o, usageError{fmt.Errorf("--parallel %d: want 1 to 18", f.parallel)}
	case f.repeat < 1 || f.repeat > 20:
		return o, usageError{fmt.Errorf("--repeat %d: want 1 to 20", f.repeat)}
	case f.churn <= 0 || f.churn > 100:
		return o, usageError{fmt.Errorf("--churn %v: want a percentage above 0", f.churn)}
	case f.costScale == 0 && !f.noCost:
		return o, usageError{errors.New("nothing to measure: --cost-scale 0 and --no-cost=false")}
	}
	for _, e := range f.env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return o, usageError{fmt.Errorf("--env %q: want KEY=VALUE", e)}
		}
	}
	binary, err := os.Executable()
	if err != nil {
		return o, fmt.Errorf("find the easgate binary: %w", err)
	}
	o.Binary, o.Seed, o.CostScale, o.NoCost = binary, f.seed, f.costScale, f.noCost
	o.Parallel, o.ApplyBatch, o.ChurnPercent, o.Repeat = f.parallel, f.applyBatch, f.churn, f.repeat
	o.BaselineSample, o.Keep, o.Env = f.baselineSample, f.keep, f.env
	o.Dir = f.dir
	if f.syncBinary != "" {
		if o.SyncBinary, err = filepath.Abs(f.syncBinary); err != nil {
			return o, usageError{fmt.Errorf("--sync-binary: %w", err)}
		}
	}
	return o, nil
}

func newBenchCmd(_ *globals) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure syncs of generated organisations against the simulators",
		Long: `Measure easgate at scale. For each size, bench starts the simulators in a process of
their own (easgate sim) with a fresh organisation, and runs easgate sync in processes of
their own: a first full sync on an empty store, a steady-state full sync right after it,
and a quick sync after churn (new partnerships, compliance changes, enrollments). It
measures each sync process alone: wall time, CPU time and peak RSS (rusage), store size
and bytes written, and the simulators' counts of PowerShell starts, WinRM round trips and
Graph requests.

With --cost-scale the simulators charge what a real Exchange server and Graph tenant would
(times the scale), and each run is compared with its floor, the least time any client
needs under that model, and the first full sync with a per-mailbox baseline measured at
--baseline-sample mailboxes. --no-cost measures the same runs without the cost model.

The results are printed as Markdown tables; --out splices them into a file between its
"easgate bench" markers (BENCHMARKS.md), --json writes every measurement.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options()
			if err != nil {
				return err
			}
			if o.Dir == "" {
				if o.Dir, err = os.MkdirTemp("", "easgate-bench-*"); err != nil {
					return err
				}
				if !o.Keep {
					defer os.RemoveAll(o.Dir)
				}
			}
			o.Log = cmd.ErrOrStderr()
			rep, runErr := bench.Run(cmd.Context(), o)
			if rep == nil {
				return runErr
			}
			var md bytes.Buffer
			if err := rep.Markdown(&md); err != nil {
				return err
			}
			if f.jsonOut != "" {
				b, err := json.MarshalIndent(rep, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(f.jsonOut, append(b, '\n'), 0o644); err != nil {
					return fmt.Errorf("write --json: %w", err)
				}
			}
			if f.out != "" && runErr == nil {
				if err := splice(f.out, md.String()); err != nil {
					return err
				}
			}
			if _, err := cmd.OutOrStdout().Write(md.Bytes()); err != nil {
				return err
			}
			return runErr
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.sizes, "sizes", "1000,10000,100000", "organisation sizes in mailboxes, comma-separated")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the generated organisations")
	fl.Float64Var(&f.costScale, "cost-scale", 0.05, "scale of the cost model for the timed runs (1 = real time; 0 skips them)")
	fl.BoolVar(&f.noCost, "no-cost", true, "also measure every size without the cost model (CPU, memory, store)")
	fl.IntVar(&f.parallel, "parallel", 4, "exchange.parallel of the simulators' config, and the floor's and baseline's concurrency")
	fl.IntVar(&f.applyBatch, "apply-batch", 0, "exchange.apply_batch of the simulators' config (0: easgate's default)")
	fl.Float64Var(&f.churn, "churn", 1, "churn before the quick sync, in percent of the mailboxes")
	fl.IntVar(&f.repeat, "repeat", 1, "measure everything this many times, for ranges")
	fl.IntVar(&f.baselineSample, "baseline-sample", 1000, "mailboxes to measure the per-mailbox baseline at (0 skips it)")
	fl.StringVar(&f.dir, "dir", "", "working directory for the simulators and stores (default: a temporary one)")
	fl.BoolVar(&f.keep, "keep", false, "keep the simulators' directories and stores")
	fl.StringVar(&f.out, "out", "", "splice the tables into this file between its easgate bench markers")
	fl.StringVar(&f.jsonOut, "json", "", "write every measurement to this file as JSON")
	fl.StringVar(&f.syncBinary, "sync-binary", "", "run the syncs with this easgate binary (e.g. an older build) under this one's simulators")
	fl.StringArrayVar(&f.env, "env", nil, "KEY=VALUE added to the sync processes' environment (repeatable), e.g. GOMEMLIMIT=300MiB")
	return cmd
}

// splice replaces the generated part of the file at path.
func splice(path, generated string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	doc, err := bench.Splice(string(b), generated)
	if err != nil {
		return fmt.Errorf("--out %s: %w (add %q and %q lines)", path, err, bench.BeginMarker, bench.EndMarker)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
