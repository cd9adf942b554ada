package mirror

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// localFault is a failure of the local disk under a download (the cache)
// or a bundle (the output folder): a full or read-only filesystem, a
// missing permission. It is the user's to fix, not the network's: never
// retried, never ErrUpstream (exit 1), and its message names the path and
// the errno.
type localFault struct {
	op, path string
	err      error
}

func newLocalFault(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is ours to name
	}
	return &localFault{op: op, path: path, err: err}
}

func (e *localFault) Error() string {
	msg := fmt.Sprintf("%s %s: %v", e.op, e.path, e.err)
	var no syscall.Errno
	if errors.As(e.err, &no) {
		if name := errnoNames[no]; name != "" {
			msg += " (" + name + ")"
		}
	}
	return msg
}

func (e *localFault) Unwrap() error { return e.err }

// errnoNames are the symbolic names of the errors a full, read-only or
// forbidden disk gives.
var errnoNames = map[syscall.Errno]string{
	syscall.ENOSPC: "ENOSPC",
	syscall.EROFS:  "EROFS",
	syscall.EACCES: "EACCES",
	syscall.EPERM:  "EPERM",
	syscall.EIO:    "EIO",
	syscall.EDQUOT: "EDQUOT",
	syscall.EFBIG:  "EFBIG",
}
