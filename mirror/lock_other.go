//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package mirror

import "os"

// locksWork says tryLock really locks.
const locksWork = false

// tryLock has no advisory file lock to take on this system: processes
// sharing a cache should not fetch the same release at the same time.
func tryLock(f *os.File) bool { return true }
