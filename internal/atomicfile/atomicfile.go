// Package atomicfile writes files so that a reader, or a crash, sees either
// the old content or the whole new content, never a part: a temporary file
// in the same folder, fsynced, renamed over the target, then the folder
// fsynced so the rename itself survives a power cut.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile replaces path with data, durably and atomically, with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// File is a pending replacement of a file: write to it, then Commit to put
// it in place or Abort to leave the target untouched.
type File struct {
	*os.File
	path string
	perm os.FileMode
	done bool
}

// Create starts a replacement of path: a temporary file beside it, named
// ".<base>.tmp-*" so that a sweep can recognise leftovers, and locked
// (TryLock) while it is written so that RemoveAbandoned leaves it alone.
func Create(path string, perm os.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), TempPrefix(path)+"*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	TryLock(f)
	return &File{File: f, path: path, perm: perm}, nil
}

// TryLock takes an exclusive advisory lock (flock) on f without waiting and
// says whether it got it; closing f releases it, and so does the death of
// the process. Writers of temporary files hold it while they write, so a
// temporary file nobody holds is one a killed run left.
func TryLock(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}

// RemoveAbandoned removes the temporary file at path when its writer is
// gone: a regular file no process holds locked (TryLock). It calls
// announce with the file's size just before removing it, so a log line
// precedes the removal even when the process is killed in between (the
// next sweep then finds the file again). It says whether it removed it; a
// file in use, a folder or a symlink stays.
func RemoveAbandoned(path string, announce func(size int64)) bool {
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil || !st.Mode().IsRegular() || !TryLock(fh) {
		return false
	}
	announce(st.Size())
	return os.Remove(path) == nil
}

// TempPrefix is the name prefix of the temporary files Create makes for path.
func TempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// Commit syncs the content, sets the mode, renames it over the target and
// syncs the folder. After an error the target is unchanged and the
// temporary file removed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("write %s: already committed or aborted", f.path)
	}
	f.done = true
	tmp := f.Name()
	fail := func(err error) error {
		f.File.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := f.Chmod(f.perm); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.File.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := SyncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// Abort drops the replacement; the target is untouched. It is a no-op after
// Commit, so `defer f.Abort()` is always safe.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.Name())
}

// SyncDir fsyncs a folder so that entries created, renamed or removed in it
// are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
