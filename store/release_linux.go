//go:build linux

package store

import (
	"bufio"
	"fmt"
	"os"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releaseMapped tells the kernel that the process no longer needs the
// store's mapped pages resident. Loading the state reads every page through
// bbolt's memory map, and a read-write open walks them all to rebuild the
// freelist (bbolt does it inside Open). At 100,000 mailboxes that kept some
// 250 MB of the file counted in the process's resident set for the rest of
// its life, though every value it needs was copied out.
//
// bbolt maps the file read-only and shared, so MADV_DONTNEED only drops the
// process's page-table entries: the pages stay in the page cache and a later
// read faults them back in. It must run inside a transaction, which holds
// bbolt's mmap lock: no write can remap the file while it runs. The length
// advised is the mapping's own, as /proc/self/maps gives it, and never past
// it: the address space after the mapping may be anything, the Go heap
// included.
func releaseMapped(db *bolt.DB, _ *bolt.Tx) {
	data := db.Info().Data
	if data == 0 {
		return
	}
	size, err := mappingSize(data)
	if err != nil || size == 0 {
		return // the pages stay resident: memory, not correctness
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, data, size, syscall.MADV_DONTNEED)
}

// mappingSize returns the length of the mapping that starts at addr.
func mappingSize(addr uintptr) (uintptr, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var start, end uintptr
		if _, err := fmt.Sscanf(sc.Text(), "%x-%x", &start, &end); err == nil && start == addr && end > start {
			return end - start, nil
		}
	}
	return 0, sc.Err()
}
