// Package staging is the disconnected half of ccmirror: it verifies and
// inspects bundles, installs them into CycleCloud's staging tree
// (R/work/staging/projects/) atomically and with the right ownership, and
// reports on what is staged.
//
// Everything ccmirror keeps for itself (the lock, journals, temporary
// folders, install records) lives in a state folder only root can write
// (StateDir: /var/lib/ccmirror/<one folder per root> by default), never under
// the root, which belongs to the cycle_server account. The staging tree is
// treated as hostile: files are read there without following symlinks or
// blocking, and every mode ccmirror stages is its own policy.
package staging

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/ccmirror/ccmirror/internal/errclass"
)

// ErrConflict marks an install that would change staged content without
// --force, or that could not take the staging lock because another ccmirror
// holds it. The CLI maps it to exit code 5.
var ErrConflict = errclass.ErrConflict

// localized makes a failure of the local disk (ENOSPC, EROFS, EACCES, …)
// name the absolute path and the errno, as errclass.LocalError does: paths
// in errors of the temporary root (an os.Root) are relative to tmp. The
// wrappers above the PathError rendered their text when they were made, so
// the PathError's text is replaced in the message; the result still
// unwraps to err. Other errors pass unchanged.
func localized(err error, tmp string) error {
	var le *errclass.LocalError
	var pe *fs.PathError
	if err == nil || errclass.ErrnoName(err) == "" || errors.As(err, &le) || !errors.As(err, &pe) {
		return err
	}
	p := pe.Path
	if !filepath.IsAbs(p) && tmp != "" {
		p = filepath.Join(tmp, filepath.FromSlash(p))
	}
	local := errclass.Local(pe.Op, p, pe.Err).Error()
	return &localizedError{msg: strings.Replace(err.Error(), pe.Error(), local, 1), err: err}
}

type localizedError struct {
	msg string
	err error
}

func (e *localizedError) Error() string { return e.msg }
func (e *localizedError) Unwrap() error { return e.err }
