package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"
)

// profiler writes the Go runtime's CPU and heap profiles of one command,
// for `go tool pprof`: the hidden --cpuprofile and --memprofile flags,
// which BENCHMARKS.md uses to show where a large sync spends its time and
// memory.
type profiler struct {
	cpuPath, memPath string
	cpu              *os.File
	// peak is the heap profile taken when the heap was largest; the
	// watcher stops when done closes.
	mu      sync.Mutex
	peak    []byte
	done    chan struct{}
	stopped chan struct{}
}

// watchPeak takes a heap profile each time the live heap (as the last GC
// measured it) grows 10% past the largest seen, so that the profile
// written shows what was live at the command's peak rather than at its
// end.
func (p *profiler) watchPeak() {
	defer close(p.stopped)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var most uint64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > most+most/10 {
			most = v
			var b bytes.Buffer
			if pprof.Lookup("heap").WriteTo(&b, 0) == nil {
				p.mu.Lock()
				p.peak = b.Bytes()
				p.mu.Unlock()
			}
		}
	}
}

func (p *profiler) start() error {
	if p.memPath != "" {
		p.done, p.stopped = make(chan struct{}), make(chan struct{})
		go p.watchPeak()
	}
	if p.cpuPath == "" {
		return nil
	}
	f, err := os.Create(p.cpuPath)
	if err != nil {
		return usageError{fmt.Errorf("--cpuprofile: %w", err)}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	p.cpu = f
	return nil
}

// stop ends the CPU profile and writes the heap profile taken at the
// heap's peak: what was live then (-sample_index=inuse_space) and what
// was allocated until then (alloc_space).
func (p *profiler) stop() error {
	if p.cpu != nil {
		pprof.StopCPUProfile()
		if err := p.cpu.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		p.cpu = nil
	}
	if p.memPath == "" {
		return nil
	}
	close(p.done)
	<-p.stopped
	p.mu.Lock()
	peak := p.peak
	p.mu.Unlock()
	if peak == nil { // the command ended before the first sample
		var b bytes.Buffer
		if err := pprof.Lookup("heap").WriteTo(&b, 0); err != nil {
			return fmt.Errorf("--memprofile: %w", err)
		}
		peak = b.Bytes()
	}
	if err := os.WriteFile(p.memPath, peak, 0o644); err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}
