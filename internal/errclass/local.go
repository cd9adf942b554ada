package errclass

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// LocalError is a failure of the local disk: a full or read-only
// filesystem, a missing permission. It is the user's to fix, not the
// network's: never retried, never ErrUpstream (exit 1), and its message
// names the path and the errno ("write /x: no space left on device
// (ENOSPC)").
type LocalError struct {
	Op, Path string
	Err      error
}

// Local wraps err, a failure of op on the local path, as a *LocalError.
func Local(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is ours to name
	}
	return &LocalError{Op: op, Path: path, Err: err}
}

// Error names the operation, the path, the error and its errno.
func (e *LocalError) Error() string {
	return fmt.Sprintf("%s %s: %s", e.Op, e.Path, Describe(e.Err))
}

// Describe is err's message followed by the symbolic name of its disk
// errno, when it has one: "read-only file system (EROFS)".
func Describe(err error) string {
	if name := ErrnoName(err); name != "" {
		return err.Error() + " (" + name + ")"
	}
	return err.Error()
}

// Unwrap gives the underlying error, so errors.Is(err, syscall.ENOSPC)
// holds.
func (e *LocalError) Unwrap() error { return e.Err }

// ErrnoName is the symbolic name of the disk errno in err's chain
// ("ENOSPC"), or "" when it holds none of those a full, read-only or
// forbidden disk gives.
func ErrnoName(err error) string {
	var no syscall.Errno
	if !errors.As(err, &no) {
		return ""
	}
	return errnoNames[no]
}

var errnoNames = map[syscall.Errno]string{
	syscall.ENOSPC: "ENOSPC",
	syscall.EROFS:  "EROFS",
	syscall.EACCES: "EACCES",
	syscall.EPERM:  "EPERM",
	syscall.EIO:    "EIO",
	syscall.EDQUOT: "EDQUOT",
	syscall.EFBIG:  "EFBIG",
}
