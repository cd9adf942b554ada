package split

import (
	"os"

	"golang.org/x/sys/unix"
)

// sequential tells the kernel f is read from start to end, so it reads
// further ahead (a hint: failures are ignored).
func sequential(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
}

// willNeed asks the kernel to start reading the first n bytes of path into
// the page cache, so the loader does not wait on the disk when it gets
// there (a hint: failures are ignored; the loader's own open reports them).
func willNeed(path string, n int64) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	_ = unix.Fadvise(int(f.Fd()), 0, n, unix.FADV_WILLNEED)
	f.Close()
}
