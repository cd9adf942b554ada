//go:build linux

// Package diskhint holds the hints ccmirror gives the kernel about its
// large files: start writing these bytes now, this file is read from start
// to end, these bytes are needed soon. They only change when the disk
// works, never what is written or read, so every failure is ignored.
package diskhint

import (
	"os"

	"golang.org/x/sys/unix"
)

// StartWriteback asks the kernel to start writing n bytes of f at off to
// disk now, without waiting (sync_file_range SYNC_FILE_RANGE_WRITE; n 0:
// to the end of the file), so that a later fsync or syncfs finds little
// left to write.
func StartWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// Sequential tells the kernel f is read from start to end, so it reads
// further ahead.
func Sequential(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
}

// WillNeed asks the kernel to start reading the first n bytes of the file
// at path into the page cache, so whoever reads it next does not wait for
// the disk.
func WillNeed(path string, n int64) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	_ = unix.Fadvise(int(f.Fd()), 0, n, unix.FADV_WILLNEED)
	f.Close()
}
