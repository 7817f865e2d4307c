package intune

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim/graph"
	"easgate/engine/sim/org"
	"easgate/engine/sim/simtls"
)

// simHelperEnv, set to a device count, makes the test binary a Graph
// simulator process instead of running tests (see TestMain): the scale
// test measures the adapter's memory without the simulated organisation's
// in the same heap.
const simHelperEnv = "EASGATE_INTUNE_SIM_HELPER_DEVICES"

// simHelperInfo is the line a simulator process prints when it is ready.
type simHelperInfo struct {
	URL      string `json:"url"`
	TenantID string `json:"tenant_id"`
	ClientID string `json:"client_id"`
	Secret   string `json:"secret"`
	CAPEM    []byte `json:"ca_pem"`
	Devices  int    `json:"devices"`
	IDsHash  uint64 `json:"ids_hash"`
}

func TestMain(m *testing.M) {
	if n := os.Getenv(simHelperEnv); n != "" {
		os.Exit(runSimHelper(n))
	}
	os.Exit(m.Run())
}

// runSimHelper serves a Graph simulator with n managed devices on
// 127.0.0.1 until its stdin closes.
func runSimHelper(n string) int {
	devices, err := strconv.Atoi(n)
	if err != nil || devices <= 0 {
		fmt.Fprintln(os.Stderr, "bad device count", n)
		return 2
	}
	// About 1.5 devices per generated user.
	o := org.Generate(org.Options{Users: devices*2/3 + 1000, Seed: 3, Now: simNow})
	if len(o.Managed) < devices {
		fmt.Fprintf(os.Stderr, "generated %d managed devices, want %d\n", len(o.Managed), devices)
		return 1
	}
	o.Managed = o.Managed[:devices]
	ca, err := simtls.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := graph.New(o, graph.Options{})
	url, err := s.Start("127.0.0.1:0", ca)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	ids := make([]string, len(o.Managed))
	for i, d := range o.Managed {
		ids[i] = d.ID
	}
	info := simHelperInfo{URL: url, TenantID: s.TenantID(), ClientID: s.ClientID(), Secret: s.ClientSecret(),
		CAPEM: ca.CertPEM(), Devices: devices, IDsHash: idsHash(ids)}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	return 0
}

func idsHash(ids []string) uint64 {
	ids = slices.Sorted(slices.Values(ids))
	h := fnv.New64a()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// startSimProcess runs the simulator in a child process of this test
// binary and returns what it serves.
func startSimProcess(t *testing.T, devices int) simHelperInfo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), simHelperEnv+"="+strconv.Itoa(devices))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		t.Fatalf("simulator process: %v", err)
	}
	var info simHelperInfo
	if err := json.Unmarshal(line, &info); err != nil {
		t.Fatalf("simulator process said %q: %v", line, err)
	}
	return info
}

// heapSampler records the peak of the live heap objects while it runs.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak uint64
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			v := heapNow()
			h.mu.Lock()
			h.peak = max(h.peak, v)
			h.mu.Unlock()
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) finish() uint64 {
	close(h.stop)
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	return max(h.peak, heapNow())
}

const mib = 1 << 20

// TestInventory100kMemory reads 100,000 managed devices over 100 pages of
// 1000 with the minimal $select, through the real SDK and azidentity, from
// a simulator in another process, and reports the adapter's memory: the
// peak of the heap during the read above what the process held before it,
// the heap the inventory keeps once read, and the bytes allocated.
func TestInventory100kMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 devices: skipped with -short")
	}
	const devices = 100_000
	info := startSimProcess(t, devices)
	calls := &callRecorder{}
	c, err := New(Config{TenantID: info.TenantID, ClientID: info.ClientID, ClientSecret: info.Secret,
		GraphURL: info.URL, AuthorityURL: info.URL, CAPEM: info.CAPEM, Observer: calls}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Token and first connection first: the measurement is the inventory.
	if _, err := c.Test(t.Context()); err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	base := heapNow()
	sampler := startHeapSampler()
	start := time.Now()
	inv, err := c.ManagedDevices(t.Context(), engine.MDMQuery{})
	took := time.Since(start)
	peak := sampler.finish()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	retained := heapNow()
	runtime.KeepAlive(inv)

	if !inv.Complete() || len(inv.Devices) != devices {
		t.Fatalf("%d devices, problems %q; want %d, complete", len(inv.Devices), inv.Problems, devices)
	}
	ids := make([]string, len(inv.Devices))
	for i, d := range inv.Devices {
		ids[i] = d.ID
	}
	if idsHash(ids) != info.IDsHash {
		t.Fatal("the inventory's device IDs are not the simulated ones")
	}
	if pages, _ := calls.count(OpManagedDevices); pages != 100+1 { // +1: Test's one-item read
		t.Fatalf("%d managed device requests, want 100 pages and the probe", pages)
	}
	peakMiB := float64(peak-base) / mib
	t.Logf("100,000 devices in 100 pages: %v; heap peak %.1f MiB above the %.1f MiB before the read, %.1f MiB retained by the inventory (%.0f bytes/device), %.1f MiB allocated (%d allocations)",
		took.Round(time.Millisecond), peakMiB, float64(base)/mib, float64(retained-base)/mib, float64(retained-base)/devices,
		float64(after.TotalAlloc-before.TotalAlloc)/mib, after.Mallocs-before.Mallocs)
	// A regression guard well above what the adapter needs today.
	if peakMiB > 400 {
		t.Fatalf("heap peaked %.0f MiB above the baseline reading 100,000 devices", peakMiB)
	}
}
