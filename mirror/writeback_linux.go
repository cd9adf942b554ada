package mirror

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackChunk is how many bytes a download writes between two
// startWriteback calls.
const writebackChunk = 8 << 20

// startWriteback asks the kernel to start writing n bytes of f at off to
// disk now (sync_file_range SYNC_FILE_RANGE_WRITE: no waiting), so a later
// fsync has little left to do. Errors are ignored: it is only a hint.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
