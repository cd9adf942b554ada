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

import "github.com/ccmirror/ccmirror/internal/errclass"

// ErrConflict marks an install that would change staged content without
// --force, or that could not take the staging lock because another ccmirror
// holds it. The CLI maps it to exit code 5.
var ErrConflict = errclass.ErrConflict
