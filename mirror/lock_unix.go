//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package mirror

import (
	"os"
	"syscall"
)

// locksWork says tryLock really locks.
const locksWork = true

// tryLock takes an exclusive advisory lock on f without waiting; closing f
// releases it. Two ccmirror processes sharing a cache thus never write the
// same partial download.
func tryLock(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
