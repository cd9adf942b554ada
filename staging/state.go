package staging

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultStateBase is where ccmirror keeps its own state when it runs as
// root: one folder per staging root below it (StateDir).
const DefaultStateBase = "/var/lib/ccmirror"

// StateDir is the default folder where ccmirror keeps its own state for the
// staging root (lock, journals, install records, temporary folders, and the
// index sequences update accepted): as root, DefaultStateBase/<key>, where
// key names the cleaned absolute root ("cycle_server-3f2a9c1b0d4e" for
// /opt/cycle_server); otherwise a per-user folder,
// $XDG_STATE_HOME/ccmirror/<key> (default ~/.local/state). It is never under
// root, which the cycle_server account can write. --state-dir
// (InstallOptions.StateDir, StatusOptions.StateDir) chooses another; code
// outside staging names state paths only through it, and checks it with
// CheckStateDir before trusting what is there.
func StateDir(root string) string {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	root = filepath.Clean(root)
	h := sha256.Sum256([]byte(root))
	base := strings.Trim(unsafeKeyChars.ReplaceAllString(filepath.Base(root), "_"), "._")
	if base == "" {
		base = "root"
	}
	key := base + "-" + hex.EncodeToString(h[:6])
	if os.Geteuid() == 0 {
		return filepath.Join(DefaultStateBase, key)
	}
	if x := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "ccmirror", key)
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "ccmirror", key)
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("ccmirror-%d", os.Geteuid()), key)
}

var unsafeKeyChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// legacyStateDir is where ccmirror kept its state before it moved out of
// the staging root. cycle_server can write there, so nothing in it is
// trusted: its records are ignored (with a warning) and its journals are
// never undone.
func legacyStateDir(root string) string { return filepath.Join(root, "work", "ccmirror") }

// recordsDir is where Install writes its install records.
func recordsDir(state string) string { return filepath.Join(state, "records") }

// tmpRoot holds the temporary folder of each running (or interrupted)
// install, with its journal.
func tmpRoot(state string) string { return filepath.Join(state, "tmp") }

// lockPath is the staging lock.
func lockPath(state string) string { return filepath.Join(state, "lock") }

// trustedUID reports whether a file owned by uid may hold ccmirror's state:
// root's, or, when ccmirror does not run as root (a lab, make demo), the
// user's own.
func trustedUID(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid()
}

// CheckStateDir checks that dir is a state folder only root (or, when not
// running as root, this user) can change: dir and every ancestor are real
// folders (no symlinks), owned by root or this user, and not writable by
// group or others, except that an ancestor may be a root-owned sticky folder
// such as /tmp. With create, missing folders are made (0755, dir itself
// 0700). The error names the offending path and the fix.
func CheckStateDir(dir string, create bool) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("state folder %s: want an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("state folder %s: %w", dir, err)
	}
	defer func() { unix.Close(fd) }()
	if err := checkStateFolder("/", fd, false, dir); err != nil {
		return err
	}
	parts := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	cur := "/"
	for i, name := range parts {
		if name == "" {
			continue
		}
		cur = filepath.Join(cur, name)
		leaf := i == len(parts)-1
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			mode := uint32(0o755)
			if leaf {
				mode = 0o700
			}
			if err := unix.Mkdirat(fd, name, mode); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("state folder %s: create %s: %w", dir, cur, err)
			}
			next, err = unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		switch {
		case errors.Is(err, unix.ENOENT):
			return fmt.Errorf("state folder %s: %w", dir, fs.ErrNotExist)
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
			return fmt.Errorf("state folder %s: %s is a symlink or not a folder; refusing it (pass --state-dir with a real folder only root can write)", dir, cur)
		case err != nil:
			return fmt.Errorf("state folder %s: %s: %w", dir, cur, err)
		}
		unix.Close(fd)
		fd = next
		if err := checkStateFolder(cur, fd, leaf, dir); err != nil {
			return err
		}
	}
	return nil
}

// checkStateFolder checks one folder of a state path on its handle.
func checkStateFolder(path string, fd int, leaf bool, dir string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("state folder %s: %s: %w", dir, path, err)
	}
	if !trustedUID(st.Uid) {
		return fmt.Errorf("state folder %s: %s belongs to uid %d, who could change ccmirror's lock, journal and records; pass --state-dir with a folder only root can write (or chown root %s)", dir, path, st.Uid, path)
	}
	sticky := st.Mode&unix.S_ISVTX != 0 && st.Uid == 0
	if st.Mode&0o022 != 0 && (leaf || !sticky) {
		return fmt.Errorf("state folder %s: %s is writable by group or others (mode %04o); pass --state-dir with a folder only root can write (or chmod go-w %s)", dir, path, st.Mode&0o7777, path)
	}
	return nil
}

// checkStateEntry refuses a state file or folder that is not what ccmirror
// made: a regular file (or, with dir, a folder) owned by root (this user
// when not root) and not writable by group or others.
func checkStateEntry(path string, dir bool) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return err
	}
	want, what := uint32(syscall.S_IFREG), "a regular file"
	if dir {
		want, what = syscall.S_IFDIR, "a folder"
	}
	switch {
	case st.Mode&syscall.S_IFMT != want:
		return fmt.Errorf("%s is not %s; refusing to trust it (remove it)", path, what)
	case !trustedUID(st.Uid):
		return fmt.Errorf("%s belongs to uid %d, not root; refusing to trust it (remove it)", path, st.Uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("%s is writable by group or others (mode %04o); refusing to trust it (remove it)", path, st.Mode&0o7777)
	}
	return nil
}

// prepareState checks the state folder, creates it and its tmp/ and
// records/ when missing, and checks those too.
func prepareState(state string) error {
	if err := CheckStateDir(state, true); err != nil {
		return err
	}
	for _, d := range []string{tmpRoot(state), recordsDir(state)} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("state folder %s: %w", state, err)
		}
		if err := checkStateEntry(d, true); err != nil {
			return fmt.Errorf("state folder %s: %w", state, err)
		}
	}
	return nil
}
