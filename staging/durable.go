package staging

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ccmirror/ccmirror/internal/atomicfile"
	"github.com/ccmirror/ccmirror/internal/beneath"
	"github.com/ccmirror/ccmirror/internal/diskhint"
)

// durability makes what an install wrote survive a power cut: fsync of
// files and folders, syncfs of the temporary folder's filesystem. off (a
// test switch, see switches.noSync) skips all of it.
type durability struct{ off bool }

// file fsyncs f.
func (d durability) file(f *os.File) error {
	if d.off {
		return nil
	}
	return f.Sync()
}

// dir fsyncs a folder so renames and creations in it are durable.
// Filesystems that cannot fsync a folder (EINVAL) are accepted.
func (d durability) dir(dir string) error {
	if d.off {
		return nil
	}
	if err := atomicfile.SyncDir(dir); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// fd fsyncs the folder open on d (see dir).
func (d durability) fd(dir *beneath.Dir) error {
	if d.off {
		return nil
	}
	if err := unix.Fsync(dir.Fd()); err != nil && !errors.Is(err, syscall.EINVAL) {
		return &fs.PathError{Op: "fsync", Path: dir.Name, Err: err}
	}
	return nil
}

// fs makes everything written on dir's filesystem durable (syncfs).
func (d durability) fs(dir string) error {
	if d.off {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// writeback asks the kernel to start writing f to disk now, without
// waiting (sync_file_range SYNC_FILE_RANGE_WRITE): the disk works while
// the next files stream in, and the syncfs before placement finds little
// left. Only a hint; errors are ignored.
func (d durability) writeback(f *os.File) {
	if d.off {
		return
	}
	diskhint.StartWriteback(f, 0, 0)
}
