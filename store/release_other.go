//go:build !linux

package store

import bolt "go.etcd.io/bbolt"

// releaseMapped is a no-op where easgate does not ask the kernel to drop
// mapped pages; see release_linux.go.
func releaseMapped(*bolt.DB, *bolt.Tx) {}
